#!/usr/bin/env bash
# Runs every benchmark, graft and the same recipe in PyTorch side by side in
# this one invocation, and rewrites bench/RESULTS.md.
#   bash bench/run.sh            (REPEATS=3 by default; medians are reported)
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the measurement only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh graft_bench
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
REPEATS=${REPEATS:-3}
THREADS=$(nproc)
DATA=${GRAFT_SHARED_DATA:-../shared/data}
PY=/usr/bin/python3
OUT=bench/RESULTS.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of the images_per_second field over REPEATS runs, and peak RSS (KiB)
measure() {
  local name=$1; shift
  for i in $(seq "$REPEATS"); do
    /usr/bin/time -f '%M' -o "$tmp/rss" "$@" > "$tmp/out" 2>/dev/null
    sed -n 's/.*"images_per_second": *\([0-9.eE+-]*\).*/\1/p' "$tmp/out" >> "$tmp/$name.rate"
    cat "$tmp/rss" >> "$tmp/$name.rss"
  done
  echo "$(sort -g "$tmp/$name.rate" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') $(sort -g "$tmp/$name.rss" | tail -1)"
}

row() {  # label graft_cmd... -- torch_cmd...
  local label=$1; shift
  local g=() t=() side=g
  for a in "$@"; do
    if [ "$a" = "--" ]; then side=t; continue; fi
    if [ $side = g ]; then g+=("$a"); else t+=("$a"); fi
  done
  n=$((n + 1))
  read -r grate grss < <(measure "g_$n" "${g[@]}")
  read -r trate trss < <(measure "t_$n" "${t[@]}")
  ratio=$(awk -v a="$grate" -v b="$trate" 'BEGIN {printf "%.2f", a / b}')
  printf '| %s | %.1f | %.1f | %s | %d | %d |\n' "$label" "$grate" "$trate" "$ratio" \
    $((grss / 1024)) $((trss / 1024)) >> "$tmp/table"
}

B=./build/graft_bench
T="$PY bench/torch_side.py"
: > "$tmp/table"
n=0
if [ -d "$DATA/hymenoptera/train" ]; then
  row "loader hymenoptera light 224 (img/s)" $B loader --data "$DATA/hymenoptera/train" --workers 2 -- \
      $T loader --data "$DATA/hymenoptera/train" --workers 2
  row "loader cifar10 jpg light 32 (img/s)" $B loader --data "$DATA/cifar10_test_jpg" --backbone resnet20 --workers 2 -- \
      $T loader --data "$DATA/cifar10_test_jpg" --backbone resnet20 --workers 2
fi
row "resnet18 full fine-tune step b32 224 (img/s)" $B train_step --backbone resnet18 --steps 5 -- \
    $T train_step --backbone resnet18 --steps 5

{
  echo "# Benchmarks"
  echo
  echo "Written by \`bash bench/run.sh\` on $(date -u +%Y-%m-%d) (REPEATS=$REPEATS, medians;"
  echo "$THREADS threads on both sides; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for the run)."
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores;"
  echo "AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no);"
  echo "BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)."
  echo
  echo "The PyTorch side is Debian's python3-torch/torchvision run as a user runs it"
  echo "(torchvision ImageFolder + DataLoader with the same worker count; default"
  echo "allocator and memory format). Ratio = graft / PyTorch (higher is better for graft)."
  echo
  echo "| figure | graft | PyTorch | ratio | graft peak RSS MiB | PyTorch peak RSS MiB |"
  echo "|---|---|---|---|---|---|"
  cat "$tmp/table"
  echo
  echo "The loader must outpace the model: compare the loader rows with the"
  echo "fine-tune step row (images the model consumes per second). Peak RSS is"
  echo "the largest single process (GNU time), so PyTorch's DataLoader worker"
  echo "processes are not added to its figure; graft's loader threads are in its one."
  echo "Inference, fine-tuning and the linear-probe recipe against tuned PyTorch"
  echo "(allocator fix, channels-last) are the work of the performance issue."
} > "$tmp/results.md"
# Sections written by other scripts (bench/transferability.sh, the hardening
# figures) are kept: they sit between <!-- NAME:begin --> and <!-- NAME:end -->.
if [ -f "$OUT" ]; then
  echo >> "$tmp/results.md"
  awk '/<!-- [a-z_-]+:begin -->/ {keep=1} keep {print} /<!-- [a-z_-]+:end -->/ {keep=0; print ""}' "$OUT" >> "$tmp/results.md"
fi
mv "$tmp/results.md" "$OUT"
cat "$OUT"

#!/usr/bin/env bash
# Runs every benchmark, graft and the same recipe in PyTorch side by side in
# this one invocation, and rewrites the main table of bench/RESULTS.md (the
# sections other scripts write are kept).
#   bash bench/run.sh            (REPEATS=3 by default; medians are reported;
#                                 about 25 minutes on 2 quiet cores, then the
#                                 tokenizer and face sections, SECTIONS=0 skips)
# Each figure runs graft, then PyTorch as a user runs it (glibc's default
# malloc, default memory format), then PyTorch tuned (glibc's mmap threshold
# raised through its environment, as graft does with mallopt at start-up, and
# channels-last for convolutional networks). Same model, batch, input and
# thread count on every side. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset
# for the measurement only. Run it on a quiet machine: the load average is
# recorded next to the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh graft graft_bench >/dev/null
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-$(nproc)}
DATA=${GRAFT_SHARED_DATA:-../shared/data}
PY=/usr/bin/python3
OUT=bench/RESULTS.md
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TUNED=(env MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864)
B=(./build/graft_bench --threads "$THREADS")
T=($PY bench/torch_side.py --threads "$THREADS")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# measure KEY REPEATS CMD...: one line "KEY rate peak_rss_kib" per repeat in raw
# (rate: the "rate" field of the command's JSON line).
measure() {
  local key=$1 reps=$2; shift 2
  for _ in $(seq "$reps"); do
    /usr/bin/time -f '%M' -o "$tmp/rss" "$@" > "$tmp/out" 2> "$tmp/err" ||
      { echo "bench: '$*' failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    rate=$(sed -n 's/.*"rate": *\([0-9.eE+-]*\).*/\1/p' "$tmp/out")
    echo "$key $rate $(cat "$tmp/rss")" >> "$tmp/raw"
  done
  echo "  $key" >&2
}

# A figure on the three sides: KEY STEPS graft-args -- torch-args [-- cl]
figure() {
  local key=$1 g=() t=() side=g cl=0; shift
  for a in "$@"; do
    if [ "$a" = "--" ]; then [ $side = g ] && side=t || side=c; continue; fi
    case $side in g) g+=("$a") ;; t) t+=("$a") ;; c) cl=1 ;; esac
  done
  [ $cl = 1 ] && t+=(--layout cl-tuned)
  # Interleaved, one run of each side per repeat: a slow spell of the machine
  # then hits every side alike.
  for _ in $(seq "$REPEATS"); do
    measure "$key/graft" 1 "${B[@]}" "${g[@]}"
    measure "$key/torch" 1 "${T[@]}" "${t[@]/cl-tuned/default}"
    measure "$key/tuned" 1 "${TUNED[@]}" "${T[@]}" "${t[@]/cl-tuned/cl}"
  done
}

: > "$tmp/raw"
measure peak/avx512 "$REPEATS" "${B[@]}" peak --isa avx512
measure peak/avx2 "$REPEATS" "${B[@]}" peak --isa avx2
for net in resnet18:3 resnet50:2 vgg16:1 googlenet:3; do
  n=${net%:*} s=${net#*:}
  figure "infer_$n" infer --backbone "$n" --steps "$s" -- infer --backbone "$n" --steps "$s" -- cl
  echo "$n $("${B[@]}" infer --backbone "$n" --steps 0 --batch-size 1 |
    sed -n 's/.*"macs_per_image": *\([0-9]*\).*/\1/p')" >> "$tmp/macs"
done
for net in resnet18:20 resnet50:10 vgg16:4 googlenet:20; do
  n=${net%:*} s=${net#*:}
  figure "infer_b1_$n" infer --backbone "$n" --batch-size 1 --steps "$s" -- \
    infer --backbone "$n" --batch-size 1 --steps "$s" -- cl
done
measure infer_resnet18/graft_plain "$REPEATS" "${B[@]}" infer --steps 3 --plain
measure infer_resnet18/graft_avx512 "$REPEATS" env ATEN_CPU_CAPABILITY=avx512 "${B[@]}" infer --steps 3
measure infer_resnet18/graft_bf16 "$REPEATS" "${B[@]}" infer --steps 3 --precision bf16
measure infer_resnet18/tuned_bf16 "$REPEATS" "${TUNED[@]}" "${T[@]}" infer --steps 3 --layout cl --precision bf16
figure train_full train_step --steps 2 -- train_step --steps 2 -- cl
measure train_full/graft_bf16 "$REPEATS" "${B[@]}" train_step --steps 2 --precision bf16
measure train_full/tuned_bf16 "$REPEATS" "${TUNED[@]}" "${T[@]}" train_step --steps 2 --layout cl --precision bf16
figure train_partial train_step --strategy partial:1 --steps 3 -- train_step --strategy partial --steps 3 -- cl
figure bert_train bert_train --steps 6 -- bert_train --steps 6
measure bert_train/graft_bf16 "$REPEATS" "${B[@]}" bert_train --steps 6 --precision bf16
measure bert_train/tuned_bf16 "$REPEATS" "${TUNED[@]}" "${T[@]}" bert_train --steps 6 --precision bf16
figure bert_infer bert_infer --steps 20 -- bert_infer --steps 20
measure bert_infer/graft_bf16 "$REPEATS" "${B[@]}" bert_infer --steps 20 --precision bf16
measure bert_infer/tuned_bf16 "$REPEATS" "${TUNED[@]}" "${T[@]}" bert_infer --steps 20 --precision bf16
# Which BLAS: the OpenMP build of OpenBLAS that the setup installs, against
# the pthread build (unpacked from Debian's package into the temporary
# folder, loaded through LD_LIBRARY_PATH: nothing on the system changes) and
# the reference BLAS, with graft's own thread setting.
if (cd "$tmp" && apt-get download libopenblas0-pthread >/dev/null 2>&1); then
  dpkg -x "$tmp"/libopenblas0-pthread_*.deb "$tmp/pthread"
  PT=$tmp/pthread/usr/lib/x86_64-linux-gnu/openblas-pthread
  measure blas/pthread_train "$REPEATS" env LD_LIBRARY_PATH="$PT" "${B[@]}" bert_train --steps 6
  measure blas/pthread_infer "$REPEATS" env LD_LIBRARY_PATH="$PT" "${B[@]}" bert_infer --steps 20
fi
if [ -f /usr/lib/x86_64-linux-gnu/blas/libblas.so.3 ]; then
  measure blas/reference_infer 1 env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/blas "${B[@]}" bert_infer --steps 1
fi
if [ -d "$DATA/hymenoptera/train" ]; then
  figure loader_hymenoptera loader --data "$DATA/hymenoptera/train" --workers 2 -- \
    loader --data "$DATA/hymenoptera/train" --workers 2
  figure loader_cifar10 loader --data "$DATA/cifar10_test_jpg" --backbone resnet20 --workers 2 -- \
    loader --data "$DATA/cifar10_test_jpg" --backbone resnet20 --workers 2
  # The linear probe end to end, 20 epochs (one run each: minutes): graft
  # with its feature cache (cold: a fresh cache folder), graft re-running the
  # backbone every epoch, and PyTorch's naive loop (tuned). "warm": the same
  # run again with the cache filled (as a grid search's later trials find it).
  probe() {  # graft train as a rate: training images x epochs per second
    local start end
    start=$(date +%s.%N)
    ./build/graft train --data "$DATA/hymenoptera/train" --val "$DATA/hymenoptera/val" \
      --backbone resnet18 --weights none --strategy linear --epochs 20 --batch-size 32 \
      --threads "$THREADS" --out "$tmp/probe" --overwrite --cache-dir "$CACHE" \
      --quiet "$@" > /dev/null
    end=$(date +%s.%N)
    echo "{\"rate\": $(awk -v n="$N_TRAIN" -v s="$start" -v e="$end" 'BEGIN {print n * 20 / (e - s)}')}"
  }
  N_TRAIN=$(find "$DATA/hymenoptera/train" -type f \( -iname "*.jpg" -o -iname "*.jpeg" \) | wc -l)
  export -f probe
  export DATA THREADS tmp N_TRAIN
  CACHE=$tmp/cache measure probe/cached 1 bash -c probe
  CACHE=$tmp/cache measure probe/warm 1 bash -c probe
  CACHE=$tmp/cache2 measure probe/naive 1 bash -c 'probe --no-feature-cache'
  measure probe/torch 1 "${TUNED[@]}" "${T[@]}" linear_probe --data "$DATA/hymenoptera/train" \
    --epochs 20 --layout cl
fi
if [ -d "$DATA/cifar10_test_jpg" ] && [ -f "$DATA/pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th" ]; then
  # The accuracy side of bf16: the published CIFAR-10 ResNet-20 on the 10,000
  # test images, fp32 and bf16.
  for p in fp32 bf16; do
    ./build/graft eval --backbone resnet20 --weights "$DATA/pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th" \
      --data "$DATA/cifar10_test_jpg" --threads "$THREADS" --precision $p > "$tmp/acc_$p.json"
  done
fi
"${TUNED[@]}" "${T[@]}" profile > "$tmp/profile.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

export REPEATS THREADS load_before load_after
$PY bench/format_results.py "$tmp" > "$tmp/results.md"
# Sections written by other scripts (bench/text.sh, bench/face.sh, ...) are
# kept: they sit between <!-- NAME:begin --> and <!-- NAME:end -->.
if [ -f "$OUT" ]; then
  echo >> "$tmp/results.md"
  awk '/<!-- [a-z_-]+:begin -->/ {keep=1} keep {print} /<!-- [a-z_-]+:end -->/ {keep=0; print ""}' "$OUT" >> "$tmp/results.md"
fi
mv "$tmp/results.md" "$OUT"

# The figures of the other tasks that the performance issue lists, each
# script rewriting its own section: WordPiece tokens/s against Hugging Face's
# tokenizers, and face detection/alignment/embedding time per image (with
# the face task's accuracy). SECTIONS=0 skips them. The longer studies
# (bench/text.sh, bench/transferability.sh, bench/dist.sh, bench/hardening.sh)
# run on their own.
if [ "${SECTIONS:-1}" != 0 ]; then
  bash bench/tokenize_bench.sh
  bash bench/face.sh
  bash bench/int8.sh
  bash bench/peaks.sh
  bash bench/face_speed.sh
  bash bench/load.sh
  bash bench/time_to_acc.sh
fi
cat "$OUT"

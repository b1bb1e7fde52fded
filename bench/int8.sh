#!/usr/bin/env bash
# --precision int8 (issue 21 part 1): speed and accuracy, side by side in one
# run, and the int8 section of bench/RESULTS.md.
#   - ResNet-18, ResNet-50, VGG-16, AlexNet and GoogLeNet inference on random input
#     (NETS, name:steps at batch 32:steps at batch 1), batch 32 and batch 1:
#     graft fp32, graft bf16, graft int8 (graft_bench infer --precision ...),
#     and PyTorch FX post-training static int8 with the same QConfig and
#     engine (bench/torch_side.py infer --precision int8; glibc's mmap
#     threshold raised as for "tuned" in bench/run.sh). Interleaved repeats;
#     medians, with the min-max of each ratio over the repeats.
#   - Accuracy of akamaster's CIFAR-10 ResNet-20 on the 10,000 test JPEGs,
#     `graft eval --precision fp32` and `--precision int8` (calibrated on 256
#     images drawn, seeded, from the same folder: CIFAR-10's training images
#     are not on this machine).
#   bash bench/int8.sh        (REPEATS=3, THREADS=nproc; about 11 minutes on 2 quiet cores)
#   - BERT-mini inference, batch 32, sequence 128: graft fp32, bf16 and dynamic
#     int8 against PyTorch's quantize_dynamic (BERT=0 leaves it out).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the measurement only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft graft_bench >/dev/null
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-$(nproc)}
DATA=${GRAFT_SHARED_DATA:-../shared/data}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TUNED=(env MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

rate() {  # the "rate" field of a JSON line on stdin
  sed -n 's/.*"rate": *\([0-9.eE+-]*\).*/\1/p'
}
: > "$tmp/raw"
NETS=${NETS:-"resnet18:3:20 resnet50:2:10 vgg16:1:4 alexnet:3:20 googlenet:3:20"}
for net in $NETS; do
  n=${net%%:*} rest=${net#*:}
  s32=${rest%%:*} s1=${rest#*:}
  for _ in $(seq "$REPEATS"); do
    for b in 32 1; do
      steps=$([ $b = 32 ] && echo "$s32" || echo "$s1")
      for p in fp32 bf16 int8; do
        r=$(./build/graft_bench --threads "$THREADS" infer --backbone "$n" --batch-size $b --steps "$steps" \
              --precision $p | rate)
        echo "$n $b graft_$p $r" >> "$tmp/raw"
      done
      r=$("${TUNED[@]}" $PY bench/torch_side.py --threads "$THREADS" infer --backbone "$n" --batch-size $b \
            --steps "$steps" --precision int8 2>/dev/null | rate)
      echo "$n $b fx_int8 $r" >> "$tmp/raw"
    done
  done
  echo "  $n" >&2
done
# BERT-mini inference (batch 32, sequence 128): graft fp32, bf16 and dynamic
# int8 (--precision int8 on a BERT run) against PyTorch's quantize_dynamic.
if [ "${BERT:-1}" = 1 ]; then
  for _ in $(seq "$REPEATS"); do
    for p in fp32 bf16 int8; do
      r=$(./build/graft_bench --threads "$THREADS" bert_infer --size bert-mini --batch-size 32 --seq 128 \
            --steps 5 --precision $p | rate)
      echo "bert-mini 32 graft_$p $r" >> "$tmp/raw"
    done
    r=$("${TUNED[@]}" $PY bench/torch_side.py --threads "$THREADS" bert_infer --size bert-mini --batch-size 32 \
          --seq 128 --steps 5 --precision int8 2>/dev/null | rate)
    echo "bert-mini 32 fx_int8 $r" >> "$tmp/raw"
  done
  echo "  bert-mini" >&2
fi
AKA="$DATA/pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th"
if [ -f "$AKA" ] && [ -d "$DATA/cifar10_test_jpg" ]; then
  ./build/graft eval --backbone resnet20 --weights "$AKA" --data "$DATA/cifar10_test_jpg" --threads "$THREADS" \
    --precision fp32 > "$tmp/acc_fp32.json"
  ./build/graft eval --backbone resnet20 --weights "$AKA" --data "$DATA/cifar10_test_jpg" --threads "$THREADS" \
    --precision int8 --calibration 256 --calibration-data "$DATA/cifar10_test_jpg" > "$tmp/acc_int8.json"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
vnni=$(grep -o -m1 -w 'avx512_vnni\|amx_int8' /proc/cpuinfo | sort -u | tr '\n' ' ')

$PY - "$tmp" "$REPEATS" "$THREADS" "$load_before" "$load_after" "$cpu" "$vnni" "$NETS" > "$tmp/section.md" <<'EOF'
import json, os, statistics, sys
tmp, repeats, threads, before, after, cpu, vnni, nets = sys.argv[1:]
nets = [n.split(":")[0] for n in nets.split()] + ["bert-mini"]
rows = {}
for line in open(os.path.join(tmp, "raw")):
    n, b, side, r = line.split()
    rows.setdefault((n, int(b), side), []).append(float(r))
med = {k: statistics.median(v) for k, v in rows.items()}
def ratio(n, b, a, c):
    rs = [x / y for x, y in zip(rows[(n, b, a)], rows[(n, b, c)])]
    return f"{med[(n, b, a)] / med[(n, b, c)]:.2f}× ({min(rs):.2f}-{max(rs):.2f})"
out = ["<!-- int8:begin -->", "## int8 inference (`--precision int8`)", "",
       f"`bash bench/int8.sh` (REPEATS={repeats}, {threads} threads, {cpu}, {vnni.strip() or 'no VNNI'}; "
       f"load average {before} before, {after} after). Images per second, medians of interleaved repeats; "
       "each ratio is the ratio of medians, with the min-max of the per-repeat ratios. PyTorch FX int8: "
       "post-training static quantisation with graft's QConfig (min-max activations, per-channel symmetric "
       "weights) on the same onednn engine, calibrated like graft_bench on its input. BERT-mini (sequences per "
       "second, sequence 128): graft's dynamic int8 of the encoder's and pooler's Linear layers against "
       "PyTorch's `quantize_dynamic` of every nn.Linear (per-channel weights, onednn).", "",
       "| network | batch | graft fp32 | graft bf16 | graft int8 | PyTorch int8 | int8 / fp32 | int8 / bf16 | graft int8 / PyTorch int8 |",
       "|---|---|---|---|---|---|---|---|---|"]
for n in nets:
    for b in (32, 1):
        if (n, b, "graft_int8") not in med:
            continue
        out.append(f"| {n} | {b} | {med[(n, b, 'graft_fp32')]:.1f} | {med[(n, b, 'graft_bf16')]:.1f} | "
                   f"{med[(n, b, 'graft_int8')]:.1f} | {med[(n, b, 'fx_int8')]:.1f} | "
                   f"{ratio(n, b, 'graft_int8', 'graft_fp32')} | {ratio(n, b, 'graft_int8', 'graft_bf16')} | "
                   f"{ratio(n, b, 'graft_int8', 'fx_int8')} |")
out.append("")
for b in (1,):
    for n in nets:
        if (n, b, "graft_int8") in med:
            out.append(f"- {n} batch-1 latency: graft int8 {1000 / med[(n, b, 'graft_int8')]:.1f} ms, "
                       f"fp32 {1000 / med[(n, b, 'graft_fp32')]:.1f} ms, FX int8 {1000 / med[(n, b, 'fx_int8')]:.1f} ms.")
t = {}
for p in ("fp32", "int8"):
    f = os.path.join(tmp, f"acc_{p}.json")
    if os.path.exists(f) and os.path.getsize(f):
        t[p] = json.load(open(f))
if len(t) == 2:
    a, q = t["fp32"]["accuracy"], t["int8"]["accuracy"]
    out.append(f"- Accuracy, akamaster ResNet-20 on the {t['int8']['count']} CIFAR-10 test JPEGs: fp32 "
               f"{100 * a:.2f}%, int8 {100 * q:.2f}% ({100 * (q - a):+.2f} points; target: within 1 point). "
               "Calibrated on 256 images of the same folder (no CIFAR-10 training images here).")
if float(before.split()[0]) > int(threads) or float(after.split()[0]) > int(threads):
    out.append(f"- **Measured under load** (load average above the {threads} threads used): the figures and "
               "ratios are noisy; rerun on a quiet machine before quoting them.")
out.append("- Targets (issue 21): int8 ≥ 3× graft fp32 and ≥ 1.5× graft bf16 at batch 32 (ResNet-18/50); graft "
           "int8 ≥ 1.0× FX int8. VGG-16, AlexNet and GoogLeNet have no accuracy row: no ImageNet "
           "images or weights here; their parity with FX is tests/models/int8_test.cpp's.")
out.append("<!-- int8:end -->")
print("\n".join(out))
EOF
$PY bench/section.py bench/RESULTS.md int8 "$tmp/section.md"
cat "$tmp/section.md"

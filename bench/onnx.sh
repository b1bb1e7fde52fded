#!/usr/bin/env bash
# onnxruntime on graft's ONNX export against graft's own forward, same network
# (ImageNet-shaped, random weights), same machine, same run, one after the
# other: graft_bench infer (channels-last, BatchNorm folded, as graft eval
# runs) also writes the network with image_model_onnx (what graft export
# writes), and tests/reference/onnx_run.js times onnxruntime-node 1.20.1
# (CPU execution provider, all graph optimisations) on a batch of the same
# shape with the same thread count.
#   bash bench/onnx.sh [GRAFT_BENCH_BINARY]
# BACKBONES (resnet18 resnet50), BATCH (8), STEPS (10), THREADS (2).
# Writes the "onnx" section of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${GRAFT_BUILD_DIR:-build}/graft_bench}
BACKBONES=${BACKBONES:-resnet18 resnet50}
BATCH=${BATCH:-8}
STEPS=${STEPS:-10}
THREADS=${THREADS:-2}
[ -x "$bin" ] || { echo "onnx bench: build $bin first (target graft_bench)" >&2; exit 1; }
bash scripts/onnx_reference.sh >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rows=()
for b in $BACKBONES; do
  g=$("$bin" infer --backbone "$b" --batch-size "$BATCH" --steps "$STEPS" --threads "$THREADS" --onnx-out "$tmp/$b.onnx")
  echo "$g"
  /usr/bin/python3 - "$tmp" "$BATCH" <<'PY'
import json, sys
import numpy as np
tmp, batch = sys.argv[1], int(sys.argv[2])
np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32).tofile(f"{tmp}/x.bin")
json.dump({"inputs": [{"name": "input", "type": "float32", "dims": [batch, 3, 224, 224], "file": f"{tmp}/x.bin"}]},
          open(f"{tmp}/spec.json", "w"))
PY
  node tests/reference/onnx_run.js "$tmp/$b.onnx" "$tmp/spec.json" "$tmp/out" --repeat "$STEPS" --threads "$THREADS"
  o=$(cat "$tmp/out/outputs.json")
  echo "$o"
  rows+=("$b|$g|$o|$(stat -c %s "$tmp/$b.onnx")")
done

load=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "<!-- onnx:begin -->"
  echo "## ONNX export: onnxruntime against graft on the same network"
  echo
  echo "Written by \`bash bench/onnx.sh\` on $(date -u +%Y-%m-%d): batch $BATCH of 3x224x224, $STEPS timed"
  echo "forward passes after one warm-up, $THREADS threads on each side, one side after the other in"
  echo "the same run. graft: \`graft_bench infer\` (channels-last, BatchNorm folded, fp32), which also"
  echo "writes the network with \`image_model_onnx\` (what \`graft export --format onnx\` writes);"
  echo "onnxruntime-node 1.20.1 (CPU execution provider, all graph optimisations) runs that file"
  echo "(\`tests/reference/onnx_run.js --repeat\`). Measured under load: other agents share these 2"
  echo "cores (load average $load at the end), so the ratios are rough."
  echo
  echo "| network | ONNX file | graft images/s | onnxruntime images/s | onnxruntime / graft |"
  echo "|---|---|---|---|---|"
  for row in "${rows[@]}"; do
    IFS='|' read -r b g o size <<<"$row"
    /usr/bin/python3 - "$b" "$g" "$o" "$size" "$BATCH" <<'PY'
import json, sys
b, g, o, size, batch = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ort = batch * 1000.0 / o["ms_per_run"]
print(f"| {b} | {size / 1e6:.1f} MB | {g['rate']:.1f} | {ort:.1f} | {ort / g['rate']:.2f} |")
PY
  done
  echo "<!-- onnx:end -->"
} > "$tmp/section.md"
cat "$tmp/section.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md onnx "$tmp/section.md"

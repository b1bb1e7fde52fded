#!/usr/bin/env bash
# Test-time augmentation (issue 20): accuracy, NLL and time of `graft eval
# --tta none|flip|five-crop|ten-crop` on
#   - akamaster's CIFAR-10 ResNet-20 (its own classifier) on the CIFAR-10 test
#     JPEGs: the first PER_CLASS images of each class folder (default 200, so
#     2,000 images; PER_CLASS=1000 is the whole test set);
#   - a hymenoptera run (resnet56 linear probe on akamaster's CIFAR-10
#     ResNet-56, as bench/calibration.sh trains it) on hymenoptera/val.
# Both models take 32x32 inputs with no resize margin, so five-crop and
# ten-crop crop 32x32 from the resized image padded by 4 black pixels.
# Time is the wall time of the whole `graft eval` (start, load, decode,
# forward), as a ratio to --tta none measured in the same run.
#   bash bench/tta.sh          (THREADS=2, PER_CLASS=200; about 8 minutes on 2 loaded cores;
#                               TORCH=1 adds torchvision's CIFAR-10 figures, bench/tta_torch.py)
# Prints a markdown table for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# GRAFT=path/to/graft uses that binary instead of building build/graft.
[ -n "${GRAFT:-}" ] || bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-tta}
THREADS=${THREADS:-2}
PER_CLASS=${PER_CLASS:-200}
G=${GRAFT:-$PWD/build/graft}
AKA="$DATA/pretrained/resnet_cifar10_akamaster"
mkdir -p "$W"

# The CIFAR-10 subset: links to the first PER_CLASS files (sorted) of each class.
CIFAR="$W/cifar10-$PER_CLASS"
if [ ! -d "$CIFAR" ]; then
  for d in "$DATA"/cifar10_test_jpg/*/; do
    c=$(basename "$d")
    mkdir -p "$CIFAR.tmp/$c"
    mapfile -t files < <(find "$d" -maxdepth 1 -type f | sort)
    for f in "${files[@]:0:$PER_CLASS}"; do ln -s "$f" "$CIFAR.tmp/$c/"; done
  done
  mv "$CIFAR.tmp" "$CIFAR"
fi

# The hymenoptera run (feature cache: the backbone runs once).
if [ ! -f "$W/hymenoptera/model.json" ]; then
  $G train --data "$DATA/hymenoptera/train" --val-split 0.3 --backbone resnet56 \
    --weights "$AKA/resnet56-4bfd9763.th" --strategy linear \
    --epochs 30 --threads "$THREADS" --out "$W/hymenoptera" --overwrite --quiet >/dev/null
fi

echo "| set (model) | --tta | views | images | accuracy | NLL | seconds | time / none |"
echo "|---|---|---|---|---|---|---|---|"
rows() {  # file name, row name, then the eval arguments
  local slug=$1 name=$2 base=""
  shift 2
  for tta in none flip five-crop ten-crop; do
    local t0 t1
    t0=$(date +%s.%N)
    $G eval "$@" --tta "$tta" --threads "$THREADS" >"$W/$slug.$tta.json"
    t1=$(date +%s.%N)
    local secs
    secs=$(/usr/bin/python3 -c "print(f'{$t1 - $t0:.2f}')")
    [ -z "$base" ] && base=$secs
    /usr/bin/python3 - "$name" "$tta" "$W/$slug.$tta.json" "$secs" "$base" <<'PY'
import json, sys
name, tta, path, secs, base = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
e = json.load(open(path))
views = {"none": 1, "flip": 2, "five-crop": 5, "ten-crop": 10}[tta]
print(f"| {name} | {tta} | {views} | {e['count']} | {e['accuracy']:.4f} | {e['loss']:.4f} | {secs:.1f} | {secs / base:.2f} |")
PY
  done
}
rows cifar10 "CIFAR-10 test, $PER_CLASS per class (akamaster resnet20)" --backbone resnet20 \
  --weights "$AKA/resnet20-12fca82f.th" --data "$CIFAR"
rows hymenoptera "hymenoptera val (resnet56 linear probe)" "$W/hymenoptera" --data "$DATA/hymenoptera/val"
# TORCH=1: torchvision's figures for the same CIFAR-10 subset (bench/tta_torch.py).
if [ "${TORCH:-0}" = 1 ]; then
  echo
  echo "torchvision (bench/tta_torch.py, $CIFAR):"
  THREADS=$THREADS /usr/bin/python3 bench/tta_torch.py "$CIFAR" "$AKA/resnet20-12fca82f.th"
fi

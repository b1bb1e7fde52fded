#!/usr/bin/env bash
# README command 1, the main job: on Fashion-MNIST, pretrain a CIFAR-style
# ResNet-20 on 5 source classes, transfer it to the other 5 classes with 50
# labelled images per class (linear probe, last-stage fine-tuning, full
# fine-tuning), train the same network from scratch on the same 250 images,
# and print the test accuracies side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh graft
GRAFT=./build/graft
FM=/usr/share/datasets/fashion-mnist
TRAIN=$FM/train-images-idx3-ubyte.gz
TEST=$FM/t10k-images-idx3-ubyte.gz
RUNS=${GRAFT_RUNS:-runs/demo}
SOURCE="0,1,2,3,4"   # T-shirt/top, Trouser, Pullover, Dress, Coat
TARGET="5,6,7,8,9"   # Sandal, Shirt, Sneaker, Bag, Ankle boot
mkdir -p "$RUNS"

# Each step is skipped when its run already finished, so a second call is quick.
run() {
  local out=$1; shift
  if [ -f "$out/summary.json" ]; then cat "$out/summary.json"; return; fi
  "$GRAFT" "$@" --out "$out" --overwrite --quiet > "$out.json.tmp"
  mkdir -p "$out" && mv "$out.json.tmp" "$out/summary.json"
  cat "$out/summary.json"
}

echo "== 1/5 pretrain the source model (ResNet-20 on the 30000 images of classes $SOURCE; ~5 min)" >&2
run "$RUNS/source" pretrain --data "$TRAIN" --classes "$SOURCE" --val-split 0.05 \
    --backbone resnet20 --epochs 5 --batch-size 64 --lr 0.1 --augment light --seed 1 >/dev/null

common=(--data "$TRAIN" --classes "$TARGET" --per-class 50 --val-split 0.2
        --test "$TEST" --backbone resnet20 --batch-size 25 --seed 2)
echo "== 2/5 linear probe on the frozen source model" >&2
run "$RUNS/linear" train "${common[@]}" --weights "$RUNS/source" --strategy linear \
    --epochs 60 --lr 0.05 >/dev/null
echo "== 3/5 fine-tuning of the last stage" >&2
run "$RUNS/partial" train "${common[@]}" --weights "$RUNS/source" --strategy partial:1 \
    --epochs 30 --lr 0.05 --backbone-lr-mult 1 --augment light >/dev/null
echo "== 4/5 full fine-tuning (earlier layers at half the head's learning rate)" >&2
run "$RUNS/finetune" train "${common[@]}" --weights "$RUNS/source" --strategy full \
    --epochs 30 --lr 0.05 --backbone-lr-mult 0.5 --augment light >/dev/null
echo "== 5/5 the same network from scratch on the same images" >&2
run "$RUNS/scratch" train "${common[@]}" --weights none --strategy full \
    --epochs 30 --lr 0.05 --backbone-lr-mult 1 --augment light >/dev/null

acc() { sed -n 's/.*"test_accuracy":\([0-9.eE-]*\).*/\1/p' "$1/summary.json" | awk '{printf "%.2f%%", $1 * 100}'; }
printf '\nFashion-MNIST, target classes %s, 50 labelled images per class (40 train + 10 val)\n' "$TARGET"
printf 'test set: the 5000 t10k images of those classes\n\n'
printf '%-28s %s\n' "method" "test accuracy"
printf '%-28s %s\n' "transfer: linear probe" "$(acc "$RUNS/linear")"
printf '%-28s %s\n' "transfer: last-stage tune" "$(acc "$RUNS/partial")"
printf '%-28s %s\n' "transfer: full fine-tune" "$(acc "$RUNS/finetune")"
printf '%-28s %s\n' "from scratch" "$(acc "$RUNS/scratch")"

#!/usr/bin/env bash
# Few-shot transfer (issue 20, part 3): a centroid head (nearest class mean,
# cosine, fitted in one pass) against a linear head trained on the same
# features, with 1, 5, 10 and 50 labelled images per class of the demo's
# target classes (Fashion-MNIST 5-9), on a source model pretrained by
# scripts/demo.sh's step-1 command on classes 0-4 (the demo's split before it
# became 0,2,5,7,8 -> 1,3,4,6,9). Each budget is
# drawn SEEDS times (--seed: which images); test set: the 5000 t10k images
# of the target classes. No validation split (there is nothing to split at
# one image per class): the linear head trains a fixed ~300 steps.
#   [SOURCE=RUN] [SEEDS=5] [THREADS=2] bash bench/few_shot.sh
# SOURCE: an existing pretraining run of the demo's recipe (else it is
# pretrained here, ~5 min on 2 quiet cores). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GRAFT_BUILD_DIR:-build}
G=$PWD/$B/graft
[ -x "$G" ] || G=$B/graft
FM=/usr/share/datasets/fashion-mnist
TRAIN=$FM/train-images-idx3-ubyte.gz
TEST=$FM/t10k-images-idx3-ubyte.gz
W=${GRAFT_BENCH_DIR:-/tmp/graft-few-shot}
SEEDS=${SEEDS:-5}
THREADS=${THREADS:-2}
TARGET="5,6,7,8,9"
mkdir -p "$W"
SRC=${SOURCE:-$W/source}
if [ ! -f "$SRC/model.safetensors" ]; then
  "$G" pretrain --data "$TRAIN" --classes 0,1,2,3,4 --val-split 0.05 --backbone resnet20 --epochs 5 \
    --batch-size 64 --lr 0.1 --augment light --seed 1 --threads "$THREADS" --out "$SRC" --overwrite --quiet >/dev/null
fi

for n in 1 5 10 50; do
  # ~300 optimiser steps for the linear head whatever the budget.
  steps_per_epoch=$(( (5 * n + 24) / 25 ))
  epochs=$(( 300 / steps_per_epoch ))
  for seed in $(seq "$SEEDS"); do
    for head in linear centroid; do
      out=$W/n$n-s$seed-$head
      [ -f "$out/test_metrics.json" ] && continue
      extra=()
      [ "$head" = linear ] && extra=(--epochs "$epochs" --lr 0.05)
      "$G" train --data "$TRAIN" --classes "$TARGET" --per-class "$n" --val-split 0 --test "$TEST" \
        --backbone resnet20 --weights "$SRC" --strategy linear --head "$head" --batch-size 25 --seed "$seed" \
        --threads "$THREADS" --out "$out" --overwrite --quiet "${extra[@]}" >/dev/null
    done
  done
done

/usr/bin/python3 - "$W" "$SEEDS" <<'PY'
import json, statistics, sys
w, seeds = sys.argv[1], int(sys.argv[2])
print("| labelled images per class | linear head: test accuracy (mean ± sd) | centroid head | centroid − linear |")
print("|---|---|---|---|")
for n in (1, 5, 10, 50):
    acc = {h: [json.load(open(f"{w}/n{n}-s{s}-{h}/test_metrics.json"))["accuracy"] for s in range(1, seeds + 1)]
           for h in ("linear", "centroid")}
    m = {h: statistics.mean(a) for h, a in acc.items()}
    sd = {h: statistics.stdev(a) if len(a) > 1 else 0.0 for h, a in acc.items()}
    print(f"| {n} | {100*m['linear']:.2f}% ± {100*sd['linear']:.2f} | {100*m['centroid']:.2f}% ± {100*sd['centroid']:.2f} "
          f"| {100*(m['centroid']-m['linear']):+.2f} points |")
PY

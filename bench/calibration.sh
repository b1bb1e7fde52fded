#!/usr/bin/env bash
# Calibration before and after temperature scaling (issue 20), measured on
# held-out test sets: each run fits its temperature on its own validation
# split (a part of the training data), and `graft eval` on the test set
# reports ECE (15 bins) and NLL with and without it.
#   bash bench/calibration.sh        (THREADS=2; a few minutes on 2 quiet cores)
# Prints a markdown table (one row per set) for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-calibration}
THREADS=${THREADS:-2}
G=$PWD/build/graft
mkdir -p "$W"

row() {  # name, run, test data, eval flags...
  local name=$1 run=$2 test=$3
  shift 3
  $G eval "$run" --data "$test" --threads "$THREADS" "$@" >"$W/$name.eval.json"
  /usr/bin/python3 - "$name" "$run/calibration.json" "$W/$name.eval.json" <<'PY'
import json, sys
name, cal, ev = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
c = ev["calibration"]
print(f"| {name} | {ev['count']} | {ev['accuracy']:.4f} | {cal['examples']} | {cal['temperature']:.3f} | "
      f"{c['ece_uncalibrated']:.4f} | {c['ece']:.4f} | {c['nll_uncalibrated']:.4f} | {c['nll']:.4f} |")
PY
}

echo "| set (model) | test inputs | test accuracy | validation inputs (T fitted on) | T | test ECE before | after | test NLL before | after |"
echo "|---|---|---|---|---|---|---|---|---|"

# Images: hymenoptera (ants/bees), linear probe on akamaster's CIFAR-10
# ResNet-56; 30% of the training folder is the validation split.
$G train --data "$DATA/hymenoptera/train" --val-split 0.3 --backbone resnet56 \
  --weights "$DATA/pretrained/resnet_cifar10_akamaster/resnet56-4bfd9763.th" --strategy linear \
  --epochs 30 --threads "$THREADS" --out "$W/hymenoptera" --overwrite --quiet >/dev/null
row "hymenoptera (resnet56 linear probe)" "$W/hymenoptera" "$DATA/hymenoptera/val"
# The same source fine-tuned in full: 171 training images, 30 epochs.
$G train --data "$DATA/hymenoptera/train" --val-split 0.3 --backbone resnet56 \
  --weights "$DATA/pretrained/resnet_cifar10_akamaster/resnet56-4bfd9763.th" --strategy full \
  --epochs 30 --lr 0.01 --threads "$THREADS" --out "$W/hymenoptera-full" --overwrite --quiet >/dev/null
row "hymenoptera (resnet56 full fine-tune)" "$W/hymenoptera-full" "$DATA/hymenoptera/val"

# Text: TF-IDF with a linear head on SST-2 (train.tsv; test: dev.tsv, which
# has labels) and AG News (dev.tsv to train, test.tsv to test).
$G train --task text --backbone tfidf --vocab "$DATA/bert_vocab/vocab.txt" --data "$DATA/sst2/train.tsv" --val-split 0.1 --epochs 3 \
  --threads "$THREADS" --out "$W/sst2" --overwrite --quiet >/dev/null
row "SST-2 (TF-IDF)" "$W/sst2" "$DATA/sst2/dev.tsv"
$G train --task text --backbone tfidf --vocab "$DATA/bert_vocab/vocab.txt" --data "$DATA/ag_news/dev.tsv" --header no --text-column 0 \
  --label-column 1 --val-split 0.2 --epochs 5 --threads "$THREADS" --out "$W/ag_news" --overwrite \
  --quiet >/dev/null
row "AG News (TF-IDF)" "$W/ag_news" "$DATA/ag_news/test.tsv" --header no --text-column 0 --label-column 1

#!/usr/bin/env bash
# Self-training in the demo setting (issue 19): Fashion-MNIST target classes
# 1,3,4,6,9 (trouser, dress, coat, shirt, ankle boot), 50 labels per class
# plus the unlabelled rest of their training images (29,750), ResNet-20.
# Six arms: {supervised only, --self-train pseudo, --self-train fixmatch} x
# {fine-tuned from the demo's source (pretrained on classes 0,2,5,7,8),
# from scratch}, each at a fixed step budget, scored on the 5000 t10k images
# of the target classes.
#   [BUDGETS="150:2 600:2"] [MU=7] [NUNL=0] [THREADS=1] [GRAFT_BIN=build/graft]
#   [SOURCE_RUN=/tmp/graft-self-train/source] bash bench/self_train.sh
# BUDGETS: STEPS:DRAWS pairs: every arm trains STEPS optimiser steps of 25
# labelled images (STEPS/10 epochs of the 250) on each of DRAWS seeded draws
# of the labelled images (draw d: bench/self_train_data.py seed d, graft
# --seed d+1, as scripts/demo.sh seeds its draws). The recipe is demo.sh's
# (batch 25, SGD lr 0.05 cosine, --augment light, bf16, no validation split:
# the last epoch's model is scored; from the source: --strategy full
# --backbone-lr-mult 0.5; from scratch: --backbone-lr-mult 1). Self-training
# adds MU unlabelled images per labelled one each step (--unlabeled-ratio;
# FixMatch's paper: 7) and threshold 0.95 (--confidence, the paper's);
# pseudo-labels ramp their weight up over the first third of the epochs
# (--rampup-epochs), FixMatch has none (the paper's). NUNL > 0 keeps a seeded
# subset of that many unlabelled images (0: all).
# SOURCE_RUN: a run of demo.sh's step 1 (pretrained here with its command if
# missing). Work folder GRAFT_BENCH_DIR (/tmp/graft-self-train); a run whose
# NAME.secs exists there is reused (remove it to make the run again), and a run
# not made is "not run" in the table. Prints the section and writes it into
# bench/RESULTS.md after the adapt section, with bench/self_train_notes.md
# (the reading of the runs of one date: edit it when the figures change).
# The defaults take about an hour on one thread (3547 s of runs on
# 2026-12-05, under load).
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GRAFT_BIN:-build/graft}
[ -x "$G" ] || { echo "no graft at $G (bash scripts/build.sh graft, or set GRAFT_BIN)" >&2; exit 1; }
W=${GRAFT_BENCH_DIR:-/tmp/graft-self-train}
BUDGETS=${BUDGETS:-150:2 600:2}
MU=${MU:-7}
NUNL=${NUNL:-0}
THREADS=${THREADS:-1}
SRC=${SOURCE_RUN:-$W/source}
FM=/usr/share/datasets/fashion-mnist
SOURCE_CLASSES=0,2,5,7,8
TARGET_CLASSES=1,3,4,6,9
PER_CLASS=50
mkdir -p "$W"

if [ ! -f "$SRC/model.safetensors" ]; then
  echo "== source: demo.sh's step 1 into $SRC" >&2
  t0=$(date +%s)
  "$G" pretrain --data "$FM/train-images-idx3-ubyte.gz" --classes "$SOURCE_CLASSES" --val-split 0.05 \
      --backbone resnet20 --epochs 5 --batch-size 64 --lr 0.1 --augment light --seed 1 \
      --threads "$THREADS" --out "$SRC" --overwrite --quiet > "$W/source.json"
  echo $(( $(date +%s) - t0 )) > "$W/source.secs"
fi

maxdraws=0
for b in $BUDGETS; do d=${b#*:}; [ "$d" -gt "$maxdraws" ] && maxdraws=$d; done
for d in $(seq "$maxdraws"); do
  [ -d "$W/data-s$d/test" ] ||
    /usr/bin/python3 bench/self_train_data.py "$W/data-s$d" "$TARGET_CLASSES" "$PER_CLASS" "$NUNL" "$d"
done

run() {  # run STEPS DRAW INIT METHOD
  local steps=$1 d=$2 init=$3 method=$4
  local name=n$steps/s$d-$init-$method out=$W/n$steps/s$d-$init-$method D=$W/data-s$d
  local epochs=$(( steps / ((PER_CLASS * 5 + 24) / 25) ))
  local flags=()
  case $init in
    source)  flags=(--weights "$SRC" --strategy full --lr 0.05 --backbone-lr-mult 0.5 --augment light) ;;
    scratch) flags=(--weights none --strategy full --lr 0.05 --backbone-lr-mult 1 --augment light) ;;
  esac
  case $method in
    supervised) ;;
    pseudo)   flags+=(--unlabeled "$D/unlabeled" --self-train pseudo --unlabeled-ratio "$MU" --confidence 0.95
                      --rampup-epochs $(( epochs / 3 ))) ;;
    fixmatch) flags+=(--unlabeled "$D/unlabeled" --self-train fixmatch --unlabeled-ratio "$MU" --confidence 0.95) ;;
  esac
  if [ ! -f "$W/$name.secs" ]; then
    echo "== $name ($epochs epochs)" >&2
    mkdir -p "$(dirname "$out")"
    local t0; t0=$(date +%s)
    "$G" train --data "$D/labeled" --val-split 0 --test "$D/test" --backbone resnet20 --batch-size 25 \
        --precision bf16 --epochs "$epochs" --seed $(( d + 1 )) --threads "$THREADS" "${flags[@]}" \
        --out "$out" --overwrite --quiet > "$out.json"
    echo $(( $(date +%s) - t0 )) > "$W/$name.secs"
    echo "$(date -u +%FT%TZ) $name $(cut -d' ' -f1-3 /proc/loadavg)" >> "$W/loads.log"
  fi
  /usr/bin/python3 -c "import json,sys; print(sys.argv[1], '%.2f%%' % (100*json.load(open(sys.argv[2]))['accuracy']), sys.argv[3], 's')" \
    "$name" "$out/test_metrics.json" "$(cat "$W/$name.secs")" >&2
}

for b in $BUDGETS; do
  steps=${b%:*} draws=${b#*:}
  for d in $(seq "$draws"); do
    for init in source scratch; do
      for method in supervised pseudo fixmatch; do run "$steps" "$d" "$init" "$method"; done
    done
  done
done
load_end=$(cut -d' ' -f1 /proc/loadavg)
# The 1-minute load average at the end of each run made (loads.log).
loads=$( [ -f "$W/loads.log" ] && awk 'NR == 1 {lo = hi = $3} {if ($3 < lo) lo = $3; if ($3 > hi) hi = $3}
  END {printf "%s-%s at the end of the %d runs logged in loads.log", lo, hi, NR}' "$W/loads.log" || echo "not logged")

sec=$W/section.md
/usr/bin/python3 bench/self_train_table.py "$W" "$BUDGETS" > "$W/table.md"
srcsecs=$( [ -f "$W/source.secs" ] && echo "pretrained by this script in $(cat "$W/source.secs") s" ||
  echo "reused: \`$SRC\`, made by demo.sh's step 1 for the demo section above")
cat > "$sec" <<EOT
<!-- self-train:begin -->
## Self-training in the demo setting: Fashion-MNIST, 50 labels per class (issue 19)

\`GRAFT_BIN=$G SOURCE_RUN=$SRC bash bench/self_train.sh\` (BUDGETS="$BUDGETS" MU=$MU NUNL=$NUNL
THREADS=$THREADS), section written $(date -u +%Y-%m-%d) at load average $load_end (runs: $loads):
**measured under load** (other agents share these 2 cores; one thread here), so the seconds are not
speeds; the accuracies do not depend on load.
Target: Fashion-MNIST classes 1,3,4,6,9 (trouser, dress, coat, shirt, ankle boot). Labelled: $PER_CLASS training
images per class (250), drawn by \`bench/self_train_data.py\` with numpy seed d for draw d; unlabelled: the
other training images of those classes ($( [ "$NUNL" = 0 ] && echo "all 29,750" || echo "a seeded subset of $NUNL"),
one flat folder, shuffled and renumbered, so no name or folder tells a class); test: the 5000 t10k images
of those classes. ResNet-20; the source is the demo's (classes 0,2,5,7,8, 5 epochs; $srcsecs).
Recipe of scripts/demo.sh: batch 25, SGD 0.05 with a cosine schedule, \`--augment light\`, bf16, no
validation split (the last epoch's model is scored), graft \`--seed\` d+1; from the source
\`--strategy full --backbone-lr-mult 0.5\`, from scratch \`--weights none --backbone-lr-mult 1\`. Self-training
adds $MU unlabelled images per labelled one each step (\`--unlabeled-ratio $MU\`: FixMatch's μ) at
threshold 0.95 (\`--confidence\`, FixMatch's τ), unlabelled weight 1; pseudo-labels ramp their weight up over
the first third of the epochs (\`--rampup-epochs\`), FixMatch does not. FixMatch's weak view is graft's
\`light\` augmentation (random resized crop of 25-100% of the area, flip) and its strong view graft's
\`strong\` (that, colour jitter, rotation up to 15°, random erasing), not the paper's RandAugment/CTAugment.
Methods: supervised only (the 250 labels), pseudo-labels (\`--self-train pseudo\`), FixMatch
(\`--self-train fixmatch\`). "Test images at ≥ 0.95" and "their accuracy" read the final model's test
predictions (\`bench/self_train_table.py\`): the share of test images it labels at a top probability of
0.95 or more (what the unlabelled loss keeps of images like the unlabelled ones) and how many of those
labels are right; the per-class tables split both by class.
$(cat "$W/table.md")

$(cat bench/self_train_notes.md 2>/dev/null || true)
<!-- self-train:end -->
EOT
cat "$sec"
/usr/bin/python3 bench/section.py bench/RESULTS.md self-train "$sec" adapt

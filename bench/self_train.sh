#!/usr/bin/env bash
# Self-training in the demo setting (issue 19): Fashion-MNIST target classes
# 1,3,4,6,9 (trouser, dress, coat, shirt, ankle boot), 50 labels per class
# plus the unlabelled rest of their training images (29,750), ResNet-20.
# Six arms: {supervised only, --self-train pseudo, --self-train fixmatch} x
# {fine-tuned from the demo's source (pretrained on classes 0,2,5,7,8),
# from scratch}, each at a fixed step budget, scored on the 5000 t10k images
# of the target classes.
#   [BUDGETS="150:2 600:1"] [MU=7] [NUNL=0] [THREADS=1] [GRAFT_BIN=build/graft]
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
# bench/RESULTS.md after the adapt section.
set -euo pipefail
cd "$(dirname "$0")/.."
G=${GRAFT_BIN:-build/graft}
[ -x "$G" ] || { echo "no graft at $G (bash scripts/build.sh graft, or set GRAFT_BIN)" >&2; exit 1; }
W=${GRAFT_BENCH_DIR:-/tmp/graft-self-train}
BUDGETS=${BUDGETS:-150:2 600:1}
MU=${MU:-7}
NUNL=${NUNL:-0}
THREADS=${THREADS:-1}
SRC=${SOURCE_RUN:-$W/source}
FM=/usr/share/datasets/fashion-mnist
SOURCE_CLASSES=0,2,5,7,8
TARGET_CLASSES=1,3,4,6,9
PER_CLASS=50
mkdir -p "$W"
load_start=$(cut -d' ' -f1 /proc/loadavg)

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

# The rows of the table, one per run: steps draw init method accuracy seconds
# confident_share confident_accuracy (the last two: the test images the final
# model labels with a top probability of at least 0.95, the threshold of the
# unlabelled loss, and how many of those labels are right: the pseudo-labels'
# quantity and quality at the end, on images like the unlabelled ones).
rows=$W/rows.tsv
: > "$rows"
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
  fi
  /usr/bin/python3 - "$out" "$(cat "$W/$name.secs")" "$steps" "$d" "$init" "$method" >> "$rows" <<'EOF'
import csv, json, sys
out, secs = sys.argv[1], sys.argv[2]
acc = json.load(open(out + "/test_metrics.json"))["accuracy"]
preds = list(csv.DictReader(open(out + "/test_predictions.csv")))
conf = [p for p in preds if float(p["confidence"]) >= 0.95]
right = sum(p["label"] == p["predicted"] for p in conf)
print("\t".join(sys.argv[3:7] + [str(acc), secs, str(len(conf) / len(preds)),
                                 str(right / len(conf)) if conf else "nan"]))
EOF
  tail -n 1 "$rows" >&2
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

sec=$W/section.md
/usr/bin/python3 - "$rows" "$BUDGETS" > "$W/table.md" <<'EOF'
import collections, math, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(list)
for steps, d, init, method, acc, secs, share, cacc in rows:
    by[steps, init, method].append((int(d), float(acc), int(secs), float(share), float(cacc)))
INIT = {"source": "from the source", "scratch": "from scratch"}
METHOD = {"supervised": "supervised only (250 labels)", "pseudo": "pseudo-labels (`--self-train pseudo`)",
          "fixmatch": "FixMatch (`--self-train fixmatch`)"}
def pct(x): return "%.2f%%" % (100 * x)
for b in sys.argv[2].split():
    steps, draws = b.split(":")
    e = int(steps) // 10
    print(f"\n**{steps} steps** ({e} epoch{'s' if e != 1 else ''} of the 250 labelled images), "
          f"{draws} draw{'s' if draws != '1' else ''} of the labelled images:\n")
    print("| start | method | test accuracy (mean) | each draw | vs supervised | "
          "test images at ≥ 0.95 | their accuracy | seconds (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    for init in ("source", "scratch"):
        base = by.get((steps, init, "supervised"))
        base_mean = sum(r[1] for r in base) / len(base) if base else None
        for method in ("supervised", "pseudo", "fixmatch"):
            r = sorted(by.get((steps, init, method), []))
            if not r:
                print(f"| {INIT[init]} | {METHOD[method]} | not run | | | | | |")
                continue
            mean = sum(x[1] for x in r) / len(r)
            each = ", ".join(pct(x[1]) for x in r)
            delta = "—" if method == "supervised" or base_mean is None else "%+.2f points" % (100 * (mean - base_mean))
            share = sum(x[3] for x in r) / len(r)
            cs = [x[4] for x in r if not math.isnan(x[4])]
            cacc = pct(sum(cs) / len(cs)) if cs else "—"
            secs = sum(x[2] for x in r) / len(r)
            print(f"| {INIT[init]} | {METHOD[method]} | {pct(mean)} | {each} | {delta} | {pct(share)} | {cacc} | {secs:.0f} |")
EOF
srcsecs=$( [ -f "$W/source.secs" ] && echo "pretrained by this script in $(cat "$W/source.secs") s" ||
  echo "reused: \`$SRC\`, made by demo.sh's step 1 for the demo section above")
cat > "$sec" <<EOT
<!-- self-train:begin -->
## Self-training in the demo setting: Fashion-MNIST, 50 labels per class (issue 19)

\`GRAFT_BIN=... bash bench/self_train.sh\` (BUDGETS="$BUDGETS" MU=$MU NUNL=$NUNL THREADS=$THREADS), $(date -u +%Y-%m-%d),
load average $load_start at the start and $load_end at the end: **measured under load** (other agents share
these 2 cores; one thread here), so the seconds are not speeds; the accuracies do not depend on load.
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
The two right-hand columns read the final model's test predictions: the share of test images it labels at
a top probability of 0.95 or more (what the unlabelled loss would keep of images like these) and how
many of those labels are right.
$(cat "$W/table.md")

$(cat bench/self_train_notes.md 2>/dev/null || true)
<!-- self-train:end -->
EOT
cat "$sec"
/usr/bin/python3 bench/section.py bench/RESULTS.md self-train "$sec" adapt

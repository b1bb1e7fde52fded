#!/usr/bin/env bash
# Does a pretrained source beat training from scratch, per text set, beyond
# the spread of seeds? The few-label setting graft is for: each set's
# training split cut to a label budget of BUDGETS texts per class (seeded,
# stratified subsets: bench/text_subsets.py; the same file for every arm of
# one budget and seed), seeds SEEDS, each run tested on the set's whole test
# split (those of bench/textcnn.sh and bench/use_lite.sh).
#  English (SST-2, MR, SMS spam, AG News): TextCNN (Kim 2014) with
#    rand   --embeddings none                    (scratch)
#    glove  --embeddings GloVe 6B 100-d          (CNN-non-static: pretrained)
#    static --embeddings GloVe --freeze-embeddings (when in ARMS)
#    use    USE-lite linear probe (frozen encoder, cached features; when in
#           ARMS): --backbone use-lite --weights DIR --strategy linear
#  ChnSentiCorp: the only Chinese pretrained source here is a labelled one,
#    a BERT-tiny trained from scratch on the other Chinese set, waimai_10k
#    (all 11,987 reviews, 10% held out), with a vocabulary of
#    bert-base-uncased's plus every character of waimai_10k it lacks; then
#    scratch  the same BERT-tiny, same vocabulary, from random weights
#    ft       fine-tuned from the waimai source (its head replaced)
#    probe    the source frozen, a linear head (--strategy linear)
#    scratch and ft share every option but --weights.
# Fixed recipes, no validation split (--val-split 0: the last epoch's model;
# a few-label user has no spare labels to choose epochs with):
#    TextCNN: its defaults (AdamW 1e-3, batch 50, dropout 0.5) and
#             CNN_EPOCHS_<budget> epochs; USE-lite probe: --lr 1e-2 and
#             USE_EPOCHS_<budget>; BERT-tiny: --lr 3e-4 (bench/text.sh's)
#             and BERT_EPOCHS_<budget>; the probe --lr 1e-2, PROBE_EPOCHS_<budget>.
# Writes $W/section.md, the "text-transfer" section of bench/RESULTS.md
# (bench/section.py puts it there when RESULTS=1).
#   GRAFT_BIN=/tmp/b-x/graft bash bench/text_transfer.sh   (THREADS=1)
#   ONLY="mr chnsenticorp" ARMS="rand glove" SEEDS="0 1" BUDGETS="50" ...
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GRAFT_BUILD_DIR:-build}
[ -n "${GRAFT_BIN:-}" ] || GRAFT_BUILD_DIR=$BUILD bash scripts/build.sh graft >/dev/null
G=${GRAFT_BIN:-$(cd "$BUILD" && pwd)/graft}
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-text-transfer}
THREADS=${THREADS:-1}
SEEDS=${SEEDS:-0 1 2}
BUDGETS=${BUDGETS:-50 500}
ARMS=${ARMS:-rand glove use}
ONLY=${ONLY:-}
CNN_EPOCHS_50=${CNN_EPOCHS_50:-25}; CNN_EPOCHS_500=${CNN_EPOCHS_500:-10}
USE_EPOCHS_50=${USE_EPOCHS_50:-100}; USE_EPOCHS_500=${USE_EPOCHS_500:-30}
BERT_EPOCHS_50=${BERT_EPOCHS_50:-20}; BERT_EPOCHS_500=${BERT_EPOCHS_500:-5}
PROBE_EPOCHS_50=${PROBE_EPOCHS_50:-100}; PROBE_EPOCHS_500=${PROBE_EPOCHS_500:-30}
SOURCE_EPOCHS=${SOURCE_EPOCHS:-3}
mkdir -p "$W/runs"
csv_list() { echo "$1" | tr -s ' ' ','; }
epochs_for() {  # epochs_for CNN 50 -> $CNN_EPOCHS_50
  local v="${1}_EPOCHS_${2}"
  [ -n "${!v:-}" ] || { echo "text_transfer.sh: set $v (epochs of the ${2}-per-class budget)" >&2; exit 2; }
  echo "${!v}"
}
wants() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
# run NAME ARGS...: one graft train, timed; skipped when already done.
run() {
  local name=$1; shift
  local out="$W/runs/$name"
  [ -f "$out/test_metrics.json" ] && return 0
  /usr/bin/time -f "%e %M" -o "$out.time" \
    "$G" train --task text "$@" --threads "$THREADS" --out "$out" --overwrite --quiet >/dev/null
}

# 1. Test splits (bench/text_splits.py) and the label-budget subsets.
/usr/bin/python3 bench/text_splits.py "$DATA" "$W/splits"
SUB=$W/subsets
B=$(csv_list "$BUDGETS"); S=$(csv_list "$SEEDS")
/usr/bin/python3 bench/text_subsets.py "$DATA/sst2/train.tsv" tsv-header "$SUB" sst2 "$B" "$S"
/usr/bin/python3 bench/text_subsets.py "$W/splits/mr/train.jsonl" jsonl "$SUB" mr "$B" "$S"
/usr/bin/python3 bench/text_subsets.py "$W/splits/sms/train.jsonl" jsonl "$SUB" sms "$B" "$S"
/usr/bin/python3 bench/text_subsets.py "$DATA/ag_news/dev.tsv" tsv "$SUB" agnews "$B" "$S"
/usr/bin/python3 bench/text_subsets.py "$W/splits/chnsenticorp/train.jsonl" jsonl "$SUB" chnsenticorp "$B" "$S"

# 2. English: TextCNN rand / GloVe, USE-lite probe.
# name | subset extension | extra flags | test
SETS=(
  "sst2|tsv||$DATA/sst2/test.tsv"
  "mr|jsonl||$W/splits/mr/test.jsonl"
  "sms|jsonl||$W/splits/sms/test.jsonl"
  "agnews|tsv|--text-column 0 --label-column 1 --header no|$DATA/ag_news/test.tsv"
)
VEC=${GLOVE_SAFETENSORS:-$W/glove-6b-100d.safetensors}
if [[ " $ARMS " == *" glove "* || " $ARMS " == *" static "* ]] && [ ! -f "$VEC" ]; then
  "$G" weights convert "$(bash scripts/glove.sh)" "$VEC" >/dev/null
fi
USE=""
[[ " $ARMS " == *" use "* ]] && USE=$(bash scripts/use_lite.sh)
for row in "${SETS[@]}"; do
  IFS='|' read -r name ext extra test <<<"$row"
  wants "$name" || continue
  for n in $BUDGETS; do
    for seed in $SEEDS; do
      data=$SUB/$name-pc$n-s$seed.$ext
      common=(--data "$data" --test "$test" --val-split 0 --seed "$seed")
      for arm in $ARMS; do
        # shellcheck disable=SC2086
        case $arm in
          rand) run "$name-pc$n-s$seed-rand" "${common[@]}" $extra --backbone textcnn --embeddings none \
                  --epochs "$(epochs_for CNN "$n")" ;;
          glove) run "$name-pc$n-s$seed-glove" "${common[@]}" $extra --backbone textcnn --embeddings "$VEC" \
                   --epochs "$(epochs_for CNN "$n")" ;;
          static) run "$name-pc$n-s$seed-static" "${common[@]}" $extra --backbone textcnn --embeddings "$VEC" \
                    --freeze-embeddings --epochs "$(epochs_for CNN "$n")" ;;
          use) run "$name-pc$n-s$seed-use" "${common[@]}" $extra --backbone use-lite --weights "$USE" \
                 --strategy linear --lr 1e-2 --epochs "$(epochs_for USE "$n")" ;;
          *) echo "text_transfer.sh: ARMS: unknown arm '$arm' (expected rand, glove, static, use)" >&2; exit 2 ;;
        esac
      done
    done
  done
done

# 3. ChnSentiCorp from a waimai_10k source.
if wants chnsenticorp; then
  CVOCAB=$W/zh-vocab.txt
  if [ ! -f "$CVOCAB" ]; then
    # bert-base-uncased's vocabulary, then each character of waimai_10k's
    # reviews it lacks (by count, ties in code-point order); built from the
    # source's texts only, never from ChnSentiCorp's.
    /usr/bin/python3 - "$DATA/bert_vocab/vocab.txt" "$DATA/chinese_sentiment/waimai_10k.csv" "$CVOCAB" <<'PY'
import collections, csv, os, sys, unicodedata
vocab_path, src, out = sys.argv[1:4]
vocab = [l.rstrip("\n") for l in open(vocab_path, encoding="utf-8")]
have = set(vocab)
count = collections.Counter()
with open(src, encoding="utf-8", newline="") as f:
    for r in csv.DictReader(f):
        for ch in r["review"]:
            if not ch.isspace() and not unicodedata.category(ch).startswith("C"):
                count[ch] += 1
new = sorted((c for c in count if c not in have and c.lower() not in have), key=lambda c: (-count[c], c))
with open(out + ".tmp", "w", encoding="utf-8") as f:
    f.write("\n".join(vocab + new) + "\n")
os.replace(out + ".tmp", out)
PY
  fi
  SRC_RUN=$W/runs/zh-source-waimai
  if [ ! -f "$SRC_RUN/model.safetensors" ]; then
    /usr/bin/time -f "%e %M" -o "$SRC_RUN.time" \
      "$G" train --task text --data "$DATA/chinese_sentiment/waimai_10k.csv" --backbone bert-tiny --weights none \
        --vocab "$CVOCAB" --epochs "$SOURCE_EPOCHS" --lr 3e-4 --val-split 0.1 --seed 0 --threads "$THREADS" \
        --out "$SRC_RUN" --overwrite --quiet >/dev/null
  fi
  test=$W/splits/chnsenticorp/test.jsonl
  for n in $BUDGETS; do
    for seed in $SEEDS; do
      common=(--data "$SUB/chnsenticorp-pc$n-s$seed.jsonl" --test "$test" --val-split 0 --seed "$seed")
      e=$(epochs_for BERT "$n")
      run "chnsenticorp-pc$n-s$seed-scratch" "${common[@]}" --backbone bert-tiny --weights none --vocab "$CVOCAB" \
        --epochs "$e" --lr 3e-4
      run "chnsenticorp-pc$n-s$seed-ft" "${common[@]}" --backbone bert-tiny --weights "$SRC_RUN" --vocab "$CVOCAB" \
        --epochs "$e" --lr 3e-4
      run "chnsenticorp-pc$n-s$seed-probe" "${common[@]}" --backbone bert-tiny --weights "$SRC_RUN" --vocab "$CVOCAB" \
        --strategy linear --epochs "$(epochs_for PROBE "$n")" --lr 1e-2
    done
  done
fi

# 4. The section.
/usr/bin/python3 bench/text_transfer_table.py "$W" "$BUDGETS" "$SEEDS" "$ARMS" > "$W/section.md"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$W/section.md"

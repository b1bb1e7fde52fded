#!/usr/bin/env bash
# Universal Sentence Encoder lite as the source of the five text sets of
# bench/text.sh (the same sets, the same seeded 20% test splits):
#   linear  --backbone use-lite --strategy linear: the frozen encoder's 512-d
#           embeddings computed once (cached), a linear head trained on them;
#   full    --strategy full: the whole encoder fine-tuned with layer-wise rates
#           (--layer-decay 0.8), bounded to FT_EPOCHS epochs over at most
#           FT_TRAIN training texts (2 shared cores: see RESULTS.md).
# Writes $W/use_lite_section.md (accuracy on each test split, time of the
# whole graft train command), for the "USE-lite" part of bench/RESULTS.md's
# text section.
#   bash bench/use_lite.sh        (THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${G:-}" ] || { bash scripts/build.sh graft >/dev/null; G=$PWD/build/graft; }
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-text}
THREADS=${THREADS:-2}
FT_EPOCHS=${FT_EPOCHS:-1}
FT_TRAIN=${FT_TRAIN:-4000}
USE=$(bash scripts/use_lite.sh)
mkdir -p "$W/runs"

# Test splits where the set has none: bench/text_splits.py, as bench/text.sh.
/usr/bin/python3 bench/text_splits.py "$DATA" "$W/splits"
FT_TRAIN=$FT_TRAIN /usr/bin/python3 - "$DATA" "$W/splits" <<'PY'
import csv, json, os, random, sys
data, out = sys.argv[1], sys.argv[2]
# Bounded fine-tuning sets: FT_TRAIN lines of a seeded shuffle of each
# training file, in its own format (a header line kept).
ft = int(os.environ["FT_TRAIN"])
def subset(name, src, header, ext):
    path = os.path.join(out, name, f"ft{ft}.{ext}")
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(src, encoding="utf-8") as f:
        lines = f.readlines()
    head, rows = (lines[:1], lines[1:]) if header else ([], lines)
    rows = [l for l in rows if l.strip()]
    random.Random(1).shuffle(rows)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.writelines(head + rows[:ft])
    os.replace(path + ".tmp", path)
subset("sst2", os.path.join(data, "sst2", "train.tsv"), True, "tsv")
subset("agnews", os.path.join(data, "ag_news", "dev.tsv"), False, "tsv")
for name in ("mr", "sms", "chnsenticorp"):
    subset(name, os.path.join(out, name, "train.jsonl"), False, "jsonl")
PY

# name | train | extra train flags | test
SETS=(
  "sst2|$DATA/sst2/train.tsv|--val $DATA/sst2/dev.tsv|$DATA/sst2/test.tsv"
  "mr|$W/splits/mr/train.jsonl||$W/splits/mr/test.jsonl"
  "sms|$W/splits/sms/train.jsonl||$W/splits/sms/test.jsonl"
  "agnews|$DATA/ag_news/dev.tsv|--text-column 0 --label-column 1 --header no|$DATA/ag_news/test.tsv"
  "chnsenticorp|$W/splits/chnsenticorp/train.jsonl||$W/splits/chnsenticorp/test.jsonl"
)
ONLY=${ONLY:-}
MODELS=${MODELS:-linear full}
for row in "${SETS[@]}"; do
  IFS='|' read -r name train extra test <<<"$row"
  [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && continue
  for model in $MODELS; do
    out="$W/runs/$name-use-$model"
    [ -f "$out/test_metrics.json" ] && continue
    case $model in
      linear) flags=(--strategy linear --epochs 10 --lr 1e-2) ;;
      full) flags=(--strategy full --epochs "$FT_EPOCHS" --lr 1e-3 --backbone-lr-mult 0.1 --layer-decay 0.8) ;;
    esac
    data=$train
    [ "$model" = full ] && data=$(ls "$W/splits/$name/ft$FT_TRAIN".*)
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %M" -o "$out.time" \
      $G train --task text --data "$data" $extra --test "$test" --backbone use-lite --weights "$USE" \
        "${flags[@]}" --threads "$THREADS" --out "$out" --overwrite --quiet >/dev/null
  done
done

/usr/bin/python3 - "$W" > "$W/use_lite_section.md" <<'PY'
import json, os, sys
w = sys.argv[1]
names = {"sst2": "SST-2 (GLUE dev as test)", "mr": "MR polarity", "sms": "SMS spam",
         "agnews": "AG News (10k train subset)", "chnsenticorp": "ChnSentiCorp (Chinese)"}
print("| set | USE-lite linear (frozen, cached) | USE-lite fine-tuned (bounded) |")
print("|---|---|---|")
for name, title in names.items():
    cells = []
    for model in ("linear", "full"):
        d = os.path.join(w, "runs", f"{name}-use-{model}")
        if not os.path.exists(os.path.join(d, "test_metrics.json")):
            cells.append("-")
            continue
        m = json.load(open(os.path.join(d, "test_metrics.json")))
        c = json.load(open(os.path.join(d, "config.json")))
        secs = float(open(d + ".time").read().split()[0])
        t = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.1f} min"
        cells.append(f"{100 * m['accuracy']:.1f}% ({t}; {c['counts']['train']} train, {c['truncated']['train']} truncated)")
    print(f"| {title} | " + " | ".join(cells) + " |")
PY
cat "$W/use_lite_section.md"

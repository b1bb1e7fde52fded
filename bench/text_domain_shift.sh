#!/usr/bin/env bash
# A verdict on domain shift, text pairs (issue 19): do graft score
# --task text --source-data's measures (PAD, MMD with its permutation p-value,
# domain CKA) and LogME predict what transfer gains between text sets?
# Sources: three BERT-tiny models (2 layers, hidden 128) trained from random
# weights on a labelled source set (no published Chinese or sentiment BERT
# reaches this machine): ChnSentiCorp (hotel reviews), waimai_10k
# (food-delivery reviews), SST-2 (film phrases, its first MAX_SST2 GLUE
# training phrases); one vocabulary for all, bert-base-uncased's plus the
# Chinese sets' characters (bench/zh_vocab.py). Targets: ChnSentiCorp,
# waimai_10k, MR (film review sentences) and the SMS spam collection, with
# bench/text_splits.py's seeded 20% test splits. Every source -> target pair
# but a set onto itself (10 pairs).
# Gain of transfer: the target's test accuracy fine-tuned from the source
# (`--weights RUN`: its classifier replaced by a new head) minus from random
# weights, the same BERT-tiny and vocabulary, PER_CLASS labelled texts per
# class (bench/text_subsets.py, seeds SEEDS), EPOCHS epochs, AdamW 3e-4, no
# validation split: bench/text_transfer.sh's few-label recipe.
# Measures: `graft score --task text --data TARGET_TRAIN --source-data
# SOURCE_TRAIN --backbones SOURCE_RUN --max-similarity-samples N`.
# Kendall tau-b between each measure and the gain, over the text pairs and
# over these with the image and face pairs of the "A verdict on domain
# shift" section (bench/domain_shift.sh), read from bench/RESULTS.md.
#   [PER_CLASS=50] [SEEDS="0 1 2"] [EPOCHS=20] [MAX_SST2=10000] [N=1000] [THREADS=1] bash bench/text_domain_shift.sh
# Runs already made are kept (their test_metrics.json); remove $W to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GRAFT_BUILD_DIR:-build}
G=${GRAFT_BIN:-$(cd "$B" && pwd)/graft}
[ -x "$G" ] || { echo "no graft at $G (bash scripts/build.sh graft, or set GRAFT_BIN)" >&2; exit 1; }
DATA=${GRAFT_DATA:-../shared/data}
W=${GRAFT_BENCH_DIR:-/tmp/graft-text-shift}
PER_CLASS=${PER_CLASS:-50}
SEEDS=${SEEDS:-0 1 2}
EPOCHS=${EPOCHS:-20}
MAX_SST2=${MAX_SST2:-10000}
N=${N:-1000}
THREADS=${THREADS:-1}
mkdir -p "$W/runs"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)

# 1. Splits, SST-2's first phrases as JSON Lines, the vocabulary, the subsets.
/usr/bin/python3 bench/text_splits.py "$DATA" "$W/splits"
S=$W/splits
if [ ! -f "$S/sst2/train.jsonl" ]; then
  mkdir -p "$S/sst2"
  /usr/bin/python3 - "$DATA/sst2/train.tsv" "$S/sst2/train.jsonl" "$MAX_SST2" <<'PY'
import json, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(src, encoding="utf-8").read().split("\n")[1:n + 1]
with open(out + ".tmp", "w", encoding="utf-8") as f:
    for l in lines:
        text, label = l.rsplit("\t", 1)
        f.write(json.dumps({"text": text.strip(), "label": label}, ensure_ascii=False) + "\n")
os.replace(out + ".tmp", out)
PY
fi
VOCAB=$W/zh-vocab.txt
/usr/bin/python3 bench/zh_vocab.py "$DATA/bert_vocab/vocab.txt" "$VOCAB" "$S/chnsenticorp/train.jsonl" "$S/waimai/train.jsonl"
SUB=$W/subsets
SEEDS_CSV=$(echo $SEEDS | tr ' ' ',')
TARGETS="chnsenticorp waimai mr sms"
for t in $TARGETS; do
  /usr/bin/python3 bench/text_subsets.py "$S/$t/train.jsonl" jsonl "$SUB" "$t" "$PER_CLASS" "$SEEDS_CSV"
done

train() {  # train NAME flags...: one graft train --task text, kept when done
  local name=$1; shift
  [ -f "$W/runs/$name/test_metrics.json" ] && return 0
  echo "== $name" >&2
  "$G" train --task text --backbone bert-tiny --vocab "$VOCAB" --lr 3e-4 --threads "$THREADS" "$@" \
    --out "$W/runs/$name" --overwrite --quiet > /dev/null
}

# 2. The sources.
for s in chnsenticorp waimai sst2; do
  test_flag=()
  [ -f "$S/$s/test.jsonl" ] && test_flag=(--test "$S/$s/test.jsonl")
  [ "$s" = sst2 ] && test_flag=(--test "$DATA/sst2/test.tsv")
  train "src-$s" --data "$S/$s/train.jsonl" --weights none --epochs 2 --batch-size 32 --val-split 0.1 --seed 0 \
    "${test_flag[@]}"
done

# 3. The target runs: scratch, and fine-tuned from each other source.
for t in $TARGETS; do
  for seed in $SEEDS; do
    common=(--data "$SUB/$t-pc$PER_CLASS-s$seed.jsonl" --test "$S/$t/test.jsonl" --val-split 0 --seed "$seed"
            --epochs "$EPOCHS")
    train "$t-s$seed-scratch" "${common[@]}" --weights none
    for s in chnsenticorp waimai sst2; do
      [ "$s" = "$t" ] && continue
      train "$t-s$seed-from-$s" "${common[@]}" --weights "$W/runs/src-$s"
    done
  done
done

# 4. The measures.
: > "$W/shift.tsv"
for t in $TARGETS; do
  for s in chnsenticorp waimai sst2; do
    [ "$s" = "$t" ] && continue
    "$G" score --task text --data "$S/$t/train.jsonl" --source-data "$S/$s/train.jsonl" --backbones "$W/runs/src-$s" \
      --max-similarity-samples "$N" --threads "$THREADS" --out "$W/shift.json" --quiet > /dev/null
    echo -e "$t\t$s\t$(tr -d '\n' < "$W/shift.json")" >> "$W/shift.tsv"
    echo "  scored $s -> $t" >&2
  done
done
minutes=$(( ($(date +%s) - t_start + 59) / 60 ))

# 5. The section.
/usr/bin/python3 - "$W" bench/RESULTS.md "$N" "$PER_CLASS" "$SEEDS" "$EPOCHS" "$MAX_SST2" "$load_before" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$minutes" > "$W/section.md" <<'PY'
import json, math, os, re, statistics, sys
w, results, n, pc, seeds, epochs, max_sst2, before, after, minutes = sys.argv[1:]
seeds = seeds.split()
sys.path.insert(0, "bench")
from kendall import tau_b  # noqa: E402

def acc(name):
    return json.load(open(os.path.join(w, "runs", name, "test_metrics.json")))["accuracy"]

src_acc = {s: acc("src-" + s) for s in ("chnsenticorp", "waimai", "sst2")}
rows = []
for line in open(os.path.join(w, "shift.tsv")):
    t, s, js = line.rstrip("\n").split("\t")
    m = json.loads(js)[0]
    gains = [acc(f"{t}-s{k}-from-{s}") - acc(f"{t}-s{k}-scratch") for k in seeds]
    g = statistics.mean(gains)
    sd = statistics.stdev(gains) if len(gains) > 1 else float("nan")
    rows.append((t, s, m, g, sd))
names = {"chnsenticorp": "ChnSentiCorp", "waimai": "waimai_10k", "mr": "MR", "sms": "SMS spam", "sst2": "SST-2"}
out = ["<!-- text-domain-shift:begin -->",
       "### Text pairs: `graft score --task text --source-data` against the gain of transfer", "",
       f"`bash bench/text_domain_shift.sh` (PER_CLASS={pc} SEEDS=\"{' '.join(seeds)}\" EPOCHS={epochs} "
       f"MAX_SST2={max_sst2} N={n}; {minutes} min; load average {before} before, {after} after: **measured under "
       "load**, which changes no figure here). Sources: BERT-tiny (2 layers, hidden 128) trained from random "
       "weights for 2 epochs on a labelled source set (test accuracy on its own test split: "
       + ", ".join(f"{names[s]} {100 * a:.1f}%" for s, a in src_acc.items())
       + f"; SST-2: its first {max_sst2} GLUE training phrases, tested on GLUE dev), one vocabulary for all "
       "(bert-base-uncased's plus the Chinese sets' characters, `bench/zh_vocab.py`). Each pair: PAD, MMD (p from "
       f"200 permutations), CKA and LogME through the source model, on at most {n} texts of the source's training "
       "split and of the target's (`graft score --task text --data TARGET --source-data SOURCE --backbones RUN "
       f"--max-similarity-samples {n}`); gain: the target's test accuracy fine-tuned from the source (its "
       f"classifier replaced by a new head) minus from random weights, {pc} labelled texts per class, {epochs} "
       f"epochs, AdamW 3e-4, mean over seeds {', '.join(seeds)} (± their standard deviation).", "",
       "| target | source | PAD | MMD | MMD p | CKA | LogME | gain (points) |", "|---|---|---|---|---|---|---|---|"]
for t, s, m, g, sd in rows:
    out.append(f"| {names[t]} | BERT-tiny on {names[s]} | {m['pad']:.3f} | {m['mmd']:.4f} | {m['mmd_p']:.3f} | "
               f"{m['domain_cka']:.3f} | {m['logme']:.4f} | {100 * g:+.1f} ± {100 * sd:.1f} |")
# The image and face pairs of the domain-shift section, read back from RESULTS.md.
img = []
text = open(results).read()
if "<!-- domain-shift:begin -->" in text:
    sec = text[text.index("<!-- domain-shift:begin -->"):text.index("<!-- domain-shift:end -->")]
    for line in sec.splitlines():
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        if len(c) == 8 and c[0] in ("hymenoptera", "att_faces"):
            img.append({"pad": float(c[2]), "mmd": float(c[3]), "domain_cka": float(c[5]), "logme": float(c[6]),
                        "gain": float(c[7]) / 100})
keys = ("pad", "mmd", "domain_cka", "logme")
txt = [dict(m, gain=g) for _, _, m, g, _ in rows]
out += ["", "| over | pairs | Kendall τ: PAD | MMD | CKA | LogME |", "|---|---|---|---|---|---|"]
for label, sub in (("text pairs", txt), ("text, image and face pairs (with the table above)", txt + img)):
    if not sub:
        continue
    out.append(f"| {label} | {len(sub)} | " + " | ".join(f"{tau_b([r[k] for r in sub], [r['gain'] for r in sub]):+.3f}"
                                                       for k in keys) + " |")
out += ["", "As above, a useful shift measure has a negative τ (PAD, MMD) or a positive one (CKA): more shift, "
        "less gain. LogME is not comparable across targets (it is a per-target evidence), so its pooled τ mixes "
        "scales.", "<!-- text-domain-shift:end -->"]
print("\n".join(out))
PY
cat "$W/section.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md text-domain-shift "$W/section.md"

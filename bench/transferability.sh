#!/usr/bin/env bash
# Does LogME rank source models the way fine-tuning does? On two target sets
# from ../shared/data, seven candidate sources are scored by `graft score`
# (no training) and fine-tuned by `graft train` with one fixed recipe; the
# Kendall tau between each score's ranking and the fine-tuned test accuracy
# is written into the "transferability" section of bench/RESULTS.md.
#   bash bench/transferability.sh      (about 15 minutes on 2 cores)
# Candidates: the four akamaster CIFAR-10 ResNets (20/32/44/56 layers), two
# ResNet-20s pretrained by graft on other source data (Fashion-MNIST classes
# 0-4; the CIFAR-10 test JPEGs), and a random ResNet-20.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-transferability}
SEEDS=${SEEDS:-"0 1"}
G=$PWD/build/graft
FM=/usr/share/datasets/fashion-mnist
AKA=$DATA/pretrained/resnet_cifar10_akamaster
mkdir -p "$W"
export GRAFT_CACHE_DIR="$W/cache"

# graft's two sources and the AT&T faces split (made when missing, kept between runs).
source bench/transfer_sources.sh

CANDIDATES=(
  "resnet20=$AKA/resnet20-12fca82f.th" "resnet32=$AKA/resnet32-d509ac18.th"
  "resnet44=$AKA/resnet44-014dd654.th" "resnet56=$AKA/resnet56-4bfd9763.th"
  "$W/src-fmnist" "$W/src-cifar" "resnet20=none")
# Targets: hymenoptera (its own train/val split) and AT&T faces (images 1-7
# of each person to train, 8-10 to test).
TARGETS=("hymenoptera:$DATA/hymenoptera/train:$DATA/hymenoptera/val" "att_faces:$W/att/train:$W/att/test")

: > "$W/finetune.csv"
for t in "${TARGETS[@]}"; do
  IFS=: read -r name train test <<< "$t"
  list=$(IFS=,; echo "${CANDIDATES[*]}")
  $G score --data "$train" --backbones "$list" --out "$W/score-$name.json" --quiet >/dev/null
  for c in "${CANDIDATES[@]}"; do
    if [[ "$c" == *=* ]]; then bb=${c%%=*}; wt=${c#*=}; else
      bb=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['backbone'])" "$c/model.json"); wt=$c; fi
    for seed in $SEEDS; do
      run="$W/ft-$name-$(echo "$c" | md5sum | cut -c1-8)-$seed"
      acc=$($G train --data "$train" --test "$test" --backbone "$bb" --weights "$wt" \
              --strategy full --epochs 15 --lr 0.01 --batch-size 32 --seed "$seed" \
              --out "$run" --overwrite --quiet | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
      echo "$name,$c,$seed,$acc" >> "$W/finetune.csv"
    done
  done
done

/usr/bin/python3 - "$W" <<'PY' > "$W/section.md"
import csv, json, sys, itertools, os
w = sys.argv[1]
sys.path.insert(0, "bench")
from kendall import tau_b  # noqa: E402
acc = {}
for name, cand, seed, a in csv.reader(open(os.path.join(w, "finetune.csv"))):
    acc.setdefault(name, {}).setdefault(cand, []).append(float(a))
short = lambda c: os.path.basename(c.split("=")[1]) if "=" in c else "graft:" + os.path.basename(c)
print("| target | candidate | LogME | H-score | LEEP | NCE | fine-tuned test accuracy |")
print("|---|---|---|---|---|---|---|")
taus = []
for name in acc:
    scores = json.load(open(os.path.join(w, f"score-{name}.json")))
    rows = []
    for s in scores:
        a = sum(acc[name][s["candidate"]]) / len(acc[name][s["candidate"]])
        rows.append((s, a))
        f = lambda k: f"{s[k]:.4f}" if k in s else "-"
        print(f"| {name} | {short(s['candidate'])} | {s['logme']:.4f} | {s['h_score']:.3f} | {f('leep')} | {f('nce')} | {a:.4f} |")
    t = {}
    for k in ("logme", "h_score", "leep", "nce"):
        sub = [(s[k], a) for s, a in rows if k in s]
        t[k] = (tau_b([p for p, _ in sub], [q for _, q in sub]), len(sub))
    taus.append((name, t))
print()
print("| target | Kendall tau LogME | H-score | LEEP | NCE |")
print("|---|---|---|---|---|")
for name, t in taus:
    print(f"| {name} | " + " | ".join(f"{t[k][0]:+.3f} (n={t[k][1]})" for k in ("logme", "h_score", "leep", "nce")) + " |")
PY

# Replace the section in RESULTS.md (bench/run.sh keeps it).
{
  echo "<!-- transferability:begin -->"
  echo "## Transferability scores against fine-tuning"
  echo
  echo "Written by \`bash bench/transferability.sh\` on $(date -u +%Y-%m-%d). Scores from"
  echo "\`graft score\` on each target's training images (no training); accuracy: \`graft train"
  echo "--strategy full --epochs 15 --lr 0.01 --batch-size 32\`, test accuracy of the best-validation"
  echo "model, mean over seeds $SEEDS. Kendall tau-b between a score and that accuracy over the"
  echo "candidates (LEEP and NCE only for candidates with a source classifier). Read the taus"
  echo "with the noise in mind: the test sets are small (153 hymenoptera images, 120 faces),"
  echo "so one accuracy has a standard error of about 3-4 points, and candidates closer than"
  echo "that are not ranked by the fine-tuning either."
  echo
  cat "$W/section.md"
  echo "<!-- transferability:end -->"
} > "$W/section-full.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md transferability "$W/section-full.md"
cat "$W/section-full.md"

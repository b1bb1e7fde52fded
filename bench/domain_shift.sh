#!/usr/bin/env bash
# A verdict on domain shift (issue 19): do graft score --source-data's
# measures (proxy A-distance, MMD with its permutation p-value, domain CKA)
# predict what transfer gains? For each source -> target pair of
# bench/transferability.sh (six source models: akamaster's four CIFAR-10
# ResNets, graft's ResNet-20s pretrained on Fashion-MNIST classes 0-4 and on the
# CIFAR-10 test JPEGs; two targets: hymenoptera and AT&T faces), the measures
# between a sample of the source's own data (CIFAR-10: the test JPEGs, the
# training images not being on this machine; Fashion-MNIST: t10k) and the
# target's training images, through the source model; and the gain of transfer
# = the fine-tuned test accuracy from the source minus from scratch (random
# ResNet-20), as bench/transferability.sh measured them: read from its
# finetune.csv when it is there, else from its table in bench/RESULTS.md.
# Kendall tau-b between each measure and the gain, over the pairs.
#   bash bench/domain_shift.sh     (about 10 minutes on 2 cores; the two graft
#                                   sources are pretrained first if missing,
#                                   with transferability.sh's commands)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh graft >/dev/null
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)
W=${GRAFT_BENCH_DIR:-/tmp/graft-transferability}
G=$PWD/build/graft
FM=/usr/share/datasets/fashion-mnist
AKA=$DATA/pretrained/resnet_cifar10_akamaster
N=${SAMPLES:-1000}
mkdir -p "$W"
export GRAFT_CACHE_DIR="$W/cache"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# transferability.sh's sources and face split (made the same way when missing).
source bench/transfer_sources.sh

# candidate|its source data|the name transferability's table gives it
SOURCES=(
  "resnet20=$AKA/resnet20-12fca82f.th|$DATA/cifar10_test_jpg|resnet20-12fca82f.th"
  "resnet32=$AKA/resnet32-d509ac18.th|$DATA/cifar10_test_jpg|resnet32-d509ac18.th"
  "resnet44=$AKA/resnet44-014dd654.th|$DATA/cifar10_test_jpg|resnet44-014dd654.th"
  "resnet56=$AKA/resnet56-4bfd9763.th|$DATA/cifar10_test_jpg|resnet56-4bfd9763.th"
  "$W/src-cifar|$DATA/cifar10_test_jpg|graft:src-cifar"
  "$W/src-fmnist|$FM/t10k-images-idx3-ubyte.gz|graft:src-fmnist")
TARGETS=("hymenoptera:$DATA/hymenoptera/train" "att_faces:$W/att/train")
: > "$W/shift.tsv"
for t in "${TARGETS[@]}"; do
  IFS=: read -r tname tdata <<< "$t"
  for s in "${SOURCES[@]}"; do
    IFS='|' read -r cand sdata short <<< "$s"
    $G score --data "$tdata" --source-data "$sdata" --backbones "$cand" --max-similarity-samples "$N" \
      --out "$W/shift.json" --quiet > /dev/null
    echo -e "$tname\t$short\t$(cat "$W/shift.json" | tr -d '\n')" >> "$W/shift.tsv"
  done
  echo "  $tname" >&2
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 - "$W" bench/RESULTS.md "$N" "$load_before" "$load_after" > "$W/shift-section.md" <<'PY'
import csv, itertools, json, os, re, sys
w, results, n, before, after = sys.argv[1:]
sys.path.insert(0, "bench")
from kendall import tau_b  # noqa: E402
# Fine-tuned accuracies: transferability.sh's finetune.csv, else its RESULTS table.
acc, source_of_acc = {}, ""
f = os.path.join(w, "finetune.csv")
if os.path.exists(f):
    short = lambda c: os.path.basename(c.split("=")[1]) if "=" in c else "graft:" + os.path.basename(c)
    runs = {}
    for name, cand, seed, a in csv.reader(open(f)):
        runs.setdefault((name, "none" if cand.endswith("=none") else short(cand)), []).append(float(a))
    acc = {k: sum(v) / len(v) for k, v in runs.items()}
    source_of_acc = f"{f} (this machine's last bench/transferability.sh)"
else:
    text = open(results).read()
    sec = text[text.index("<!-- transferability:begin -->"):text.index("<!-- transferability:end -->")]
    date = re.search(r"on (\d{4}-\d\d-\d\d)", sec).group(1)
    for line in sec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in ("hymenoptera", "att_faces"):
            acc[(cells[0], cells[1])] = float(cells[6])
    source_of_acc = f"the transferability table of bench/RESULTS.md (bench/transferability.sh, {date})"
rows = []
for line in open(os.path.join(w, "shift.tsv")):
    tname, short_name, js = line.rstrip("\n").split("\t")
    s = json.loads(js)[0]
    gain = acc[(tname, short_name)] - acc[(tname, "none")]
    rows.append((tname, short_name, s, gain))
out = ["<!-- domain-shift:begin -->", "## A verdict on domain shift: `graft score --source-data` against the gain of transfer", "",
       f"`bash bench/domain_shift.sh` (load average {before} before, {after} after). Each pair: a source model, "
       f"a sample of its own training domain ({n} images at most, seeded: CIFAR-10's test JPEGs for the CIFAR-10 "
       "models, whose training images are not on this machine; Fashion-MNIST's t10k for graft's Fashion-MNIST "
       "source) and the target's training images, both through the source model (`graft score --data TARGET "
       f"--source-data SOURCE --backbones MODEL --max-similarity-samples {n}`). PAD: proxy A-distance from a 5-fold "
       "cross-validated logistic domain classifier (0: the model cannot tell the domains apart, 2: always can); "
       "MMD: squared RBF MMD at the median bandwidth, with its permutation test's p-value (200 permutations); CKA: "
       "linear CKA of the two feature covariances. Gain: fine-tuned test accuracy from the source minus from a "
       f"random ResNet-20 (points), from {source_of_acc}; one accuracy there has a standard error of about 3-4 "
       "points (153 and 120 test images), so gains closer than that are not ordered by the fine-tuning either.", "",
       "| target | source model | PAD | MMD | MMD p | CKA | LogME | gain (points) |", "|---|---|---|---|---|---|---|---|"]
for tname, name, s, gain in rows:
    out.append(f"| {tname} | {name} | {s['pad']:.3f} | {s['mmd']:.4f} | {s['mmd_p']:.3f} | {s['domain_cka']:.3f} | "
               f"{s['logme']:.4f} | {100 * gain:+.1f} |")
out += ["", "| over | pairs | Kendall τ: PAD | MMD | CKA | LogME |", "|---|---|---|---|---|---|"]
for label, sel in (("both targets", lambda r: True), ("hymenoptera", lambda r: r[0] == "hymenoptera"),
                   ("att_faces", lambda r: r[0] == "att_faces")):
    sub = [r for r in rows if sel(r)]
    g = [r[3] for r in sub]
    t = [tau_b([r[2][k] for r in sub], g) for k in ("pad", "mmd", "domain_cka", "logme")]
    out.append(f"| {label} | {len(sub)} | " + " | ".join(f"{v:+.3f}" for v in t) + " |")
out.append("")
out.append("A shift measure is useful when larger shift (higher PAD or MMD, lower CKA) goes with a smaller gain: "
           "a negative τ for PAD and MMD, a positive one for CKA.")
out.append("<!-- domain-shift:end -->")
print("\n".join(out))
PY
/usr/bin/python3 bench/section.py bench/RESULTS.md domain-shift "$W/shift-section.md"
cat "$W/shift-section.md"

#!/usr/bin/env bash
# Open-set answers on the image demo (issue 20): the demo's Fashion-MNIST
# split trains on 5 classes (sandal, shirt, sneaker, bag, ankle boot) and
# leaves 5 unseen (T-shirt, trouser, pullover, dress, coat: the source
# classes, which the target run never saw). On the 10000 t10k test images
# this measures
#   - the AUROC of known (positive) against unknown by the maximum softmax
#     probability (MSP), uncalibrated and after the run's temperature;
#   - the target run's test ECE (15 bins) and NLL before and after its
#     temperature, and accuracy with rejection at --reject-at-frr 0.05
#     (`graft eval` on the known classes), with the share of the unknown
#     images `graft predict --reject-at-frr 0.05` answers "unknown".
# The runs are the demo's source pretraining (scripts/demo.sh step 1, on the
# demo's former split: source 0-4, target 5-9) and a
# full fine-tune on 50 labelled images per class, 10 of them the validation
# split the temperature is fitted on (the demo's step 4 before the demo became
# a label-budget curve; its flags are written here), plus --threads; finished
# runs are reused with GRAFT_DEMO_RUNS=DIR (DIR/source, DIR/finetune).
#   [THREADS=2] [GRAFT_DEMO_RUNS=DIR] bash bench/open_set.sh
# Prints the "Open-set answers" section and writes it into bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${GRAFT_BUILD_DIR:-build}
G=$(cd "$B" && pwd)/graft
[ -x "$G" ] || { echo "no graft in $B (bash scripts/build.sh graft, or set GRAFT_BUILD_DIR)" >&2; exit 1; }
FM=${GRAFT_FMNIST:-/usr/share/datasets/fashion-mnist}
TRAIN=$FM/train-images-idx3-ubyte.gz
TEST=$FM/t10k-images-idx3-ubyte.gz
W=${GRAFT_BENCH_DIR:-/tmp/graft-open-set}
RUNS=${GRAFT_DEMO_RUNS:-$W/runs}
THREADS=${THREADS:-2}
SOURCE="0,1,2,3,4"
TARGET="5,6,7,8,9"
mkdir -p "$W" "$RUNS"
start=$(date +%s)
load=$(cut -d' ' -f1 /proc/loadavg)

# demo.sh's run(): a step is skipped when its run already finished.
reused=""
run() {
  local out=$1; shift
  if [ -f "$out/summary.json" ]; then reused="$reused $(basename "$out")"; return; fi
  "$G" "$@" --threads "$THREADS" --out "$out" --overwrite --quiet > "$out.json.tmp"
  mkdir -p "$out" && mv "$out.json.tmp" "$out/summary.json"
}
echo "== source pretraining (demo step 1)" >&2
run "$RUNS/source" pretrain --data "$TRAIN" --classes "$SOURCE" --val-split 0.05 \
    --backbone resnet20 --epochs 5 --batch-size 64 --lr 0.1 --augment light --seed 1
echo "== full fine-tuning on the target classes (demo step 4)" >&2
run "$RUNS/finetune" train --data "$TRAIN" --classes "$TARGET" --per-class 50 --val-split 0.2 \
    --test "$TEST" --backbone resnet20 --batch-size 25 --seed 2 --weights "$RUNS/source" \
    --strategy full --epochs 30 --lr 0.05 --backbone-lr-mult 0.5 --augment light
RUN=$RUNS/finetune

echo "== scoring" >&2
# The run's own metrics on the known classes: ECE/NLL before and after, and
# accuracy with rejection.
"$G" eval "$RUN" --data "$TEST" --classes "$TARGET" --reject-at-frr 0.05 --threads "$THREADS" \
  > "$W/eval_known.json"
# Every t10k image as a PNG: known = the target classes, unknown = the source ones.
if [ ! -f "$W/png/done" ]; then
  rm -rf "$W/png"
  /usr/bin/python3 bench/fmnist_png.py t10k "$W/png/known" "$TARGET" 1000 0
  /usr/bin/python3 bench/fmnist_png.py t10k "$W/png/unknown" "$SOURCE" 1000 0
  touch "$W/png/done"
fi
# Calibrated: the run as it is. Uncalibrated: a copy without calibration.json.
rm -rf "$W/uncalibrated" && cp -r "$RUN" "$W/uncalibrated" && rm "$W/uncalibrated/calibration.json"
(cd "$W/png" && "$G" predict "$RUN" --json --top-k 1 --reject-at-frr 0.05 --threads "$THREADS" \
  known/*/*.png unknown/*/*.png) > "$W/calibrated.jsonl"
(cd "$W/png" && "$G" predict "$W/uncalibrated" --json --top-k 1 --threads "$THREADS" \
  known/*/*.png unknown/*/*.png) > "$W/uncalibrated.jsonl"
minutes=$(( ($(date +%s) - start + 30) / 60 ))

cmd="GRAFT_BUILD_DIR=$B THREADS=$THREADS${GRAFT_DEMO_RUNS:+ GRAFT_DEMO_RUNS=$GRAFT_DEMO_RUNS} bash bench/open_set.sh"
/usr/bin/python3 - "$W" "$RUN" "$minutes" "$cmd" "$reused" "$(nproc) cores, load average $load at the start" > "$W/section.md" <<'PY'
import collections, json, sys, textwrap
import numpy as np

w, run, minutes, cmd, reused, machine = sys.argv[1:7]
NAMES = ["T-shirt/top", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle boot"]

def read(path):
    rows = [json.loads(l) for l in open(path)]
    known = np.array([r["input"].startswith("known/") for r in rows])
    msp = np.array([r["top"][0]["probability"] for r in rows])
    unknown_answer = np.array([bool(r.get("unknown")) for r in rows])
    cls = np.array([int(r["input"].split("/")[1].split("_")[0]) for r in rows])
    label = [r["top"][0]["label"] for r in rows]
    return known, msp, unknown_answer, cls, label

def auroc(pos, neg):
    """P(score of a positive > score of a negative) + 0.5 P(tie): the
    Mann-Whitney U statistic over n_pos * n_neg, ranks of ties averaged."""
    s = np.concatenate([pos, neg])
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return u / (len(pos) * len(neg))

def fpr_at_tpr(pos, neg, tpr=0.95):
    t = np.quantile(pos, 1 - tpr)  # accept this share of the known
    return float((neg >= t).mean())

kc, mc, uc, cls, lab = read(f"{w}/calibrated.jsonl")
ku, mu, _, _, _ = read(f"{w}/uncalibrated.jsonl")
assert (kc == ku).all() and kc.sum() == 5000 and (~kc).sum() == 5000, "unexpected inputs"
cal = json.load(open(f"{run}/calibration.json"))
ev = json.load(open(f"{w}/eval_known.json"))
c, rej = ev["calibration"], ev["rejection"]
a_u, a_c = auroc(mu[ku], mu[~ku]), auroc(mc[kc], mc[~kc])
ties = lambda m: len(m) - len(np.unique(m))
top = lambda m: int((m == m.max()).sum())

print("<!-- openset:begin -->")
print("## Open-set answers: known against unseen classes (image demo)")
print()
fill = lambda t: print(textwrap.fill(t, 100, break_on_hyphens=False, break_long_words=False,
                                    subsequent_indent="  " if t.startswith("- ") else ""))
fill(f"Written by `{cmd}` on "
      f"{__import__('datetime').date.today()}, in about {minutes} min ({machine}; timings are not"
      " the point here). The target run is a full fine-tune (the demo's step 4 before its label-budget curve: ResNet-20"
      " pretrained on the 5 source classes, then fine-tuned on 50 images per target class, 10 of them"
      f" the validation split; one seed); its temperature T = {cal['temperature']:.3f} was fitted on"
      f" {cal['examples']} validation images. Test: the 10000 t10k images, 5000 of the 5 target"
      " classes (known, positive) and 5000 of the 5 source classes, which the target run never saw"
      " (unknown). Score: the top probability of `graft predict --json --top-k 1`, calibrated (the run"
      " as trained) and uncalibrated (a copy of the run without calibration.json). AUROC: the"
      " Mann-Whitney statistic, ties counted half."
      + (f" Taken finished from GRAFT_DEMO_RUNS (trained beforehand by the same commands, not counted"
         f" in the minutes): {', '.join(reused.split())}." if reused.strip() else ""))
print()
print("| score | AUROC known vs unknown | FPR of unknown at 95% of known accepted | mean MSP known | mean MSP unknown | tied scores |")
print("|---|---|---|---|---|---|")
for name, m, k in (("MSP (uncalibrated)", mu, ku), (f"calibrated MSP (T = {cal['temperature']:.3f})", mc, kc)):
    print(f"| {name} | {auroc(m[k], m[~k]):.4f} | {fpr_at_tpr(m[k], m[~k]):.4f} | {m[k].mean():.4f} | "
          f"{m[~k].mean():.4f} | {ties(m)} (at the maximum {m.max():.6g}: {top(m)}) |")
print()
fill(f"The same run on its 5000 known test images (`graft eval RUN --data t10k-images-idx3-ubyte.gz"
      f" --classes 5,6,7,8,9 --reject-at-frr 0.05`): accuracy {ev['accuracy']:.4f}; ECE (15 bins)"
      f" {c['ece_uncalibrated']:.4f} before, {c['ece']:.4f} after the temperature; NLL"
      f" {c['nll_uncalibrated']:.4f} before, {c['nll']:.4f} after. Rejection at"
      f" `--reject-at-frr 0.05` (threshold {rej['threshold']:.4f}, the calibrated top probability that"
      f" rejects 5% of the validation images): {rej['rejection_rate']:.4f} of the known test images"
      f" rejected, accuracy on the accepted {rej['accepted_accuracy']:.4f}; `graft predict` with the same"
      f" flag answers \"unknown\" for {uc[~kc].mean():.4f} of the unknown images"
      f" ({uc[kc].mean():.4f} of the known).")
print()
fill("Per test class (calibrated MSP; the run's answer is its top class; AUROC of that unknown class"
      " against all 5000 known):")
print()
print("| class | known? | mean MSP | most frequent answer | AUROC against the known |")
print("|---|---|---|---|---|")
for ci in range(10):
    sel = cls == ci
    answer, n = collections.Counter(lab[i] for i in np.flatnonzero(sel)).most_common(1)[0]
    au = f"{auroc(mc[kc], mc[sel]):.4f}" if ci < 5 else ""
    print(f"| {NAMES[ci]} | {'no' if ci < 5 else 'yes'} | {mc[sel].mean():.4f} | {NAMES[int(answer)]} "
          f"({n / sel.sum():.0%}) | {au} |")
print()
d = a_c - a_u
top_answer, n_top = collections.Counter(lab[i] for i in np.flatnonzero(~kc)).most_common(1)[0]
fill(f"- {n_top / (~kc).sum():.0%} of the unknown images are answered \"{NAMES[int(top_answer)]}\", with a mean"
      f" calibrated MSP of {mc[~kc].mean():.4f} against {mc[kc].mean():.4f} for the known: "
      + ("the unknown score higher than the known (AUROC below 0.5), so a threshold on the top"
         " probability rejects known images before unknown ones on this split." if a_c < 0.45 else
         "the top probability barely tells them apart (AUROC near 0.5), so a threshold on it rejects"
         f" known and unknown images at about the same rate ({uc[kc].mean():.1%} and {uc[~kc].mean():.1%}"
         " at --reject-at-frr 0.05)." if a_c < 0.6 else
         "a threshold on the top probability rejects unknown images first."))
fill(f"- Temperature scaling divides each input's logits by the same T, which keeps every input's"
      f" ranking of the classes but can reorder the MSP across inputs (two inputs with different logit"
      f" gaps move differently); here it moves the AUROC by {d:+.4f}.")
print("<!-- openset:end -->")
# The row of RESULTS' "Calibration" table.
with open(f"{w}/calibration_row.md", "w") as f:
    f.write(f"| Fashion-MNIST image demo (resnet20 full fine-tune, `bench/open_set.sh`) | {ev['count']} | "
            f"{ev['accuracy']:.4f} | {cal['examples']} | {cal['temperature']:.3f} | "
            f"{c['ece_uncalibrated']:.4f} | {c['ece']:.4f} | {c['nll_uncalibrated']:.4f} | {c['nll']:.4f} |\n")
PY
cat "$W/section.md"
echo "Row of the Calibration table:"; cat "$W/calibration_row.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md openset "$W/section.md"

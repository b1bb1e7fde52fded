#!/usr/bin/env python3
"""The tables of bench/self_train.sh's section, from its work folder.

Usage: self_train_table.py WORK "STEPS:DRAWS ..."
For every budget, the runs WORK/nSTEPS/sD-INIT-METHOD that finished
(WORK/nSTEPS/sD-INIT-METHOD.secs exists): test accuracy (mean over the draws
and each draw), the gain over supervised only with the same start, the share
of test images the final model labels at a top probability of 0.95 or more
(the threshold of the unlabelled loss: what it keeps of images like the
unlabelled ones) and how many of those labels are right, and the mean
seconds. Then, per class, the test accuracy and that share, which show which
classes the unlabelled loss can teach at all.
"""
import csv
import json
import os
import sys

W, budgets = sys.argv[1], sys.argv[2].split()
INITS = {"source": "from the source", "scratch": "from scratch"}
METHODS = {"supervised": "supervised only", "pseudo": "pseudo-labels", "fixmatch": "FixMatch"}
TAU = 0.95


def pct(x):
    return "%.2f%%" % (100 * x)


def load(steps, d, init, method):
    name = f"n{steps}/s{d}-{init}-{method}"
    if not os.path.exists(f"{W}/{name}.secs"):
        return None
    out = f"{W}/{name}"
    secs = int(open(f"{W}/{name}.secs").read())
    acc = json.load(open(f"{out}/test_metrics.json"))["accuracy"]
    preds = list(csv.DictReader(open(f"{out}/test_predictions.csv")))
    conf = [p for p in preds if float(p["confidence"]) >= TAU]
    per_class = {}
    for c in sorted({p["label"] for p in preds}):
        ps = [p for p in preds if p["label"] == c]
        per_class[c] = (sum(p["predicted"] == c for p in ps) / len(ps),
                        sum(float(p["confidence"]) >= TAU for p in ps) / len(ps))
    return {"acc": acc, "secs": secs, "share": len(conf) / len(preds),
            "conf_acc": sum(p["label"] == p["predicted"] for p in conf) / len(conf) if conf else None,
            "per_class": per_class}


def mean(xs):
    return sum(xs) / len(xs)


for b in budgets:
    steps, draws = b.split(":")
    e = int(steps) // 10
    runs = {(i, m): [r for r in (load(steps, d, i, m) for d in range(1, int(draws) + 1)) if r]
            for i in INITS for m in METHODS}
    print(f"\n**{steps} steps** ({e} epoch{'s' if e != 1 else ''} of the 250 labelled images), "
          f"{draws} draw{'s' if draws != '1' else ''} of the labelled images:\n")
    print("| start | method | test accuracy (mean) | each draw | vs supervised | "
          "test images at ≥ 0.95 | their accuracy | seconds (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    for i in INITS:
        base = runs[i, "supervised"]
        for m in METHODS:
            r = runs[i, m]
            if not r:
                print(f"| {INITS[i]} | {METHODS[m]} | not run | | | | | |")
                continue
            a = mean([x["acc"] for x in r])
            delta = ("—" if m == "supervised" or not base
                     else "%+.2f points" % (100 * (a - mean([x["acc"] for x in base]))))
            cs = [x["conf_acc"] for x in r if x["conf_acc"] is not None]
            print(f"| {INITS[i]} | {METHODS[m]} | {pct(a)} | {', '.join(pct(x['acc']) for x in r)} | {delta} | "
                  f"{pct(mean([x['share'] for x in r]))} | {pct(mean(cs)) if cs else '—'} | "
                  f"{mean([x['secs'] for x in r]):.0f} |")
    classes = next((sorted(r[0]["per_class"]) for r in runs.values() if r), [])
    if not classes:
        continue
    print(f"\nPer class at {steps} steps (mean over the draws): test accuracy / share of the class's test "
          "images labelled at ≥ 0.95:\n")
    print("| start | method | " + " | ".join(c.split("_", 1)[1].replace("_", " ") for c in classes) + " |")
    print("|---|---|" + "---|" * len(classes))
    for i in INITS:
        for m in METHODS:
            r = runs[i, m]
            if not r:
                continue
            cells = [f"{100 * mean([x['per_class'][c][0] for x in r]):.1f}% / "
                     f"{100 * mean([x['per_class'][c][1] for x in r]):.0f}%" for c in classes]
            print(f"| {INITS[i]} | {METHODS[m]} | " + " | ".join(cells) + " |")

#!/usr/bin/env python3
"""The tables and per-set verdicts of bench/text_transfer.sh (markdown on
stdout).

Usage: text_transfer_table.py W BUDGETS SEEDS ARMS
Reads W/runs/NAME-pcN-sS-ARM/{test_metrics.json,config.json} and NAME.time.

Verdict rule, per set, budget and pretrained arm against its scratch arm
(paired: the same subset and seed): the pretrained arm BEATS scratch when
its gain is positive on every seed AND the mean gain exceeds the larger of
the two arms' seed standard deviations. A set counts when some budget and
pretrained arm beats scratch.
"""
import json
import os
import statistics
import sys

w, budgets, seeds, arms = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
runs = os.path.join(w, "runs")
SETS = [("sst2", "SST-2 (GLUE dev as test)"), ("mr", "MR polarity"), ("sms", "SMS spam"),
        ("agnews", "AG News (official test)"), ("chnsenticorp", "ChnSentiCorp (Chinese)")]
ARM_NAMES = {"rand": "CNN-rand (scratch)", "glove": "CNN-non-static (GloVe)", "static": "CNN-static (GloVe)",
             "use": "USE-lite linear (frozen)", "scratch": "BERT-tiny scratch", "ft": "BERT-tiny fine-tuned from waimai",
             "probe": "waimai source, linear probe"}


def result(name, n, seed, arm):
    d = os.path.join(runs, f"{name}-pc{n}-s{seed}-{arm}")
    p = os.path.join(d, "test_metrics.json")
    if not os.path.exists(p):
        return None
    m = json.load(open(p))
    t = open(d + ".time").read().split() if os.path.exists(d + ".time") else []
    secs = float(t[0]) if t else float("nan")  # empty while the command is still exiting
    return {"acc": 100 * m["accuracy"], "secs": secs, "count": m.get("count"),
            "config": json.load(open(os.path.join(d, "config.json")))}


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def fmt_time(s):
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


verdicts, beats = [], 0
for name, title in SETS:
    chinese = name == "chnsenticorp"
    scratch = "scratch" if chinese else "rand"
    pre_arms = ["ft", "probe"] if chinese else [a for a in arms if a != "rand"]
    shown = [scratch] + pre_arms
    rows, best, misses = [], None, []
    for n in budgets:
        res = {a: [result(name, n, s, a) for s in seeds] for a in shown}
        if not any(r for rs in res.values() for r in rs):
            continue
        cells = []
        for a in shown:
            got = [r for r in res[a] if r]
            if not got:
                cells.append("-")
                continue
            accs = [r["acc"] for r in got]
            t = statistics.mean(r["secs"] for r in got)
            cells.append(f"{statistics.mean(accs):.1f} ± {sd(accs):.1f} ({fmt_time(t)})")
        gains = []
        for a in pre_arms:
            pairs = [(p["acc"], q["acc"]) for p, q in zip(res[a], res[scratch]) if p and q]
            if not pairs:
                gains.append("-")
                continue
            g = [p - q for p, q in pairs]
            spread = max(sd([p for p, _ in pairs]), sd([q for _, q in pairs]))
            ok = len(pairs) == len(seeds) and len(pairs) > 1 and min(g) > 0 and statistics.mean(g) > spread
            gains.append(f"{statistics.mean(g):+.1f} [{', '.join(f'{x:+.1f}' for x in g)}]{' **beats**' if ok else ''}")
            key = (ok, statistics.mean(g))
            if not ok and len(pairs) == len(seeds):
                misses.append(f"{ARM_NAMES[a]} at {n} per class ({statistics.mean(g):+.1f}, seeds {min(g):+.1f} to "
                              f"{max(g):+.1f})")
            if best is None or key > best[0]:
                best = (key, a, n, statistics.mean(g), spread, min(g), len(pairs))
        counts = next(r for rs in res.values() for r in rs if r)["config"]["counts"]
        rows.append(f"| {n} ({counts['train']:,} texts) | " + " | ".join(cells) + " | " + " | ".join(gains) + " |")
    if not rows:
        continue
    m = json.load(open(os.path.join(runs, f"{name}-pc{budgets[0]}-s{seeds[0]}-{scratch}", "test_metrics.json")))
    support = [c["support"] for c in m["per_class"]]
    print(f"**{title}**: {sum(support):,} test texts, majority class {100 * max(support) / sum(support):.1f}%\n")
    print("| per class | " + " | ".join(ARM_NAMES[a] for a in shown) + " | "
          + " | ".join(f"{ARM_NAMES[a].split(' (')[0]} gain [per seed]" for a in pre_arms) + " |")
    print("|---" * (1 + len(shown) + len(pre_arms)) + "|")
    print("\n".join(rows))
    print()
    if best:
        (ok, _), a, n, g, spread, lo, npairs = best
        if npairs < len(seeds):
            verdicts.append(f"- **{title}: not settled.** Only {npairs} of {len(seeds)} seeds ran "
                            f"({ARM_NAMES[a]} at {n} per class: {g:+.1f} points on those).")
        elif ok:
            beats += 1
            verdicts.append(f"- **{title}: yes.** {ARM_NAMES[a]} beats scratch at {n} per class by {g:+.1f} points "
                            f"(every seed above 0, lowest {lo:+.1f}; the larger seed sd is {spread:.1f})."
                            + (f" Not beyond the spread: {'; '.join(misses)}." if misses else ""))
        else:
            verdicts.append(f"- **{title}: no.** The best pretrained arm, {ARM_NAMES[a]} at {n} per class, gains "
                            f"{g:+.1f} points on average (lowest seed {lo:+.1f}; seed sd up to {spread:.1f}): "
                            f"within the spread of seeds.")
print("Verdicts (a pretrained arm beats scratch when its paired gain is positive on every seed and its mean "
      "exceeds the larger seed standard deviation of the two arms):\n")
print("\n".join(verdicts))
print(f"\n**Sets where a pretrained source beats scratch beyond the seeds' spread: {beats} of {len(verdicts)}.**")

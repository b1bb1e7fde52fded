#!/usr/bin/env python3
"""Label-budget subsets of a labelled text file, for bench/text_transfer.sh.

Usage: text_subsets.py SRC FORMAT OUT_DIR NAME BUDGETS SEEDS
  SRC      a training file: FORMAT tsv-header (a header line, the label in the
           last tab-separated field: SST-2), tsv (no header, label last: AG
           News) or jsonl ({"text", "label"}: bench/text_splits.py's files)
  BUDGETS  texts per class, comma-separated (e.g. 50,500)
  SEEDS    comma-separated (e.g. 0,1,2)
Writes OUT_DIR/NAME-pcN-sS.EXT: for each class, its lines in a shuffle
seeded by random.Random(S), the first N kept (so for one seed the 50 of a
class are among its 500); classes with fewer than N lines are an error.
The kept lines are copied byte for byte (a header line kept), in the
source's order, so graft reads them exactly as it reads SRC; every arm of
the bench trains on the same file. Each file is written atomically and an
existing one kept.
"""
import json
import os
import random
import sys

src, fmt, out, name, budgets, seeds = sys.argv[1:7]
budgets = [int(b) for b in budgets.split(",")]
seeds = [int(s) for s in seeds.split(",")]
with open(src, encoding="utf-8", newline="") as f:
    lines = f.readlines()
header = []
if fmt == "tsv-header":
    header, lines = lines[:1], lines[1:]


def label_of(line):
    if fmt in ("tsv", "tsv-header"):
        return line.rstrip("\r\n").split("\t")[-1].strip()
    if fmt == "jsonl":
        return str(json.loads(line)["label"])
    sys.exit(f"text_subsets.py: unknown format '{fmt}' (expected tsv, tsv-header or jsonl)")


by = {}
for i, line in enumerate(lines):
    if not line.strip():
        continue
    by.setdefault(label_of(line), []).append(i)
ext = "jsonl" if fmt == "jsonl" else "tsv"
os.makedirs(out, exist_ok=True)
for seed in seeds:
    for n in budgets:
        path = os.path.join(out, f"{name}-pc{n}-s{seed}.{ext}")
        if os.path.exists(path):
            continue
        keep = []
        for label in sorted(by):
            idx = list(by[label])
            if len(idx) < n:
                sys.exit(f"text_subsets.py: {src}: class '{label}' has {len(idx)} texts (budget {n} per class)")
            random.Random(seed).shuffle(idx)
            keep += idx[:n]
        keep.sort()
        with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
            f.writelines(header + [lines[i] for i in keep])
        os.replace(path + ".tmp", path)

#!/usr/bin/env python3
"""Test splits for the text sets that ship without one, shared by
bench/text.sh, bench/textcnn.sh and bench/use_lite.sh so that every text
table scores the same test texts.

Usage: text_splits.py DATA_ROOT OUT
Writes OUT/{mr,sms,chnsenticorp,waimai}/{train,test}.jsonl: per label, a seeded
(random.Random(0)) shuffle, 20% to test; each file written atomically and
an existing split kept.
"""
import csv, json, os, random, sys
data, out = sys.argv[1], sys.argv[2]
def split(name, rows):
    d = os.path.join(out, name)
    if os.path.exists(os.path.join(d, "test.jsonl")):
        return
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(0)
    by = {}
    for r in rows:
        by.setdefault(r["label"], []).append(r)
    train, test = [], []
    for label in sorted(by):
        rs = by[label]
        rnd.shuffle(rs)
        k = round(0.2 * len(rs))
        test += rs[:k]
        train += rs[k:]
    for part, rs in (("train", train), ("test", test)):
        with open(os.path.join(d, part + ".jsonl.tmp"), "w", encoding="utf-8") as f:
            for r in rs:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(os.path.join(d, part + ".jsonl.tmp"), os.path.join(d, part + ".jsonl"))
mr = []
for label in ("neg", "pos"):
    with open(os.path.join(data, "mr_polarity", "rt-polarity." + label), encoding="utf-8") as f:
        mr += [{"text": l.rstrip("\n"), "label": label} for l in f if l.strip()]
split("mr", mr)
sms = []
with open(os.path.join(data, "sms_spam", "SMSSpamCollection"), encoding="utf-8") as f:
    next(f)  # the header line of this copy
    for l in f:
        label, text = l.rstrip("\r\n").split("\t", 1)
        sms.append({"text": text, "label": label})
split("sms", sms)
with open(os.path.join(data, "chinese_sentiment", "ChnSentiCorp_htl_all.csv"), encoding="utf-8", newline="") as f:
    split("chnsenticorp", [{"text": r["review"], "label": r["label"]} for r in csv.DictReader(f)])
with open(os.path.join(data, "chinese_sentiment", "waimai_10k.csv"), encoding="utf-8", newline="") as f:
    split("waimai", [{"text": r["review"], "label": r["label"]} for r in csv.DictReader(f)])

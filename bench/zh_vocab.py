#!/usr/bin/env python3
"""A WordPiece vocabulary for BERT-tiny on the Chinese sets, shared by
bench/text_adapt.sh and bench/text_domain_shift.sh: bert-base-uncased's
vocab.txt, then every non-space character of the given JSON Lines files'
"text" fields that it lacks, in order of first appearance (texts only, no
labels). Written atomically; an existing OUT is kept.

Usage: zh_vocab.py BERT_VOCAB OUT TEXTS.jsonl [TEXTS.jsonl ...]
"""
import json
import os
import sys

vocab_path, out, sources = sys.argv[1], sys.argv[2], sys.argv[3:]
if not os.path.exists(out):
    vocab = [l.rstrip("\n") for l in open(vocab_path, encoding="utf-8")]
    have, new = set(vocab), []
    for path in sources:
        for l in open(path, encoding="utf-8"):
            for ch in json.loads(l)["text"]:
                if not ch.isspace() and ch not in have:
                    have.add(ch)
                    new.append(ch)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        f.write("\n".join(vocab + new) + "\n")
    os.replace(out + ".tmp", out)

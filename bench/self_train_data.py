#!/usr/bin/env python3
"""The data of bench/self_train.sh (issue 19, self-training in the demo
setting): Fashion-MNIST's target classes split into a few labelled images
and the unlabelled rest, as PNG folders.

Usage: self_train_data.py OUT CLASSES PER_CLASS NUNL SEED
  OUT/labeled/<c>_<name>/train_NNNNN.png: PER_CLASS training images of each
      of CLASSES, drawn without replacement by numpy's default_rng(SEED).
  OUT/unlabeled/uNNNNN.png: flat, no labels: the other training images of
      CLASSES (6000 per class minus the labelled ones), or a subset of NUNL of
      them drawn by the same generator (NUNL 0: all), in a shuffled order and
      numbered in that order, so that neither a folder nor a name tells a
      class.
  OUT/unlabeled_truth.csv: file,label of each unlabelled image (outside the
      folder graft reads; only for diagnostics after training).
  OUT/test/<c>_<name>/t10k_NNNNN.png: every t10k image of CLASSES (1000 each).
The labelled and test folders are named like bench/fmnist_png.py's.
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

NAMES = ["tshirt", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
FM = os.environ.get("GRAFT_FMNIST", "/usr/share/datasets/fashion-mnist")


def load(split):
    with gzip.open(f"{FM}/{split}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{FM}/{split}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


out, classes = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
per_class, nunl, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(seed)
images, labels = load("train")
rest = []
for c in classes:
    d = os.path.join(out, "labeled", f"{c}_{NAMES[c]}")
    os.makedirs(d, exist_ok=True)
    idx = np.flatnonzero(labels == c)
    pick = rng.choice(idx, size=per_class, replace=False)
    for i in sorted(pick):
        Image.fromarray(images[i], "L").save(os.path.join(d, f"train_{i:05d}.png"))
    rest.append(np.setdiff1d(idx, pick))
rest = rng.permutation(np.concatenate(rest))
if 0 < nunl < len(rest):
    rest = rest[:nunl]
d = os.path.join(out, "unlabeled")
os.makedirs(d, exist_ok=True)
with open(os.path.join(out, "unlabeled_truth.csv"), "w") as f:
    f.write("file,label\n")
    for k, i in enumerate(rest):
        name = f"u{k:05d}.png"
        Image.fromarray(images[i], "L").save(os.path.join(d, name))
        f.write(f"{name},{labels[i]}\n")
images, labels = load("t10k")
for c in classes:
    d = os.path.join(out, "test", f"{c}_{NAMES[c]}")
    os.makedirs(d, exist_ok=True)
    for i in np.flatnonzero(labels == c):
        Image.fromarray(images[i], "L").save(os.path.join(d, f"t10k_{i:05d}.png"))
print(f"{out}: {per_class * len(classes)} labelled, {len(rest)} unlabelled, "
      f"{sum(int((labels == c).sum()) for c in classes)} test images", file=sys.stderr)

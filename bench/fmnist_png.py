#!/usr/bin/env python3
"""Writes a seeded subset of Debian's Fashion-MNIST as a folder of class
folders of PNGs (for the bench scripts that need small image folders).

Usage: fmnist_png.py {train|t10k} OUT CLASSES PER_CLASS SEED
  CLASSES: comma-separated class numbers (0-9); the folders are named
  "<number>_<name>" so that they sort in class order. PER_CLASS images of
  each class are drawn without replacement by numpy's default_rng(SEED).
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

NAMES = ["tshirt", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle_boot"]
FM = os.environ.get("GRAFT_FMNIST", "/usr/share/datasets/fashion-mnist")

split, out, classes, per_class, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
with gzip.open(f"{FM}/{split}-images-idx3-ubyte.gz") as f:
    images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
with gzip.open(f"{FM}/{split}-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
rng = np.random.default_rng(seed)
for c in (int(x) for x in classes.split(",")):
    d = os.path.join(out, f"{c}_{NAMES[c]}")
    os.makedirs(d, exist_ok=True)
    idx = np.flatnonzero(labels == c)
    for i in sorted(rng.choice(idx, size=min(per_class, len(idx)), replace=False)):
        Image.fromarray(images[i], "L").save(os.path.join(d, f"{split}_{i:05d}.png"))

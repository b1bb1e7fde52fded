#!/usr/bin/env python3
"""Builds MNIST -> MNIST-M as Ganin & Lempitsky (2015) built MNIST-M: each
digit blended with a random 28x28 patch of a colour photo, output =
|patch - digit| per channel (digit grey replicated to RGB). Here the digits
are the MNIST test set (../shared/data/mnist_test, 10,000 images; the paper
used the 60,000 training digits) and the photos are the CIFAR-10 test JPEGs
(../shared/data/cifar10_test_jpg, 32x32; the paper used BSDS500): a random
photo and a random 28x28 crop of it per digit, numpy default_rng(SEED).

Split of the 10,000 digit indices (fixed, documented in bench/RESULTS.md):
  source/<d>/            MNIST digits 0 .. NSRC-1, grey PNGs (labelled source)
  target_unlabeled/      MNIST-M of digits 5000 .. 5000+NTGT-1, flat, no labels
  target_train/<d>/      the same MNIST-M images with their labels (train-on-target ceiling)
  target_test/<d>/       MNIST-M of digits 9000 .. 9999 (1000 images, the figure reported)

Usage: mnistm.py OUT [NSRC=3000] [NTGT=3000] [SEED=19]
"""
import gzip
import os
import sys

import numpy as np
from PIL import Image

SHARED = os.environ.get("GRAFT_SHARED", os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../shared"))
out = sys.argv[1]
nsrc = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
ntgt = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
seed = int(sys.argv[4]) if len(sys.argv) > 4 else 19
assert nsrc <= 5000 and ntgt <= 4000

with gzip.open(f"{SHARED}/data/mnist_test/t10k-images-idx3-ubyte.gz") as f:
    digits = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
with gzip.open(f"{SHARED}/data/mnist_test/t10k-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
photos_dir = f"{SHARED}/data/cifar10_test_jpg"
photos = sorted(os.path.join(photos_dir, c, n) for c in os.listdir(photos_dir) for n in os.listdir(os.path.join(photos_dir, c)))
rng = np.random.default_rng(seed)


def blend(i):
    photo = np.asarray(Image.open(photos[rng.integers(len(photos))]).convert("RGB"), dtype=np.int16)
    y, x = rng.integers(0, photo.shape[0] - 28 + 1), rng.integers(0, photo.shape[1] - 28 + 1)
    patch = photo[y:y + 28, x:x + 28]
    return np.abs(patch - digits[i].astype(np.int16)[:, :, None]).astype(np.uint8)


def save(img, d, name, mode):
    os.makedirs(d, exist_ok=True)
    Image.fromarray(img, mode).save(os.path.join(d, name))


for i in range(nsrc):
    save(digits[i], f"{out}/source/{labels[i]}", f"{i:05d}.png", "L")
for i in range(5000, 5000 + ntgt):
    m = blend(i)
    save(m, f"{out}/target_unlabeled", f"{i:05d}.png", "RGB")
    save(m, f"{out}/target_train/{labels[i]}", f"{i:05d}.png", "RGB")
for i in range(9000, 10000):
    save(blend(i), f"{out}/target_test/{labels[i]}", f"{i:05d}.png", "RGB")
print(f"source {nsrc}, target unlabeled/train {ntgt}, target test 1000 under {out} (seed {seed})")

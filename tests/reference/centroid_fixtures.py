"""Numpy reference for graft's centroid head (src/models/head.cpp), and the
fixtures the C++ tests compare against.

Computed in float64 from the float32 features stored in the fixture:
  unit(v)         v / max(|v|, 1e-12)              (torch.nn.functional.normalize)
  centroid_c      unit(mean over the class's rows of unit(x)): the nearest-
                  class-mean head of L2-normalised features (prototype head)
  logits          16 * unit(q) . centroid_c        (16 x cosine)
  predicted       argmax_c of the cosine

Writes, under OUT_DIR/centroid/:
  cases.safetensors  train.features F32 [90, 24] (3 classes of 30 rows: a
                     class direction plus noise, with rows of very different
                     lengths so that normalising first matters),
                     train.labels I64 [90], query.features F32 [40, 24]
  expected.json      {"centroids": [[...] x 3], "logits": [[...] x 40],
                      "predicted": [...]}

Usage: /usr/bin/python3 centroid_fixtures.py OUT_DIR
(or through make_fixtures.py, which calls make(out_dir)).
"""
import os
import sys

import numpy as np


def unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def build():
    rng = np.random.default_rng(20261205)
    classes, per_class, dim = 3, 30, 24
    directions = rng.normal(size=(classes, dim))
    rows, labels = [], []
    for c in range(classes):
        for _ in range(per_class):
            scale = rng.uniform(0.1, 20.0)  # lengths that differ by 200x
            rows.append(scale * (directions[c] + 0.8 * rng.normal(size=dim)))
            labels.append(c)
    train = np.asarray(rows, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    query = (rng.normal(size=(40, dim)) + directions[rng.integers(0, classes, 40)]).astype(np.float32)
    x = train.astype(np.float64)
    centroids = np.stack([unit(unit(x[labels == c]).mean(axis=0)) for c in range(classes)])
    cosine = unit(query.astype(np.float64)) @ centroids.T
    expected = {
        "centroids": centroids.tolist(),
        "logits": (16.0 * cosine).tolist(),
        "predicted": cosine.argmax(axis=1).tolist(),
    }
    tensors = {"train.features": train, "train.labels": labels, "query.features": query}
    return tensors, expected


def make(out_dir):
    import st

    tensors, expected = build()
    st.save_case(out_dir, "centroid", tensors, expected, "tests/reference/centroid_fixtures.py")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    make(sys.argv[1])

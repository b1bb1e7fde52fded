"""Numpy reference for graft's calibration (src/eval/calibration.cpp), and the
fixtures the C++ tests compare against.

Everything is computed in float64 from the float32 logits stored in the
fixture, by brute force rather than by the C++ code's method:
  nll(z, y, t)      mean of -log softmax(z / t)[y]
  ece(z, y, t)      15 equal-width bins of the top probability p, bin b
                    holding b/15 < p <= (b+1)/15; sum over bins of
                    |accuracy - mean p| x (rows in the bin) / N  (Guo et al. 2017)
  best_t(z, y)      the t in [0.01, 100] of least nll: a grid of 20001 points
                    in log t, then a grid of 20001 points between the
                    neighbours of the best one (no optimiser)
  quantile          numpy.quantile (linear) of the calibrated top probability

Writes, under OUT_DIR/calibration/:
  cases.safetensors  mis.logits F32 [400, 5] (over-confident: the logits that
                     drew the labels, x 2.5), mis.labels I64 [400];
                     separable.logits F32 [60, 3], separable.labels I64 [60]
                     (every row right by a margin of 8: the nll falls as t -> 0)
  expected.json      {"mis": {"temperature", "nll_before", "nll_after",
                      "ece_before", "ece_after", "ece_t1_7", "nll_t1_7",
                      "reliability_before", "reliability_after",
                      "reliability_t1_7" (the 15 bins of ece at t = 1, the
                      best t and 1.7: {"count", "confidence", "accuracy"}),
                      "q0_05", "q0_5", "rejected_0_6", "accepted_accuracy_0_6"},
                      "separable": {"nll_before", "ece_before"}}

Usage: /usr/bin/python3 calibration_fixtures.py OUT_DIR
(or through make_fixtures.py, which calls make(out_dir)).
"""
import os
import sys

import numpy as np


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def nll(z, y, t):
    return float(-log_softmax(z / t)[np.arange(len(y)), y].mean())


def ece(z, y, t, bins=15):
    p = np.exp(log_softmax(z / t))
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    right = (pred == y).astype(np.float64)
    total = 0.0
    for b in range(bins):
        inside = (conf > b / bins) & (conf <= (b + 1) / bins)
        if inside.any():
            total += abs(right[inside].sum() - conf[inside].sum()) / len(y)
    return total


def reliability(z, y, t, bins=15):
    """The reliability diagram's bins (the bins of ece): per bin the count,
    the mean top probability and the accuracy (0 and 0 for an empty bin)."""
    p = np.exp(log_softmax(z / t))
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    right = (pred == y).astype(np.float64)
    out = {"count": [], "confidence": [], "accuracy": []}
    for b in range(bins):
        inside = (conf > b / bins) & (conf <= (b + 1) / bins)
        k = int(inside.sum())
        out["count"].append(k)
        out["confidence"].append(float(conf[inside].mean()) if k else 0.0)
        out["accuracy"].append(float(right[inside].mean()) if k else 0.0)
    return out


def balanced_accuracy(pred, y):
    """scikit-learn's balanced_accuracy_score: mean recall over the classes in y."""
    return float(np.mean([(pred[y == k] == k).mean() for k in np.unique(y)]))


def macro_f1(pred, y):
    """scikit-learn's f1_score(average="macro"): mean F1 over the classes in y or pred."""
    scores = []
    for k in np.union1d(np.unique(y), np.unique(pred)):
        tp = float(((pred == k) & (y == k)).sum())
        p = tp / max((pred == k).sum(), 1)
        r = tp / max((y == k).sum(), 1)
        scores.append(0.0 if p + r == 0 else 2 * p * r / (p + r))
    return float(np.mean(scores))


def best_t(z, y):
    def grid(lo, hi):
        logs = np.linspace(lo, hi, 20001)
        values = np.array([nll(z, y, np.exp(s)) for s in logs])
        return logs, int(values.argmin())
    logs, i = grid(-np.log(100), np.log(100))
    logs, j = grid(logs[max(i - 1, 0)], logs[min(i + 1, len(logs) - 1)])
    return float(np.exp(logs[j]))


def build():
    rng = np.random.default_rng(20261205)
    n, c = 400, 5
    truth = rng.normal(0.0, 1.5, size=(n, c))
    p = np.exp(log_softmax(truth))
    labels = np.array([rng.choice(c, p=row) for row in p], dtype=np.int64)
    mis = (2.5 * truth).astype(np.float32)

    sep_labels = np.arange(60, dtype=np.int64) % 3
    sep = rng.normal(0.0, 0.5, size=(60, 3))
    sep[np.arange(60), sep_labels] += 8.0
    sep = sep.astype(np.float32)

    # Class 3 is never a label but is predicted; class 2 is a label never predicted.
    sparse_labels = np.array([0] * 20 + [1] * 20 + [2] * 10, dtype=np.int64)
    sparse = rng.normal(0.0, 1.0, size=(50, 4))
    sparse[:, 2] -= 10.0
    sparse[np.arange(40), sparse_labels[:40]] += 1.0
    sparse = sparse.astype(np.float32)
    sparse_pred = sparse.argmax(axis=1)

    z = mis.astype(np.float64)
    t = best_t(z, labels)
    conf = np.exp(log_softmax(z / t)).max(axis=1)
    pred = z.argmax(axis=1)
    accepted = conf >= 0.6
    expected = {
        "mis": {
            "temperature": t,
            "nll_before": nll(z, labels, 1.0), "nll_after": nll(z, labels, t),
            "ece_before": ece(z, labels, 1.0), "ece_after": ece(z, labels, t),
            "ece_t1_7": ece(z, labels, 1.7), "nll_t1_7": nll(z, labels, 1.7),
            "reliability_before": reliability(z, labels, 1.0),
            "reliability_after": reliability(z, labels, t),
            "reliability_t1_7": reliability(z, labels, 1.7),
            "q0_05": float(np.quantile(conf, 0.05)), "q0_5": float(np.quantile(conf, 0.5)),
            "rejected_0_6": int((~accepted).sum()),
            "accepted_accuracy_0_6": float((pred[accepted] == labels[accepted]).mean()),
            "balanced_accuracy": balanced_accuracy(pred, labels),
            "macro_f1": macro_f1(pred, labels),
            # scikit-learn's compute_class_weight("balanced"): n / (classes x count)
            "class_weights": [len(labels) / (c * float((labels == k).sum())) for k in range(c)],
        },
        "sparse": {
            "balanced_accuracy": balanced_accuracy(sparse_pred, sparse_labels),
            "macro_f1": macro_f1(sparse_pred, sparse_labels),
        },
        "separable": {
            "nll_before": nll(sep.astype(np.float64), sep_labels, 1.0),
            "ece_before": ece(sep.astype(np.float64), sep_labels, 1.0),
        },
    }
    tensors = {"mis.logits": mis, "mis.labels": labels,
               "separable.logits": sep, "separable.labels": sep_labels,
               "sparse.logits": sparse, "sparse.labels": sparse_labels}
    return tensors, expected


def make(out_dir):
    import st

    tensors, expected = build()
    st.save_case(out_dir, "calibration", tensors, expected, "tests/reference/calibration_fixtures.py")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    make(sys.argv[1])

#!/usr/bin/python3
"""Independent recomputation of graft's face evaluation metrics.

Usage: face_protocol_ref.py DUMP.json OUT.json

DUMP is what `graft face evaluate --dump` writes (or a test writes in the same
form): {"labels": [...], "embeddings": [[...], ...], "pairs": [[a, b, same,
fold], ...], "far": F, "splits": [{"k", "trial", "enrol", "probe"}, ...]}.
The pairs, folds and enrolment draws are graft's seeded choices; this script
checks that they follow the protocol (every genuine pair once, as many
distinct impostor pairs, folds of near-equal size, k enrolment images per
identity) and recomputes from the embeddings, by brute force and in plain
Python: the distances, per-fold accuracy with the threshold that is best on
the other folds, ROC AUC (all genuine x impostor comparisons), TAR at FAR, and
rank-1 identification per k (mean over trials). Writes OUT as JSON.
"""
import json
import math
import sys


def dist(u, v):
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(u, v)))


def normalised(v):
    n = math.sqrt(sum(a * a for a in v)) or 1e-12
    return [a / n for a in v]


def best_threshold(pairs):
    """The accuracy-maximising threshold (accept d < t) over candidate
    thresholds: just below the smallest distance, midpoints between distinct
    consecutive distances, just above the largest; first best wins."""
    ds = sorted(set(d for d, _ in pairs))
    candidates = [ds[0] - 1e-6] + [(a + b) / 2 for a, b in zip(ds, ds[1:])] + [ds[-1] + 1e-6]
    best, best_t = -1, None
    for t in candidates:
        right = sum((d < t) == same for d, same in pairs)
        if right > best:
            best, best_t = right, t
    return best_t


def main(dump_path, out_path):
    dump = json.load(open(dump_path))
    labels, emb = dump["labels"], dump["embeddings"]
    n = len(labels)
    pairs = dump["pairs"]
    genuine = {(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]}
    got_genuine = [(a, b) for a, b, same, _ in pairs if same]
    impostor = [(a, b) for a, b, same, _ in pairs if not same]
    assert sorted(got_genuine) == sorted(genuine), "genuine pairs are not exactly all same-label pairs"
    assert len(set(impostor)) == len(impostor) == len(genuine), "impostors: not as many distinct as genuine"
    assert all(labels[a] != labels[b] and a < b for a, b in impostor), "an impostor pair shares a label"
    folds = max(p[3] for p in pairs) + 1
    sizes = [sum(1 for p in pairs if p[3] == f) for f in range(folds)]
    assert max(sizes) - min(sizes) <= 1, f"fold sizes {sizes}"

    scored = [(dist(emb[a], emb[b]), bool(same), fold) for a, b, same, fold in pairs]
    fold_acc = []
    for f in range(folds):
        train = [(d, s) for d, s, g in scored if g != f]
        test = [(d, s) for d, s, g in scored if g == f]
        t = best_threshold(train)
        fold_acc.append(sum((d < t) == s for d, s in test) / len(test))
    accuracy = sum(fold_acc) / folds
    gen = [d for d, s, _ in scored if s]
    imp = [d for d, s, _ in scored if not s]
    wins = sum(1.0 if g < i else 0.5 if g == i else 0.0 for g in gen for i in imp)
    auc = wins / (len(gen) * len(imp))
    imp_sorted = sorted(imp)
    allowed = math.floor(dump["far"] * len(imp))
    t = imp_sorted[allowed] if allowed < len(imp) else imp_sorted[-1] + 1e-6
    assert sum(d < t for d in imp) <= allowed
    tar = sum(d < t for d in gen) / len(gen)

    rank1 = {}
    for split in dump["splits"]:
        k = split["k"]
        enrol, probe = split["enrol"], split["probe"]
        by_label = {}
        for i in enrol:
            by_label.setdefault(labels[i], []).append(emb[i])
        assert all(len(v) == k for v in by_label.values()), f"k={k}: not k enrolment images per identity"
        assert not set(enrol) & set(probe), "an image both enrols and probes"
        templates = {l: normalised([sum(c) / k for c in zip(*v)]) for l, v in by_label.items()}
        right = 0
        for p in probe:
            best = min(templates, key=lambda l: (dist(emb[p], templates[l]), l))
            right += best == labels[p]
        rank1.setdefault(k, []).append(right / len(probe))
    out = {"accuracy": accuracy, "fold_accuracy": fold_acc, "auc": auc, "tar_at_far": tar,
           "threshold_at_far": t,
           "rank1": {str(k): sum(v) / len(v) for k, v in rank1.items()}}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

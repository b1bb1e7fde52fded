"""Brute-force references for graft's domain-adaptation losses (issue 19,
src/train/adapt.cpp), compared by tests/train/adapt_test.cpp.

mk_mmd(X, Y): DAN's multi-kernel MMD^2, unbiased, written as plain loops
over pairs in float64 numpy (no matrix tricks):
  w   = lower median of ||z_i - z_j||^2 over pairs i < j of the pooled rows
        z = [X; Y] (sorted, element (P - 1) // 2 of the P pairs)
  k   = mean over s in (0.25, 0.5, 1, 2, 4) of exp(-d / (2 s w))
  MMD = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(n(n-1))
        - 2 sum_{i,j} k(x_i,y_j)/(mn)

cdan: CDAN+E's loss as TLlib's ConditionalDomainAdversarialLoss computes it
(thuml/Transfer-Learning-Library, tllib/alignment/cdan.py: MultiLinearMap,
entropy weight 1 + exp(-H), normalised to sum to the batch, source label 1),
in torch autograd, with a given 3-layer domain classifier, and the gradient
that reaches the source features through the gradient reversal layer
(-lambda x the loss's gradient), lambda = 2/(1+exp(-10 p)) - 1, p = 0.3.

Writes OUT_DIR/adapt/cases.safetensors and expected.json.
"""
import math

import numpy as np
import torch

import st

MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)


def median_sq(x, y):
    z = np.concatenate([x, y])
    d = []
    for i in range(len(z)):
        for j in range(i + 1, len(z)):
            d.append(float(np.sum((z[i] - z[j]) ** 2)))
    d.sort()
    return d[(len(d) - 1) // 2]


def mk_mmd(x, y):
    w = median_sq(x, y)

    def k(a, b):
        d = float(np.sum((a - b) ** 2))
        return sum(math.exp(-d / (2 * s * w)) for s in MULTIPLIERS) / len(MULTIPLIERS)

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy, w


def cdan_case(rng):
    m, n, d, c, h = 6, 5, 4, 3, 8
    arr = {
        "cdan.f_s": rng.normal(size=(m, d)), "cdan.f_t": rng.normal(size=(n, d)) + 0.5,
        "cdan.g_s": rng.normal(size=(m, c)) * 2, "cdan.g_t": rng.normal(size=(n, c)),
        "cdan.domain.0.weight": rng.normal(size=(h, d * c)) * 0.3, "cdan.domain.0.bias": rng.normal(size=(h,)) * 0.1,
        "cdan.domain.2.weight": rng.normal(size=(h, h)) * 0.3, "cdan.domain.2.bias": rng.normal(size=(h,)) * 0.1,
        "cdan.domain.4.weight": rng.normal(size=(1, h)) * 0.3, "cdan.domain.4.bias": rng.normal(size=(1,)) * 0.1,
    }
    arr = {k: v.astype(np.float32) for k, v in arr.items()}
    t = {k: torch.from_numpy(v).double() for k, v in arr.items()}
    f_s = t["cdan.f_s"].clone().requires_grad_(True)
    f = torch.cat([f_s, t["cdan.f_t"]])
    g = torch.cat([t["cdan.g_s"], t["cdan.g_t"]])
    p = torch.softmax(g, 1).detach()
    hmap = torch.bmm(p.unsqueeze(2), f.unsqueeze(1)).view(f.size(0), -1)  # TLlib MultiLinearMap
    z = torch.relu(hmap @ t["cdan.domain.0.weight"].T + t["cdan.domain.0.bias"])
    z = torch.relu(z @ t["cdan.domain.2.weight"].T + t["cdan.domain.2.bias"])
    logit = (z @ t["cdan.domain.4.weight"].T + t["cdan.domain.4.bias"]).squeeze(1)
    ent = -(p * torch.log(p)).sum(1)
    wgt = 1.0 + torch.exp(-ent)
    wgt = wgt / wgt.sum() * (m + n)
    label = torch.cat([torch.ones(m), torch.zeros(n)]).double()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, label, weight=wgt)
    loss.backward()
    lam = 2.0 / (1.0 + math.exp(-10 * 0.3)) - 1.0
    correct = int(((logit > 0) == (label > 0.5)).sum())
    return arr, {"loss": float(loss), "lambda": lam, "correct": correct,
                 "grad_f_s": (-lam * f_s.grad).flatten().tolist()}


def make(out_dir):
    rng = np.random.default_rng(19)
    x = rng.normal(size=(40, 16)).astype(np.float32)
    y = (rng.normal(size=(30, 16)) * 1.3 + 0.4).astype(np.float32)
    mmd, w = mk_mmd(x.astype(np.float64), y.astype(np.float64))
    same, _ = mk_mmd(x[:20].astype(np.float64), x[20:].astype(np.float64))
    arrays = {"mmd.x": x, "mmd.y": y}
    carr, cexp = cdan_case(rng)
    arrays.update(carr)
    st.save_case(out_dir, "adapt", arrays,
                 {"mmd": mmd, "median": w, "mmd_same": same, "cdan": cexp}, "tests/reference/adapt_fixtures.py")


if __name__ == "__main__":
    import sys
    make(sys.argv[1])

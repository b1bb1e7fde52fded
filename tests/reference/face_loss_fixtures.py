"""PyTorch reference for the face fine-tuning losses (src/face/margin_loss.cpp),
written from the papers' formulas rather than from graft's code, for
tests/face/margin_loss_test.cpp.

  ArcFace (Deng et al. 2019, insightface's "combined margin" with m2 only):
    cos = normalize(x) @ normalize(W).T; theta = acos(cos[target]);
    target logit = s * cos(theta + m) where theta + m <= pi, else
    s * (cos - sin(pi - m) * m); other logits s * cos; mean cross-entropy.
  CosFace (Wang et al. 2018): target logit s * (cos - m).
  Batch-hard triplet (Hermans et al. 2017): per anchor with a positive and a
    negative in the batch, relu(max_p |a - p| - min_n |a - n| + margin) on
    L2-normalised embeddings, averaged over those anchors.

The inputs are float32; the reference runs in float64 on them (autograd for
the gradients). Writes OUT_DIR/face_loss/cases.safetensors (inputs, losses,
logits and gradients by "<case>.<name>") and cases.json ({case: {kind, scale,
margin}}).
"""
import json
import math
import os

import torch

import st


def arcface_logits(x, w, y, s, m):
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(w, dim=1).T
    out = cos.clone()
    for i in range(x.shape[0]):
        c = cos[i, y[i]]
        theta = torch.acos(c)
        if theta + m <= math.pi:
            out[i, y[i]] = torch.cos(theta + m)
        else:
            out[i, y[i]] = c - math.sin(math.pi - m) * m
    return s * out


def cosface_logits(x, w, y, s, m):
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(w, dim=1).T
    out = cos.clone()
    for i in range(x.shape[0]):
        out[i, y[i]] = cos[i, y[i]] - m
    return s * out


def triplet(x, y, margin):
    e = torch.nn.functional.normalize(x, dim=1)
    losses = []
    for a in range(e.shape[0]):
        pos = [torch.linalg.norm(e[a] - e[p]) for p in range(e.shape[0]) if p != a and y[p] == y[a]]
        neg = [torch.linalg.norm(e[a] - e[n]) for n in range(e.shape[0]) if y[n] != y[a]]
        if not pos or not neg:
            continue
        losses.append(torch.relu(torch.stack(pos).max() - torch.stack(neg).min() + margin))
    return torch.stack(losses).mean()


def make(out_dir):
    g = torch.Generator().manual_seed(20261130)
    d, c = 16, 4
    x = torch.randn(10, d, generator=g) * 1.5
    w = torch.randn(c, d, generator=g)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    # Sample 9 points away from its centre: theta + 0.5 > pi, the fallback.
    x[9] = -w[1] * 2.0 + 0.05 * torch.randn(d, generator=g)
    tensors = {"margin.x": x, "margin.w": w, "margin.y": y}
    cases = {}
    for name, kind, s, m in [("arc64", "arcface", 64.0, 0.5), ("arc30", "arcface", 30.0, 0.5),
                             ("arc30m2", "arcface", 30.0, 0.2),
                             ("cos64", "cosface", 64.0, 0.35), ("cos30", "cosface", 30.0, 0.35)]:
        xd = x.double().requires_grad_(True)
        wd = w.double().requires_grad_(True)
        f = arcface_logits if kind == "arcface" else cosface_logits
        logits = f(xd, wd, y, s, m)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        tensors[f"{name}.logits"] = logits.detach()
        tensors[f"{name}.loss"] = loss.detach().reshape(1)
        tensors[f"{name}.grad_x"] = xd.grad
        tensors[f"{name}.grad_w"] = wd.grad
        cases[name] = {"kind": kind, "scale": s, "margin": m}

    tx = torch.randn(12, d, generator=g)
    ty = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4])  # 4: no positive, left out
    tensors["triplet.x"] = tx
    tensors["triplet.y"] = ty
    for name, margin in [("tri02", 0.2), ("tri10", 1.0)]:
        xd = tx.double().requires_grad_(True)
        loss = triplet(xd, ty, margin)
        loss.backward()
        tensors[f"{name}.loss"] = loss.detach().reshape(1)
        tensors[f"{name}.grad_x"] = xd.grad
        cases[name] = {"kind": "triplet", "margin": margin}

    out = os.path.join(out_dir, "face_loss")
    os.makedirs(out, exist_ok=True)
    st.save(os.path.join(out, "cases.safetensors"), {k: v.contiguous() for k, v in tensors.items()})
    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

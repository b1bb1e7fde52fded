"""Reference Grad-CAM (Selvaraju et al. 2017) for graft's grad_cam
(src/models/grad_cam.cpp), written by hand with hooks as pytorch-grad-cam
computes it:
  A        the output of the last convolutional stage (torchvision ResNet:
           layer4; CIFAR ResNet: layer3; VGG, AlexNet: features, after its
           last max pool; GoogLeNet: inception5b), [N, K, h, w]
  y        the target class's logit (before the softmax)
  alpha_k  mean over h, w of dy/dA_k
  map      ReLU(sum_k alpha_k A_k), upsampled bilinearly (align_corners
           False) to the input's H x W, then (map - min) / (max - min) per
           image
on the weights and inputs of backbone_fixtures.py (NAME.weights.safetensors,
NAME.io.safetensors; that module runs first in make_fixtures.py).

Writes OUT_DIR/grad_cam/NAME.safetensors for each NAME in ROWS:
  input [2, 3, S, S] (the io fixture's), targets I64 [2] (image 0: its
  predicted class; image 1: its second most likely class), cam F32 [2, S, S]

Usage: /usr/bin/python3 grad_cam_fixtures.py OUT_DIR
"""
import os
import sys

import torch
import torch.nn.functional as F

ROWS = ["resnet18", "resnet20", "vgg11_bn", "alexnet", "googlenet"]


def target_layer(name, model):
    if name.startswith("vgg") or name == "alexnet":
        return model.features
    if name == "googlenet":
        return model.inception5b
    if name in ("resnet20", "resnet32", "resnet44", "resnet56"):
        return model.layer3
    return model.layer4


def grad_cam(model, layer, x, targets):
    store = {}

    def keep(module, inputs, output):
        store["a"] = output
        output.register_hook(lambda g: store.__setitem__("g", g))

    handle = layer.register_forward_hook(keep)
    logits = model(x)
    handle.remove()
    model.zero_grad()
    logits.gather(1, targets[:, None]).sum().backward()
    a, g = store["a"].detach(), store["g"].detach()
    alpha = g.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((alpha * a).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo = cam.amin(dim=(1, 2), keepdim=True)
    hi = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(hi > lo, (cam - lo) / (hi - lo), torch.zeros_like(cam)), logits.detach()


def make(out_dir):
    import st
    from backbone_fixtures import ROWS as BACKBONES

    os.makedirs(os.path.join(out_dir, "grad_cam"), exist_ok=True)
    for name in ROWS:
        build, _ = BACKBONES[name]
        model = build()
        weights, _ = st.load(os.path.join(out_dir, f"{name}.weights.safetensors"))
        model.load_state_dict(weights)
        model.eval()
        io, _ = st.load(os.path.join(out_dir, f"{name}.io.safetensors"))
        x = io["input"]
        with torch.no_grad():
            order = model(x).argsort(dim=1, descending=True)
        targets = torch.stack([order[0, 0], order[1, 1]]).to(torch.int64)
        cam, _ = grad_cam(model, target_layer(name, model), x, targets)
        st.save(os.path.join(out_dir, "grad_cam", f"{name}.safetensors"),
                {"input": x.contiguous(), "targets": targets, "cam": cam.contiguous()})
        print(f"  grad_cam {name}: targets {targets.tolist()}, map mean {cam.mean():.3f}, "
              f"share above 0.5 {(cam > 0.5).float().mean():.3f}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    make(sys.argv[1])

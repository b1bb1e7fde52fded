"""Parity fixtures for every row of graft's backbone registry
(src/models/registry.cpp): weights, a fixed input and the reference outputs.

For each backbone NAME it writes
  NAME.weights.safetensors  the full state_dict (parameters and buffers,
                            num_batches_tracked included)
  NAME.io.safetensors       input [2, 3, S, S], logits = model(input), and
                            features = the input of the classifier slot
  NAME.state_dict.pth       the same weights as torchvision publishes them:
                            torch.save(model.state_dict(), path) (zip format)
  NAME.legacy.th            CIFAR ResNets only: the same weights wrapped as
                            akamaster publishes them, {'state_dict':
                            {'module.' + name: tensor}, 'best_prec1': 90.0},
                            in the legacy (pre-1.6) format
The same files are written for each entry of VARIANTS: networks graft builds
that are not the default of a registry row.
The reference is torchvision 0.14 (Debian python3-torchvision), and
cifar_resnet_ref.py for the CIFAR ResNets.
"""
import os
import zlib

import torch
import torch.nn as nn
import torchvision.models as tvm

import st
from cifar_resnet_ref import CifarResNet

# name -> (builder, input size); the same rows as backbone_registry().
ROWS = {
    "resnet18": (lambda: tvm.resnet18(), 224),
    "resnet34": (lambda: tvm.resnet34(), 224),
    "resnet50": (lambda: tvm.resnet50(), 224),
    "alexnet": (lambda: tvm.alexnet(), 224),
    "vgg11": (lambda: tvm.vgg11(), 224),
    "vgg11_bn": (lambda: tvm.vgg11_bn(), 224),
    "vgg16": (lambda: tvm.vgg16(), 224),
    "vgg16_bn": (lambda: tvm.vgg16_bn(), 224),
    # What googlenet(weights=IMAGENET1K_V1) builds: the published weights
    # were ported from TF and expect transform_input=True.
    "googlenet": (lambda: tvm.googlenet(aux_logits=False, transform_input=True,
                                        init_weights=True), 224),
    "resnet20": (lambda: CifarResNet(20), 32),
    "resnet32": (lambda: CifarResNet(32), 32),
    "resnet44": (lambda: CifarResNet(44), 32),
    "resnet56": (lambda: CifarResNet(56), 32),
}

# name -> (builder, input size); not registry rows. GoogLeNet without the
# input transform is what graft built before the transform and what runs
# saved then (model.json without "transform_input") still load as.
VARIANTS = {
    "googlenet_no_transform": (lambda: tvm.googlenet(aux_logits=False, transform_input=False,
                                                     init_weights=True), 224),
}


def features_of(name, model, x):
    """The pooled features graft's features() must return."""
    if name in ("alexnet",) or name.startswith("vgg"):
        h = torch.flatten(model.avgpool(model.features(x)), 1)
        return model.classifier[:6](h)
    if isinstance(model, CifarResNet):
        return model.features(x)
    seen = []
    handle = model.fc.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    model(x)
    handle.remove()
    return seen[0]


def make_realistic(model, size, generator):
    """Random weights alone leave outputs tiny and BatchNorm's running
    statistics at 0/1, which would make a parity check weak. Layers without a
    BatchNorm after them get a scale-preserving init, and running statistics
    are set from one training-mode batch (like a short calibration)."""
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    if not has_bn:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.normal_(m.bias, 0.0, 0.05)
        return
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average: one batch gives its statistics
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.1)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=generator))


def make(out_dir):
    for name, (build, size) in {**ROWS, **VARIANTS}.items():
        seed = zlib.crc32(name.encode())
        torch.manual_seed(seed)
        model = build()
        generator = torch.Generator().manual_seed(seed + 1)
        make_realistic(model, size, generator)
        model.eval()
        x = torch.randn(2, 3, size, size, generator=generator)
        with torch.no_grad():
            logits = model(x)
            feats = features_of(name, model, x)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        st.save(os.path.join(out_dir, f"{name}.weights.safetensors"), state)
        torch.save(model.state_dict(), os.path.join(out_dir, f"{name}.state_dict.pth"))
        if isinstance(model, CifarResNet):
            wrapped = {"state_dict": {"module." + k: v for k, v in model.state_dict().items()},
                       "best_prec1": 90.0}
            torch.save(wrapped, os.path.join(out_dir, f"{name}.legacy.th"),
                       _use_new_zipfile_serialization=False)
        st.save(os.path.join(out_dir, f"{name}.io.safetensors"),
                {"input": x, "logits": logits.contiguous(), "features": feats.contiguous()},
                {"size": size})
        print(f"  {name}: logits max |{logits.abs().max():.3g}|, "
              f"features max |{feats.abs().max():.3g}|")

"""Reference for graft's test-time augmentation (eval / predict --tta, see
include/graft/data/transforms.h eval_views and include/graft/eval/tta.h),
made with torchvision's own transforms on PIL images:

  none       Resize(resize) + CenterCrop(size)
  flip       that centre crop and F.hflip of it
  five-crop  Resize(resize) [+ Pad(P) when resize <= size] + FiveCrop(size)
  ten-crop   Resize(resize) [+ Pad(P)] + TenCrop(size)

each view then ToTensor + Normalize, run through a CIFAR ResNet-20 (random
weights made realistic as backbone_fixtures does) in eval mode, and the
softmax probabilities of each image's views, logits divided by the run's
temperature, averaged: p = mean_v softmax(z_v / T).

Two input specs: "margin" (resize 28, crop 24: the ImageNet recipe's shape,
small) and "cifar" (resize 32, crop 32: no margin, so P = 32 / 8 = 4).
Images: PNGs written here (lossless, so graft's OpenCV decoding and PIL's
agree), sizes chosen for odd and even margins, one grey.

Writes OUT_DIR/tta/:
  images/classK/NAME.png     the inputs (ImageFolder order = sorted paths)
  weights.safetensors        the ResNet-20's state_dict (10 classes)
  cases.safetensors          SPEC.MODE.views.I  F32 [V, 3, S, S]  image I's views
                             SPEC.MODE.probs    F64 [N, 10]  averaged at T
                             SPEC.MODE.probs_t1 F64 [N, 10]  averaged at T = 1
                             labels             I64 [N]
  expected.json              {"temperature", "images": [relative paths],
                              "specs": {SPEC: {"size", "resize", "pad"}},
                              "SPEC.MODE": {"accuracy", "nll", "nll_uncalibrated"}}

Usage: /usr/bin/python3 tta_fixtures.py OUT_DIR (or through make_fixtures.py).
"""
import json
import os
import sys

import numpy as np
import torch

TEMPERATURE = 1.7
CIFAR_MEAN, CIFAR_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # graft's cifar_input()
SPECS = {"margin": {"size": 24, "resize": 28}, "cifar": {"size": 32, "resize": 32}}
MODES = ["none", "flip", "five-crop", "ten-crop"]
# (class, name, width, height, grey)
IMAGES = [
    (8, "a", 32, 30, False),   # margin: resized 29x28, margins 5 and 4 (round(2.5) = 2)
    (8, "b", 45, 37, False),   # margin: 34x28
    (1, "c", 32, 32, False),   # cifar: the identity resize
    (1, "d", 30, 52, True),    # grey, portrait
    (3, "e", 40, 36, False),
    (3, "f", 64, 64, False),
]


def pad_of(spec):
    return max(1, spec["size"] // 8) if spec["resize"] <= spec["size"] else 0


def views_of(img, spec, mode):
    import torchvision.transforms as T
    import torchvision.transforms.functional as F

    size, resize = spec["size"], spec["resize"]
    resized = T.Resize(resize)(img)
    if mode in ("none", "flip"):
        crop = T.CenterCrop(size)(resized)
        crops = [crop] if mode == "none" else [crop, F.hflip(crop)]
    else:
        if pad_of(spec):
            resized = T.Pad(pad_of(spec))(resized)
        crops = list((T.FiveCrop if mode == "five-crop" else T.TenCrop)(size)(resized))
    norm = T.Compose([T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)])
    return torch.stack([norm(c) for c in crops])


def make_images(root):
    from PIL import Image

    rng = np.random.default_rng(20261205)
    paths = []
    for label, name, w, h, grey in IMAGES:
        yy, xx = np.mgrid[0:h, 0:w]
        channels = 1 if grey else 3
        base = np.stack([(xx * (3 + c) + yy * (5 - c)) * 255.0 / (w + h) for c in range(channels)], -1)
        pixels = np.clip(base + rng.normal(0, 40, size=base.shape), 0, 255).astype(np.uint8)
        d = os.path.join(root, f"class{label}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, name + ".png")
        Image.fromarray(pixels[..., 0] if grey else pixels, "L" if grey else "RGB").save(path)
        paths.append((os.path.relpath(path, root), label))
    return sorted(paths)


def make(out_dir):
    try:
        from PIL import Image
        import torchvision.transforms  # noqa: F401
    except ImportError as e:
        print(f"tta_fixtures: {e}, skipped")
        return
    import st
    from backbone_fixtures import make_realistic
    from cifar_resnet_ref import CifarResNet

    d = os.path.join(out_dir, "tta")
    images = make_images(os.path.join(d, "images"))
    torch.manual_seed(7)
    model = CifarResNet(20)
    make_realistic(model, 32, torch.Generator().manual_seed(8))
    model.eval()
    st.save(os.path.join(d, "weights.safetensors"),
            {k: v.detach().contiguous() for k, v in model.state_dict().items()})

    labels = torch.tensor([label for _, label in images], dtype=torch.int64)
    tensors = {"labels": labels}
    expected = {"temperature": TEMPERATURE, "images": [p for p, _ in images],
                "specs": {k: {**v, "pad": pad_of(v)} for k, v in SPECS.items()}}
    for spec_name, spec in SPECS.items():
        for mode in MODES:
            key = f"{spec_name}.{mode}"
            probs, probs_t1 = [], []
            for i, (rel, _) in enumerate(images):
                # ImageFolder's loader: RGB whatever the file.
                img = Image.open(os.path.join(d, "images", rel)).convert("RGB")
                views = views_of(img, spec, mode)
                tensors[f"{key}.views.{i}"] = views
                with torch.no_grad():
                    z = model(views).double()
                probs.append(torch.softmax(z / TEMPERATURE, 1).mean(0))
                probs_t1.append(torch.softmax(z, 1).mean(0))
            p, p1 = torch.stack(probs), torch.stack(probs_t1)
            tensors[f"{key}.probs"], tensors[f"{key}.probs_t1"] = p, p1
            rows = torch.arange(len(images))
            expected[key] = {
                "accuracy": float((p.argmax(1) == labels).double().mean()),
                "nll": float(-p[rows, labels].log().mean()),
                "nll_uncalibrated": float(-p1[rows, labels].log().mean()),
            }
    st.save_case(out_dir, "tta", tensors, expected, "tests/reference/tta_fixtures.py")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    make(sys.argv[1])

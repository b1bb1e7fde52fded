"""Reference outputs of torchvision's evaluation transform on real images, for
tests/data/transforms_test.cpp.

Each case decodes one image with PIL (as torchvision's ImageFolder does) and
applies Resize(resize) + CenterCrop(size) + ToTensor + Normalize, or a fixed
resized_crop. Writes transforms.safetensors: per case `input.N` (the
transformed float32 [C, H, W] tensor) and, for images small enough,
`decoded.N` (PIL's decoded uint8 [H, W, C], to tell decoder differences from
transform differences); the metadata entry `cases` describes each case as
JSON. Images come from ../shared/data; without it nothing is written and the
C++ test skips.
"""
import json
import os

import numpy as np
import torch

import st

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

# (image, resize, size, channels, mean, std, crop box top/left/height/width or None)
CASES = [
    ("hymenoptera/val/ants/10308379_1b6c72e180.jpg", 256, 224, 3, *IMAGENET, None),
    ("hymenoptera/val/bees/151603988_2c6f7d14c7.jpg", 256, 224, 3, *IMAGENET, None),
    ("hymenoptera/val/ants/ants-devouring-remains-of-large-dead-insect-on-red-tile-in-"
     "Stellenbosch-South-Africa-closeup-1-DHD.jpg", 256, 224, 3, *IMAGENET, None),
    ("hymenoptera/train/ants/formica.jpeg", 256, 224, 3, *IMAGENET, None),
    ("cifar10_test_jpg/cat/0000.jpg", 256, 224, 3, *IMAGENET, None),
    ("cifar10_test_jpg/ship/0001.jpg", 36, 32, 3,
     [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616], None),
    ("att_faces/s1/1.pgm", 256, 224, 3, *IMAGENET, None),
    # A grey network input from a colour image: PIL's convert("L") first.
    ("hymenoptera/val/bees/abeja.jpg", 64, 56, 1, [0.5], [0.25], None),
    # A crop larger than the resized image: torchvision pads with zeros.
    ("att_faces/s2/3.pgm", 40, 48, 3, *IMAGENET, None),
    # RandomResizedCrop's resampling with a fixed box.
    ("hymenoptera/val/ants/10308379_1b6c72e180.jpg", 0, 224, 3, *IMAGENET, (30, 50, 200, 300)),
    ("hymenoptera/val/bees/151603988_2c6f7d14c7.jpg", 0, 96, 3, *IMAGENET, (101, 7, 350, 260)),
]

MAX_DECODED_PIXELS = 600 * 600


def make(out_dir):
    if not os.path.isdir(SHARED):
        print("transform_fixtures: no shared data, skipped")
        return
    try:
        from PIL import Image
        import torchvision.transforms as T
        import torchvision.transforms.functional as F
    except ImportError as e:
        print(f"transform_fixtures: {e}, skipped")
        return

    tensors, cases = {}, []
    for n, (rel, resize, size, channels, mean, std, box) in enumerate(CASES):
        img = Image.open(os.path.join(SHARED, rel))
        img = img.convert("RGB")  # torchvision's ImageFolder loader
        if img.width * img.height <= MAX_DECODED_PIXELS:
            tensors[f"decoded.{n}"] = torch.from_numpy(np.asarray(img).copy())
        if channels == 1:
            img = img.convert("L")
        if box is None:
            img = T.CenterCrop(size)(T.Resize(resize)(img))
        else:
            img = F.resized_crop(img, *box, [size, size], T.InterpolationMode.BILINEAR)
        x = T.Normalize(mean, std)(T.ToTensor()(img))
        tensors[f"input.{n}"] = x.contiguous()
        cases.append({"path": rel, "resize": resize, "size": size, "channels": channels,
                      "mean": mean, "std": std, "box": list(box) if box else None})
    st.save(os.path.join(out_dir, "transforms.safetensors"), tensors,
            {"cases": json.dumps(cases)})

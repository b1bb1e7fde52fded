#!/usr/bin/env python3
"""torchvision's side of bench/tta.sh for akamaster's CIFAR-10 ResNet-20:
accuracy and NLL with each test-time augmentation, computed as a torchvision
user would: ImageFolder (PIL), Resize(32) [+ Pad(4)] + FiveCrop/TenCrop(32)
or CenterCrop(32) and its hflip, ToTensor + Normalize, softmax averaged over
the views.

Usage: tta_torch.py IMAGE_FOLDER WEIGHTS.th   (prints one JSON line per mode)
"""
import json
import os
import sys

import torch
import torchvision.datasets as datasets
import torchvision.transforms as T
import torchvision.transforms.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from akamaster_accuracy import load_model  # noqa: E402

NORM = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])


def views(mode):
    def f(img):
        r = T.Resize(32)(img)
        if mode == "none":
            crops = [T.CenterCrop(32)(r)]
        elif mode == "flip":
            c = T.CenterCrop(32)(r)
            crops = [c, F.hflip(c)]
        else:
            crops = list((T.FiveCrop if mode == "five-crop" else T.TenCrop)(32)(T.Pad(4)(r)))
        return torch.stack([NORM(c) for c in crops])
    return f


def main():
    folder, weights = sys.argv[1], sys.argv[2]
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    model = load_model(weights)
    for mode in ("none", "flip", "five-crop", "ten-crop"):
        data = datasets.ImageFolder(folder, transform=views(mode))
        loader = torch.utils.data.DataLoader(data, batch_size=100, shuffle=False, num_workers=0)
        correct, nll, count = 0, 0.0, 0
        with torch.no_grad():
            for x, y in loader:
                n, v = x.shape[:2]
                p = torch.softmax(model(x.flatten(0, 1)).double(), 1).view(n, v, -1).mean(1)
                correct += (p.argmax(1) == y).sum().item()
                nll += -p[torch.arange(n), y].log().sum().item()
                count += n
        print(json.dumps({"tta": mode, "count": count, "accuracy": correct / count, "nll": nll / count}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch's top-1 accuracy of akamaster's CIFAR-10 ResNet-20 on the CIFAR-10
test JPEGs: the reference for graft's `eval` of the same file.

Usage: akamaster_accuracy.py [DATA_ROOT]   (default: ../shared/data next to
the checkout). Prints {"accuracy": x, "count": n}.

The weights are the original legacy-format resnet20-12fca82f.th
({'state_dict': {'module.' + name: tensor}, 'best_prec1': ...}); the images
are read in ImageFolder order, decoded by PIL, and normalised with the
ImageNet mean and std that akamaster's training used.
"""
import json
import os
import sys

import torch
import torchvision.datasets as datasets
import torchvision.transforms as transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cifar_resnet_ref import CifarResNet  # noqa: E402

WEIGHTS = "pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th"
IMAGES = "cifar10_test_jpg"


def default_data_root():
    """../shared/data next to the checkout (tests/reference is two below it)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data"))


def have_data(root):
    return os.path.exists(os.path.join(root, WEIGHTS)) and os.path.isdir(os.path.join(root, IMAGES))


def load_model(path):
    checkpoint = torch.load(path, map_location="cpu")
    state = checkpoint.get("state_dict", checkpoint)
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    model = CifarResNet(20)
    model.load_state_dict(state, strict=True)
    return model.eval()


def accuracy(root):
    """(top-1 accuracy, image count) of the original .th file on the test JPEGs."""
    model = load_model(os.path.join(root, WEIGHTS))
    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    ])
    dataset = datasets.ImageFolder(os.path.join(root, IMAGES), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=500, shuffle=False, num_workers=0)
    correct = 0
    count = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            count += y.numel()
    return correct / count, count


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else default_data_root()
    if not have_data(root):
        sys.exit(f"akamaster_accuracy.py: {root} lacks {WEIGHTS} or {IMAGES}")
    acc, count = accuracy(root)
    print(json.dumps({"accuracy": acc, "count": count}))


if __name__ == "__main__":
    main()

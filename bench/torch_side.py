#!/usr/bin/env python3
"""The PyTorch side of bench/run.sh: the same recipes with torchvision, run as
its tutorials write them. Prints one JSON line like graft_bench."""
import argparse
import json
import os
import time

import torch
import torchvision
from torchvision import transforms


def loader(args):
    size, resize = (32, 32) if args.backbone.startswith("resnet") and args.backbone[6:] in ("20", "32", "44", "56") else (224, 256)
    norm = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    if args.augment == "light":
        tf = transforms.Compose([transforms.RandomResizedCrop(size, scale=(0.25, 1.0)),
                                 transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm])
    else:
        tf = transforms.Compose([transforms.Resize(resize), transforms.CenterCrop(size),
                                 transforms.ToTensor(), norm])
    ds = torchvision.datasets.ImageFolder(args.data, transform=tf,
                                          is_valid_file=lambda p: not p.endswith(".gif"))
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                     num_workers=args.workers)
    images, t0 = 0, time.time()
    for _ in range(args.epochs):
        for x, _ in dl:
            images += x.shape[0]
    s = time.time() - t0
    return {"mode": "loader", "images": images, "seconds": s, "images_per_second": images / s}


def train_step(args):
    model = getattr(torchvision.models, args.backbone)(num_classes=10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch_size, 3, 224, 224)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    t0 = time.time()
    for _ in range(args.steps):
        step()
    s = time.time() - t0
    return {"mode": "train_step", "images": args.batch_size * args.steps, "seconds": s,
            "images_per_second": args.batch_size * args.steps / s}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--data")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--augment", default="light")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = loader(args) if args.mode == "loader" else train_step(args)
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

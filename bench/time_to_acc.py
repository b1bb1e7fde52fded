#!/usr/bin/env python3
"""The PyTorch side of bench/time_to_acc.sh: the recipes of graft's README demo
and of the hymenoptera linear probe, written as PyTorch's tutorials write them
(torchvision datasets and transforms, a DataLoader, fp32, the frozen backbone
re-run on every batch of every epoch for the linear probe, as in "ConvNet as
fixed feature extractor"), with graft's hyper-parameters: SGD (momentum 0.9,
weight decay 1e-4 on weights, not on norms and biases), a cosine schedule over
the steps, the head's rate and the backbone's multiplier, frozen norms in
eval mode. Prints one JSON line: test accuracy and the script's wall time
from its start (imports included), as a user would time `python3 script.py`.

  fmnist: Fashion-MNIST, the demo's 5 target classes, --per-class labelled
    training images drawn with --seed, ResNet-20 from graft's source run
    (model.safetensors, read with tests/reference/st.py), strategy linear,
    partial (the last stage) or full; test on every t10k image of those classes.
  hymenoptera: the linear probe on hymenoptera/train, tested on
    hymenoptera/val, from akamaster's CIFAR-10 ResNet-20 (its .th file).
"""
import time

T0 = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision import transforms  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
from cifar_resnet_ref import CifarResNet  # noqa: E402
import st  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # graft's input spec for every backbone


def transform(augment):
    # Grey replicated to 3 channels, as graft's to_channels; Pillow's resize.
    steps = [transforms.Lambda(lambda im: im.convert("RGB")), transforms.Resize(32)]
    if augment:
        steps += [transforms.RandomResizedCrop(32, scale=(0.25, 1.0)), transforms.RandomHorizontalFlip()]
    else:
        steps += [transforms.CenterCrop(32)]
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def param_groups(model, head, lr, backbone_mult):
    """graft's groups: the head at lr, the rest at lr x mult; no weight decay on
    norms and biases (ndim < 2)."""
    groups = []
    for is_head in (True, False):
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            if not p.requires_grad or name.startswith(head + ".") != is_head:
                continue
            (decay if p.ndim >= 2 else no_decay).append(p)
        rate = lr if is_head else lr * backbone_mult
        groups += [{"params": decay, "lr": rate, "weight_decay": 1e-4},
                   {"params": no_decay, "lr": rate, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def freeze(model, trainable_prefixes):
    for name, p in model.named_parameters():
        p.requires_grad = any(name.startswith(t) for t in trainable_prefixes)


def set_modes(model):
    """Training mode, except norm layers whose parameters are all frozen."""
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()


def train_and_test(model, train_dl, test_dl, lr, backbone_mult, epochs):
    opt = torch.optim.SGD(param_groups(model, "linear", lr, backbone_mult), lr=lr, momentum=0.9)
    total = epochs * len(train_dl)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    for _ in range(epochs):
        set_modes(model)
        for x, y in train_dl:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            sched.step()
    model.eval()
    right = n = 0
    with torch.no_grad():
        for x, y in test_dl:
            right += model(x).argmax(1).eq(y).sum().item()
            n += len(y)
    return right / n


class Remapped(torch.utils.data.Dataset):
    """The chosen indices of a dataset, labels renumbered 0..C-1."""

    def __init__(self, ds, indices, classes):
        self.ds, self.indices, self.map = ds, indices, {c: i for i, c in enumerate(classes)}

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        x, y = self.ds[self.indices[i]]
        return x, self.map[int(y)]


def fmnist(a):
    classes = [int(c) for c in a.classes.split(",")]
    augment = a.strategy != "linear"
    train = torchvision.datasets.FashionMNIST(a.data, train=True, transform=transform(augment))
    test = torchvision.datasets.FashionMNIST(a.data, train=False, transform=transform(False))
    g = torch.Generator().manual_seed(a.seed)
    chosen = []
    for c in classes:
        idx = (train.targets == c).nonzero().flatten()
        chosen += idx[torch.randperm(len(idx), generator=g)[:a.per_class]].tolist()
    test_idx = [i for i, t in enumerate(test.targets.tolist()) if t in classes]
    train_dl = torch.utils.data.DataLoader(Remapped(train, chosen, classes), batch_size=a.batch_size,
                                           shuffle=True, num_workers=a.workers)
    test_dl = torch.utils.data.DataLoader(Remapped(test, test_idx, classes), batch_size=256,
                                          num_workers=a.workers)
    model = CifarResNet(20, num_classes=len(classes))
    state, _ = st.load(a.weights)
    state = {k: v for k, v in state.items() if not k.startswith("linear.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert set(missing) == {"linear.weight", "linear.bias"} and not unexpected, (missing, unexpected)
    trainable = {"linear": ["linear."], "partial": ["linear.", "layer3."], "full": [""]}[a.strategy]
    freeze(model, trainable)
    acc = train_and_test(model, train_dl, test_dl, a.lr, a.backbone_lr_mult, a.epochs)
    return {"accuracy": acc, "train_images": len(chosen), "test_images": len(test_idx)}


def hymenoptera(a):
    tf = transforms.Compose([transforms.Resize(32), transforms.CenterCrop(32), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])
    train = torchvision.datasets.ImageFolder(os.path.join(a.data, "train"), transform=tf)
    val = torchvision.datasets.ImageFolder(os.path.join(a.data, "val"), transform=tf)
    train_dl = torch.utils.data.DataLoader(train, batch_size=a.batch_size, shuffle=True, num_workers=a.workers)
    test_dl = torch.utils.data.DataLoader(val, batch_size=256, num_workers=a.workers)
    model = CifarResNet(20, num_classes=10)
    ckpt = torch.load(a.weights, map_location="cpu")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in ckpt["state_dict"].items()}
    model.load_state_dict(state)
    model.linear = torch.nn.Linear(64, len(train.classes))
    freeze(model, ["linear."])
    acc = train_and_test(model, train_dl, test_dl, a.lr, 1.0, a.epochs)
    return {"accuracy": acc, "train_images": len(train), "test_images": len(val)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["fmnist", "hymenoptera"])
    p.add_argument("--data", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("--classes", default="1,3,4,6,9")
    p.add_argument("--per-class", type=int, default=50)
    p.add_argument("--strategy", default="linear", choices=["linear", "partial", "full"])
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--backbone-lr-mult", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    out = fmnist(a) if a.mode == "fmnist" else hymenoptera(a)
    out["seconds"] = time.time() - T0
    print(json.dumps(out))


if __name__ == "__main__":
    main()

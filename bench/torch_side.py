#!/usr/bin/env python3
"""The PyTorch side of bench/run.sh: the same recipes with torchvision, run as
its tutorials write them (--layout default), or channels-last (--layout cl).
The allocator fix (glibc's mmap threshold raised) is applied by bench/run.sh
through the environment (MALLOC_MMAP_THRESHOLD_ ...), as a user would.
Prints one JSON line like graft_bench ("rate": items per second)."""
import argparse
import json
import os
import time

import math

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
    return rate("loader", images, s)


def rate(mode, items, seconds):
    return {"mode": mode, "images": items, "seconds": seconds, "rate": items / seconds}


def autocast(args):
    """bf16: CPU autocast to bfloat16, as graft's --precision bf16."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")


def fx_int8(model, x):
    """FX post-training static int8 on the onednn engine with graft's QConfig
    (min-max activations, per-channel symmetric weights), calibrated on the
    input itself, as graft_bench --precision int8 is."""
    from torch.ao.quantization import QConfig, QConfigMapping, MinMaxObserver, PerChannelMinMaxObserver
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    torch.backends.quantized.engine = "onednn"
    qc = QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=False),
                 weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric))
    prepared = prepare_fx(model, QConfigMapping().set_global(qc), example_inputs=(x[:1],))
    with torch.no_grad():
        prepared(x)
    return convert_fx(prepared)


def layout(args, model, x):
    if args.layout == "cl":
        return model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    return model, x


def infer(args):
    model = getattr(torchvision.models, args.backbone)().eval()
    if args.backbone == "googlenet":
        model = torchvision.models.googlenet(aux_logits=False, transform_input=True,
                                             init_weights=False).eval()
    x = torch.randn(args.batch_size, 3, 224, 224)
    if args.precision == "int8":
        model = fx_int8(model, x)
    model, x = layout(args, model, x)
    with torch.inference_mode(), autocast(args):
        model(x)
        t0 = time.time()
        for _ in range(args.steps):
            model(x)
        s = time.time() - t0
    return rate("infer", args.batch_size * args.steps, s)


def train_step(args):
    model = getattr(torchvision.models, args.backbone)(num_classes=10)
    if args.strategy != "full":  # partial:1: the last stage and the head train
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("layer4") or name.startswith("fc")
    model.train()
    if args.strategy != "full":  # frozen BatchNorm keeps its statistics
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d) and not name.startswith("layer4"):
                m.eval()
    x = torch.randn(args.batch_size, 3, 224, 224)
    model, x = layout(args, model, x)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        opt.zero_grad()
        with autocast(args):
            logits = model(x)
        torch.nn.functional.cross_entropy(logits.float(), y).backward()
        opt.step()

    step()
    t0 = time.time()
    for _ in range(args.steps):
        step()
    return rate("train_step", args.batch_size * args.steps, time.time() - t0)


class BertLayer(torch.nn.Module):
    """One encoder layer as Hugging Face's BertLayer computes it."""

    def __init__(self, h, heads, inter, p):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (torch.nn.Linear(h, h) for _ in range(3))
        self.attn_out, self.attn_norm = torch.nn.Linear(h, h), torch.nn.LayerNorm(h, eps=1e-12)
        self.inter, self.out = torch.nn.Linear(h, inter), torch.nn.Linear(inter, h)
        self.out_norm = torch.nn.LayerNorm(h, eps=1e-12)
        self.drop = torch.nn.Dropout(p)

    def forward(self, x, add):
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, h // self.heads).permute(0, 2, 1, 3)
        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        s = q @ k.transpose(-1, -2) / math.sqrt(h // self.heads) + add
        ctx = (self.drop(torch.softmax(s, -1)) @ v).permute(0, 2, 1, 3).reshape(b, t, h)
        a = self.attn_norm(self.drop(self.attn_out(ctx)) + x)
        return self.out_norm(self.drop(self.out(torch.nn.functional.gelu(self.inter(a)))) + a)


class BertClassifier(torch.nn.Module):
    """BertForSequenceClassification: embeddings, encoder, pooler, classifier."""

    def __init__(self, layers, h, vocab=30522, labels=2, p=0.1):
        super().__init__()
        self.word, self.pos, self.token_type = (torch.nn.Embedding(vocab, h), torch.nn.Embedding(512, h),
                                          torch.nn.Embedding(2, h))
        self.norm, self.drop = torch.nn.LayerNorm(h, eps=1e-12), torch.nn.Dropout(p)
        self.layers = torch.nn.ModuleList(BertLayer(h, h // 64, 4 * h, p) for _ in range(layers))
        self.pooler, self.classifier = torch.nn.Linear(h, h), torch.nn.Linear(h, labels)

    def forward(self, ids, types, mask):
        pos = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.drop(self.norm(self.word(ids) + self.pos(pos) + self.token_type(types)))
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, add)
        return self.classifier(self.drop(torch.tanh(self.pooler(x[:, 0]))))


BERT_SIZES = {"bert-tiny": (2, 128), "bert-mini": (4, 256), "bert-small": (4, 512),
              "bert-medium": (8, 512), "bert-base": (12, 768)}


def bert(args):
    torch.manual_seed(0)
    model = BertClassifier(*BERT_SIZES[args.size])
    ids = torch.randint(1000, 30522, (args.batch_size, args.seq))
    types = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    y = torch.randint(0, 2, (args.batch_size,))
    if args.mode == "bert_train":
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

        def step():
            opt.zero_grad()
            with autocast(args):
                logits = model(ids, types, mask)
            torch.nn.functional.cross_entropy(logits.float(), y).backward()
            opt.step()
    else:
        model.eval()
        if args.precision == "int8":
            # Dynamic int8 as users apply it to a BERT: every nn.Linear, int8
            # weights per output channel, on the onednn engine (graft's).
            from torch.ao.quantization import quantize_dynamic, per_channel_dynamic_qconfig
            torch.backends.quantized.engine = "onednn"
            model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig})

        def step():
            with torch.inference_mode(), autocast(args):
                model(ids, types, mask)
    step()
    t0 = time.time()
    for _ in range(args.steps):
        step()
    return rate(args.mode, args.batch_size * args.steps, time.time() - t0)


def linear_probe(args):
    """The naive linear probe: the frozen backbone re-runs on every image in
    every epoch (torchvision's transfer-learning tutorial, "ConvNet as fixed
    feature extractor"). Rate: training images per second over the whole run."""
    norm = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                             transforms.ToTensor(), norm])
    ds = torchvision.datasets.ImageFolder(args.data, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                     num_workers=args.workers)
    model = getattr(torchvision.models, args.backbone)()
    for p in model.parameters():
        p.requires_grad = False
    model.fc = torch.nn.Linear(model.fc.in_features, len(ds.classes))
    model.eval()
    if args.layout == "cl":
        model = model.to(memory_format=torch.channels_last)
    # The tutorial's layout: DATA/train and DATA/val; its loop validates
    # after every training epoch, as graft train does.
    val_dir = args.val or os.path.join(os.path.dirname(os.path.normpath(args.data)), "val")
    val = None
    if os.path.isdir(val_dir):
        val = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(val_dir, transform=tf),
                                          batch_size=args.batch_size, num_workers=args.workers)
    opt = torch.optim.SGD(model.fc.parameters(), lr=0.01, momentum=0.9)
    t0 = time.time()
    for _ in range(args.epochs):
        for x, y in dl:
            if args.layout == "cl":
                x = x.to(memory_format=torch.channels_last)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        if val is not None:
            with torch.no_grad():
                for x, y in val:
                    if args.layout == "cl":
                        x = x.to(memory_format=torch.channels_last)
                    model(x).argmax(1).eq(y).sum()
    return rate("linear_probe", len(ds) * args.epochs, time.time() - t0)


def profile(args):
    """Where the time goes (self CPU time per ATen op, top 6), for the tuned
    PyTorch recipes: ResNet-18 inference channels-last and a BERT-mini
    fine-tune step. graft calls the same ATen/oneDNN kernels."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    def top(fn):
        fn()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        best = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
        return [[e.key, round(100 * e.self_cpu_time_total / total, 1)] for e in best]

    model = torchvision.models.resnet18().eval().to(memory_format=torch.channels_last)
    x = torch.randn(32, 3, 224, 224).to(memory_format=torch.channels_last)

    def infer_once():
        with torch.inference_mode():
            model(x)

    bert_model = BertClassifier(*BERT_SIZES["bert-mini"]).train()
    ids = torch.randint(1000, 30522, (32, 128))
    y = torch.randint(0, 2, (32,))
    opt = torch.optim.AdamW(bert_model.parameters(), lr=1e-4, weight_decay=0.01)

    def bert_step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            bert_model(ids, torch.zeros_like(ids), torch.ones_like(ids)), y).backward()
        opt.step()

    return {"mode": "profile", "rate": 0, "resnet18_infer": top(infer_once),
            "bert_mini_train": top(bert_step)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--data")
    p.add_argument("--val", help="linear_probe: validation images (default: DATA/../val)")
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--augment", default="light")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--layout", default="default", choices=["default", "cl"])
    p.add_argument("--strategy", default="full")
    p.add_argument("--size", default="bert-mini")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "int8"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    modes = {"loader": loader, "infer": infer, "train_step": train_step, "bert_train": bert,
             "bert_infer": bert, "linear_probe": linear_probe, "profile": profile}
    out = modes[args.mode](args)
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))


if __name__ == "__main__":
    main()

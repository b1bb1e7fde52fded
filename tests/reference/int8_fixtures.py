"""PyTorch FX post-training static int8 of akamaster's CIFAR-10 ResNet-20, the
reference for graft's --precision int8 (src/models/int8.cpp).

The QConfig is the one graft implements: activations MinMaxObserver (quint8,
per tensor affine, reduce_range=False), weights PerChannelMinMaxObserver
(qint8, per_channel_symmetric), on the onednn engine. Writes:
  int8_qparams.safetensors / .json   observers' qparams on random tensors
  int8_resnet20.safetensors          calib [64,3,32,32] and test [100,3,32,32]
                                     inputs (PIL-decoded CIFAR JPEGs,
                                     normalised), FX int8 logits of test and
                                     fp32 logits
  int8_resnet20.json                 FX's scale and zero point per
                                     quantisation point (graft's names), the
                                     64 calibration JPEGs (relative paths),
                                     and FX's top-1 on all 10,000 JPEGs when
                                     calibrated on exactly those 64 files
  int8_resnet18.*, int8_alexnet.*, int8_vgg11.*, int8_googlenet.*
                                     FX int8 of torchvision networks with
                                     backbone_fixtures' weights on random inputs
Writes no ResNet-20 files when ../shared/data is absent (the tests skip).
"""
import json
import os

import torch
import torch.nn.functional as F
from PIL import Image
import torchvision.transforms as T

import akamaster_accuracy
from cifar_resnet_ref import CifarResNet
from st import save as st_save


class TraceableCifarResNet(CifarResNet):
    """features() without out.size(), which FX cannot trace; the same values
    (the last map is 8x8, so a global average pool)."""

    def features(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)


def qconfig():
    from torch.ao.quantization import QConfig, MinMaxObserver, PerChannelMinMaxObserver
    return QConfig(activation=MinMaxObserver.with_args(dtype=torch.quint8, reduce_range=False),
                   weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                             qscheme=torch.per_channel_symmetric))


def observers(out_dir):
    from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
    g = torch.Generator().manual_seed(7)
    tensors, meta = {}, {"tensors": []}
    cases = [torch.randn(1000, generator=g) * 3 + 1,        # both signs
             torch.rand(500, generator=g) * 5 + 0.5,         # all positive: range from 0
             -torch.rand(300, generator=g) * 2 - 1,          # all negative
             torch.zeros(10)]                                 # degenerate: eps
    for i, t in enumerate(cases):
        o = MinMaxObserver(dtype=torch.quint8, reduce_range=False)
        o(t)
        s, z = o.calculate_qparams()
        tensors[f"act{i}"] = t.float().contiguous()
        meta["tensors"].append({"name": f"act{i}", "scale": float(s), "zero_point": int(z),
                                "min": float(t.min()), "max": float(t.max())})
    w = torch.randn(16, 8, 3, 3, generator=g) * torch.linspace(0.01, 2, 16).reshape(16, 1, 1, 1)
    w[3] = 0
    o = PerChannelMinMaxObserver(dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
    o(w)
    s, _ = o.calculate_qparams()
    tensors["weight"] = w.contiguous()
    tensors["weight_scales"] = s.float().contiguous()
    st_save(os.path.join(out_dir, "int8_qparams.safetensors"), tensors)
    with open(os.path.join(out_dir, "int8_qparams.json"), "w") as f:
        json.dump(meta, f, indent=1)


def graft_points(q):
    """FX's quantisation parameters under graft's point names (int8.h)."""
    pts = {"input": (q.conv1_input_scale_0, q.conv1_input_zero_point_0), "conv1": (q.conv1.scale, q.conv1.zero_point),
           "linear": (q.linear.scale, q.linear.zero_point)}
    for stage in (1, 2, 3):
        for b in range(3):
            name = f"layer{stage}.{b}"
            block = getattr(getattr(q, f"layer{stage}"), str(b))
            for k in (1, 2):
                conv = getattr(block, f"conv{k}")
                pts[f"{name}.conv{k}"] = (conv.scale, conv.zero_point)
            prefix = f"layer{stage}_{b}"
            if hasattr(q, f"{prefix}_scale_1"):  # option-A shortcut quantised first
                pts[f"{name}.shortcut"] = (getattr(q, f"{prefix}_scale_0"), getattr(q, f"{prefix}_zero_point_0"))
                pts[name] = (getattr(q, f"{prefix}_scale_1"), getattr(q, f"{prefix}_zero_point_1"))
            else:
                pts[name] = (getattr(q, f"{prefix}_scale_0"), getattr(q, f"{prefix}_zero_point_0"))
    return {k: {"scale": float(s), "zero_point": int(z)} for k, (s, z) in pts.items()}


def quantize(model, calib):
    from torch.ao.quantization import QConfigMapping
    from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
    prepared = prepare_fx(model, QConfigMapping().set_global(qconfig()), example_inputs=(calib[:1],))
    with torch.no_grad():
        prepared(calib)
    return convert_fx(prepared)


def resnet20(out_dir):
    root = akamaster_accuracy.default_data_root()
    files = [os.path.join(out_dir, n) for n in ("int8_resnet20.safetensors", "int8_resnet20.json")]
    if not akamaster_accuracy.have_data(root):
        for f in files:
            if os.path.exists(f):
                os.remove(f)
        return
    torch.backends.quantized.engine = "onednn"
    fp32 = akamaster_accuracy.load_model(os.path.join(root, akamaster_accuracy.WEIGHTS))
    model = TraceableCifarResNet(20)
    model.load_state_dict(fp32.state_dict())
    model.eval()
    transform = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    images = os.path.join(root, akamaster_accuracy.IMAGES)
    classes = sorted(os.listdir(images))
    # ImageFolder's order: classes sorted, files sorted within each.
    paths = [f"{c}/{f}" for c in classes for f in sorted(os.listdir(os.path.join(images, c)))]
    labels = [classes.index(p.split("/")[0]) for p in paths]

    def load(rel):
        return transform(Image.open(os.path.join(images, rel)).convert("RGB"))

    per_class = {c: [p for p in paths if p.startswith(c + "/")] for c in classes}
    calib_paths = [p for c in classes for p in per_class[c][:7]][:64]
    test_paths = [p for c in classes for p in per_class[c][100:110]]
    calib = torch.stack([load(p) for p in calib_paths])
    test = torch.stack([load(p) for p in test_paths])
    q = quantize(model, calib)
    with torch.no_grad():
        logits_int8 = q(test)
        logits_fp32 = model(test)
        preds = []
        for i in range(0, len(paths), 500):
            batch = torch.stack([load(p) for p in paths[i:i + 500]])
            preds.append(q(batch).argmax(1))
        preds = torch.cat(preds)
    accuracy = float((preds == torch.tensor(labels)).float().mean())
    st_save(files[0], {"calib": calib.contiguous(), "test": test.contiguous(), "logits_int8": logits_int8.contiguous(),
               "logits_fp32": logits_fp32.contiguous(), "predictions": preds.to(torch.int64).contiguous()})
    with open(files[1], "w") as f:
        json.dump({"points": graft_points(q), "calibration_files": calib_paths, "paths": paths,
                   "int8_accuracy": accuracy}, f)
    print(f"  int8 resnet20 (FX, onednn, min-max): accuracy {accuracy:.4f} on {len(paths)} images")


def fx_of_torchvision(out_dir, name, model, seed, side):
    """FX int8 of a torchvision `model` with backbone_fixtures' weights
    ({name}.weights.safetensors, made before this module), calibrated on 16
    seeded random side x side inputs: (quantised model, calib, test inputs
    [4], its int8 logits of test), or None without the weights."""
    from st import load as st_load
    weights = os.path.join(out_dir, f"{name}.weights.safetensors")
    if not os.path.exists(weights):
        return None
    torch.backends.quantized.engine = "onednn"
    model.load_state_dict(st_load(weights)[0])
    model.eval()
    g = torch.Generator().manual_seed(seed)
    calib = torch.randn(16, 3, side, side, generator=g)
    test = torch.randn(4, 3, side, side, generator=g)
    q = quantize(model, calib)
    with torch.no_grad():
        logits_int8 = q(test)
    return q, calib, test, logits_int8.contiguous()


def resnet18(out_dir):
    """torchvision ResNet-18 with backbone_fixtures' realistic weights
    (resnet18.weights.safetensors, made before this module): the ImageNet
    stem (7x7 convolution, max pool) and projection shortcuts, on 64x64
    random inputs (any size works; 224 would only be slower)."""
    import torchvision.models as tvm
    q, calib, test, logits_int8 = fx_of_torchvision(out_dir, "resnet18", tvm.resnet18(), 18, 64)
    st_save(os.path.join(out_dir, "int8_resnet18.safetensors"),
            {"calib": calib, "test": test, "logits_int8": logits_int8, "fc_scale": torch.tensor([q.fc.scale])})


def plain_net(out_dir, name):
    """torchvision AlexNet / VGG-11 with backbone_fixtures' weights
    ({name}.weights.safetensors) on small random inputs (64x64 for AlexNet,
    32x32 for VGG: the adaptive average pool takes any size). Writes
    int8_{name}.safetensors (calib, test, FX int8 logits) and
    int8_{name}.json (FX's scale and zero point per quantisation point,
    named by module as graft names them; "input" for the input)."""
    import torchvision.models as tvm
    made = fx_of_torchvision(out_dir, name, getattr(tvm, name)(), 11, 64 if name == "alexnet" else 32)
    if made is None:
        return
    q, calib, test, logits_int8 = made
    inputs = [a for a in dir(q) if a.endswith("_input_scale_0")]
    assert len(inputs) == 1, inputs
    prefix = inputs[0][: -len("_scale_0")]
    points = {"input": {"scale": float(getattr(q, prefix + "_scale_0")),
                        "zero_point": int(getattr(q, prefix + "_zero_point_0"))}}
    for n, m in q.named_modules():
        if n and hasattr(m, "scale") and hasattr(m, "zero_point"):
            points[n] = {"scale": float(m.scale), "zero_point": int(m.zero_point)}
    st_save(os.path.join(out_dir, f"int8_{name}.safetensors"),
            {"calib": calib, "test": test, "logits_int8": logits_int8})
    with open(os.path.join(out_dir, f"int8_{name}.json"), "w") as f:
        json.dump({"points": points}, f, indent=1)


def googlenet(out_dir):
    """torchvision GoogLeNet as the registry builds it (no auxiliary
    classifiers, transform_input=True) with backbone_fixtures' weights, on
    64x64 random inputs. FX quantises each input channel on its own
    (transform_input slices them: "input.0", "input.1", "input.2"), runs the
    per-channel scale and shift as quantized::mul/add with scalars, and
    gives the four branch outputs of each inception block one shared
    observer with its concatenation (named by the block, "inception3a").
    Writes int8_googlenet.safetensors (calib, test, FX int8 logits) and
    int8_googlenet.json (points by graft's names: the convolutions by
    module, "conv1.conv", "inception3a.branch2.0.conv", ...)."""
    import torchvision.models as tvm
    model = tvm.googlenet(aux_logits=False, transform_input=True, init_weights=False)
    made = fx_of_torchvision(out_dir, "googlenet", model, 22, 64)
    if made is None:
        return
    q, calib, test, logits_int8 = made
    points = {}
    inputs = [n for n in q.graph.nodes if n.op == "call_function" and n.target == torch.quantize_per_tensor]
    assert len(inputs) == 3, inputs
    for c, n in enumerate(inputs):
        points[f"input.{c}"] = {"scale": float(getattr(q, n.args[1].target)),
                                "zero_point": int(getattr(q, n.args[2].target))}
    for n, m in q.named_modules():
        if not (n and hasattr(m, "scale") and hasattr(m, "zero_point")):
            continue
        qp = {"scale": float(m.scale), "zero_point": int(m.zero_point)}
        parts = n.split(".")
        last_of_branch = (n.startswith("inception") and
                          (parts[1] == "branch1" or (parts[1] != "branch1" and parts[2] == "1")))
        if last_of_branch:
            assert points.setdefault(parts[0], qp) == qp, (n, qp, points[parts[0]])
        else:
            points[n] = qp
    st_save(os.path.join(out_dir, "int8_googlenet.safetensors"),
            {"calib": calib, "test": test, "logits_int8": logits_int8})
    with open(os.path.join(out_dir, "int8_googlenet.json"), "w") as f:
        json.dump({"points": points}, f, indent=1)


def make(out_dir):
    observers(out_dir)
    resnet18(out_dir)
    resnet20(out_dir)
    plain_net(out_dir, "alexnet")
    plain_net(out_dir, "vgg11")
    googlenet(out_dir)

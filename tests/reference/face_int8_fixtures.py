"""PyTorch FX post-training static int8 of face-api's face recognition net
(the dlib-style ResNet), the reference for graft's face embedder in int8
(src/models/int8.cpp, FaceInt8).

The net is ported here from face-api 1.7.15's faceRecognitionNet (the same
graph graft's src/face/nets.cpp runs, checked against face-api itself by the
face parity tests): each convolution's bias and per-channel scale and shift
folded into the convolution (w * s, b * s + t, in float32 as graft folds
them), ReLU after the first convolution of each block, the residual add then
ReLU. A down block's shortcut is a 2x2 average pool with zero channels
appended; where face-api's 3x3 "valid" stride-2 convolution comes out one
smaller than the pool (8 -> 3 against 4, 4 -> 1 against 2) a zero row and
column are appended to the convolution's output. The descriptor is the mean
over the last map's pixels (2x2) times the 256x128 fc matrix, an nn.Linear here
as a PyTorch user would port it. The input is normalised ((x - mean) / 255)
before the quantised graph, as graft does.

The QConfig is int8_fixtures.qconfig(): min-max activations (quint8, per
tensor affine), per-channel symmetric int8 weights, engine onednn.

Writes, when face-api's models (scripts/face_models.sh) and
../shared/data/att_faces are there (else removes them: the tests skip):
  face_int8.safetensors   calib [32,3,150,150] and test [8,3,150,150] inputs
                          (0..255, att_faces photos as RGB, bilinear to
                          150x150), FX int8 descriptors of test (before L2
                          normalisation) and the fp32 port's
  face_int8.json          FX's scale and zero point per quantisation point,
                          under graft's point names, and the models folder
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

import int8_fixtures
from st import save as st_save

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "att_faces"))
CACHE = os.environ.get("GRAFT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "graft"))
MANIFEST = os.path.join(CACHE, "face-api-1.7.15", "model", "face_recognition_model-weights_manifest.json")

MEAN = (122.782, 117.001, 104.298)
# (block, in channels, out channels, down?, pad the convolution's output?)
BLOCKS = ([("conv32_1", 32, 32, False, False), ("conv32_2", 32, 32, False, False), ("conv32_3", 32, 32, False, False),
           ("conv64_down", 32, 64, True, False)] +
          [(f"conv64_{i}", 64, 64, False, False) for i in (1, 2, 3)] +
          [("conv128_down", 64, 128, True, False), ("conv128_1", 128, 128, False, False),
           ("conv128_2", 128, 128, False, False), ("conv256_down", 128, 256, True, True),
           ("conv256_1", 256, 256, False, False), ("conv256_2", 256, 256, False, False),
           ("conv256_down_out", 256, 256, True, True)])


def read_tfjs(manifest_path):
    """The manifest's weights, dequantised as TF.js does (q * scale + min in
    double, stored as float32)."""
    groups = json.load(open(manifest_path))
    folder = os.path.dirname(manifest_path)
    out = {}
    for g in groups:
        data = b"".join(open(os.path.join(folder, p), "rb").read() for p in g["paths"])
        off = 0
        for w in g["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                assert q["dtype"] == "uint8", q
                v = np.frombuffer(data, np.uint8, n, off)
                off += n
                a = (v.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            else:
                assert w["dtype"] == "float32", w
                a = np.frombuffer(data, np.float32, n, off).copy()
                off += 4 * n
            out[w["name"]] = torch.from_numpy(a.reshape(w["shape"]))
    return out


def key(prefix):
    return prefix.replace("/", "_")


class FaceNet(nn.Module):
    def __init__(self, tf):
        super().__init__()

        def conv(prefix, stride):
            f = tf[prefix + "/conv/filters"].permute(3, 2, 0, 1).contiguous()
            s, t, b = tf[prefix + "/scale/weights"], tf[prefix + "/scale/biases"], tf[prefix + "/conv/bias"]
            k = f.shape[2]
            c = nn.Conv2d(f.shape[1], f.shape[0], k, stride=stride, padding=k // 2 if stride == 1 else 0)
            with torch.no_grad():
                c.weight.copy_(f * s.view(-1, 1, 1, 1))
                c.bias.copy_(b * s + t)
            self.add_module(key(prefix), c)

        conv("conv32_down", 2)
        for name, _, _, down, _ in BLOCKS:
            conv(name + "/conv1", 2 if down else 1)
            conv(name + "/conv2", 1)
        self.fc = nn.Linear(256, 128, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(tf["fc"].t())

    def forward(self, x):
        out = F.relu(self.conv32_down(x))
        out = F.max_pool2d(out, 3, 2)
        for name, cin, cout, down, pad_out in BLOCKS:
            a = F.relu(getattr(self, key(name + "/conv1"))(out))
            a = getattr(self, key(name + "/conv2"))(a)
            if not down:
                out = F.relu(a + out)
                continue
            p = F.avg_pool2d(out, 2, 2)
            if pad_out:
                a = F.pad(a, (0, 1, 0, 1))
            if cout > cin:
                p = F.pad(p, (0, 0, 0, 0, 0, cout - cin))
            out = F.relu(p + a)
        return self.fc(out.mean((2, 3)))


def normalise(x):
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / 255.0


def att_inputs(paths):
    out = []
    for p in paths:
        img = Image.open(os.path.join(DATA, p)).convert("RGB").resize((150, 150), Image.BILINEAR)
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32).copy()).permute(2, 0, 1))
    return torch.stack(out)


def graft_points(q):
    """FX's qparams under graft's names: "input"; each convolution by its
    face-api prefix ("conv64_down/conv2"); each block's add+ReLU by the block
    ("conv64_down"); in a down block, the requantised zero-padded shortcut
    ("conv64_down/shortcut") and zero-padded convolution output
    ("conv256_down/padded"); "fc"."""
    names = {key(name + "/" + c): name + "/" + c for name, *_ in BLOCKS for c in ("conv1", "conv2")}
    names["conv32_down"] = "conv32_down"
    names["fc"] = "fc"
    pts = {}
    for name, m in q.named_modules():
        if name in names:
            pts[names[name]] = (float(m.scale), int(m.zero_point))

    def qparams(node, s, z):
        return float(getattr(q, node.args[s].target)), int(getattr(q, node.args[z].target))

    adds = [n for n in q.graph.nodes if n.op == "call_function" and "add_relu" in str(n.target)]
    assert len(adds) == len(BLOCKS), len(adds)
    for (name, *_), add in zip(BLOCKS, adds):
        pts[name] = qparams(add, 2, 3)
        for arg in add.args[:2]:
            if arg.op == "call_function" and arg.target == torch.quantize_per_tensor:
                pad = arg.args[0]
                source = pad.args[0].args[0]  # pad(dequantize(source))
                what = "shortcut" if "avg_pool2d" in source.name else "padded"
                pts[f"{name}/{what}"] = qparams(arg, 1, 2)
    first = next(n for n in q.graph.nodes if n.op == "call_function" and n.target == torch.quantize_per_tensor)
    pts["input"] = qparams(first, 1, 2)
    return {k: {"scale": s, "zero_point": z} for k, (s, z) in pts.items()}


def make(out_dir):
    files = [os.path.join(out_dir, n) for n in ("face_int8.safetensors", "face_int8.json")]
    if not (os.path.exists(MANIFEST) and os.path.isdir(DATA)):
        for f in files:
            if os.path.exists(f):
                os.remove(f)
        return
    torch.backends.quantized.engine = "onednn"
    model = FaceNet(read_tfjs(MANIFEST)).eval()
    people = [f"s{i}" for i in range(1, 41)]
    calib_paths = [f"{p}/{k}.pgm" for p in people[:16] for k in (1, 2)]
    test_paths = [f"{p}/{k}.pgm" for p in people[30:34] for k in (5, 6)]
    calib, test = att_inputs(calib_paths), att_inputs(test_paths)
    q = int8_fixtures.quantize(model, normalise(calib))
    with torch.no_grad():
        int8 = q(normalise(test))
        fp32 = model(normalise(test))
    st_save(files[0], {"calib": calib.contiguous(), "test": test.contiguous(), "descriptors_int8": int8.contiguous(),
                       "descriptors_fp32": fp32.contiguous()})
    with open(files[1], "w") as f:
        json.dump({"points": graft_points(q), "models": os.path.dirname(MANIFEST), "calibration_files": calib_paths,
                   "test_files": test_paths}, f,
                  indent=1)
    cos = F.cosine_similarity(int8, fp32).min()
    print(f"  face int8 (FX, onednn, min-max): min cosine to fp32 {float(cos):.5f}")


if __name__ == "__main__":
    import sys
    make(sys.argv[1])

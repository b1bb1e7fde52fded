"""TF.js weights written from the format's description (a JSON manifest of
groups; each group's shards concatenated hold its weights back to back,
little-endian, in manifest order), with numpy only, plus the expected tensors
as safetensors. Quantized values are dequantized as TF.js does: q * scale +
min in double, stored as float32."""
import json
import os

import numpy as np
import torch

import st


def dequantize(q, scale, mn):
    return (q.astype(np.float64) * scale + mn).astype(np.float32)


def make(out_dir):
    d = os.path.join(out_dir, "tfjs")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    expected = {}

    # Group 0: float32 and int32 over two shards split at a non-aligned byte.
    kernel = (rng.standard_normal((3, 5)) * 0.5).astype(np.float32)
    bias = np.linspace(-1, 1, 5, dtype=np.float32)
    ids = np.array([-7, 0, 3, 2**31 - 1, -2**31, 42, 9], dtype=np.int32)
    scalar = np.array(2.5, dtype=np.float32)
    g0 = kernel.tobytes() + bias.tobytes() + ids.tobytes() + scalar.tobytes()
    cut = 37
    with open(os.path.join(d, "group1-shard1of2.bin"), "wb") as f:
        f.write(g0[:cut])
    with open(os.path.join(d, "group1-shard2of2.bin"), "wb") as f:
        f.write(g0[cut:])
    group0 = {"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"], "weights": [
        {"name": "dense/kernel", "shape": [3, 5], "dtype": "float32"},
        {"name": "dense/bias", "shape": [5], "dtype": "float32"},
        {"name": "ids", "shape": [7], "dtype": "int32"},
        {"name": "scalar", "shape": [], "dtype": "float32"},
    ]}
    expected.update({"dense/kernel": kernel, "dense/bias": bias, "ids": ids, "scalar": scalar})

    # Group 1: quantized weights; uint8 first, so the others start unaligned.
    q8 = rng.integers(0, 256, size=(3, 5), dtype=np.uint8)
    s8, m8 = 0.0123456789, -1.5
    q16 = rng.integers(0, 65536, size=(2, 2, 3), dtype=np.uint16)
    s16, m16 = 3.0517578125e-05 * 1.7, -0.987654321
    h = (rng.standard_normal((2, 3)) * 4).astype(np.float16)
    h[0, 0] = np.float16(6.0e-8)  # a subnormal half
    h[0, 1] = np.float16(-0.0)
    g1 = q8.tobytes() + q16.astype("<u2").tobytes() + h.astype("<f2").tobytes()
    with open(os.path.join(d, "group2-shard1of1.bin"), "wb") as f:
        f.write(g1)
    group1 = {"paths": ["group2-shard1of1.bin"], "weights": [
        {"name": "q8", "shape": [3, 5], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": s8, "min": m8}},
        {"name": "q16", "shape": [2, 2, 3], "dtype": "float32",
         "quantization": {"dtype": "uint16", "scale": s16, "min": m16}},
        {"name": "half", "shape": [2, 3], "dtype": "float32",
         "quantization": {"dtype": "float16"}},
    ]}
    expected.update({"q8": dequantize(q8, s8, m8), "q16": dequantize(q16, s16, m16),
                     "half": h.astype(np.float32)})

    manifest = [group0, group1]
    with open(os.path.join(d, "model-weights_manifest.json"), "w") as f:
        json.dump(manifest, f)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump({"format": "layers-model", "modelTopology": {}, "weightsManifest": manifest}, f)

    st.save(os.path.join(out_dir, "tfjs_expected.safetensors"),
            {k: torch.from_numpy(v.copy()) for k, v in expected.items()})

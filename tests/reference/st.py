"""A safetensors writer and reader written from the format's specification
(8-byte little-endian header length, JSON header, raw little-endian data), so
that the tests do not depend on graft's own implementation."""
import json
import struct

import torch

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
    torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL",
}
BY_NAME = {v: k for k, v in DTYPES.items()}


def tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save(path, tensors, metadata=None):
    """tensors: dict name -> tensor (insertion order is the data order)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # the spec allows trailing spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    """Returns (dict name -> tensor, metadata dict)."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dtype = BY_NAME[info["dtype"]]
        raw = bytearray(data[base + a:base + b])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def save_case(out_dir, name, arrays, expected, generator):
    """OUT_DIR/NAME/cases.safetensors (numpy arrays or tensors, with the
    generator script in its metadata) and OUT_DIR/NAME/expected.json."""
    import json
    import os

    import numpy as np

    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    tensors = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
               for k, v in arrays.items()}
    save(os.path.join(d, "cases.safetensors"), tensors, {"generator": generator})
    with open(os.path.join(d, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
        fh.write("\n")

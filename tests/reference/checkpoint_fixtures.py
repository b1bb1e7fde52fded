"""torch.save files for the C++ checkpoint reader's tests, each with its
expected tensors as safetensors (written by st.py, not by graft), plus hostile
files crafted byte by byte. Nothing here unpickles anything."""
import collections
import io
import os
import pickle
import zipfile

import torch
import torchvision

import st


def dtype_dict():
    """Every dtype, views sharing storage, a non-contiguous view, 0-d and empty."""
    g = torch.Generator().manual_seed(7)
    base = torch.randn(4, 6, generator=g)
    return collections.OrderedDict([
        ("f32", torch.randn(3, 4, generator=g)),
        ("f16", torch.randn(5, generator=g).half()),
        ("bf16", torch.randn(2, 3, generator=g).bfloat16()),
        ("f64", torch.randn(3, generator=g).double()),
        ("i64", torch.randint(-2**40, 2**40, (4,), generator=g)),
        ("i32", torch.randint(-2**31, 2**31 - 1, (2, 2), generator=g, dtype=torch.int32)),
        ("i16", torch.randint(-2**15, 2**15 - 1, (3,), generator=g, dtype=torch.int16)),
        ("i8", torch.randint(-128, 127, (5,), generator=g, dtype=torch.int8)),
        ("u8", torch.randint(0, 255, (6,), generator=g, dtype=torch.uint8)),
        ("bool", torch.rand(7, generator=g) > 0.5),
        ("base", base),
        ("row", base[2]),               # shares base's storage at offset 12
        ("window", base[1:3, 2:5]),     # offset 8, strides (6, 1)
        ("transposed", base.t()),       # strides (1, 6)
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
    ])


def write_zip(path, entries):
    """A zip of STORED entries, as torch.save writes them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)


class Storage:
    """Stands for a storage in a hand-made pickle; see Pickler below."""
    def __init__(self, type_, key, numel, location="cpu"):
        self.type_, self.key, self.numel, self.location = type_, key, numel, location


class Tensor:
    """Pickles as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)."""
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.type_, obj.key, obj.location, obj.numel)
        return None


def hand_pickle(obj):
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def hand_checkpoint(path, obj, storages):
    """A zip checkpoint whose data.pkl pickles `obj`; storages: key -> bytes."""
    entries = [("archive/data.pkl", hand_pickle(obj)), ("archive/byteorder", b"little"),
               ("archive/version", b"3\n")]
    entries += [(f"archive/data/{k}", v) for k, v in storages.items()]
    write_zip(path, entries)


def make(out):
    torch.manual_seed(0)
    p = lambda name: os.path.join(out, name)

    # (1) As torchvision publishes it: an OrderedDict carrying _metadata.
    sd = torchvision.models.resnet18().state_dict()
    torch.save(sd, p("tv_resnet18.pth"))
    st.save(p("tv_resnet18.expected.safetensors"), sd)

    # (2) and (3): every dtype and view, zip and legacy format.
    d = dtype_dict()
    torch.save({"state_dict": d, "epoch": 3}, p("ckpt_dtypes.pth"))
    torch.save({"state_dict": d, "epoch": 3}, p("ckpt_dtypes_legacy.pth"),
               _use_new_zipfile_serialization=False)
    st.save(p("ckpt_dtypes.expected.safetensors"), d)

    # (4) DataParallel names, nested in {"model": {"net": ...}}.
    dp = collections.OrderedDict([("module.x", torch.arange(6.0).reshape(2, 3)),
                                  ("module.y", torch.tensor([1, 2, 3]))])
    torch.save({"model": {"net": dp}, "best_prec1": 91.5}, p("ckpt_dataparallel.pth"))
    st.save(p("ckpt_dataparallel.expected.safetensors"),
            {k[len("module."):]: v for k, v in dp.items()})

    # (5) Hostile files.
    # GLOBAL os system; REDUCE ('echo pwned',). Crafted by hand, never loaded.
    evil = b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwnedq\x00\x85q\x01Rq\x02."
    write_zip(p("hostile_os_system.pth"), [("archive/data.pkl", evil),
                                           ("archive/byteorder", b"little")])
    user = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01c__main__\nEvil\nq\x02)\x81q\x03s."
    write_zip(p("hostile_user_class.pth"), [("x/data.pkl", user)])
    good = open(p("ckpt_dtypes.pth"), "rb").read()
    open(p("hostile_truncated.pth"), "wb").write(good[:len(good) * 2 // 3])
    legacy = open(p("ckpt_dtypes_legacy.pth"), "rb").read()
    open(p("hostile_truncated_legacy.pth"), "wb").write(legacy[:len(legacy) - 40])
    write_zip(p("hostile_no_data_pkl.pth"), [("archive/data/0", b"\0" * 16),
                                             ("archive/version", b"3\n")])
    four = torch.arange(4.0).numpy().tobytes()
    s = Storage(torch.FloatStorage, "0", 4)
    hand_checkpoint(p("hostile_bad_view.pth"), {"w": Tensor(s, 1, (2, 2), (2, 1))}, {"0": four})
    hand_checkpoint(p("hostile_stride_mismatch.pth"), {"w": Tensor(s, 0, (2, 2), (2,))},
                    {"0": four})
    hand_checkpoint(p("hostile_missing_storage.pth"), {"w": Tensor(s, 0, (4,), (1,))}, {})
    hand_checkpoint(p("hostile_short_storage.pth"), {"w": Tensor(s, 0, (4,), (1,))},
                    {"0": four[:12]})
    cplx = Storage(torch.ComplexFloatStorage, "0", 2)
    hand_checkpoint(p("hostile_complex_storage.pth"), {"w": Tensor(cplx, 0, (2,), (1,))},
                    {"0": four})
    # A hand-made but valid file: two tensors on one CUDA storage, one a
    # strided view with an offset (values 1, 3).
    shared = Storage(torch.FloatStorage, "0", 4, "cuda:0")
    hand_checkpoint(p("hand_shared_cuda.pth"),
                    {"all": Tensor(shared, 0, (4,), (1,)), "odd": Tensor(shared, 1, (2,), (2,))},
                    {"0": four})

#!/usr/bin/env python3
"""Writes the bounded-memory regression inputs of fuzz/corpus/<target>/memory/.

Each is under 1 MB and, before the fixes of the hardening issue, made its
target allocate more than the replay's 256 MB limit (fuzz/replay_main.cpp);
the replay runs them once each (not mutated). Standard library only:
  python3 fuzz/make_memory_seeds.py fuzz/corpus
"""
import os
import struct
import sys
import zlib


def safetensors_overlap(n=2200, block=122 * 1024):
    """n U8 tensors whose data_offsets all name the same block."""
    entries = ",".join('"t%d":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}' % (i, block, block)
                       for i in range(n))
    header = ("{" + entries + "}").encode()
    header += b" " * ((8 - len(header) % 8) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(block)


def u(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor_pickle(keys_numel):
    """A protocol-2 state_dict pickle {name: float tensor of storage key}."""
    # The memoized globals and strings first, popped off the stack again.
    p = bytearray(b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x01ctorch\nFloatStorage\nq\x02" +
                  u("storage") + b"q\x03" + u("cpu") + b"q\x04ccollections\nOrderedDict\nq\x05" +
                  b"0" * 5 + b"}q\x00(")
    for name, key, numel in keys_numel:
        p += u(name)
        p += b"h\x01("  # _rebuild_tensor_v2 (
        p += b"(h\x03h\x02" + u(key) + b"h\x04J" + struct.pack("<i", numel) + b"tQ"
        p += b"K\x00J" + struct.pack("<i", numel) + b"\x85K\x01\x85\x89h\x05)Rt"
        p += b"R"
    p += b"u."
    return bytes(p)


def zip_archive(files, overlap_names=()):
    """A STORED zip of (name, bytes); each name of overlap_names gets a central
    entry pointing at the local header of files[-1]."""
    out = bytearray()
    central = bytearray()
    count = 0
    last = None
    for name, data in files:
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(nb), 0)
        out += nb + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, len(data),
                               len(data), len(nb), 0, 0, 0, 0, 0, off) + nb
        count += 1
        last = (crc, len(data), off)
    for name in overlap_names:
        nb = name.encode()
        crc, size, off = last
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, size, size,
                               len(nb), 0, 0, 0, 0, 0, off) + nb
        count += 1
    cd_off = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), cd_off, 0)
    return bytes(out)


def torch_zip_overlap(n=1300, block=208 * 1024):
    numel = block // 4
    pkl = tensor_pickle([("w%d" % i, str(i), numel) for i in range(n)])
    files = [("archive/data.pkl", pkl), ("archive/byteorder", b"little"), ("archive/data/0", bytes(block))]
    return zip_archive(files, ["archive/data/%d" % i for i in range(1, n)])


def torch_zip_ordereddict(pairs=60000, calls=60000):
    """OrderedDict([pair] * pairs) called `calls` times: before the object
    budget, ~6 bytes of pickle made `pairs` dict entries."""
    p = bytearray(b"\x80\x02ccollections\nOrderedDict\nq\x00")
    p += b"NN\x86q\x01"  # the pair (None, None)
    p += b"](" + b"h\x01" * pairs + b"e\x85q\x02"  # ([pair, pair, ...],)
    p += b"0"
    p += b"h\x00h\x02R0" * calls
    p += b"}."
    files = [("archive/data.pkl", bytes(p)), ("archive/byteorder", b"little")]
    return zip_archive(files)


def torch_zip_memo(n=900 * 1024):
    """'}' then n MEMOIZE opcodes: one memo entry per byte before the cap."""
    p = b"\x80\x02}" + b"\x94" * n + b"."
    return zip_archive([("archive/data.pkl", p), ("archive/byteorder", b"little")])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus"
    seeds = {
        "safetensors_fuzz/memory/overlap.safetensors": safetensors_overlap(),
        "torch_checkpoint_fuzz/memory/zip_overlap.pth": torch_zip_overlap(),
        "torch_checkpoint_fuzz/memory/pickle_ordereddict.pth": torch_zip_ordereddict(),
        "torch_checkpoint_fuzz/memory/pickle_memo.pth": torch_zip_memo(),
    }
    for rel, data in seeds.items():
        assert len(data) < 1 << 20, (rel, len(data))
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        print("%s: %d bytes" % (path, len(data)))


if __name__ == "__main__":
    main()

"""GIF files and Pillow's decoding of them, for tests/data/image_set_test.cpp
(GIF pixels equal Pillow's) and tests/face/face_cli_test.cpp (graft face
evaluate on a GIF folder equals the same faces as PNG).

Writes into OUT/gif/:
- one GIF per case of cases() (made here with Pillow, some with their
  blocks rearranged by hand: a frame smaller than the screen and offset in
  it, a frame reaching past the screen, a local colour table instead of the
  global one; and hymenoptera's real GIF from ../shared/data);
- gif.safetensors: per case NAME, Pillow's Image.open(f).convert("RGB") as
  uint8 [H, W, 3] (what torchvision's ImageFolder loader gives); metadata
  `cases` (JSON: name -> {"grey": whether every palette colour is grey}).
And, when ../shared/data/att_faces exists, OUT/gif_faces/{gif,png}/sN/I.EXT:
identities s1-s4, images 1-5, each PGM converted by Pillow to GIF and to PNG
(8-bit grey: both lossless).
"""
import io
import json
import os
import struct

import numpy as np
import torch

import st

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))


def gradient(w, h):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)),
                     ((x + y) * 7) % 256], axis=-1).astype(np.uint8)


def blocks(data):
    """Splits a GIF into (header+screen, global table, [blocks], trailer)."""
    flags = data[10]
    gct = 3 << ((flags & 7) + 1) if flags & 0x80 else 0
    head, table = data[:13], data[13:13 + gct]
    pos, out = 13 + gct, []
    while data[pos] != 0x3B:
        start = pos
        if data[pos] == 0x21:  # extension: label, sub-blocks
            pos += 2
        else:  # image: descriptor, local table, LZW size, sub-blocks
            assert data[pos] == 0x2C
            f = data[pos + 9]
            pos += 10 + (3 << ((f & 7) + 1) if f & 0x80 else 0) + 1
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
        out.append(bytearray(data[start:pos]))
    return bytearray(head), bytes(table), out


def join(head, table, parts):
    return bytes(head) + table + b"".join(bytes(p) for p in parts) + b";"


def save_gif(im, **kw):
    b = io.BytesIO()
    im.save(b, "GIF", **kw)
    return b.getvalue()


def offset_frame(data, screen, at):
    """The same image as a frame at `at` on a larger logical screen."""
    head, table, parts = blocks(data)
    head[6:10] = struct.pack("<HH", *screen)
    for p in parts:
        if p[0] == 0x2C:
            p[1:5] = struct.pack("<HH", *at)
            break
    return join(head, table, parts)


def local_table(data):
    """The global colour table moved into the first image descriptor."""
    head, table, parts = blocks(data)
    bits = head[10] & 7
    head[10] &= 0x7F
    for i, p in enumerate(parts):
        if p[0] == 0x2C:
            assert not p[9] & 0x80
            p[9] |= 0x80 | bits
            parts[i] = p[:10] + table + p[10:]
            break
    return join(head, b"", parts)


def cases():
    from PIL import Image

    rgb = Image.fromarray(gradient(64, 48))
    pal = rgb.quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    out = {}
    # A palette image, interlaced (Pillow's default from 16 pixels up).
    out["palette"] = save_gif(pal)
    out["plain"] = save_gif(pal, interlace=False)
    # Transparency: index 5 is transparent; the frame is 40x30 at (13, 9) on
    # a 64x48 screen, so the canvas around it is the transparent index.
    small = Image.fromarray(gradient(40, 30)).quantize(colors=32)
    trans = save_gif(small, transparency=5, interlace=False)
    out["transparent"] = offset_frame(trans, (64, 48), (13, 9))
    # No transparency: the canvas around an offset frame is index 0.
    out["offset"] = offset_frame(save_gif(small, interlace=False), (60, 50), (7, 11))
    # A frame reaching past the screen: the canvas grows to hold it.
    out["past_screen"] = offset_frame(save_gif(small), (30, 20), (5, 4))
    out["local_table"] = local_table(save_gif(pal))
    # Three frames: the first one is the image.
    frames = [Image.fromarray(gradient(32, 24)[:, :, [k, (k + 1) % 3, (k + 2) % 3]]).quantize(colors=16)
              for k in range(3)]
    out["frames"] = save_gif(frames[0], save_all=True, append_images=frames[1:], duration=100, loop=0)
    # Grey: a 4-bit grey ramp and a real face (AT&T, 8-bit grey).
    ramp = Image.fromarray((np.arange(20 * 18).reshape(18, 20) % 16 * 17).astype(np.uint8), "L")
    out["grey_ramp"] = save_gif(ramp)
    pgm = os.path.join(SHARED, "att_faces", "s1", "1.pgm")
    if os.path.exists(pgm):
        out["grey_face"] = save_gif(Image.open(pgm))
    # A real GIF from the web (hymenoptera's ants/imageNotFound.gif).
    real = os.path.join(SHARED, "hymenoptera", "train", "ants", "imageNotFound.gif")
    if os.path.exists(real):
        out["hymenoptera"] = open(real, "rb").read()
    return out


def make(out_dir):
    try:
        from PIL import Image
    except ImportError as e:
        print(f"gif_fixtures: {e}, skipped")
        return
    gif_dir = os.path.join(out_dir, "gif")
    os.makedirs(gif_dir, exist_ok=True)
    tensors, meta = {}, {}
    for name, data in cases().items():
        path = os.path.join(gif_dir, name + ".gif")
        with open(path, "wb") as f:
            f.write(data)
        im = Image.open(path)
        palette = im.getpalette()  # None for Pillow's mode "L"
        grey = palette is None or all(palette[i] == palette[i + 1] == palette[i + 2]
                                      for i in range(0, len(palette), 3))
        tensors[name] = torch.from_numpy(np.asarray(im.convert("RGB")).copy())
        meta[name] = {"grey": grey, "frames": getattr(im, "n_frames", 1)}
    st.save(os.path.join(gif_dir, "gif.safetensors"), tensors, {"cases": json.dumps(meta)})

    att = os.path.join(SHARED, "att_faces")
    if not os.path.isdir(att):
        print("gif_fixtures: no shared att_faces, face folders skipped")
        return
    for ext in ("gif", "png"):
        for s in range(1, 5):
            d = os.path.join(out_dir, "gif_faces", ext, f"s{s}")
            os.makedirs(d, exist_ok=True)
            for i in range(1, 6):
                Image.open(os.path.join(att, f"s{s}", f"{i}.pgm")).save(os.path.join(d, f"{i}.{ext}"))

#!/usr/bin/python3
"""Makes the face parity fixture: face-api's own 128-d descriptors and 68
landmarks for a handful of images, computed by tests/reference/face_ref.mjs
(face-api 1.7.15 on TensorFlow.js's pure JavaScript CPU backend, run with
node; fetched and integrity-checked by scripts/face_reference.sh, models by
scripts/face_models.sh).

Usage: face_fixtures.py OUT_DIR

Writes OUT_DIR/face_parity/NAME.rgb (raw 8-bit RGB, HWC) and
OUT_DIR/face_parity.json, read by tests/face/*_test.cpp:

  {"reference": ..., "models": DIR,
   "images": [{"name", "file", "height", "width", "source",
               "descriptor": [128], "landmarks": [[x, y] x 68],
               "detections": [{"score", "box": [x, y, w, h]}, ...]}, ...],
   "min_confidence": 0.2}

The images: att_faces photos (92x112 grey, as RGB), tinted copies (so that a
channel-order mistake shows), a crop with an odd size difference (75x100: the
centred padding is uneven), a larger wide image (200x160: padded on the other
axis, then shrunk), two faces side by side (for the detector) and seeded RGB noise at exactly 150x150 (the embedder
without any resizing). Without node, npm, the data or the models it prints
why and exits 0 without a fixture (the parity tests then skip). If the
reference fails it writes OUT_DIR/face_parity.error and exits 0, so only the
parity tests fail, with that message. Remade only when this script,
face_ref.mjs or the models changed.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "att_faces"))
CACHE = os.environ.get("GRAFT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "graft"))
MODELS = os.path.join(CACHE, "face-api-1.7.15", "model")
FIXTURE = "face_parity.json"
ERROR = "face_parity.error"

PHOTOS = ["s1/1.pgm", "s5/3.pgm", "s12/7.pgm", "s23/2.pgm", "s34/9.pgm", "s40/10.pgm"]


def read_pgm(path):
    """Binary PGM (P5, maxval 255) -> (width, height, bytes)."""
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise ValueError(f"{path}: not an 8-bit binary PGM")
    w, h = int(fields[1]), int(fields[2])
    pixels = data[pos + 1:pos + 1 + w * h]
    if len(pixels) != w * h:
        raise ValueError(f"{path}: {len(pixels)} pixels, expected {w}x{h}")
    return w, h, pixels


def grey_to_rgb(pixels):
    return bytes(v for p in pixels for v in (p, p, p))


def tint(pixels):
    return bytes(v for p in pixels for v in (p, (p * 3) // 4, min(255, p + 40)))


def crop(w, pixels, x0, y0, cw, ch):
    return bytes(pixels[(y0 + y) * w + x0 + x] for y in range(ch) for x in range(cw))


def nearest(w, h, pixels, nw, nh):
    return bytes(pixels[(y * h // nh) * w + (x * w // nw)] for y in range(nh) for x in range(nw))


def noise(w, h, seed):
    state, out = seed, bytearray()
    for _ in range(w * h * 3):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append(state >> 56)
    return bytes(out)


def images():
    out = []
    for i, rel in enumerate(PHOTOS):
        w, h, px = read_pgm(os.path.join(DATA, rel))
        out.append((f"att_{i}", rel, w, h, grey_to_rgb(px)))
        if i < 2:
            out.append((f"att_{i}_tinted", rel + " tinted", w, h, tint(px)))
        if i == 2:
            out.append((f"att_{i}_crop75x100", rel + " crop 8,6 75x100", 75, 100,
                        tint(crop(w, px, 8, 6, 75, 100))))
        if i == 3:
            out.append((f"att_{i}_wide200x160", rel + " nearest 200x160", 200, 160,
                        tint(nearest(w, h, px, 200, 160))))
    w, h, a = read_pgm(os.path.join(DATA, PHOTOS[0]))
    _, _, b = read_pgm(os.path.join(DATA, PHOTOS[4]))
    side = bytes(v for y in range(h) for v in a[y * w:(y + 1) * w] + b[y * w:(y + 1) * w])
    out.append(("two_faces", f"{PHOTOS[0]} | {PHOTOS[4]} side by side", 2 * w, h, tint(side)))
    # A group: three faces on a grey 360x240 canvas, one enlarged 1.5x.
    cw, ch = 360, 240
    canvas = bytearray([128]) * (cw * ch)
    for rel, x0, y0, scale in ((PHOTOS[1], 10, 70, 1.0), (PHOTOS[3], 120, 20, 1.5), (PHOTOS[5], 262, 100, 1.0)):
        fw, fh, px = read_pgm(os.path.join(DATA, rel))
        nw, nh = int(fw * scale), int(fh * scale)
        face = nearest(fw, fh, px, nw, nh)
        for y in range(nh):
            canvas[(y0 + y) * cw + x0:(y0 + y) * cw + x0 + nw] = face[y * nw:(y + 1) * nw]
    out.append(("group", "three faces on a 360x240 canvas", cw, ch, tint(bytes(canvas))))
    out.append(("noise150", "LCG noise 150x150", 150, 150, noise(150, 150, 5)))
    return out


def stamp_of():
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "face_ref.mjs")):
        h.update(open(f, "rb").read())
    for name in ("face_recognition_model", "face_landmark_68_model", "ssd_mobilenetv1_model"):
        h.update(open(os.path.join(MODELS, f"{name}-weights_manifest.json"), "rb").read())
    return h.hexdigest()


def skip(why):
    print(f"face_fixtures: no fixture ({why}); the face parity tests will skip")
    sys.exit(0)


def make(out_dir):
    if not os.path.isdir(DATA):
        skip(f"{DATA} is absent")
    if shutil.which("node") is None:
        skip("node is not installed")
    if subprocess.run(["bash", os.path.join(ROOT, "scripts", "face_models.sh")]).returncode != 0:
        skip("scripts/face_models.sh failed")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, FIXTURE)
    stamp = path + ".stamp"
    digest = stamp_of()
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == digest:
        print("face_fixtures: up to date")
        return
    fetch = subprocess.run(["bash", os.path.join(ROOT, "scripts", "face_reference.sh")],
                           stdout=subprocess.PIPE, text=True)
    if fetch.returncode != 0:
        skip("scripts/face_reference.sh failed")
    package = fetch.stdout.strip().splitlines()[-1]
    folder = os.path.join(out_dir, "face_parity")
    os.makedirs(folder, exist_ok=True)
    entries = []
    for name, source, w, h, rgb in images():
        with open(os.path.join(folder, name + ".rgb"), "wb") as f:
            f.write(rgb)
        entries.append({"name": name, "file": name + ".rgb", "height": h, "width": w, "source": source})
    src, dst = os.path.join(folder, "in.json"), os.path.join(folder, "out.json")
    with open(src, "w") as f:
        json.dump({"images": entries}, f)
    subprocess.run(["node", os.path.join(HERE, "face_ref.mjs"), "--package", package,
                    "--models", MODELS, src, dst], check=True)
    ref = json.load(open(dst))
    for entry, got in zip(entries, ref["images"]):
        assert entry["name"] == got["name"]
        entry["file"] = os.path.join("face_parity", entry["file"])
        entry["descriptor"] = got["descriptor"]
        entry["landmarks"] = got["landmarks"]
        entry["detections"] = got["detections"]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"reference": ref["reference"], "models": MODELS, "min_confidence": ref["min_confidence"],
                   "images": entries}, f)
    os.replace(tmp, path)
    with open(stamp, "w") as f:
        f.write(digest)
    print(f"face_fixtures: {len(entries)} images from {ref['reference']} in {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    error = os.path.join(sys.argv[1], ERROR)
    if os.path.exists(error):
        os.remove(error)
    try:
        make(sys.argv[1])
    except Exception as e:  # reported by the parity tests, see the docstring
        os.makedirs(sys.argv[1], exist_ok=True)
        with open(error, "w", encoding="utf-8") as f:
            f.write(f"{type(e).__name__}: {e}")
        print(f"face_fixtures: failed: {e}", file=sys.stderr)

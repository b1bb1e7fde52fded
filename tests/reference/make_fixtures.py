#!/usr/bin/env python3
"""Makes the reference fixtures for the C++ tests with Debian's python3-torch.

Usage: make_fixtures.py OUT_DIR

Each module listed in MODULES has a make(out_dir) function. A fixture is only
rewritten when its inputs (the module's source) changed, so a second test run
is quick. Used by tests only, never at run time.
"""
import hashlib
import importlib
import os
import sys

MODULES = ["safetensors_fixtures", "backbone_fixtures", "transform_fixtures",
           "checkpoint_fixtures", "tfjs_fixtures", "akamaster_fixtures",
           "transferability_fixtures", "bert_fixtures", "text_model_fixtures",
           "face_loss_fixtures", "calibration_fixtures", "gif_fixtures",
           "centroid_fixtures", "tta_fixtures", "grad_cam_fixtures",
           "adapt_fixtures", "int8_fixtures", "face_int8_fixtures", "textcnn_fixtures",
           "use_lite_fixtures"]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    for name in MODULES:
        src = os.path.join(here, name + ".py")
        if not os.path.exists(src):
            continue
        # Any change to a reference script remakes the fixtures.
        h = hashlib.sha256()
        for f in sorted(os.listdir(here)):
            if f.endswith(".py"):
                h.update(f.encode() + open(os.path.join(here, f), "rb").read())
        h.update(name.encode())
        digest = h.hexdigest()
        stamp = os.path.join(out, name + ".stamp")
        if os.path.exists(stamp) and open(stamp).read() == digest:
            print(f"{name}: up to date")
            continue
        importlib.import_module(name).make(out)
        with open(stamp, "w") as f:
            f.write(digest)
        print(f"{name}: written")


if __name__ == "__main__":
    main()

"""The PyTorch accuracy of akamaster's ResNet-20 on the CIFAR-10 test JPEGs
(akamaster_accuracy.py), written as akamaster_resnet20_accuracy.json for the
CLI test that evaluates the same file with graft. Writes nothing when
../shared/data is absent (the test then skips)."""
import json
import os

import akamaster_accuracy


def make(out_dir):
    root = akamaster_accuracy.default_data_root()
    path = os.path.join(out_dir, "akamaster_resnet20_accuracy.json")
    if not akamaster_accuracy.have_data(root):
        if os.path.exists(path):
            os.remove(path)
        return
    acc, count = akamaster_accuracy.accuracy(root)
    with open(path, "w") as f:
        json.dump({"accuracy": acc, "count": count}, f)
    print(f"  akamaster resnet20: accuracy {acc:.4f} on {count} images")

#!/usr/bin/env python3
"""The Python side of bench/serve.sh.

  serve_ref.py make-run DIR     a graft run folder of torchvision's ResNet-18
                                (seeded random weights, 10 classes): model.json
                                and model.safetensors, written by hand (no
                                safetensors package on Debian)
  serve_ref.py server DIR PORT  the hand-rolled deployment: http.server (a
                                thread per connection, HTTP/1.1 keep-alive),
                                PIL decoding, torchvision's eval transform,
                                the same weights, top-5 softmax as JSON
"""
import io
import json
import struct
import sys

import numpy as np
import torch
import torchvision
from torchvision import transforms

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
CLASSES = ["c%d" % i for i in range(10)]
DTYPES = {torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64)}


def make_run(out):
    import os
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=len(CLASSES)).eval()
    header, blobs, offset = {}, [], 0
    for name, t in model.state_dict().items():
        tag, np_type = DTYPES[t.dtype]
        data = t.detach().cpu().contiguous().numpy().astype(np_type).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    info = {"format": "graft-model", "format_version": 1, "graft_version": "0.1.0", "task": "image",
            "backbone": "resnet18", "head": "linear", "num_classes": len(CLASSES), "classes": CLASSES,
            "input": {"size": 224, "resize": 256, "channels": 3, "mean": MEAN, "std": STD},
            "source_weights": "random (seed 0, bench/serve_ref.py)"}
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(info, f, indent=2)


def load_run(run):
    raw = open(run + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    state = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        a, b = d["data_offsets"]
        np_type = {"F32": np.float32, "I64": np.int64}[d["dtype"]]
        state[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], np_type).copy()).reshape(d["shape"])
    model = torchvision.models.resnet18(num_classes=len(CLASSES))
    model.load_state_dict(state)
    return model.eval()


def server(run, port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from PIL import Image

    model = load_run(run)
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                             transforms.Normalize(MEAN, STD)])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.reply(200, {"status": "ok"})

        def do_POST(self):
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                x = tf(Image.open(io.BytesIO(data)).convert("RGB")).unsqueeze(0)
            except Exception as e:  # noqa: BLE001 - the hand-rolled server's one error path
                self.reply(400, {"error": str(e)})
                return
            with torch.inference_mode():
                p = torch.softmax(model(x)[0], 0)
            top = p.topk(5)
            self.reply(200, {"predictions": [{"top": [{"label": CLASSES[i], "probability": v}
                                                      for v, i in zip(top.values.tolist(), top.indices.tolist())]}]})

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "make-run":
        make_run(sys.argv[2])
    elif sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: serve_ref.py make-run DIR | server DIR PORT")

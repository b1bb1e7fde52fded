#!/usr/bin/env python3
"""Loads a folder written by `graft export --format safetensors-hf` the way
its library would, for tests/export/hf_test.cpp.

Usage: hf_check.py DIR [INPUT.bin OUTPUT.bin] [DIR ...]  (one JSON line per DIR)

Image folders (config.json "library": "torchvision"): builds
torchvision.models.<architecture>(**kwargs), load_state_dict(strict=True) of
model.safetensors, runs it in eval mode on INPUT.bin (float32 [N, 3, S, S],
S = input_size) and writes the logits (float32) to OUTPUT.bin.

BERT folders (config.json "model_type": "bert"): a small pure-Python reader
of the Hugging Face config (transformers is not a Debian package here): the
fields BertConfig needs, architectures BertForSequenceClassification,
id2label / label2id / num_labels agreeing, and model.safetensors holding
exactly the parameter names and shapes BertForSequenceClassification has
for that config (position_ids and the like are buffers transformers makes).

Prints one JSON line describing what it checked; exits 1 with a message on
stderr when the folder does not load.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402


def fail(message):
    sys.stderr.write(f"hf_check: {message}\n")
    sys.exit(1)


def check_image(folder, config, args):
    import torchvision.models as tvm
    model = getattr(tvm, config["architecture"])(**config["kwargs"])
    state, _ = st.load(os.path.join(folder, "model.safetensors"))
    model.load_state_dict(state, strict=True)
    model.eval()
    size = config["input_size"]
    raw = open(args[0], "rb").read()
    x = torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(-1, 3, size, size)
    with torch.no_grad():
        logits = model(x)
    open(args[1], "wb").write(logits.contiguous().numpy().tobytes())
    return {"library": "torchvision", "architecture": config["architecture"], "tensors": len(state),
            "logits": list(logits.shape)}


def bert_names(c, labels):
    """The parameters of transformers' BertForSequenceClassification for config c."""
    h, inter = c["hidden_size"], c["intermediate_size"]
    names = {
        "bert.embeddings.word_embeddings.weight": [c["vocab_size"], h],
        "bert.embeddings.position_embeddings.weight": [c["max_position_embeddings"], h],
        "bert.embeddings.token_type_embeddings.weight": [c["type_vocab_size"], h],
        "bert.embeddings.LayerNorm.weight": [h],
        "bert.embeddings.LayerNorm.bias": [h],
        "bert.pooler.dense.weight": [h, h],
        "bert.pooler.dense.bias": [h],
        "classifier.weight": [labels, h],
        "classifier.bias": [labels],
    }
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for part, shape in [("attention.self.query", [h, h]), ("attention.self.key", [h, h]),
                            ("attention.self.value", [h, h]), ("attention.output.dense", [h, h]),
                            ("intermediate.dense", [inter, h]), ("output.dense", [h, inter])]:
            names[p + part + ".weight"] = shape
            names[p + part + ".bias"] = [shape[0]]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            names[p + norm + ".weight"] = [h]
            names[p + norm + ".bias"] = [h]
    return names


def check_bert(folder, config):
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_act"):
        if key not in config:
            fail(f"config.json has no {key}")
    if config.get("architectures") != ["BertForSequenceClassification"]:
        fail(f"architectures {config.get('architectures')}")
    id2label, label2id = config["id2label"], config["label2id"]
    labels = len(id2label)
    if config.get("num_labels", labels) != labels or sorted(int(k) for k in id2label) != list(range(labels)):
        fail("id2label and num_labels disagree")
    if any(label2id[v] != int(k) for k, v in id2label.items()):
        fail("id2label and label2id disagree")
    if config["hidden_size"] % config["num_attention_heads"]:
        fail("hidden_size is not a multiple of num_attention_heads")
    state, meta = st.load(os.path.join(folder, "model.safetensors"))
    if meta.get("format") != "pt":
        fail(f"model.safetensors metadata format {meta.get('format')!r} (transformers wants 'pt')")
    expected = bert_names(config, labels)
    got = {k: list(v.shape) for k, v in state.items()}
    if got != expected:
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:5]
        fail(f"tensors differ from BertForSequenceClassification's: missing {missing}, unexpected {extra}, "
             f"shapes {wrong}")
    vocab = open(os.path.join(folder, "vocab.txt"), encoding="utf-8").read().splitlines()
    if len(vocab) != config["vocab_size"]:
        fail(f"vocab.txt has {len(vocab)} tokens, config vocab_size {config['vocab_size']}")
    tokenizer = json.load(open(os.path.join(folder, "tokenizer_config.json")))
    return {"model_type": "bert", "labels": [id2label[str(i)] for i in range(labels)], "tensors": len(state),
            "do_lower_case": tokenizer["do_lower_case"]}


def main():
    args = sys.argv[1:]
    if not args:
        fail("usage: hf_check.py DIR [INPUT.bin OUTPUT.bin] [DIR ...]")
    while args:
        folder = args.pop(0)
        config = json.load(open(os.path.join(folder, "config.json")))
        if config.get("library") == "torchvision":
            if len(args) < 2:
                fail(f"{folder}: an image folder needs INPUT.bin and OUTPUT.bin")
            out = check_image(folder, config, args[:2])
            del args[:2]
        elif config.get("model_type") == "bert":
            out = check_bert(folder, config)
        else:
            fail(f"{folder}: config.json is neither a torchvision nor a BERT config")
        print(json.dumps(out))


main()

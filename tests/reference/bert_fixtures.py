"""BERT reference (python3-torch): an independent implementation of Hugging
Face's BertModel / BertForPreTraining arithmetic, with random weights under
Hugging Face's parameter names, and its outputs on padded batches.

Writes under OUT/bert/:
  config.json                 the architecture (Hugging Face keys)
  model.safetensors           "bert.*" and "cls.predictions.*" (BertForPreTraining names)
  pytorch_model.bin           torch.save of a bare BertModel state dict (no "bert." prefix,
                              with the position_ids buffer), as older checkpoints are
  io.safetensors              input_ids, token_type_ids, attention_mask and the outputs
                              last_hidden_state, pooled, mlm_logits; with the encoder's
                              and pooler's Linears in PyTorch's dynamic int8
                              (quantize_dynamic, onednn): last_hidden_state_int8, pooled_int8
"""
import json
import math
import os
from collections import OrderedDict

import torch

import st

CONFIG = {"vocab_size": 500, "hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4,
          "intermediate_size": 160, "max_position_embeddings": 40, "type_vocab_size": 2,
          "layer_norm_eps": 1e-12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1, "model_type": "bert"}


def weights(c, gen):
    h, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    w = OrderedDict()
    # Wider than Hugging Face's init (std 0.02) so that every path matters.
    rnd = lambda *s: torch.randn(*s, generator=gen) * 0.3
    ln = lambda n: (1 + 0.2 * torch.randn(n, generator=gen), 0.2 * torch.randn(n, generator=gen))
    w["bert.embeddings.word_embeddings.weight"] = rnd(v, h)
    w["bert.embeddings.position_embeddings.weight"] = rnd(c["max_position_embeddings"], h)
    w["bert.embeddings.token_type_embeddings.weight"] = rnd(c["type_vocab_size"], h)
    w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"] = ln(h)
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        for n in ("query", "key", "value"):
            w[p + f"attention.self.{n}.weight"] = rnd(h, h) / math.sqrt(h) * 3
            w[p + f"attention.self.{n}.bias"] = rnd(h)
        w[p + "attention.output.dense.weight"] = rnd(h, h) / math.sqrt(h) * 3
        w[p + "attention.output.dense.bias"] = rnd(h)
        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"] = ln(h)
        w[p + "intermediate.dense.weight"] = rnd(f, h) / math.sqrt(h) * 3
        w[p + "intermediate.dense.bias"] = rnd(f)
        w[p + "output.dense.weight"] = rnd(h, f) / math.sqrt(f) * 3
        w[p + "output.dense.bias"] = rnd(h)
        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"] = ln(h)
    w["bert.pooler.dense.weight"] = rnd(h, h) / math.sqrt(h) * 3
    w["bert.pooler.dense.bias"] = rnd(h)
    w["cls.predictions.transform.dense.weight"] = rnd(h, h) / math.sqrt(h) * 3
    w["cls.predictions.transform.dense.bias"] = rnd(h)
    w["cls.predictions.transform.LayerNorm.weight"], w["cls.predictions.transform.LayerNorm.bias"] = ln(h)
    w["cls.predictions.bias"] = rnd(v)
    return w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def dynamic_int8_linears(w, c):
    """The encoder's and pooler's Linear layers as
    torch.ao.quantization.quantize_dynamic makes them (per_channel_dynamic_qconfig:
    int8 weights per output channel, symmetric; the input quantised per tensor
    on every call) on the onednn engine: name -> module."""
    from torch.ao.quantization import quantize_dynamic, per_channel_dynamic_qconfig
    torch.backends.quantized.engine = "onednn"
    names = ["bert.pooler.dense"]
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        names += [p + n for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                                  "attention.output.dense", "intermediate.dense", "output.dense")]
    linears = torch.nn.ModuleDict()
    for n in names:
        out_f, in_f = w[n + ".weight"].shape
        lin = torch.nn.Linear(in_f, out_f)
        with torch.no_grad():
            lin.weight.copy_(w[n + ".weight"])
            lin.bias.copy_(w[n + ".bias"])
        linears[n.replace(".", "_")] = lin
    q = quantize_dynamic(linears, {torch.nn.Linear: per_channel_dynamic_qconfig})
    return {n: q[n.replace(".", "_")] for n in names}


def bert(w, c, ids, types, mask, linears=None):
    """BertModel.forward in eval mode, written out; `linears` (name -> module)
    replaces those Linear layers (dynamic int8)."""
    eps, h, nh = c["layer_norm_eps"], c["hidden_size"], c["num_attention_heads"]
    d = h // nh
    b, t = ids.shape
    x = (w["bert.embeddings.word_embeddings.weight"][ids]
         + w["bert.embeddings.token_type_embeddings.weight"][types]
         + w["bert.embeddings.position_embeddings.weight"][torch.arange(t)][None])
    x = layer_norm(x, w["bert.embeddings.LayerNorm.weight"], w["bert.embeddings.LayerNorm.bias"], eps)
    add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
    lin = lambda z, n: linears[n](z) if linears and n in linears else z @ w[n + ".weight"].T + w[n + ".bias"]
    for i in range(c["num_hidden_layers"]):
        p = f"bert.encoder.layer.{i}."
        heads = lambda z: z.view(b, t, nh, d).permute(0, 2, 1, 3)
        q = heads(lin(x, p + "attention.self.query"))
        k = heads(lin(x, p + "attention.self.key"))
        v = heads(lin(x, p + "attention.self.value"))
        s = q @ k.transpose(-1, -2) / math.sqrt(d) + add
        ctx = (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3).reshape(b, t, h)
        a = layer_norm(lin(ctx, p + "attention.output.dense") + x,
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inter = gelu(lin(a, p + "intermediate.dense"))
        x = layer_norm(lin(inter, p + "output.dense") + a,
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    z = gelu(lin(x, "cls.predictions.transform.dense"))
    z = layer_norm(z, w["cls.predictions.transform.LayerNorm.weight"],
                   w["cls.predictions.transform.LayerNorm.bias"], eps)
    logits = z @ w["bert.embeddings.word_embeddings.weight"].T + w["cls.predictions.bias"]
    return x, pooled, logits


def padded_batch(lengths, low, high, gen, cls=None, sep=None):
    """A batch of rows of the given lengths, padded with 0: random token ids
    in [low, high) (the first one `cls` and the last one `sep` when given),
    token types 1 from the middle of each row on, and the attention mask."""
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.int64)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for r, n in enumerate(lengths):
        ids[r, :n] = torch.randint(low, high, (n,), generator=gen)
        if cls is not None:
            ids[r, 0] = cls
        if sep is not None:
            ids[r, n - 1] = sep
        mask[r, :n] = 1
        types[r, n // 2:n] = 1
    return ids, types, mask


def make(out_dir):
    out = os.path.join(out_dir, "bert")
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    w = weights(CONFIG, gen)
    ids, types, mask = padded_batch([14, 9, 3], 1, CONFIG["vocab_size"], gen)
    with torch.no_grad():
        hidden, pooled, logits = bert(w, CONFIG, ids, types, mask)
        hidden8, pooled8, _ = bert(w, CONFIG, ids, types, mask, dynamic_int8_linears(w, CONFIG))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    st.save(os.path.join(out, "model.safetensors"), w)
    bare = OrderedDict((k[len("bert."):], v) for k, v in w.items() if k.startswith("bert."))
    bare["embeddings.position_ids"] = torch.arange(CONFIG["max_position_embeddings"])[None]
    torch.save(bare, os.path.join(out, "pytorch_model.bin"))
    st.save(os.path.join(out, "io.safetensors"),
            {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
             "last_hidden_state": hidden, "pooled": pooled, "mlm_logits": logits,
             "last_hidden_state_int8": hidden8.contiguous(), "pooled_int8": pooled8.contiguous()})


if __name__ == "__main__":
    import sys
    make(sys.argv[1])

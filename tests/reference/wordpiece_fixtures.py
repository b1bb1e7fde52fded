#!/usr/bin/python3
"""Makes the WordPiece parity fixture: texts from every text dataset in
../shared/data and the token ids that an independent BERT tokenizer gives for
them with ../shared/data/bert_vocab/vocab.txt.

Usage: wordpiece_fixtures.py OUT_DIR [--impl rust|js]

The reference is npm "tokenizers" (Hugging Face's Rust tokenizers, the engine
of BertTokenizerFast) run with node by tests/reference/wordpiece_ref.js;
scripts/text_reference.sh fetches it (pinned version and integrity). Writes
OUT_DIR/wordpiece_parity.json, read by tests/text/wordpiece_test.cpp:

  {"reference": "tokenizers@0.23.2", "vocab": PATH,
   "texts": [{"source": "sst2/dev.tsv:12", "text": ..., "ids": [...]}, ...],
   "pairs": [{"a", "b", "max_length", "input_ids", "token_type_ids",
              "attention_mask", "ids_a", "ids_b"}, ...]}

Without node, npm or the registry it prints why and exits 0 without a
fixture: the parity test then skips with a message. If the reference itself
fails, it writes the error to OUT_DIR/wordpiece_parity.error and still exits
0, so that only the parity tests fail (with that message), not every test
that needs the ctest fixture. The fixture is remade only when this script,
wordpiece_ref.js or the vocabulary changed.
"""
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
VOCAB = os.path.join(DATA, "bert_vocab", "vocab.txt")
FIXTURE = "wordpiece_parity.json"
ERROR = "wordpiece_parity.error"

FIRST = 300      # first lines of each dataset file
NON_ASCII = 300  # plus up to this many of its lines with non-ASCII characters
SPREAD = 100     # plus this many lines spread evenly over the rest


# Strings that exercise each rule of BERT's basic tokenizer and of WordPiece.
TRICKY = [
    "", " ", "\t\n\r ", "Hello, World!", "HELLO world", "unaffable", "unaffableness",
    "Héllo naïve café résumé Ångström façade", "e\u0301 E\u0301\u0323 ệ Ệ a\u0323\u0302",
    "我爱北京天安门", "中文abc混合123文本", "\U00020000\U0002A700\U0002B740\U0002B820\U0002F800 \uF900\uFA6D",
    "\u3400\u4DBF\u9FFF", "日本語のテキスト、カタカナ。", "한국어 텍스트 안녕하세요", "ภาษาไทย",
    "العربية نص", "हिन्दी पाठ", "Ελληνικά ΟΔΟΣ Σ σ ς", "İstanbul ıi ß ẞ Kelvin\u212A \u212B \u2126",
    "ﬁ ﬂ ﬀ Ｈｅｌｌｏ　ｗｏｒｌｄ", "\x00a\x07b\x7fc\x85d\ufffde", "zero\u200bwidth\u200djoin\ufeffbom\u00adsoft",
    "line\u2028sep\u2029para", "nb\u00a0sp\u2003em\u3000ideo\u202fnarrow", "\u0378\u0380 unassigned \ue000 private",
    "emoji 😀 🥰 🫠 👍🏽 👨‍👩‍👧 ☺️", "tab\tseparated\tvalues", "crlf\r\nline",
    "don't can't won't it's", "U.S.A. e.g. i.e.", "$100.00 and 50% off!!!", "a-b_c/d\\e|f~g^h`i",
    "¿Qué? ¡Sí! «quote» „German“ ‚single‘ ‹angle› — – … · •", "〈〉《》「」『』【】〔〕",
    "##hash ## # ### tag#in#word", "[CLS] [SEP] [PAD] [MASK] [UNK]", "[cls] [Sep] [MASK]x y[SEP]z",
    "[ CLS ] [[CLS]] [CLS", "x" * 100, "x" * 101, "é" * 101, "a" * 99 + "é",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "http://example.com/path?q=1&r=2 user@example.org", "3.14159 1,000,000 2nd 21st",
    "\U0001D165\U0001D16D\U0001D16E \U0001D16D\U0001D165", "a\u0301\u0360\u0315b",
    "\u1FEF\u1FED\u1FEE\u037E\u0387", "\u0130\u0307 I\u0307", "ǅ ǈ ǋ ǲ", "Ⅻ ⅻ Ⓐ ⓐ",
    "\U00010400\U00010428 \U0001E900", "ﾊﾝｶｸ ｶﾀｶﾅ", "𝐇𝐞𝐥𝐥𝐨 𝕎𝕠𝕣𝕝𝕕",
]


def lines_of(path, encoding):
    """The lines of a file (without their "\\n"; a "\\r" stays). Encoding
    "utf-8|latin-1": UTF-8 if the file is valid UTF-8, else latin-1 (the
    text_corpus files PROVENANCE.md lists as latin-1, and
    gutenberg/chesterton-ball.txt, which is latin-1 too)."""
    with open(path, "rb") as f:
        data = f.read()
    if encoding == "utf-8|latin-1":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    else:
        text = data.decode(encoding)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def pick(rows):
    """Indices of the rows to take: the first FIRST, up to NON_ASCII with
    non-ASCII text, and SPREAD spread over the rest."""
    chosen = list(range(min(FIRST, len(rows))))
    rest = [i for i in range(len(chosen), len(rows)) if not rows[i].isascii()][:NON_ASCII]
    chosen += rest
    if len(rows) > FIRST:
        step = max(1, (len(rows) - FIRST) // SPREAD)
        chosen += list(range(FIRST, len(rows), step))[:SPREAD]
    return sorted(set(chosen))


def dataset_texts():
    """(source, text) for every text dataset file in ../shared/data."""
    out = []

    def add(rel, rows, line_of):
        for i in pick(rows):
            out.append((f"{rel}:{line_of(i)}", rows[i]))

    def tsv(rel, column, header):
        lines = lines_of(os.path.join(DATA, rel), "utf-8")
        start = 1 if header else 0
        rows = [ln.split("\t")[column] if "\t" in ln else ln for ln in lines[start:]]
        add(rel, rows, lambda i: i + start + 1)

    tsv("ag_news/dev.tsv", 0, False)
    tsv("ag_news/test.tsv", 0, False)
    tsv("sms_spam/SMSSpamCollection", 1, True)
    for split in ("train", "dev", "test"):
        tsv(f"sst2/{split}.tsv", 0, True)
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        tsv(f"mr_polarity/{name}", 0, False)
    for name in ("waimai_10k.csv", "ChnSentiCorp_htl_all.csv"):
        rel = f"chinese_sentiment/{name}"
        with open(os.path.join(DATA, rel), encoding="utf-8", newline="") as f:
            records = list(csv.DictReader(f))
        add(rel, [r["review"] for r in records], lambda i: f"record{i + 1}")
    corpus = os.path.join(DATA, "text_corpus")
    for sub in sorted(os.listdir(corpus)):
        for name in sorted(os.listdir(os.path.join(corpus, sub))):
            rel = f"{sub}/{name}"
            if name == "README":
                continue
            lines = lines_of(os.path.join(corpus, rel), "utf-8|latin-1")
            add(f"text_corpus/{rel}", lines, lambda i: i + 1)
    return out


def pairs_of(texts):
    """Sentence pairs from consecutive texts at several max_length values,
    odd and even, and 0 (no truncation)."""
    lengths = [0, 8, 9, 16, 17, 32, 33, 64, 128, 512]
    pairs = []
    for k in range(0, min(len(texts) - 1, 2000), 2):
        pairs.append({"a": texts[k], "b": texts[k + 1], "max_length": lengths[(k // 2) % len(lengths)]})
    return pairs


def stamp_of(impl):
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "wordpiece_ref.js"), VOCAB):
        h.update(open(f, "rb").read())
    h.update(impl.encode())
    return h.hexdigest()


def skip(why):
    print(f"wordpiece_fixtures: no fixture ({why}); the WordPiece parity test will skip")
    sys.exit(0)


def run_reference(impl, texts, pairs):
    if not os.path.exists(VOCAB):
        skip(f"{VOCAB} is absent")
    if shutil.which("node") is None:
        skip("node is not installed")
    fetch = subprocess.run(["bash", os.path.join(ROOT, "scripts", "text_reference.sh")],
                           stdout=subprocess.PIPE, text=True)
    if fetch.returncode != 0:
        skip("scripts/text_reference.sh failed")
    packages = fetch.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        with open(src, "w", encoding="utf-8") as f:
            json.dump({"vocab": VOCAB, "lower_case": True, "texts": texts, "pairs": pairs}, f)
        subprocess.run(["node", os.path.join(HERE, "wordpiece_ref.js"), "--packages", packages,
                        "--impl", impl, src, dst], check=True)
        with open(dst, encoding="utf-8") as f:
            return json.load(f)


def make(out_dir, impl="rust"):
    if not os.path.exists(VOCAB):  # before stamp_of reads it
        skip(f"{VOCAB} is absent")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, FIXTURE if impl == "rust" else f"wordpiece_parity_{impl}.json")
    stamp = path + ".stamp"
    digest = stamp_of(impl)
    if os.path.exists(path) and os.path.exists(stamp) and open(stamp).read() == digest:
        print("wordpiece_fixtures: up to date")
        return
    sources = [("tricky", t) for t in TRICKY] + dataset_texts()
    texts = [t for _, t in sources]
    pairs = pairs_of(texts[len(TRICKY):])
    ref = run_reference(impl, texts, pairs)
    fixture = {"reference": ref["reference"], "vocab": VOCAB,
               "texts": [{"source": s, "text": t, "ids": ids} for (s, t), ids in zip(sources, ref["ids"])],
               "pairs": []}
    index = {t: i for i, t in enumerate(texts)}
    for p, enc in zip(pairs, ref["pairs"]):
        if enc is None:
            continue
        fixture["pairs"].append(dict(p, **enc, ids_a=ref["ids"][index[p["a"]]], ids_b=ref["ids"][index[p["b"]]]))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False)
    os.replace(tmp, path)
    with open(stamp, "w") as f:
        f.write(digest)
    print(f"wordpiece_fixtures: {len(fixture['texts'])} texts and {len(fixture['pairs'])} pairs "
          f"from {ref['reference']} in {path}")


if __name__ == "__main__":
    args = sys.argv[1:]
    impl = "rust"
    if "--impl" in args:
        i = args.index("--impl")
        impl = args[i + 1]
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    error = os.path.join(args[0], ERROR)
    if os.path.exists(error):
        os.remove(error)
    try:
        make(args[0], impl)
    except Exception as e:  # reported by the parity test, see the docstring
        with open(error, "w", encoding="utf-8") as f:
            f.write(f"{type(e).__name__}: {e}")
        print(f"wordpiece_fixtures: failed: {e}", file=sys.stderr)

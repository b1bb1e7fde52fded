#!/usr/bin/python3
"""Every code point through graft's WordPiece and the node reference: a
development check of the Unicode tables, too slow (about a minute) and too
big for the test suite. Run it after regenerating src/text/unicode_tables.inc:

    /usr/bin/python3 tests/reference/wordpiece_sweep.py [--impl rust|js]

Builds a small torch-free tool from src/text and src/core/files.cpp with g++,
tokenises "a{c}b {c} {c}{C}" (C = c.upper()) for every code point c but the
surrogates with both, and prints how many differ, grouped. With Unicode 14
tables and tokenizers@0.23.2 the known differences are:
  - U+2B820..U+2B91F, CJK in google-research/bert and transformers, are not
    CJK in the Rust tokenizer (its range starts at U+2B920);
  - about 500 characters that the Rust tokenizer's older category tables do
    not know as marks (Mn), punctuation (P*) or format characters (Cf), and
    two whose category changed (U+166D, U+1734).
"""
import json
import os
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VOCAB = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "bert_vocab", "vocab.txt"))

TOOL = r"""
#include <iostream>
#include <nlohmann/json.hpp>
#include "graft/core/files.h"
#include "graft/text/wordpiece.h"
int main(int, char** argv) {
  auto wp = graft::WordPiece::from_file(argv[1]);
  auto in = nlohmann::json::parse(graft::read_file(argv[2]));
  nlohmann::json out = nlohmann::json::array();
  for (auto& t : in.at("texts")) out.push_back(wp.ids(t.get<std::string>()));
  std::cout << out.dump();
}
"""


def main():
    impl = sys.argv[sys.argv.index("--impl") + 1] if "--impl" in sys.argv else "rust"
    packages = subprocess.run(["bash", os.path.join(ROOT, "scripts", "text_reference.sh")],
                              stdout=subprocess.PIPE, text=True, check=True).stdout.split()[-1]
    with tempfile.TemporaryDirectory() as tmp:
        src, tool = os.path.join(tmp, "tool.cpp"), os.path.join(tmp, "tool")
        open(src, "w").write(TOOL)
        subprocess.run(["g++", "-std=c++17", "-O2", "-I", os.path.join(ROOT, "include"), src,
                        os.path.join(ROOT, "src/text/wordpiece.cpp"), os.path.join(ROOT, "src/text/unicode.cpp"),
                        os.path.join(ROOT, "src/core/files.cpp"), "-o", tool], check=True)
        cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
        diffs = []
        for k in range(0, len(cps), 65536):
            chunk = cps[k:k + 65536]
            texts = [f"a{chr(c)}b {chr(c)} {chr(c)}{chr(c).upper()}" for c in chunk]
            inp, out = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
            json.dump({"vocab": VOCAB, "texts": texts}, open(inp, "w"))
            subprocess.run(["node", os.path.join(HERE, "wordpiece_ref.js"), "--packages", packages,
                            "--impl", impl, inp, out], check=True)
            ref = json.load(open(out))["ids"]
            got = json.loads(subprocess.run([tool, VOCAB, inp], stdout=subprocess.PIPE, check=True).stdout)
            diffs += [(c, r, g) for c, r, g in zip(chunk, ref, got) if r != g]
    print(f"{len(cps)} code points, {len(diffs)} tokenised differently by graft and {impl}")
    groups = Counter()
    for c, _, _ in diffs:
        cjk = 0x2B820 <= c <= 0x2B91F
        groups["U+2B820..U+2B91F (CJK range)" if cjk else f"category {unicodedata.category(chr(c))}"] += 1
    for g, n in groups.most_common():
        print(f"  {g}: {n}")
    for c, r, g in [d for d in diffs if not 0x2B820 <= d[0] <= 0x2B91F][:30]:
        print(f"  U+{c:04X} {unicodedata.category(chr(c))} {unicodedata.name(chr(c), '?')}: "
              f"reference {r}, graft {g}")


if __name__ == "__main__":
    main()

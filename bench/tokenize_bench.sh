#!/usr/bin/env bash
# WordPiece throughput: graft against the node reference (npm "tokenizers",
# Hugging Face's Rust tokenizers), same text, same vocabulary, one line per call.
#   bash bench/tokenize_bench.sh [GRAFT_TOKENIZE_BENCH_BINARY]
# The text is the first ~1 MB of ../shared/data/text_corpus (latin-1 files
# decoded to UTF-8), 3 passes. Prints one JSON line per side and a table row.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${GRAFT_BUILD_DIR:-build}/graft_tokenize_bench}
DATA=${GRAFT_SHARED_DATA:-../shared/data}
REPEATS=${REPEATS:-3}
[ -x "$bin" ] || { echo "tokenize_bench: build $bin first (target graft_tokenize_bench)" >&2; exit 1; }
packages=$(bash scripts/text_reference.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 - "$DATA/text_corpus" "$tmp/corpus.txt" <<'EOF'
import os, sys
root, out = sys.argv[1], sys.argv[2]
parts, size = [], 0
for sub in sorted(os.listdir(root)):
    for name in sorted(os.listdir(os.path.join(root, sub))):
        if name == "README" or size >= 1_000_000:
            continue
        data = open(os.path.join(root, sub, name), "rb").read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        parts.append(text)
        size += len(text.encode("utf-8"))
text = "".join(parts).encode("utf-8")[:1_000_000].decode("utf-8", "ignore")
open(out, "w", encoding="utf-8").write(text)
EOF

vocab="$DATA/bert_vocab/vocab.txt"
g=$("$bin" "$tmp/corpus.txt" "$vocab" "$REPEATS")
r=$(node tests/reference/wordpiece_ref.js --packages "$packages" --bench "$tmp/corpus.txt" "$vocab" "$REPEATS")
echo "$g"
echo "$r"
/usr/bin/python3 - "$g" "$r" "$REPEATS" > "$tmp/table.md" <<'EOF'
import json, sys
g, r, repeats = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print("| text | graft tokens/s | %s tokens/s, encode per line | same, encodeBatch | graft / per line |" % r["reference"])
print("|---|---|---|---|---|")
print("| %.2f MB text_corpus x%d | %.0f | %.0f | %.0f | %.1f |" % (
    g["bytes"] / repeats / 1e6, repeats, g["tokens_per_second"], r["tokens_per_second"],
    r["batch_tokens_per_second"], g["tokens_per_second"] / r["tokens_per_second"]))
if g["tokens"] != r["tokens"]:
    print(f"note: token counts differ: graft {g['tokens']}, reference {r['tokens']}")
EOF
cat "$tmp/table.md"
# The "tokenize" section of bench/RESULTS.md.
{
  echo "<!-- tokenize:begin -->"
  echo "## WordPiece throughput"
  echo
  echo "Written by \`bash bench/tokenize_bench.sh\` on $(date -u +%Y-%m-%d) (graft on one thread; the"
  echo "reference per line on one thread, its encodeBatch on its own thread pool; load average"
  echo "$(cut -d' ' -f1-3 /proc/loadavg) at the end). The same bert-base-uncased vocabulary"
  echo "and text; the ids are equal (tests/reference/wordpiece_fixtures.py checks them on every text set)."
  echo
  cat "$tmp/table.md"
  echo "<!-- tokenize:end -->"
} > "$tmp/section.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md tokenize "$tmp/section.md"

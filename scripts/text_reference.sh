#!/usr/bin/env bash
# Fetches the BERT tokenizer references that tests/reference/wordpiece_ref.js
# runs with node, into ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/node-tokenizers/:
#   tokenizers-0.23.2/               npm "tokenizers": Hugging Face's Rust
#                                    tokenizers (the engine of BertTokenizerFast)
#                                    as a Node addon; prebuilt .node files for
#                                    each platform ship inside the tarball
#   huggingface-tokenizers-0.2.0/    npm "@huggingface/tokenizers": the pure
#                                    JavaScript port used by transformers.js
#                                    (a second opinion, not used by the tests)
# Each tarball is checked against its pinned sha512 registry integrity.
# Skips what is already there. Prints the folder on stdout.
# Used by tests/reference/wordpiece_fixtures.py and scripts/setup.sh.
set -euo pipefail

dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/node-tokenizers"
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=text_reference

# name@version  tarball-name  folder  integrity
PACKAGES=(
  "tokenizers@0.23.2 tokenizers-0.23.2.tgz tokenizers-0.23.2 sha512-OS99VXTXuGuyUncICcS0hEawgKQlrFVKNU+UlzRsTN03RpOeJiCmcai5nKg3JrdIvUDo7/RC5puVEjlJd2e5oA=="
  "@huggingface/tokenizers@0.2.0 huggingface-tokenizers-0.2.0.tgz huggingface-tokenizers-0.2.0 sha512-LidMHe1FpcSYH4vcSjXooda34pC0M8m1gmDOv7SQi6Iv+ib1zX7J3sHBCC9/3FPCkn2k1b55FneVqMRxrr99pg=="
)

fetch() {
  local package=$1 tgz=$2 folder=$3 integrity=$4
  if [ -f "$dest/$folder/package.json" ]; then
    echo "text_reference: $dest/$folder already present" >&2
    return 0
  fi
  npm_tarball_install "$package" "$tgz" "$integrity" "" "$dest/$folder" || return 1
  echo "text_reference: $package in $dest/$folder" >&2
}

for entry in "${PACKAGES[@]}"; do
  # shellcheck disable=SC2086
  fetch $entry
done
echo "$dest"

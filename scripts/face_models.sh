#!/usr/bin/env bash
# Fetches the TF.js face models shipped in the npm package
# @vladmandic/face-api@1.7.15 (its model/ folder: 7 weights manifests and
# their shards, ~12 MB) into ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15/model/.
# Skips the download when that folder exists; checks the tarball against the
# registry's pinned sha512 integrity. Used by tests/weights/tfjs_test.cpp.
set -euo pipefail
# shellcheck source=face_api.sh
. "$(dirname "$0")/face_api.sh"
NPM_TARBALL_TAG=face_models
dest=$FACE_API_DIR/model

if [ -d "$dest" ]; then
  echo "face_models: $dest already present" >&2
  exit 0
fi
npm_tarball_install "$FACE_API_PACKAGE" "$FACE_API_TGZ" "$FACE_API_INTEGRITY" model "$dest" || exit 1
echo "face_models: $(ls "$dest" | wc -l) files in $dest" >&2

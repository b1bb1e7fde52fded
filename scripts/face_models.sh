#!/usr/bin/env bash
# Fetches the TF.js face models shipped in the npm package
# @vladmandic/face-api@1.7.15 (its model/ folder: 7 weights manifests and
# their shards, ~12 MB) into ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15/model/.
# Skips the download when that folder exists; checks the tarball against the
# registry's pinned sha512 integrity. Used by tests/weights/tfjs_test.cpp.
set -euo pipefail

PACKAGE="@vladmandic/face-api@1.7.15"
INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15"

if [ -d "$dest/model" ]; then
  echo "face_models: $dest/model already present" >&2
  exit 0
fi
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=face_models

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm_tarball_fetch "$PACKAGE" vladmandic-face-api-1.7.15.tgz "$INTEGRITY" "$tmp" || exit 1

mkdir -p "$tmp/out"
tar xzf "$tmp/vladmandic-face-api-1.7.15.tgz" -C "$tmp/out" --strip-components=1 package/model
npm_tarball_move "$tmp/out/model" "$dest/model"
echo "face_models: $(ls "$dest/model" | wc -l) files in $dest/model" >&2

#!/usr/bin/env bash
# Fetches face-api itself (npm @vladmandic/face-api@1.7.15: its dist/ bundle
# face-api.esm.js holds face-api with TensorFlow.js 4.22.0 core and its pure
# JavaScript CPU backend) into
# ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15/package/, for
# tests/reference/face_ref.mjs (the face parity reference, run with node).
# The tarball is checked against its pinned sha512 registry integrity (the
# same tarball scripts/face_models.sh takes the model files from). Skips the
# download when the folder exists. Prints the folder on stdout.
set -euo pipefail
# shellcheck source=face_api.sh
. "$(dirname "$0")/face_api.sh"
NPM_TARBALL_TAG=face_reference
dest=$FACE_API_DIR/package

if [ -f "$dest/dist/face-api.esm.js" ]; then
  echo "face_reference: $dest already present" >&2
  echo "$dest"
  exit 0
fi
npm_tarball_install "$FACE_API_PACKAGE" "$FACE_API_TGZ" "$FACE_API_INTEGRITY" "" "$dest" || exit 1
echo "face_reference: $FACE_API_PACKAGE in $dest" >&2
echo "$dest"

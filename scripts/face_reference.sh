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

PACKAGE="@vladmandic/face-api@1.7.15"
INTEGRITY="sha512-WDMmK3CfNLo8jylWqMoQgf4nIst3M0fzx1dnac96wv/dvMTN4DxC/Pq1DGtduDk1lktCamQ3MIDXFnvrdHTXDw=="
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15"

if [ -f "$dest/package/dist/face-api.esm.js" ]; then
  echo "face_reference: $dest/package already present" >&2
  echo "$dest/package"
  exit 0
fi
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=face_reference

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm_tarball_fetch "$PACKAGE" vladmandic-face-api-1.7.15.tgz "$INTEGRITY" "$tmp" || exit 1

mkdir -p "$tmp/out"
tar xzf "$tmp/vladmandic-face-api-1.7.15.tgz" -C "$tmp/out"
npm_tarball_move "$tmp/out/package" "$dest/package"
echo "face_reference: $PACKAGE in $dest/package" >&2
echo "$dest/package"

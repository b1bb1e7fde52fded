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
command -v npm >/dev/null || { echo "face_reference: npm is needed to fetch $PACKAGE" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tarball="$tmp/vladmandic-face-api-1.7.15.tgz"
[ -f "$tarball" ] || { echo "face_reference: npm pack gave no $tarball" >&2; exit 1; }

got="sha512-$(/usr/bin/python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tarball")"
if [ "$got" != "$INTEGRITY" ]; then
  echo "face_reference: $tarball has integrity $got, expected $INTEGRITY" >&2
  exit 1
fi

mkdir -p "$tmp/out" "$dest"
tar xzf "$tarball" -C "$tmp/out"
# Moved into place whole, so an interrupted run leaves no partial folder.
mv "$tmp/out/package" "$dest/package.partial.$$"
mv "$dest/package.partial.$$" "$dest/package"
echo "face_reference: $PACKAGE in $dest/package" >&2
echo "$dest/package"

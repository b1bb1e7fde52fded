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
command -v npm >/dev/null || { echo "face_models: npm is needed to fetch $PACKAGE" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PACKAGE" >/dev/null)
tarball="$tmp/vladmandic-face-api-1.7.15.tgz"
[ -f "$tarball" ] || { echo "face_models: npm pack gave no $tarball" >&2; exit 1; }

got="sha512-$(/usr/bin/python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest()).decode())' "$tarball")"
if [ "$got" != "$INTEGRITY" ]; then
  echo "face_models: $tarball has integrity $got, expected $INTEGRITY" >&2
  exit 1
fi

mkdir -p "$tmp/out"
tar xzf "$tarball" -C "$tmp/out" --strip-components=1 package/model
mkdir -p "$dest"
# Moved into place whole, so an interrupted run leaves no partial folder.
mv "$tmp/out/model" "$dest/model.partial.$$"
mv "$dest/model.partial.$$" "$dest/model"
echo "face_models: $(ls "$dest/model" | wc -l) files in $dest/model" >&2

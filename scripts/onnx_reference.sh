#!/usr/bin/env bash
# Fetches onnxruntime for node (npm onnxruntime-node 1.20.1, whose tarball
# holds the prebuilt Linux x64 CPU runtime, libonnxruntime.so.1.20.1, and its
# N-API binding; and onnxruntime-common 1.20.1, its JavaScript API) into
# ${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/onnxruntime-1.20.1/node_modules/, for
# tests/reference/onnx_run.js: the runtime that graft's ONNX exports are
# checked against (tests/export/onnx_test.cpp) and timed with (bench/onnx.sh).
# Each tarball is checked against its pinned sha512 registry integrity; no
# install script runs (onnxruntime-node's postinstall only fetches CUDA
# binaries). Skips what is already there. Prints the folder on stdout.
set -euo pipefail
# shellcheck source=npm_tarball.sh
. "$(dirname "$0")/npm_tarball.sh"
NPM_TARBALL_TAG=onnx_reference
dest="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/onnxruntime-1.20.1/node_modules"

# name@version  tarball-name  folder  integrity
PACKAGES=(
  "onnxruntime-common@1.20.1 onnxruntime-common-1.20.1.tgz onnxruntime-common sha512-YiU0s0IzYYC+gWvqD1HzLc46Du1sXpSiwzKb63PACIJr6LfL27VsXSXQvt68EzD3V0D5Bc0vyJTjmMxp0ylQiw=="
  "onnxruntime-node@1.20.1 onnxruntime-node-1.20.1.tgz onnxruntime-node sha512-di/I4HDXRw+FLgq+TyHmQEDd3cEp9iFFZm0r4uJ1Wd7b/WE1VXtKWo8yemex347c6GNF/3Pv86ZfPhIWxORr0w=="
)
for row in "${PACKAGES[@]}"; do
  read -r package tgz folder integrity <<<"$row"
  if [ -f "$dest/$folder/package.json" ]; then
    echo "onnx_reference: $dest/$folder already present" >&2
    continue
  fi
  npm_tarball_install "$package" "$tgz" "$integrity" "" "$dest/$folder" || exit 1
  echo "onnx_reference: $package in $dest/$folder" >&2
done
echo "$dest"

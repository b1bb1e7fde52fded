#!/usr/bin/env bash
# Configures (once) and builds graft incrementally in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${GRAFT_BUILD_DIR:-build}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$BUILD_DIR" -j "$(nproc)" "$@"

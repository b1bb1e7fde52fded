#!/usr/bin/env bash
# Builds everything with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan/ (-DGRAFT_SANITIZE=ON) and runs the whole test suite there.
# Not part of scripts/test.sh: a second full build does not fit CI's time on
# 2 cores; scripts/test.sh runs the parsers of untrusted input under both
# sanitizers instead (graft_sanitize_replay).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f build-asan/build.ninja ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRAFT_SANITIZE=ON >/dev/null
fi
ninja -C build-asan -j "$(nproc)"
cd build-asan
# LibTorch is not instrumented and keeps allocations alive at exit.
ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j 1 --timeout 3600

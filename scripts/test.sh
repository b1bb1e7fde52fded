#!/usr/bin/env bash
# README command 2: install what is missing, build, run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# setup.sh installed Chromium: the browser test must run, not skip.
export GRAFT_REQUIRE_BROWSER=1
(cd "${GRAFT_BUILD_DIR:-build}" && ctest --output-on-failure -j 1 --timeout 900)
# The parsers of untrusted input again, under AddressSanitizer and
# UndefinedBehaviorSanitizer, over their seeds and 20000 mutations each.
bash scripts/build.sh graft_sanitize_replay
ASAN_OPTIONS=detect_leaks=0 OPENCV_IO_MAX_IMAGE_PIXELS=4000000 \
  "${GRAFT_BUILD_DIR:-build}/graft_sanitize_replay" fuzz/corpus 20000

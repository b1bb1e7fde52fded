#!/usr/bin/env bash
# Builds graft's libFuzzer targets (fuzz/) with clang, ASan and libFuzzer in
# build-fuzz/, and runs each for a bounded time on a copy of its seed corpus.
# The tests replay every target (config_fuzz too, which needs the whole
# library and is left out here) over mutated seeds without libFuzzer. Needs clang-14 and libclang-rt-14-dev
# (apt-get install -y clang-14 libclang-rt-14-dev).
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
set -euo pipefail

seconds="${1:-20}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build-fuzz"
cxx="$(command -v clang++-14 || command -v clang++ || true)"
if [[ -z "$cxx" ]]; then
  echo "fuzz.sh: clang++ not found; apt-get install -y clang-14 libclang-rt-14-dev" >&2
  exit 2
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" -DGRAFT_FUZZ=ON -DGRAFT_BUILD_TESTS=OFF >/dev/null
ninja -C "$build" -j"${JOBS:-2}" safetensors_fuzz torch_checkpoint_fuzz tfjs_fuzz idx_fuzz vocab_fuzz text_data_fuzz image_fuzz zip_fuzz image_header_fuzz json_fuzz

# LibTorch is not instrumented and keeps allocations alive at exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
# Images claiming more pixels than this are refused by OpenCV, not allocated.
export OPENCV_IO_MAX_IMAGE_PIXELS=${OPENCV_IO_MAX_IMAGE_PIXELS:-4000000}
status=0
for target in safetensors_fuzz torch_checkpoint_fuzz tfjs_fuzz idx_fuzz vocab_fuzz text_data_fuzz image_fuzz zip_fuzz image_header_fuzz json_fuzz; do
  # The seeds stay untouched; new inputs go to the build folder.
  corpus="$build/corpus/$target"
  mkdir -p "$corpus" "$build/findings/$target"
  echo "== $target: ${seconds}s"
  if ! "$build/$target" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
      -artifact_prefix="$build/findings/$target/" "$corpus" "$root/fuzz/corpus/$target"; then
    echo "fuzz.sh: $target found a failure; see $build/findings/$target/" >&2
    status=1
  fi
done
exit "$status"

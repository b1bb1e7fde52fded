#!/usr/bin/env bash
# graft used from another CMake project (ctest entry install_consumers):
#  1. `cmake --install` into a temporary prefix; only the API header (and
#     core/error.h, which it includes) is installed;
#  2. examples/ configured and built against it with find_package(graft),
#     without graft's precompiled header or LibTorch's headers;
#  3. the examples run: train_probe trains a linear probe on CIFAR-10 JPEGs
#     (akamaster's ResNet-20 as the source), classify's answers equal
#     `graft predict`'s on the same images, face_identify's equal `graft face
#     identify`'s (when face-api's models are here);
#  4. add_subdirectory and FetchContent (from a local path) configure a
#     consumer with graft::graft and graft's tests off; a consumer asking for
#     another major version is refused by find_package.
# Usage: consumers.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
GRAFT="$BUILD/graft"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. install
cmake --install "$BUILD" --prefix "$T/prefix" >/dev/null
for f in bin/graft include/graft/graft.h include/graft/core/error.h; do
  [ -e "$T/prefix/$f" ] || fail "$f not installed"
done
lib=$(find "$T/prefix" -name 'libgraft.so.0' | head -1)
[ -n "$lib" ] || fail "libgraft.so.0 not installed"
# The installed program is a launcher that loads that library (its RUNPATH
# is ../lib of the prefix), not the build folder's copy.
loaded=$(LD_DEBUG=libs "$T/prefix/bin/graft" --version 2>&1) || fail "the installed graft does not start: $loaded"
grep -q "calling init: $T/prefix/.*libgraft.so.0$" <<<"$loaded" || fail "the installed graft did not load $lib"
config=$(find "$T/prefix" -name graftConfig.cmake | head -1)
[ -n "$config" ] || fail "graftConfig.cmake not installed"
n_headers=$(find "$T/prefix/include" -name '*.h' | wc -l)
[ "$n_headers" -eq 2 ] || fail "expected 2 installed headers, found $n_headers"
# libgraft.so exports the API and nothing of LibTorch or graft's internals.
exported=$(nm -D --defined-only -C "$lib" | cut -d' ' -f3-)
internal=$(echo "$exported" | grep -E '^(at::|c10::|torch::|cv::|graft::(BackboneImpl|load_model|train\(|TrainOptions))' || true)
[ -z "$internal" ] || fail "libgraft.so exports internals: $(echo "$internal" | head -3)"
echo "$exported" | grep -q '^graft::Model::load(' || fail "libgraft.so does not export graft::Model::load"
echo "installed: $(cd "$T/prefix" && find . -type f | sort | tr '\n' ' ')"

# 2. build the examples against the installed package
cmake -S "$SRC/examples" -B "$T/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$T/prefix" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
start=$(date +%s)
ninja -C "$T/examples" >/dev/null
echo "examples built in $(( $(date +%s) - start )) s"
if grep -E 'cmake_pch|/torch' "$T/examples/compile_commands.json" >/dev/null; then
  fail "the examples compile with graft's precompiled header or LibTorch's include paths"
fi

# 3. run them
CIFAR="$SRC/../shared/data/cifar10_test_jpg"
AKAMASTER="$SRC/../shared/data/pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th"
if [ -d "$CIFAR" ] && [ -f "$AKAMASTER" ]; then
  mkdir -p "$T/data"
  for c in cat ship truck; do
    mkdir -p "$T/data/$c"
    mapfile -t files < <(ls "$CIFAR/$c" | sort)
    for f in "${files[@]:0:20}"; do cp "$CIFAR/$c/$f" "$T/data/$c/"; done
  done
  "$T/examples/train_probe" "$T/data" "$T/run" resnet20 "$AKAMASTER" > "$T/probe.txt" 2> "$T/probe.err" ||
    fail "train_probe: $(cat "$T/probe.err")"
  cat "$T/probe.txt"
  [ "$(grep -c '^epoch ' "$T/probe.txt")" -ge 1 ] || fail "train_probe printed no epoch"
  [ -f "$T/run/model.safetensors" ] || fail "train_probe wrote no model"
  # The evaluation the example prints equals graft eval's.
  want=$("$GRAFT" eval "$T/run" --data "$T/data" 2>/dev/null | python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])')
  grep -q "accuracy on $T/data: $want " "$T/probe.txt" || fail "train_probe's accuracy is not graft eval's ($want)"

  mapfile -t imgs < <(ls "$CIFAR"/dog/*.jpg "$CIFAR"/ship/*.jpg | sort | sed -n '1,3p;500,502p;1003,1005p')
  "$T/examples/classify" "$T/run" "${imgs[@]}" > "$T/classify.txt" 2> "$T/classify.err" ||
    fail "classify: $(cat "$T/classify.err")"
  "$GRAFT" predict "$T/run" "${imgs[@]}" --top-k 3 --json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    p = json.loads(line)
    label = "unknown" if p.get("unknown") else p["top"][0]["label"]
    print("\t".join([p["input"], label] + ["%s %.6f" % (t["label"], t["probability"]) for t in p["top"]]))
' > "$T/predict.txt"
  diff "$T/predict.txt" "$T/classify.txt" >&2 || fail "classify's answers differ from graft predict's"
  echo "classify = graft predict on ${#imgs[@]} images"
else
  echo "SKIP running train_probe and classify: ../shared/data (CIFAR-10 JPEGs, akamaster ResNet-20) is absent"
fi

MODELS="${GRAFT_CACHE_DIR:-$HOME/.cache/graft}/face-api-1.7.15/model"
FACES="$SRC/../shared/data/att_faces"
if [ -d "$MODELS" ] && [ -d "$FACES" ]; then
  mkdir -p "$T/people"
  for s in s1 s2 s3; do mkdir -p "$T/people/$s"; cp "$FACES/$s"/{1,2,3}.pgm "$T/people/$s/"; done
  probes=("$FACES/s1/9.pgm" "$FACES/s2/9.pgm" "$FACES/s3/10.pgm" "$FACES/s7/9.pgm")
  "$T/examples/face_identify" --no-detect "$T/g.json" "$T/people" "${probes[@]}" > "$T/face.txt" 2>"$T/face.err" || fail "face_identify: $(cat "$T/face.err")"
  "$GRAFT" face identify --no-detect --gallery "$T/g.json" "${probes[@]}" --top-k 1 --json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    p = json.loads(line)
    print("%s\t%s\t%.6f" % (p["input"], p["identity"], p["top"][0]["distance"]))
' > "$T/face_cli.txt"
  # The same identities, the distances within 1e-5 (thread counts may differ).
  python3 - "$T/face_cli.txt" "$T/face.txt" <<'PY' || fail "face_identify's answers differ from graft face identify's"
import sys
a = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
b = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
ok = len(a) == len(b) == 4 and all(x[:2] == y[:2] and abs(float(x[2]) - float(y[2])) <= 1e-5 for x, y in zip(a, b))
if not ok:
    print("graft face identify:", a, "\nface_identify:", b, file=sys.stderr)
sys.exit(0 if ok else 1)
PY
  echo "face_identify = graft face identify on ${#probes[@]} images"
else
  echo "SKIP face_identify: face-api's models or ../shared/data/att_faces absent"
fi

# 4. add_subdirectory, FetchContent, and a version graft is not
for how in add_subdirectory fetchcontent; do
  mkdir -p "$T/$how"
  {
    echo 'cmake_minimum_required(VERSION 3.24)'
    echo 'project(consumer LANGUAGES CXX)'
    if [ $how = add_subdirectory ]; then
      echo "add_subdirectory(\"$SRC\" graft)"
    else
      echo 'include(FetchContent)'
      echo "FetchContent_Declare(graft SOURCE_DIR \"$SRC\")"
      echo 'FetchContent_MakeAvailable(graft)'
    fi
    echo 'add_executable(app app.cpp)'
    echo 'target_link_libraries(app PRIVATE graft::graft)'
    echo 'if(TARGET graft_tests)'
    echo '  message(FATAL_ERROR "graft tests are on in a consumer")'
    echo 'endif()'
  } > "$T/$how/CMakeLists.txt"
  echo '#include <graft/graft.h>
int main() { return graft::version().empty(); }' > "$T/$how/app.cpp"
  cmake -S "$T/$how" -B "$T/$how/build" -G Ninja >/dev/null || fail "$how: configure failed"
  query=$(ninja -C "$T/$how/build" -t query app)
  echo "$query" | grep -q "libgraft.so" || fail "$how: app does not link libgraft.so"
  echo "$how: configures, app links graft::graft, graft's tests off"
done
mkdir -p "$T/v9"
printf 'cmake_minimum_required(VERSION 3.18)\nproject(v9 LANGUAGES CXX)\nfind_package(graft 9.0 REQUIRED)\n' > "$T/v9/CMakeLists.txt"
if cmake -S "$T/v9" -B "$T/v9/build" -DCMAKE_PREFIX_PATH="$T/prefix" > "$T/v9.log" 2>&1; then
  fail "find_package(graft 9.0) accepted graft $("$GRAFT" --version 2>&1 | head -1)"
fi
grep -q "not compatible\|version" "$T/v9.log" || fail "find_package(graft 9.0)'s error does not say why: $(cat "$T/v9.log")"
echo "find_package(graft 9.0) refused: $(grep -m1 -o 'version: [0-9.]*' "$T/v9.log" || true)"
echo "consumers: all checks passed"

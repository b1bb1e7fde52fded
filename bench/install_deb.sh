#!/usr/bin/env bash
# The Debian package, end to end (too slow and too intrusive for CI: it
# installs into /usr): `cpack -G DEB` in the build folder, `apt-get install`
# of graft_<version>_amd64.deb, the examples built against /usr with
# find_package(graft) and run (train_probe on CIFAR-10 JPEGs, then classify,
# whose answers must equal /usr/bin/graft predict's), then the package is
# removed again. With FULL=1 it also builds a consumer that pulls graft in
# with add_subdirectory, all of graft compiled as part of it (minutes).
# Usage: bash bench/install_deb.sh   (as root; after bash scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${GRAFT_BUILD_DIR:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
(cd "$BUILD" && cpack -G DEB >/dev/null)
deb=$(ls "$BUILD"/graft_*_amd64.deb | tail -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb -f "$deb" Package Version Depends
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$(readlink -f "$deb")" >/dev/null
trap 'DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq graft >/dev/null; rm -rf "$T"' EXIT
echo "installed: $(dpkg -L graft | grep -E 'bin/graft$|libgraft|graft.h$|graftConfig.cmake$' | tr '\n' ' ')"

cmake -S examples -B "$T/examples" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$T/examples" >/dev/null
echo "examples built against /usr"
CIFAR="$SRC/../shared/data/cifar10_test_jpg"
AKAMASTER="$SRC/../shared/data/pretrained/resnet_cifar10_akamaster/resnet20-12fca82f.th"
mkdir -p "$T/data"
for c in cat ship truck; do
  mkdir -p "$T/data/$c"
  mapfile -t files < <(ls "$CIFAR/$c" | sort)
  for f in "${files[@]:0:20}"; do cp "$CIFAR/$c/$f" "$T/data/$c/"; done
done
"$T/examples/train_probe" "$T/data" "$T/run" resnet20 "$AKAMASTER" 2>/dev/null | tail -2
mapfile -t imgs < <(ls "$CIFAR"/dog/*.jpg | sort | sed -n '1,5p')
"$T/examples/classify" "$T/run" "${imgs[@]}" 2>/dev/null > "$T/classify.txt"
/usr/bin/graft predict "$T/run" "${imgs[@]}" --top-k 3 --json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    p = json.loads(line)
    label = "unknown" if p.get("unknown") else p["top"][0]["label"]
    print("\t".join([p["input"], label] + ["%s %.6f" % (t["label"], t["probability"]) for t in p["top"]]))
' > "$T/predict.txt"
diff "$T/predict.txt" "$T/classify.txt" && echo "classify (against the package) = /usr/bin/graft predict on ${#imgs[@]} images"

if [ "${FULL:-0}" = 1 ]; then
  mkdir -p "$T/sub"
  printf 'cmake_minimum_required(VERSION 3.24)\nproject(consumer LANGUAGES CXX)\nadd_subdirectory("%s" graft)\nadd_executable(app app.cpp)\ntarget_link_libraries(app PRIVATE graft::graft)\n' "$SRC" > "$T/sub/CMakeLists.txt"
  printf '#include <graft/graft.h>\n#include <iostream>\nint main() { std::cout << "graft " << graft::version() << "\\n"; }\n' > "$T/sub/app.cpp"
  start=$(date +%s)
  cmake -S "$T/sub" -B "$T/sub/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  ninja -C "$T/sub/build" app >/dev/null
  echo "add_subdirectory: app built with all of graft in $(( $(date +%s) - start )) s: $("$T/sub/build/app")"
fi

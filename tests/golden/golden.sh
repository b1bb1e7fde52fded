#!/usr/bin/env bash
# Golden runs for the training-core refactor (issue: one loop, a task table):
# small seeded runs of every way graft trains, recorded before the refactor,
# checked after it. For each run: the sha256 of the weights it saved and
# metrics.csv without its timing columns (seconds, items_per_second).
#
#   bash tests/golden/golden.sh record   # writes tests/golden/expected.txt,
#                                        # keeps the weights in $GOLDEN_DIR
#   bash tests/golden/golden.sh check    # reruns, compares with expected.txt;
#                                        # a differing weight file is compared
#                                        # tensor by tensor with the kept one
#                                        # (max abs difference, 1e-6 allowed)
#
# Needs a build (GRAFT_BUILD_DIR, default build) with its reference fixtures
# (ctest -R fixtures), Debian's Fashion-MNIST, ../shared/data/att_faces and
# the face-api models (scripts/face_models.sh). Not part of the test command:
# about 3 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?usage: golden.sh record|check}
B=$(cd "${GRAFT_BUILD_DIR:-build}" && pwd)
GRAFT="$B/graft"
FIX="$B/fixtures"
GOLDEN_DIR=${GOLDEN_DIR:-$HOME/.cache/graft/golden}
EXPECTED=tests/golden/expected.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FMNIST=/usr/share/datasets/fashion-mnist

common=(--threads 1 --workers 1 --quiet --seed 7)
image=(--data "$FMNIST/train-images-idx3-ubyte.gz" --classes 0,1,2 --per-class 16 --val-split 0.25
       --backbone resnet20 --weights none --epochs 2 --batch-size 8 --augment light
       --cache-dir "$work/cache")

# The text set: two classes told apart by their words (fixture vocabulary w*).
python3 - "$work/text.csv" <<'EOF'
import sys
rows = ["text,label"]
for i in range(24):
    rows.append("w%d w%d w%d,alpha" % (20 + i % 9, 40 + (i * 3) % 7, 400 + i % 5))
    rows.append("w%d w%d w%d,beta" % (120 + i % 9, 140 + (i * 5) % 7, 400 + (i + 2) % 5))
open(sys.argv[1], "w").write("\n".join(rows) + "\n")
EOF
mkdir -p "$work/source"
cp "$FIX/bert/model.safetensors" "$FIX/bert/config.json" "$work/source/"
cp "$FIX/text_model/run/vocab.txt" "$work/source/"
text=(--task text --data "$work/text.csv" --weights "$work/source" --epochs 2 --batch-size 8
      --max-length 16 --val-split 0.25)

# The MLM corpus and a tiny BERT.
printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' the cat dog sat on mat a ran to park . > "$work/vocab.txt"
echo '{"vocab_size": 16, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
       "intermediate_size": 32, "max_position_embeddings": 16}' > "$work/bert.json"
for i in $(seq 60); do echo "the cat sat on the mat ."; echo "a dog ran to the park ."; done > "$work/corpus.txt"

# Face: 4 identities x 4 images of AT&T faces, already cropped.
att=../shared/data/att_faces
for s in 1 2 3 4; do
  mkdir -p "$work/faces/s$s"
  for i in 1 2 3 4; do cp "$att/s$s/$i.pgm" "$work/faces/s$s/"; done
done

run() {  # NAME ARGS...: one run into $work/NAME
  local name=$1
  shift
  "$GRAFT" "$@" --out "$work/$name" > "$work/$name.log" 2>&1 ||
    { echo "golden: $name failed:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
}

run image_linear train "${image[@]}" --strategy linear "${common[@]}"
run image_partial train "${image[@]}" --strategy partial:1 "${common[@]}"
run image_full train "${image[@]}" --strategy full "${common[@]}"
run image_full_nproc2 train "${image[@]}" --strategy full --nproc 2 "${common[@]}"
run text_full train "${text[@]}" --strategy full "${common[@]}"
run text_linear train "${text[@]}" --strategy linear "${common[@]}"
run mlm pretrain --task text --corpus "$work/corpus.txt" --vocab "$work/vocab.txt" \
  --bert-config "$work/bert.json" --max-length 16 --batch-size 16 --epochs 2 --lr 0.003 "${common[@]}"
run face_arcface train --task face --no-detect --finetune arcface --finetune-epochs 1 \
  --data "$work/faces" --threads 1 --quiet

# One line per file: NAME/FILE sha256, then metrics.csv rows without timing.
summary() {
  local name f
  for name in image_linear image_partial image_full image_full_nproc2 text_full text_linear mlm face_arcface; do
    for f in model.safetensors head.safetensors embedder.safetensors; do
      [ -f "$work/$name/$f" ] && echo "$name/$f $(sha256sum < "$work/$name/$f" | cut -c1-64)"
    done
    if [ -f "$work/$name/metrics.csv" ]; then
      cut -d, -f1-6 "$work/$name/metrics.csv" | sed "s|^|$name/metrics.csv |"
    fi
  done
}
summary > "$work/summary.txt"

case "$mode" in
  record)
    cp "$work/summary.txt" "$EXPECTED"
    rm -rf "$GOLDEN_DIR" && mkdir -p "$GOLDEN_DIR"
    for d in "$work"/*/; do
      name=$(basename "$d")
      for f in model.safetensors head.safetensors embedder.safetensors; do
        [ -f "$d/$f" ] && mkdir -p "$GOLDEN_DIR/$name" && cp "$d/$f" "$GOLDEN_DIR/$name/"
      done
    done
    echo "golden: recorded $(wc -l < "$EXPECTED") lines in $EXPECTED; weights kept in $GOLDEN_DIR"
    ;;
  check)
    if diff -q "$EXPECTED" "$work/summary.txt" > /dev/null; then
      echo "golden: all runs match"
      exit 0
    fi
    status=0
    # metrics.csv rows (without timing) must be the same.
    diff -u <(grep metrics.csv "$EXPECTED") <(grep metrics.csv "$work/summary.txt") || status=1
    # Weights whose hash differs: the largest difference, tensor by tensor.
    while read -r file sha; do
      grep -qx "$file $sha" "$EXPECTED" && continue
      if [ ! -f "$GOLDEN_DIR/$file" ]; then
        echo "golden: $file differs and no kept copy is in $GOLDEN_DIR" >&2
        status=1
        continue
      fi
      /usr/bin/python3 - "$GOLDEN_DIR/$file" "$work/$file" "$file" <<'EOF' || status=1
import json, struct, sys
import torch
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); base = 8 + n; out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        dt = {"F32": torch.float32, "I64": torch.int64, "F64": torch.float64}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(b[base + s:base + e]), dtype=dt).reshape(v["shape"])
    return out
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == b.keys(), "%s: other tensor names" % sys.argv[3]
d = max(((a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0) for k in a)
print("golden: %s max abs difference %.3g" % (sys.argv[3], d))
sys.exit(0 if d <= 1e-6 else 1)
EOF
    done < <(grep -v metrics.csv "$work/summary.txt")
    if [ "$status" = 0 ]; then echo "golden: weights within 1e-6, metrics equal"; else echo "golden: DIFFERS" >&2; fi
    exit "$status"
    ;;
  *) echo "usage: golden.sh record|check" >&2; exit 2 ;;
esac

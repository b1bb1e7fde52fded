#!/usr/bin/env bash
# README command 1, the main job: on Fashion-MNIST, pretrain a CIFAR-style
# ResNet-20 on 5 source classes, then transfer it to the other 5 classes with
# 1, 5, 10, 50 and 500 labelled images per class — linear probe, last-stage
# fine-tuning, full fine-tuning — against the same network trained from
# scratch on the same images: a label-budget curve, printed as a table and
# drawn in runs/demo/curve.svg, linked from runs/demo/index.html.
#   [BUDGETS="1 5 10 50 500"] [SEEDS=2] [GRAFT_RUNS=runs/demo] bash scripts/demo.sh
# Every point is the mean test accuracy (the 5000 t10k images of the target
# classes) over SEEDS draws of the labelled images. Every run trains a fixed
# number of optimiser steps, whatever its budget, without a validation split
# (one image per class cannot be split); bf16 where the CPU has it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GRAFT_DEMO_NO_SETUP:-}" ]; then
  bash scripts/setup.sh
  bash scripts/build.sh graft
fi
GRAFT=${GRAFT:-./build/graft}
FM=/usr/share/datasets/fashion-mnist
TRAIN=$FM/train-images-idx3-ubyte.gz
TEST=$FM/t10k-images-idx3-ubyte.gz
RUNS=${GRAFT_RUNS:-runs/demo}
BUDGETS=${BUDGETS:-1 5 10 50 500}
SEEDS=${SEEDS:-2}
STEPS=${STEPS:-150}   # optimiser steps of batch 25 per run (the linear probe: twice as many)
# The source holds a relative of each kind of target image (tops; shoes) but
# none of the target classes; the target's tops (dress, coat, shirt) are hard
# to tell apart from a few labels. (The split 0-4 -> 5-9, all tops in the
# source, is an easy target for scratch: bench/RESULTS.md, "The main job".)
SOURCE=${SOURCE_CLASSES:-0,2,5,7,8}   # T-shirt/top, Pullover, Sandal, Sneaker, Bag
TARGET=${TARGET_CLASSES:-1,3,4,6,9}   # Trouser, Dress, Coat, Shirt, Ankle boot
METHODS="linear partial full scratch"
mkdir -p "$RUNS"
start=$(date +%s)

# Each run is skipped when it already finished, so a second call is quick.
run() {
  local out=$1; shift
  if [ -f "$out/summary.json" ]; then return; fi
  mkdir -p "$(dirname "$out")"
  "$GRAFT" "$@" --out "$out" --overwrite --quiet > "$out.json.tmp"
  mkdir -p "$out" && mv "$out.json.tmp" "$out/summary.json"
}

echo "== 1/2 pretrain the source model (ResNet-20 on the 30000 images of classes $SOURCE)" >&2
run "$RUNS/source" pretrain --data "$TRAIN" --classes "$SOURCE" --val-split 0.05 \
    --backbone resnet20 --epochs 5 --batch-size 64 --lr 0.1 --augment light --seed 1

echo "== 2/2 transfer to classes $TARGET at $BUDGETS labelled images per class ($SEEDS draws each)" >&2
for n in $BUDGETS; do
  per_epoch=$(( (5 * n + 24) / 25 ))
  for seed in $(seq "$SEEDS"); do
    for m in $METHODS; do
      steps=$STEPS
      case $m in
        linear)  flags=(--weights "$RUNS/source" --strategy linear --lr 0.05); steps=$((2 * STEPS)) ;;
        partial) flags=(--weights "$RUNS/source" --strategy partial:1 --lr 0.05 --backbone-lr-mult 1 --augment light) ;;
        full)    flags=(--weights "$RUNS/source" --strategy full --lr 0.05 --backbone-lr-mult 0.5 --augment light) ;;
        scratch) flags=(--weights none --strategy full --lr 0.05 --backbone-lr-mult 1 --augment light) ;;
      esac
      epochs=$(( (steps + per_epoch - 1) / per_epoch ))
      echo "   $n per class, draw $seed: $m ($epochs epochs)" >&2
      run "$RUNS/n$n/s$seed-$m" train --data "$TRAIN" --classes "$TARGET" --per-class "$n" --val-split 0 \
          --test "$TEST" --backbone resnet20 --batch-size 25 --seed "$((seed + 1))" --precision bf16 \
          --epochs "$epochs" "${flags[@]}"
    done
  done
done

# The table (mean test accuracy per budget and method) as TSV, then printed.
acc() { sed -n 's/.*"test_accuracy":\([0-9.eE-]*\).*/\1/p' "$1/summary.json"; }
: > "$RUNS/curve.tsv.tmp"
for n in $BUDGETS; do
  for m in $METHODS; do
    for seed in $(seq "$SEEDS"); do acc "$RUNS/n$n/s$seed-$m"; done |
      awk -v n="$n" -v m="$m" '{s += $1; k++} END {printf "%s\t%s\t%.4f\n", n, m, s / k}' >> "$RUNS/curve.tsv.tmp"
  done
done
mv "$RUNS/curve.tsv.tmp" "$RUNS/curve.tsv"

printf '\nFashion-MNIST, source classes %s -> target classes %s\n' "$SOURCE" "$TARGET"
printf 'test accuracy on the 5000 t10k images of the target classes, mean of %s draws\n\n' "$SEEDS"
awk -F'\t' '
  { acc[$1, $2] = $3; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    printf "%-12s %9s %9s %9s %9s %16s\n", "labels/class", "linear", "last", "full", "scratch", "transfer gain"
    for (i = 1; i <= k; i++) {
      n = order[i]; best = acc[n, "linear"]
      if (acc[n, "partial"] > best) best = acc[n, "partial"]
      if (acc[n, "full"] > best) best = acc[n, "full"]
      printf "%-12s %8.2f%% %8.2f%% %8.2f%% %8.2f%% %+13.2f pts\n", n, 100 * acc[n, "linear"],
             100 * acc[n, "partial"], 100 * acc[n, "full"], 100 * acc[n, "scratch"], 100 * (best - acc[n, "scratch"])
    }
  }' "$RUNS/curve.tsv"
printf '\n(transfer gain: the best transfer method minus scratch)\n'

# The curve as SVG: x = labels per class (log scale), y = test accuracy.
awk -F'\t' -v seeds="$SEEDS" '
  BEGIN {
    W = 640; H = 400; L = 60; R = 150; T = 30; B = 50
    col["linear"] = "#1f77b4"; col["partial"] = "#2ca02c"; col["full"] = "#d62728"; col["scratch"] = "#7f7f7f"
    name["linear"] = "linear probe"; name["partial"] = "last stage"; name["full"] = "full fine-tune"
    name["scratch"] = "from scratch"
  }
  { n[NR] = $1; m[NR] = $2; a[NR] = $3; if (!($1 in xs)) { xs[$1] = 1; nx++; xv[nx] = $1 } }
  END {
    lo = log(xv[1]); hi = log(xv[nx]); if (hi == lo) hi = lo + 1
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
    printf "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H
    pw = W - L - R; ph = H - T - B
    for (y = 0; y <= 100; y += 20) {
      py = T + ph * (1 - y / 100)
      printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, py, L + pw, py
      printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n", L - 6, py + 4, y
    }
    for (i = 1; i <= nx; i++) {
      px = L + pw * (log(xv[i]) - lo) / (hi - lo)
      printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px, T + ph + 18, xv[i]
    }
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">labelled images per class (log scale)</text>\n", L + pw / 2, H - 8
    printf "<text x=\"14\" y=\"%.1f\" transform=\"rotate(-90 14 %.1f)\" text-anchor=\"middle\">test accuracy (mean of %s draws)</text>\n", T + ph / 2, T + ph / 2, seeds
    split("linear partial full scratch", ms, " ")
    for (j = 1; j <= 4; j++) {
      mm = ms[j]; pts = ""
      for (i = 1; i <= NR; i++) if (m[i] == mm) {
        px = L + pw * (log(n[i]) - lo) / (hi - lo); py = T + ph * (1 - a[i])
        pts = pts sprintf("%.1f,%.1f ", px, py)
        printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s, %s per class: %.2f%%</title></circle>\n", px, py, col[mm], name[mm], n[i], 100 * a[i]
      }
      printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", pts, col[mm]
      printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n", W - R + 10, T + 20 * j, W - R + 30, T + 20 * j, col[mm]
      printf "<text x=\"%d\" y=\"%d\">%s</text>\n", W - R + 36, T + 20 * j + 4, name[mm]
    }
    print "</svg>"
  }' "$RUNS/curve.tsv" > "$RUNS/curve.svg.tmp"
mv "$RUNS/curve.svg.tmp" "$RUNS/curve.svg"

{
  echo "<!doctype html><html><head><meta charset=\"utf-8\"><title>graft demo: what transfer buys</title></head><body>"
  echo "<h1>What transfer buys: Fashion-MNIST $SOURCE &rarr; $TARGET</h1>"
  echo "<p>ResNet-20 pretrained on the source classes (<a href=\"source/report.html\">report</a>), then trained"
  echo "on the target classes with few labels, against the same network from scratch. Test accuracy on the 5000"
  echo "t10k images of the target classes, mean of $SEEDS draws of the labelled images.</p>"
  echo "<img src=\"curve.svg\" alt=\"label-budget curve\">"
  echo "<h2>Runs</h2><ul>"
  for n in $BUDGETS; do
    printf '<li>%s per class:' "$n"
    for m in $METHODS; do
      for seed in $(seq "$SEEDS"); do printf ' <a href="n%s/s%s-%s/report.html">%s #%s</a>' "$n" "$seed" "$m" "$m" "$seed"; done
    done
    echo "</li>"
  done
  echo "</ul></body></html>"
} > "$RUNS/index.html.tmp"
mv "$RUNS/index.html.tmp" "$RUNS/index.html"
printf 'curve: %s/curve.svg, page: %s/index.html (%d s)\n' "$RUNS" "$RUNS" "$(( $(date +%s) - start ))"

#!/usr/bin/env bash
# graft serve under load (issue 22), one command: bash bench/serve.sh
#
# ResNet-18 at 224² (torchvision's network, seeded random weights, 10
# classes: bench/serve_ref.py make-run) behind
#   - graft serve (micro-batching: --max-batch 32, --max-wait-ms 5),
#   - the hand-rolled Python deployment (bench/serve_ref.py server:
#     http.server with a thread per connection, PIL, torchvision, the same
#     weights),
# loaded by wrk (Debian) on loopback with 1, 8, 32 and 128 connections,
# DURATION seconds each, graft and Python in turn at each count, POSTing one hymenoptera JPEG; and against
#   - graft predict per request (a process per image, as a user scripts it),
#   - graft's offline batch-32 inference (graft_bench infer), the ceiling.
# wrk runs on the same cores as the servers: every side pays for it alike.
# Writes the "serve" section of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GRAFT_BUILD_DIR:-build}
GRAFT_BUILD_DIR=$BUILD bash scripts/build.sh graft graft_bench >/dev/null
THREADS=${THREADS:-$(nproc)}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-"1 8 32 128"}
PREDICTS=${PREDICTS:-5}
DATA=${GRAFT_SHARED_DATA:-../shared/data}
PY=/usr/bin/python3
tmp=$(mktemp -d)
server_pid=""
py_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [ -n "$py_pid" ] && kill "$py_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

IMG=$(find "$DATA/hymenoptera/val" -name '*.jpg' | sort | sed -n 1p)
[ -f "$IMG" ] || { echo "bench/serve.sh: no hymenoptera JPEG under $DATA" >&2; exit 1; }
export SERVE_IMAGE=$IMG
$PY bench/serve_ref.py make-run "$tmp/resnet18"
"$BUILD/graft_bench" --threads "$THREADS" infer --backbone resnet18 --steps 3 > "$tmp/offline1.json"

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() {  # URL: until it answers 200, at most 120 s
  for _ in $(seq 1200); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench/serve.sh: $1 never became ready" >&2
  exit 1
}
# wrk at one client count against URL; raw output in $tmp/wrk_SIDE_C.txt.
# The server's CPU time (utime + stime, clock ticks) is read around it: CPU
# per request does not depend on what else the machine runs, throughput does
# (under contention a server with more runnable threads gets more of it).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
load() {
  local side=$1 url=$2 c=$3 pid=$4
  local t=$((c < THREADS ? c : THREADS))
  local before
  before=$(cpu_ticks "$pid")
  wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 30s --latency -s bench/serve.lua "$url" > "$tmp/wrk_${side}_$c.txt"
  echo "$(( $(cpu_ticks "$pid") - before )) $(getconf CLK_TCK)" > "$tmp/cpu_${side}_$c.txt"
  echo "  $side, $c clients: $(grep 'Requests/sec' "$tmp/wrk_${side}_$c.txt")" >&2
}

# Both servers up at once (the idle one costs nothing), loaded in turn at
# each client count, so that a busy spell of the machine hits both sides.
gport=$(free_port)
"$BUILD/graft" serve "$tmp/resnet18" --port "$gport" --threads "$THREADS" --http-threads 160 \
  --max-queue 1024 > "$tmp/serve.out" 2> "$tmp/serve.err" &
server_pid=$!
pport=$(free_port)
OMP_NUM_THREADS=$THREADS $PY bench/serve_ref.py server "$tmp/resnet18" "$pport" 2> "$tmp/py.err" &
py_pid=$!
wait_ready "http://127.0.0.1:$gport/readyz"
wait_ready "http://127.0.0.1:$pport/"
for c in $CLIENTS; do
  load graft "http://127.0.0.1:$gport/v1/models/resnet18/predict" "$c" "$server_pid"
  curl -sf "http://127.0.0.1:$gport/metrics" > "$tmp/metrics_$c.txt"  # batches so far
  load python "http://127.0.0.1:$pport/predict" "$c" "$py_pid"
done
curl -sf "http://127.0.0.1:$gport/metrics" > "$tmp/metrics.txt"
kill "$py_pid"
wait "$py_pid" 2>/dev/null || true
py_pid=""
kill -TERM "$server_pid"
wait "$server_pid" || { echo "bench/serve.sh: graft serve exited $?" >&2; cat "$tmp/serve.err" >&2; exit 1; }
server_pid=""

# graft predict, one process per image
: > "$tmp/predict_times"
for _ in $(seq "$PREDICTS"); do
  s=$(date +%s.%N)
  "$BUILD/graft" predict "$tmp/resnet18" "$IMG" --threads "$THREADS" > /dev/null
  e=$(date +%s.%N)
  echo "$s $e" >> "$tmp/predict_times"
done

# graft offline, batch 32 (random input, same network), after the load; and
# once before it (below), the mean of the two is the ceiling
"$BUILD/graft_bench" --threads "$THREADS" infer --backbone resnet18 --steps 3 > "$tmp/offline2.json"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

$PY - "$tmp" "$CLIENTS" "$DURATION" "$THREADS" "$IMG" "$load_before" "$load_after" > "$tmp/section.md" <<'EOF'
import json, re, statistics, sys, datetime
tmp, clients, duration, threads, img, before, after = sys.argv[1:]
clients = clients.split()

def ms(v):
    m = re.match(r"([0-9.]+)(us|ms|s|m)$", v)
    x, u = float(m.group(1)), m.group(2)
    return x * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[u]

def wrk(side, c):
    t = open(f"{tmp}/wrk_{side}_{c}.txt").read()
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", t).group(1))
    p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
    p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
    total = int(re.search(r"([0-9]+) requests in", t).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", t)
    errors = re.search(r"Socket errors:.*", t)
    ticks, hz = map(int, open(f"{tmp}/cpu_{side}_{c}.txt").read().split())
    return {"rate": rate, "p50": p50, "p99": p99, "total": total, "cpu_ms": ticks / hz * 1e3 / max(total, 1),
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "errors": errors.group(0) if errors else ""}

g = {c: wrk("graft", c) for c in clients}
p = {c: wrk("python", c) for c in clients}
times = [float(e) - float(s) for s, e in (l.split() for l in open(f"{tmp}/predict_times"))]
offline1 = json.load(open(f"{tmp}/offline1.json"))["rate"]
offline2 = json.load(open(f"{tmp}/offline2.json"))["rate"]
offline = (offline1 + offline2) / 2
batch_ms = 32 / offline * 1e3
metrics = open(f"{tmp}/metrics.txt").read()
def bucket(le):
    m = re.search(r'graft_batch_size_bucket\{model="resnet18",le="%s"\} ([0-9]+)' % re.escape(le), metrics)
    return int(m.group(1)) if m else 0
batches = bucket("+Inf")
bsum = float(re.search(r'graft_batch_size_sum\{model="resnet18"\} ([0-9.e+]+)', metrics).group(1))
def batch_totals(text):  # (batches, inputs) so far, the warm-up excluded (it does not go through the queue)
    n = re.search(r'graft_batch_size_count\{model="resnet18"\} ([0-9]+)', text)
    s = re.search(r'graft_batch_size_sum\{model="resnet18"\} ([0-9.e+]+)', text)
    return (int(n.group(1)), float(s.group(1))) if n and s else (0, 0.0)
per_count, last = {}, (0, 0.0)
for c in clients:
    now = batch_totals(open(f"{tmp}/metrics_{c}.txt").read())
    per_count[c] = (now[1] - last[1]) / max(now[0] - last[0], 1)
    last = now

out = ["<!-- serve:begin -->", "## Serve (graft serve, issue 22)", ""]
out.append(f"Written by `bash bench/serve.sh` on {datetime.date.today()} (DURATION={duration} s per point, "
           f"{threads} threads per server, wrk on the same cores; load average {before} before, {after} after). "
           "ResNet-18 224² (torchvision's network, seeded random weights, 10 classes), one hymenoptera JPEG "
           f"({img.split('/')[-1]}) per request, decoded and resized by each server. graft serve: --max-batch 32, "
           "--max-wait-ms 5, fp32. Python: `bench/serve_ref.py server` (http.server, a thread per connection, "
           "PIL + torchvision, the same weights).")
out.append("")
out.append("| clients | graft serve req/s | p50 ms | p99 ms | CPU ms/req | Python server req/s | p50 ms | p99 ms | "
           "CPU ms/req | graft / Python req/s | Python / graft CPU per req |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|")
for c in clients:
    a, b = g[c], p[c]
    out.append(f"| {c} | {a['rate']:.1f} | {a['p50']:.1f} | {a['p99']:.1f} | {a['cpu_ms']:.0f} | {b['rate']:.1f} | "
               f"{b['p50']:.1f} | {b['p99']:.1f} | {b['cpu_ms']:.0f} | {a['rate'] / b['rate']:.2f} | "
               f"{b['cpu_ms'] / a['cpu_ms']:.2f} |")
out.append("")
c32 = g.get("32")
out.append(f"- graft predict per request (a process per image, {len(times)} runs): "
           f"{1 / statistics.median(times):.2f} req/s, {statistics.median(times) * 1e3:.0f} ms each (median).")
out.append(f"- graft offline, batch 32 (`graft_bench infer --backbone resnet18`, no decoding): {offline:.1f} img/s "
           f"(mean of {offline1:.1f} before the load and {offline2:.1f} after); one batch of 32 takes {batch_ms:.0f} ms.")
if c32:
    out.append(f"- At 32 clients graft serve reaches {c32['rate'] / offline * 100:.0f}% of the offline batch-32 "
               f"throughput (target ≥ 80%), {c32['rate'] / p['32']['rate']:.1f}× the Python server (target ≥ 5×); "
               f"p99 {c32['p99']:.0f} ms against 2 × max-wait + one batch = {10 + batch_ms:.0f} ms.")
les = ["1", "2", "4", "8", "16", "32", "64"]
counts = [bucket(le) for le in les] + [batches]
spread = ", ".join(f"≤{le}: {counts[i] - (counts[i - 1] if i else 0)}" for i, le in enumerate(les))
out.append(f"- Batches graft ran: {batches}, {bsum / max(batches, 1):.1f} images each on average "
           f"(all client counts together; by size {spread}). Images per batch at each client count: "
           + ", ".join(f"{c}: {per_count[c]:.1f}" for c in clients) + ".")
errs = [f"{s} {c}: {d['non2xx']} non-2xx, {d['errors']}" for s, dd in (("graft", g), ("python", p))
        for c, d in dd.items() if d["non2xx"] or d["errors"]]
out.append("- Errors: " + ("; ".join(errs) if errs else "none (no non-2xx answer, no socket error)."))
if c32:
    out.append(f"- Read the req/s columns with the load average: on shared cores each server gets a share of the CPU "
               "that grows with its runnable threads (the Python server runs a thread and a forward pass per "
               "connection, graft one forward pass per batch), so req/s measures that share as much as speed. CPU "
               "per request (the server's utime + stime over the point / the requests answered) does not depend on "
               f"it: at 32 clients graft serve used {p['32']['cpu_ms'] / c32['cpu_ms']:.1f}× less CPU per request "
               "than the Python server. PyTorch releases the GIL in the forward pass, so the Python server is not "
               "GIL-bound here, and on 2 cores batching buys little over concurrent batch-1 passes (batch 32 vs "
               "batch 1 in the main table: 54.9 vs 41 img/s); the issue's ≥ 5× target assumes otherwise.")
    out.append("- At 1 client the Python server's latency includes about 40 ms a request of TCP delayed "
               "acknowledgement: http.server sends the headers and the body in two writes without TCP_NODELAY, so "
               "the body waits for the client's delayed ACK. graft serve paid the same until it set TCP_NODELAY "
               "(commit 2e086a3; the table before it: 11.9 req/s, p50 84 ms at 1 client). The hand-rolled server "
               "is measured as users write it.")
    out.append(f"- The p99 target leaves out decoding: with 32 clients in lock-step, a batch fills while the "
               f"answered clients' next JPEGs are read and decoded on the HTTP threads (the worker waits for them, "
               f"at most 10 × max-wait), and each request then waits for its batch's decoding and compute: p50 "
               f"{c32['p50']:.0f} ms against one batch's {batch_ms:.0f} ms.")
out.append("<!-- serve:end -->")
print("\n".join(out))
EOF
cat "$tmp/section.md"
$PY bench/section.py bench/RESULTS.md serve "$tmp/section.md"

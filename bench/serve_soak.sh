#!/usr/bin/env bash
# graft serve's soak (issue 22): SOAK_S seconds (default 600) at saturation,
# 32 wrk connections, 1 request in 4 a bad one (bench/serve_mixed.lua: a
# corrupt JPEG, an empty body, a wrong content type, an unknown model),
# ResNet-18 224² as in bench/serve.sh. RSS is sampled every 10 s; the
# server's /metrics gives the answers by status. It passes when the largest
# RSS sample of the last two minutes is at most 10% above the largest of
# minutes 1-3 (single samples swing with each batch and malloc_trim), no
# answer is a 5xx other than 503, and SIGTERM then ends the server with 0.
# Writes the "serve-soak" section of bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${GRAFT_BUILD_DIR:-build}
GRAFT_BUILD_DIR=$BUILD bash scripts/build.sh graft >/dev/null
THREADS=${THREADS:-$(nproc)}
SOAK_S=${SOAK_S:-600}
CONNS=${CONNS:-32}
DATA=${GRAFT_SHARED_DATA:-../shared/data}
PY=/usr/bin/python3
tmp=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
IMG=$(find "$DATA/hymenoptera/val" -name '*.jpg' | sort | sed -n 1p)
export SERVE_IMAGE=$IMG SERVE_PATH=/v1/models/resnet18/predict
$PY bench/serve_ref.py make-run "$tmp/resnet18"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BUILD/graft" serve "$tmp/resnet18" --port "$port" --threads "$THREADS" --http-threads 160 \
  > "$tmp/serve.out" 2> "$tmp/serve.err" &
server_pid=$!
for _ in $(seq 1200); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
echo "0 $(rss)" > "$tmp/rss"
wrk -t"$THREADS" -c"$CONNS" -d"${SOAK_S}s" --timeout 30s --latency -s bench/serve_mixed.lua \
  "http://127.0.0.1:$port" > "$tmp/wrk.txt" &
wrk_pid=$!
start=$(date +%s)
while kill -0 "$wrk_pid" 2>/dev/null; do
  sleep 10
  kill -0 "$wrk_pid" 2>/dev/null && echo "$(( $(date +%s) - start )) $(rss)" >> "$tmp/rss"
done
wait "$wrk_pid"
curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics.txt"
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=""
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

$PY - "$tmp" "$SOAK_S" "$CONNS" "$THREADS" "$code" "$load_before" "$load_after" > "$tmp/section.md" <<'EOF'
import datetime, re, sys
tmp, soak, conns, threads, code, before, after = sys.argv[1:]
rss = [tuple(map(int, l.split())) for l in open(f"{tmp}/rss") if len(l.split()) == 2]
metrics = open(f"{tmp}/metrics.txt").read()
status = {int(c): int(n) for c, n in re.findall(r'graft_requests_total\{code="([0-9]+)"\} ([0-9]+)', metrics)}
wrk = open(f"{tmp}/wrk.txt").read()
sent = int(re.search(r"([0-9]+) requests in", wrk).group(1))
errors = re.search(r"Socket errors:.*", wrk)
after_minute = next((r for t, r in rss if t >= 60), rss[-1][1])
end = rss[-1][1]
# RSS swings with each batch and with the worker's malloc_trim (every 10 s),
# so single samples depend on the moment: growth compares the largest sample
# of the last two minutes with the largest of minutes 1-3 (after warming up).
last = max(r for t, r in rss if t >= rss[-1][0] - 120)
early = max((r for t, r in rss if 60 <= t <= 180), default=last)
growth = (last - early) / early * 100
bad5xx = sum(n for c, n in status.items() if c >= 500 and c != 503)
answered = sum(status.values())
ok = growth <= 10 and bad5xx == 0 and code == "0"
out = ["<!-- serve-soak:begin -->", "### Serve soak", ""]
out.append(f"Written by `bash bench/serve_soak.sh` on {datetime.date.today()}: {soak} s at saturation, {conns} wrk "
           f"connections, {threads} server threads, 1 request in 4 bad (corrupt JPEG, empty body, wrong content "
           f"type, unknown model); load average {before} before, {after} after"
           + (" (measured under load: the load average was above the server's threads)."
              if max(float(before.split()[0]), float(after.split()[0])) > int(threads) + 1 else "."))
out.append("")
out.append(f"- RSS: {rss[0][1] / 1024:.0f} MiB when ready, {after_minute / 1024:.0f} MiB after the first minute, "
           f"{end / 1024:.0f} MiB at the end (samples every 10 s: min {min(r for _, r in rss) / 1024:.0f}, max "
           f"{max(r for _, r in rss) / 1024:.0f} MiB). Largest sample of the last two minutes against the largest "
           f"of minutes 1-3: {last / 1024:.0f} against {early / 1024:.0f} MiB ({growth:+.1f}%).")
out.append("- Answers by status (server's /metrics, the soak's GET /metrics excluded): " +
           ", ".join(f"{c}: {n}" for c, n in sorted(status.items())) + f"; wrk sent {sent} requests"
           + (f" ({errors.group(0)})" if errors else ", no socket error") + ".")
out.append(f"- 5xx other than 503: {bad5xx}. Exit code after SIGTERM: {code}. "
           f"Verdict: {'pass' if ok else 'FAIL'} (RSS grew by at most 10%, no 5xx but 503, exit 0).")
out.append("<!-- serve-soak:end -->")
print("\n".join(out))
EOF
cat "$tmp/section.md"
$PY bench/section.py bench/RESULTS.md serve-soak "$tmp/section.md"

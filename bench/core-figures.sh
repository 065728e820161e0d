#!/usr/bin/env bash
# The figures of the core issue, measured on this machine in one run:
#  1. wrk -t1 -c100 -d10s on a route of 5 x 1 KiB upstreams (prefix 50) from the test origin:
#     requests/s, p50/p99, the proxy's peak RSS and threads, upstream connection reuse.
#  2. Peak RSS of the proxy streaming 5 x 100 MiB upstreams (prefix 1 KiB) against 5 x 1 KiB.
# Usage: bench/core-figures.sh [workers]   (release build; loopback only; stops what it starts)
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-1}
swift build -c release --product stream-proxy >/dev/null
bin=.build/release/stream-proxy
oport=19101; pport=19100
o=http://127.0.0.1:$oport
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

$bin origin --listen 127.0.0.1:$oport --log-level warning & pids+=($!)
small="$o/bytes/1024"; huge="$o/bytes/104857600"
$bin serve --listen 127.0.0.1:$pport --workers "$workers" --log-level warning \
  --route "w1@50=$small,$small,$small,$small,$small" \
  --route "w3@1024=$huge,$huge,$huge,$huge,$huge" \
  --route "w1k@1024=$small,$small,$small,$small,$small" & proxy=$!; pids+=($proxy)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$pport/healthz" >/dev/null && break; sleep 0.1; done

status() { awk -v k="$1:" '$1==k {print $2}' /proc/$proxy/status; }
echo "proxy: workers=$workers idle RSS $(status VmRSS) kB, threads $(status Threads)"

curl -s "$o/stats/reset" >/dev/null
wrk -t1 -c100 -d10s --latency "http://127.0.0.1:$pport/stream/w1" > /tmp/core-wrk.txt
grep -E "Requests/sec|^ +50%|^ +99%" /tmp/core-wrk.txt
echo "proxy after W1: peak RSS $(status VmHWM) kB, threads $(status Threads)"
stats=$(curl -s "$o/stats")
echo "origin: $stats"
python3 - "$stats" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print(f"upstream requests {s['requests'] - 1}, connections opened {s['connectionsAccepted']}, "
      f"reuse {1 - s['connectionsAccepted'] / max(1, s['requests'] - 1):.4f}")
PY

# Memory: many streams over huge bodies vs small ones, sequentially from 10 clients.
rss_during() {
  local route=$1
  kill "$proxy"; wait "$proxy" 2>/dev/null || true
  $bin serve --listen 127.0.0.1:$pport --workers "$workers" --log-level warning \
    --route "w3@1024=$huge,$huge,$huge,$huge,$huge" --route "w1k@1024=$small,$small,$small,$small,$small" & proxy=$!; pids+=($proxy)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$pport/healthz" >/dev/null && break; sleep 0.1; done
  wrk -t1 -c10 -d5s "http://127.0.0.1:$pport/stream/$route" | grep -E "Requests/sec" | sed "s/^/$route /"
  echo "$route peak RSS $(status VmHWM) kB"
}
rss_during w1k
rss_during w3

#!/usr/bin/env bash
# W1 (5 x 1 KiB, prefix 50) against an nginx origin with five distinct URLs, closed loop at each
# concurrency in CS, REPS times: streams/s, proxy CPU µs per stream (from /proc of the proxy
# alone), and the pool's counters (connections opened, reused, given up). Release build unless
# BIN names another binary (to compare builds in one sitting). Loopback only.
#
#   bench/w1-nginx.sh                       (CS="10 100 1000" REPS=3 N=20000 WORKERS=2)
#   BIN=/path/to/stream-proxy bench/w1-nginx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CS=${CS:-10 100 1000}
REPS=${REPS:-3}
N=${N:-20000}
WORKERS=${WORKERS:-2}
EXTRA=${EXTRA:-}
./scripts/install-deps.sh
if [ -z "${BIN:-}" ]; then swift build -c release --product stream-proxy >/dev/null; BIN=.build/release/stream-proxy; fi

NPORT=19340; PPORT=19341
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh
# shellcheck disable=SC2086
$BIN serve --listen 127.0.0.1:$PPORT --workers "$WORKERS" --log-level warning --max-streams 20000 $EXTRA \
  --route "w1@50=$U?u=0,$U?u=1,$U?u=2,$U?u=3,$U?u=4" & PP=$!; pids+=($PP)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PPORT/healthz" >/dev/null 2>&1 && curl -sf "$U" >/dev/null 2>&1 && break; sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
counter() { curl -s "http://127.0.0.1:$PPORT/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $2} END {printf "%d", s}'; }
hz=$(getconf CLK_TCK)
echo "c,rep,streams_per_s,proxy_cpu_us_per_stream,opened,reused,given_up,pokes,errors"
for c in $CS; do
  for rep in $(seq "$REPS"); do
    p0=$(ticks $PP); o0=$(counter streamproxy_upstream_connections_opened_total); r0=$(counter streamproxy_upstream_connections_reused_total)
    g0=$(counter streamproxy_upstream_connections_given_up_total); k0=$(counter streamproxy_upstream_pool_pokes_total)
    out=$($BIN bench --json -c "$c" -n "$N" --timeout 60s "http://127.0.0.1:$PPORT/stream/w1")
    p=$(( $(ticks $PP) - p0 ))
    o=$(( $(counter streamproxy_upstream_connections_opened_total) - o0 )); r=$(( $(counter streamproxy_upstream_connections_reused_total) - r0 ))
    g=$(( $(counter streamproxy_upstream_connections_given_up_total) - g0 )); k=$(( $(counter streamproxy_upstream_pool_pokes_total) - k0 ))
    python3 - "$out" "$c" "$rep" "$p" "$hz" "$N" "$o" "$r" "$g" "$k" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); c, rep, ticks, hz, n = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
errs = ";".join(f"{k} {v}" for k, v in d["errors"].items()) or "none"
print(f"{c},{rep},{d['streamsPerSecond']:.0f},{ticks * 1e6 / hz / n:.0f},{sys.argv[7]},{sys.argv[8]},{sys.argv[9]},{sys.argv[10]},{errs}")
PY
  done
done

#!/usr/bin/env bash
# The disconnect storm of issue 9, against an nginx origin: wrk -t1 -c100 drops 100 streams
# mid-flight at the end of its run, and at once `stream-proxy bench -c 100 --new-connections`
# (each stream on a new connection, as EventSource clients do) measures what is left of the pool.
# ROUNDS rounds in a row on one proxy; per round: streams/s, errors by kind, done max, and the
# pool's leases against its idle connections afterwards (equal when nothing leaked).
# Writes OUT/storm-roundN.json (and .metrics.txt); report.py renders them. Loopback only.
#
#   bench/storm.sh                 (ROUNDS=5 DURATION=5s OUT=bench/out)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
OUT=${OUT:-bench/out}
WORKERS=${WORKERS:-2}
mkdir -p "$OUT"
rm -f "$OUT"/storm-*

./scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product stream-proxy >/dev/null
BIN=.build/release/stream-proxy

NPORT=19330; PPORT=19331
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh
ROUTE="storm@50=$U?u=0,$U?u=1,$U?u=2,$U?u=3,$U?u=4"
$BIN serve --listen 127.0.0.1:$PPORT --workers "$WORKERS" --log-level warning --max-connections 100 \
  --max-connections-per-host 100 --max-keepalive 100 --route "$ROUTE" & PROXY=$!; pids+=($PROXY)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PPORT/healthz" >/dev/null 2>&1 && curl -sf "$U" >/dev/null 2>&1 && break; sleep 0.1; done
echo "storm: stream-proxy serve --workers $WORKERS --max-connections 100 --max-connections-per-host 100 --max-keepalive 100, nginx origin, route $ROUTE" >> "$OUT/settings.txt"

for r in $(seq "$ROUNDS"); do
  wrk -t1 -c100 -d"$DURATION" "http://127.0.0.1:$PPORT/stream/storm" > "$OUT/storm-wrk-round$r.txt"
  $BIN bench --json -c 100 -d "$DURATION" --new-connections "http://127.0.0.1:$PPORT/stream/storm" > "$OUT/storm-round$r.json"
  sleep 0.5
  curl -s "http://127.0.0.1:$PPORT/metrics" > "$OUT/storm-round$r.metrics.txt"
  python3 - "$OUT/storm-round$r.json" "$OUT/storm-round$r.metrics.txt" "$r" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
m = {}
for line in open(sys.argv[2]).read().splitlines():
    if line and not line.startswith("#"):
        name = line.split("{")[0].split(" ")[0]
        m[name] = m.get(name, 0) + float(line.rsplit(" ", 1)[1])
print(f"  round {sys.argv[3]}: {d['streamsPerSecond']} streams/s, errors {d['errors'] or 'none'}, done max {d['done'].get('maxMs')} ms, "
      f"leases {m.get('streamproxy_upstream_connections_open', 0):.0f} / idle {m.get('streamproxy_upstream_connections_idle', 0):.0f}")
PY
done

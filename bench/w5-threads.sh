#!/usr/bin/env bash
# W5 (refused, unresolvable, stalled, two good; c=100, as in bench/run.sh) against BIN with 2
# workers: the threads the proxy had at idle and the most it had under load, sampled every 0.2 s
# from /proc. Issue 11: no resolver thread (libcurl's threaded resolver made it 13).
#   BIN=.build/release/stream-proxy bench/w5-threads.sh
# NAME=no-such-host.example.net makes the unresolvable upstream a real query (.invalid is
# answered at once, RFC 6761).
set -euo pipefail
BIN=${BIN:-.build/release/stream-proxy}; DURATION=${DURATION:-10s}
OPORT=19401; PPORT=19400; O=http://127.0.0.1:$OPORT
$BIN origin --listen 127.0.0.1:$OPORT --log-level warning & opid=$!
$BIN serve --listen 127.0.0.1:$PPORT --workers 2 --log-level warning \
  --route "w5@1024=http://127.0.0.1:1/x,http://${NAME:-no-such-host.invalid}/x,$O/stall,$O/bytes/1024,$O/bytes/1024" & ppid=$!
trap 'kill $opid $ppid 2>/dev/null; wait 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PPORT/healthz >/dev/null 2>&1 && break; sleep 0.1; done
echo "idle threads: $(awk '/Threads/{print $2}' /proc/$ppid/status)"
max=0; ( while kill -0 $ppid 2>/dev/null; do awk '/Threads/{print $2}' /proc/$ppid/status; sleep 0.2; done ) > /tmp/w5-threads.$$ & spid=$!
$BIN bench -c 100 -d "$DURATION" --timeout 60s "http://127.0.0.1:$PPORT/stream/w5" | tail -25
kill $spid 2>/dev/null || true
echo "max threads during load: $(sort -n /tmp/w5-threads.$$ | tail -1)"; rm -f /tmp/w5-threads.$$

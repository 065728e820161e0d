#!/usr/bin/env bash
# CPU cost of one W1 stream in each of the three processes that share the machine: the test
# origin, the proxy and the load generator. Runs N streams (closed loop, c=100) REPS times and
# prints streams/s and CPU microseconds per stream for each process (from /proc/PID/stat and
# the harness's own rusage). Release build; loopback only.
#
#   bench/cost.sh                    (N=10000 REPS=3)
#   WRK=1 bench/cost.sh              (wrk -t1 -c100 -d5s instead of stream-proxy bench)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
REPS=${REPS:-3}
WORKERS=${WORKERS:-$(nproc)}
./scripts/install-deps.sh
if [ "${WRK:-0}" = 1 ] && ! command -v wrk >/dev/null; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; fi
swift build -c release --product stream-proxy >/dev/null
BIN=.build/release/stream-proxy
O=http://127.0.0.1:19311/bytes/1024
$BIN origin --listen 127.0.0.1:19311 --log-level warning & OP=$!
$BIN serve --listen 127.0.0.1:19310 --workers "$WORKERS" --log-level warning --route "w1@50=$O,$O,$O,$O,$O" & PP=$!
trap 'kill $OP $PP 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:19310/healthz >/dev/null 2>&1 && break; sleep 0.1; done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for _ in $(seq "$REPS"); do
  o0=$(ticks $OP); p0=$(ticks $PP)
  if [ "${WRK:-0}" = 1 ]; then
    rate=$(wrk -t1 -c100 -d5s --timeout 10s http://127.0.0.1:19310/stream/w1 | awk '/Requests\/sec/ {print $2}')
    n=$(awk -v r="$rate" 'BEGIN {print int(r * 5)}'); harness="-"
  else
    out=$($BIN bench --json -c 100 -n "$N" http://127.0.0.1:19310/stream/w1)
    rate=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["streamsPerSecond"])' "$out")
    harness=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["cpuSeconds"] * 1e6 / int(sys.argv[2])))' "$out" "$N")
    n=$N
  fi
  o=$(( $(ticks $OP) - o0 )); p=$(( $(ticks $PP) - p0 ))
  echo "streams/s $rate   CPU µs per stream: origin $(( o * 1000000 / hz / n ))  proxy $(( p * 1000000 / hz / n ))  harness $harness"
done

#!/usr/bin/env bash
# Two or more builds compared in one sitting: W1 (5 x 1 KiB from nginx, five distinct URLs,
# prefix 50) at concurrency C, each build on a fresh proxy (2 workers) per run, the builds
# alternating so that the machine's drift falls on all of them alike. Prints each run's proxy
# CPU per stream (user and system ticks from /proc, over the streams completed).
#
#   bench/ab.sh 100 old/stream-proxy .build/release/stream-proxy     (REPS=3, D=6s)
#
# CPU time on this shared machine moves by 10-20% between runs; instruction counts
# (bench/callgrind.sh) are what repeats. Use this for what callgrind cannot see (the kernel, two
# workers, concurrency) and read it pair by pair.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:?usage: bench/ab.sh C BIN...}; shift
[ $# -ge 1 ] || { echo "usage: bench/ab.sh C BIN..." >&2; exit 2; }
REPS=${REPS:-3}; D=${D:-6s}
./scripts/install-deps.sh
swift build -c release --product stream-proxy >/dev/null
HARNESS=.build/release/stream-proxy
NPORT=19470; PPORT=19471
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh
ROUTE="w1@50=$U?u=0,$U?u=1,$U?u=2,$U?u=3,$U?u=4"
hz=$(getconf CLK_TCK)
for r in $(seq "$REPS"); do
  for bin in "$@"; do
    "$bin" serve --listen 127.0.0.1:$PPORT --workers 2 --log-level warning --max-streams 20000 --route "$ROUTE" 2>/dev/null & proxy=$!
    for _ in $(seq 100); do curl -sf http://127.0.0.1:$PPORT/healthz >/dev/null 2>&1 && break; sleep 0.1; done
    "$HARNESS" bench -c "$C" -n 2000 http://127.0.0.1:$PPORT/stream/w1 >/dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' /proc/$proxy/stat)
    json=$("$HARNESS" bench --json -c "$C" -d "$D" http://127.0.0.1:$PPORT/stream/w1)
    read -r u1 s1 < <(awk '{print $14, $15}' /proc/$proxy/stat)
    kill $proxy; wait $proxy 2>/dev/null || true
    n=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["completed"])' "$json")
    us() { echo $(( $1 * 1000000 / hz / n )); }
    echo "round $r $bin c=$C: $(us $((u1 + s1 - u0 - s0))) µs CPU/stream (user $(us $((u1 - u0))), system $(us $((s1 - s0)))), $n streams"
  done
done

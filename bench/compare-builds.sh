#!/usr/bin/env bash
# Two builds of stream-proxy on make bench's W1 (5 x 1 KiB from the built-in origin, prefix 50,
# closed loop), interleaved in one sitting so that machine drift hits both alike: streams/s and
# proxy CPU µs per stream (from /proc of the proxy alone) per run, then the medians and their
# ratio. Loopback only.
#
#   bench/compare-builds.sh OLD_BINARY NEW_BINARY      (C=100 REPS=5 DURATION=10s WORKERS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: compare-builds.sh OLD_BINARY NEW_BINARY}
NEW=${2:?usage: compare-builds.sh OLD_BINARY NEW_BINARY}
C=${C:-100}
REPS=${REPS:-5}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-2}
OPORT=19351; PPORT=19350
O=http://127.0.0.1:$OPORT
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"
wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 did not come up" >&2; return 1; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

"$NEW" origin --listen 127.0.0.1:$OPORT --log-level warning & pids+=($!)
wait_up $OPORT /stats
route="w1@50=$O/bytes/1024,$O/bytes/1024,$O/bytes/1024,$O/bytes/1024,$O/bytes/1024"
results=$(mktemp)
echo "build,rep,streams_per_s,proxy_cpu_us_per_stream,errors"
for rep in $(seq "$REPS"); do
  for build in old new; do
    bin=$OLD; [ "$build" = new ] && bin=$NEW
    "$bin" serve --listen 127.0.0.1:$PPORT --workers "$WORKERS" --log-level warning --route "$route" & proxy=$!
    wait_up $PPORT /healthz
    t0=$(ticks $proxy)
    out=$("$NEW" bench --json -c "$C" -d "$DURATION" "http://127.0.0.1:$PPORT/stream/w1")
    t=$(( $(ticks $proxy) - t0 ))
    kill "$proxy"; wait "$proxy" 2>/dev/null || true
    python3 - "$out" "$build" "$rep" "$t" "$hz" <<'PY' | tee -a "$results"
import json, sys
d = json.loads(sys.argv[1]); build, rep, ticks, hz = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
done = d["completed"]
errors = sum(int(v) for v in d["errors"].values()) if d["errors"] else 0
print(f"{build},{rep},{d['streamsPerSecond']:.0f},{ticks / hz * 1e6 / max(done, 1):.0f},{errors}")
PY
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
med = {b: (statistics.median(float(r[2]) for r in rows if r[0] == b), statistics.median(float(r[3]) for r in rows if r[0] == b)) for b in ("old", "new")}
print(f"median old: {med['old'][0]:.0f} streams/s, {med['old'][1]:.0f} us CPU/stream")
print(f"median new: {med['new'][0]:.0f} streams/s, {med['new'][1]:.0f} us CPU/stream")
print(f"new/old: streams/s x{med['new'][0] / med['old'][0]:.3f}, CPU per stream x{med['new'][1] / med['old'][1]:.3f}")
PY
rm -f "$results"

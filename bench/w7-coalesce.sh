#!/usr/bin/env bash
# W7 (issue 12): C concurrent clients (closed loop, `stream-proxy bench -c C`) on one route of five
# distinct nginx URLs that each answer after 200 ms, with and without coalescing, under each pool
# setting in POOLS:
#   default  the proxy's defaults (maxConnectionsPerHost 10): uncoalesced, 1000 clients queue for
#            the pool and most upstreams fail at poolTimeout;
#   wide     maxConnections, maxConnectionsPerHost and maxKeepalive 5000: room for all 5000
#            fetches, so nothing queues and the halves differ in CPU and origin load only.
# Every run measures, over the bench process's whole run (DURATION of starting streams, then the
# open ones ending; the harness's own streams/s leaves that tail's time out, which with streams
# of 200 ms to 5 s would count up to C streams too many): streams/s (those whose five upstreams
# all delivered, and all that got `done`); upstream fetches/s as the origin counts them (nginx's
# log of /slow/, bench/w7_fetches.py) and the most it had in flight at once (of one URL, in all);
# proxy CPU per stream (from /proc of the proxy alone); done p99. The two halves run on two
# proxies started side by side with their runs interleaved (off, on; on, off; ...), so a noisy
# machine's drift favours neither, REPS times; bench/w7_summary.py prints the medians and the ratios on / off.
# The coalesced half needs a binary with `--coalesce`; without one it is skipped (and said so).
# Release build unless BIN names another binary. OUT=DIR keeps the per-run CSV (DIR/W7-runs.csv,
# as bench/run.sh does for BENCHMARKS.md). Loopback only; about 45 s per pool setting.
#
#   bench/w7-coalesce.sh                 (C=1000 REPS=3 DURATION=5s WORKERS=2 POOLS="default wide")
set -euo pipefail
cd "$(dirname "$0")/.."
C=${C:-1000}
REPS=${REPS:-3}
DURATION=${DURATION:-5s}
WORKERS=${WORKERS:-2}
POOLS=${POOLS:-default wide}
if [ -z "${BIN:-}" ]; then
  ./scripts/install-deps.sh
  swift build -c release --product stream-proxy >/dev/null
  BIN=.build/release/stream-proxy
fi

NPORT=19360; OFFPORT=19361; ONPORT=19362
NGINX_CONF=bench/nginx/delay.conf
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh
LOG=$NGINX_DIR/fetches.log
S=http://127.0.0.1:$NPORT/slow
ROUTE="w7@1024=$S/0,$S/1,$S/2,$S/3,$S/4"
if [ -n "${OUT:-}" ]; then mkdir -p "$OUT"; CSV=$OUT/W7-runs.csv; else CSV=$NGINX_DIR/W7-runs.csv; fi
echo "pool,coalesce,rep,clients,workers,settings,seconds,completed,clean,fetches,max_same_url,max_all,proxy_ticks,hz,done_p99_ms,errors" > "$CSV"
COALESCE=0
if grep -q -- '--coalesce' <<< "$($BIN serve --help 2>&1)"; then COALESCE=1; else echo "W7: $BIN has no --coalesce: the coalesced half is skipped" >&2; fi

pool_flags() {
  case $1 in
    default) echo "" ;;
    wide) echo "--max-connections 5000 --max-connections-per-host 5000 --max-keepalive 5000" ;;
    *) echo "unknown pool setting $1" >&2; return 2 ;;
  esac
}
wait_up() {
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "port $1 did not come up" >&2; return 1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run POOL MODE REP PORT PID SETTINGS: one bench run against the proxy PID on PORT, one CSV row.
run() {
  local pool=$1 mode=$2 rep=$3 port=$4 pid=$5 settings=$6 offset t0 out fetches most all
  offset=$(stat -c %s "$LOG")
  t0=$(ticks "$pid")
  local w0=$EPOCHREALTIME
  out=$($BIN bench --json -c "$C" -d "$DURATION" --timeout 60s "http://127.0.0.1:$port/stream/w7")
  local t=$(( $(ticks "$pid") - t0 )) wall
  wall=$(( ${EPOCHREALTIME/./} - ${w0/./} ))
  read -r fetches most all < <(python3 bench/w7_fetches.py "$LOG" "$offset")
  python3 - "$CSV" "$out" "$wall" "$pool" "$mode" "$rep" "$C" "$WORKERS" "$settings" "$fetches" "$most" "$all" "$t" "$hz" <<'PY'
import csv, json, sys
path, d, wall = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]) / 1e6
if "completedClean" not in d:
    sys.exit("W7: this stream-proxy bench does not report completedClean (streams without an error event); build a newer one")
pool, mode, rep, clients, workers, settings, fetches, most, every, ticks, hz = sys.argv[4:15]
errors = "; ".join(f"{k} {v}" for k, v in d["errors"].items())
p99 = d["done"].get("p99Ms", "")
with open(path, "a", newline="") as f:
    csv.writer(f).writerow([pool, mode, rep, clients, workers, settings, f"{wall:.3f}", d["completed"], d["completedClean"],
                            fetches, most, every, ticks, hz, p99, errors])
s, n = wall, d["completed"]
print(f"  {pool} coalesce {mode} run {rep}: {n / s:.0f} streams/s ({d['completedClean'] / s:.0f} with every upstream ok), "
      f"{int(fetches) / s:.0f} fetches/s, at most {most} of one URL and {every} in all at once, "
      f"{int(ticks) / int(hz) * 1e6 / max(1, n):.0f} µs CPU/stream, done p99 {p99} ms, errors: {errors or 'none'}")
PY
}

for pool in $POOLS; do
  flags=$(pool_flags "$pool")
  echo "== W7 $pool pool: $C clients, 5 URLs answering after 200 ms, $WORKERS workers${flags:+, $flags}"
  # shellcheck disable=SC2086
  $BIN serve --listen 127.0.0.1:$OFFPORT --workers "$WORKERS" --log-level warning $flags --route "$ROUTE" & OFF=$!; pids+=($OFF)
  wait_up $OFFPORT
  if [ $COALESCE = 1 ]; then
    # shellcheck disable=SC2086
    $BIN serve --listen 127.0.0.1:$ONPORT --workers "$WORKERS" --log-level warning $flags --coalesce --route "$ROUTE" & ON=$!; pids+=($ON)
    wait_up $ONPORT
  fi
  for rep in $(seq "$REPS"); do
    # off, on; then on, off; ...: neither half always runs first.
    for mode in $( [ $((rep % 2)) = 1 ] && echo off on || echo on off ); do
      if [ $mode = off ]; then run "$pool" off "$rep" $OFFPORT $OFF "--workers $WORKERS${flags:+ $flags}"
      elif [ $COALESCE = 1 ]; then run "$pool" on "$rep" $ONPORT $ON "--workers $WORKERS${flags:+ $flags} --coalesce"; fi
    done
  done
  if [ -n "${OUT:-}" ]; then
    echo "W7-$pool: stream-proxy serve --workers $WORKERS${flags:+ $flags} [--coalesce] --route $ROUTE (nginx origin, bench/nginx/delay.conf); bench -c $C -d $DURATION" >> "$OUT/settings.txt"
  fi
  kill $OFF 2>/dev/null || true; wait $OFF 2>/dev/null || true
  if [ $COALESCE = 1 ]; then kill $ON 2>/dev/null || true; wait $ON 2>/dev/null || true; fi
done
echo
python3 bench/w7_summary.py "$CSV"

#!/usr/bin/env bash
# `make bench`: the standard workloads of issues 5, 9 and 12 against the release build, each run RUNS times,
# with the proxy's RSS, threads, open fds and CPU sampled during every run; then the peers
# (bench/peers) under the same load; results in bench/out/, summarised into BENCHMARKS.md and
# bench/latency.png by bench/report.py. Loopback only; everything started here is stopped here.
#
#   RUNS=3 DURATION=10s bench/run.sh            (defaults)
#   PEERS=0 bench/run.sh                        (skip the FastAPI / Hummingbird peers)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
PEERS=${PEERS:-1}
WORKERS=${WORKERS:-$(nproc)}
OUT=bench/out
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.csv "$OUT"/*.txt

./scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product stream-proxy >/dev/null
BIN=.build/release/stream-proxy

OPORT=19301; PPORT=19300
O=http://127.0.0.1:$OPORT
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

$BIN origin --listen 127.0.0.1:$OPORT --log-level warning & pids+=($!)

wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1${2:-/healthz}" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 did not come up" >&2; return 1; }
wait_up $OPORT /stats

# sample PID CSV: RSS kB, threads, fds, CPU ticks of PID and its children (a server with worker
# processes, like uvicorn --workers, counts whole) every 0.5 s until PID exits or the sampler is
# killed (report.py skips a line cut short by the kill). Started with `&`, it runs in a subshell of
# its own (the PID that stop_sampler kills), without `set -e`: a process that exits between two
# reads must not end the sampling.
sample() {
  set +e +o pipefail
  local pid=$1 csv=$2
  echo "t,rss_kb,threads,fds,cpu_ticks" > "$csv"
  local t0=$EPOCHREALTIME
  # Bash builtins only (one pgrep a sample): the sampler must not take CPU from what it measures.
  while kill -0 "$pid" 2>/dev/null; do
    local rss=0 thr=0 fds=0 cpu=0 p k v rest stat fdlist f
    for p in $pid $(pgrep -P "$pid"); do
      while read -r k v rest; do
        case $k in VmRSS:) rss=$(( rss + v ));; Threads:) thr=$(( thr + v ));; esac
      done < "/proc/$p/status" 2>/dev/null
      fdlist=(/proc/$p/fd/*); fds=$(( fds + ${#fdlist[@]} ))
      stat=$(< "/proc/$p/stat") 2>/dev/null; stat=${stat##*) }
      read -r -a f <<< "$stat"; cpu=$(( cpu + ${f[11]:-0} + ${f[12]:-0} ))
    done
    printf '%.2f,%d,%d,%d,%d\n' "$(( ${EPOCHREALTIME/./} - ${t0/./} ))e-6" "$rss" "$thr" "$fds" "$cpu" >> "$csv"
    sleep 0.5
  done
}
stop_sampler() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# proxy NAME ARGS...: start the proxy with routes/flags, record its settings line.
start_proxy() {
  local name=$1; shift
  $BIN serve --listen 127.0.0.1:$PPORT --workers "$WORKERS" --log-level warning "$@" & PROXY=$!; pids+=($PROXY)
  wait_up $PPORT
  echo "$name: stream-proxy serve --workers $WORKERS $*" >> "$OUT/settings.txt"
}
stop_proxy() { kill "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; }

# run WORKLOAD RUN ROUTE BENCH-ARGS...: one bench run with sampling.
run() {
  local w=$1 r=$2 route=$3; shift 3
  local csv="$OUT/$w-run$r.csv"
  sample "$PROXY" "$csv" & local sampler=$!
  $BIN bench --json "$@" "http://127.0.0.1:$PPORT/stream/$route" > "$OUT/$w-run$r.json"
  curl -s "http://127.0.0.1:$PPORT/metrics" > "$OUT/$w-run$r.metrics.txt"
  stop_sampler "$sampler"
  echo "  $w run $r: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["streamsPerSecond"], "streams/s, done p99", d["done"].get("p99Ms"), "ms, errors", d["errors"])' "$OUT/$w-run$r.json")"
}

five() { local p=$1; echo "$O$p,$O$p,$O$p,$O$p,$O$p"; }

echo "== W1 small: 5 x 1 KiB, prefix 50"
for c in 10 100 1000; do
  start_proxy "W1-c$c" --route "w1@50=$(five /bytes/1024)"
  for r in $(seq "$RUNS"); do
    run "W1-c$c" "$r" w1 -c "$c" -d "$DURATION"
    if [ "$c" = 100 ]; then
      # Interleaved with the harness's runs, so that a shared machine's drift favours neither:
      # wrk on the same proxy, then the harness as an EventSource client would load it (a new
      # connection for every stream).
      # Sampled like the harness's runs, so that the sampler's own cost is the same for both.
      sample "$PROXY" "$OUT/W1-wrk-run$r.csv" & wrk_sampler=$!
      wrk -t1 -c100 -d"$DURATION" --latency "http://127.0.0.1:$PPORT/stream/w1" > "$OUT/W1-wrk-run$r.txt"
      stop_sampler "$wrk_sampler"
      echo "  wrk run $r: $(grep Requests/sec "$OUT/W1-wrk-run$r.txt")"
      run "W1-c100-new" "$r" w1 -c "$c" -d "$DURATION" --new-connections
    fi
  done
  stop_proxy
done

echo "== W2 page: 5 x 64 KiB, prefix 50"
start_proxy W2 --route "w2@50=$(five /bytes/65536)"
for r in $(seq "$RUNS"); do run W2 "$r" w2 -c 100 -d "$DURATION"; done
stop_proxy

echo "== W3 huge: 5 x 100 MiB, prefix 1 KiB"
start_proxy W3 --route "w3@1024=$(five /bytes/104857600)"
for r in $(seq "$RUNS"); do run W3 "$r" w3 -c 100 -d "$DURATION"; done
stop_proxy

echo "== W4 delayed: 10/50/100/200/400 ms before headers"
start_proxy W4 --route "w4@1024=$O/delay/10,$O/delay/50,$O/delay/100,$O/delay/200,$O/delay/400"
# 10 streams/s: the default maxConnectionsPerHost (10) holds the ~8 transfers in flight this needs.
for r in $(seq "$RUNS"); do run W4 "$r" w4 -r 10 -d "$DURATION"; done
stop_proxy

echo "== W5 faults: refused, unresolvable, stalled, two good"
start_proxy W5 --route "w5@1024=http://127.0.0.1:1/x,http://no-such-host.invalid/x,$O/stall,$O/bytes/1024,$O/bytes/1024"
for r in $(seq "$RUNS"); do run W5 "$r" w5 -c 100 -d "$DURATION" --timeout 60s; done
stop_proxy

echo "== W6 held: 8000 streams on trickling upstreams (maxConnections raised to hold them: one upstream connection per stream)"
start_proxy W6 --route "w6@1024=$O/bytes/100000?rate=100" --max-connections 10000 --max-connections-per-host 10000 --max-streams 10000
IDLE_RSS=$(awk '/^VmRSS:/ {print $2}' /proc/$PROXY/status); IDLE_THREADS=$(awk '/^Threads:/ {print $2}' /proc/$PROXY/status)
echo "W6 idle: rss_kb=$IDLE_RSS threads=$IDLE_THREADS" > "$OUT/W6-idle.txt"
run W6 1 w6 -c 8000 -n 8000 --timeout 60s
stop_proxy

echo "== W7 coalesced: 1000 clients on 5 nginx URLs answering after 200 ms, without and with --coalesce"
OUT="$OUT" BIN=$BIN WORKERS="$WORKERS" REPS="$RUNS" DURATION="$DURATION" bench/w7-coalesce.sh

if [ "$PEERS" = 1 ]; then
  U="\"$O/bytes/1024\""
  ROUTES="{\"w1\": {\"prefix\": 50, \"upstreams\": [$U, $U, $U, $U, $U]}}"
  for peer in fastapi hummingbird; do
    [ -x "bench/peers/$peer/run.sh" ] || { echo "== peer $peer: missing, skipped"; continue; }
    echo "== peer $peer: W1 c=10 and c=100"
    bench/peers/$peer/run.sh $PPORT "$ROUTES" > "$OUT/peer-$peer.log" 2>&1 & PROXY=$!; pids+=($PROXY)
    for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$PPORT/stream/w1" >/dev/null 2>&1 && break; sleep 0.5; done
    PEERPID=$PROXY   # run.sh execs the server
    for c in 10 100; do
      for r in $(seq "$RUNS"); do
        csv="$OUT/peer-$peer-c$c-run$r.csv"
        sample "$PEERPID" "$csv" & s=$!
        $BIN bench --json -c "$c" -d "$DURATION" "http://127.0.0.1:$PPORT/stream/w1" > "$OUT/peer-$peer-c$c-run$r.json" || true
        stop_sampler "$s"
        echo "  $peer c=$c run $r: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["streamsPerSecond"], "streams/s, errors", d["errors"])' "$OUT/peer-$peer-c$c-run$r.json")"
      done
    done
    kill "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true
  done
fi

echo "== storm: wrk drops 100 streams, then 100 new ones at once (nginx origin), 5 rounds"
OUT="$OUT" bench/storm.sh

[ -x bench/.venv/bin/python ] || { python3 -m venv bench/.venv && bench/.venv/bin/pip install -q matplotlib==3.9.2; }
bench/.venv/bin/python bench/report.py "$OUT" BENCHMARKS.md bench/latency.png
echo "wrote BENCHMARKS.md and bench/latency.png"

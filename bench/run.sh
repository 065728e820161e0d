#!/usr/bin/env bash
# `make bench`: the standard workloads against the release build, each run RUNS times, then the
# peers (bench/peers) under the same load in the same sitting. W1-W4 and W8 are served by nginx
# (bench/nginx/workloads.conf: static files, echo_sleep delays, TLS), W5 and W6 by the built-in
# test origin (faults, trickles). For every run the server's CPU is read from /proc of its process
# tree alone just before and just after the harness runs (OUT/*.ticks), and RSS, threads and fds
# are sampled every 0.5 s; results in bench/out/, summarised into BENCHMARKS.md and the charts by
# bench/report.py. Loopback only; everything started here is stopped here.
#
#   RUNS=3 DURATION=10s bench/run.sh                  (defaults: everything, BENCHMARKS.md)
#   ONLY="W1 peers" RUNS=1 DURATION=3s bench/run.sh   (parts: W1..W8 peers storm; writes
#                                                      bench/out/BENCHMARKS.md, not the real one)
#   CS="10 100" PEER_LIST="node" PEER_W8="node" ...  (concurrencies of W1/W8; which peers; which
#                                                      of them run W8 as well)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-$(nproc)}
ALL="W1 W2 W3 W4 W5 W6 W7 W8 peers storm"
ONLY=${ONLY:-$ALL}
CS=${CS:-10 100 1000}
PEER_LIST=${PEER_LIST:-fastapi hummingbird hummingbird-keepalive node}
# Peers that run W8 too (FastAPI's W1 alone takes minutes at c=1000; its W8 would double that).
PEER_W8=${PEER_W8:-hummingbird hummingbird-keepalive node}
[ "${PEERS:-1}" = 1 ] || ONLY=${ONLY//peers/}
OUT=bench/out
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.csv "$OUT"/*.txt "$OUT"/*.ticks "$OUT"/*.md "$OUT"/*.png
want() { [[ " $ONLY " == *" $1 "* ]]; }

./scripts/install-deps.sh
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl >/dev/null; }
swift build -c release --product stream-proxy >/dev/null
BIN=.build/release/stream-proxy

OPORT=19301; PPORT=19300; NPORT=19302; TLSPORT=19303; CLOSEPORT=19304; TLSCLOSEPORT=19305
O=http://127.0.0.1:$OPORT

# The files and certificate nginx serves, made in its folder before it starts: bodies of 64 KiB
# and 100 MiB beside origin.sh's 1 KiB, and a CA (ca.crt, which the proxy trusts by --ca-file
# and the peers by their own settings) signing origin.crt for 127.0.0.1 and localhost.
origin_files() {
  head -c 65536 /dev/zero | tr '\0' 'x' > "$NGINX_DIR/64k"
  head -c 104857600 /dev/zero | tr '\0' 'x' > "$NGINX_DIR/100m"
  ( cd "$NGINX_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout origin.key -out origin.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
    openssl x509 -req -in origin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out origin.crt 2>/dev/null )
}
NGINX_CONF=bench/nginx/workloads.conf NGINX_SETUP=origin_files
NGINX_VARS="TLSPORT=$TLSPORT CLOSEPORT=$CLOSEPORT TLSCLOSEPORT=$TLSCLOSEPORT"
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh   # sets NGINX_DIR, pids and the cleanup trap
N=http://127.0.0.1:$NPORT; NS=https://127.0.0.1:$TLSPORT
CA=$NGINX_DIR/ca.crt

$BIN origin --listen 127.0.0.1:$OPORT --log-level warning & pids+=($!)

wait_up() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1${2:-/healthz}" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "port $1 did not come up" >&2; return 1; }
wait_up $OPORT /stats
wait_up $NPORT /1k
! curl -s -o /dev/null "http://127.0.0.1:$PPORT/" || { echo "port $PPORT is already served: stop that first" >&2; exit 1; }
curl -sf --cacert "$CA" "$NS/1k" >/dev/null || { echo "nginx TLS on $TLSPORT did not come up" >&2; exit 1; }

# tree PID: PID and every descendant (a server with worker processes, like uvicorn --workers,
# counts whole).
tree() { local p; echo "$1"; for p in $(pgrep -P "$1"); do tree "$p"; done; }
# ticks PID: CPU ticks (user + system) of PID's tree, from /proc alone.
ticks() {
  local p s f sum=0
  for p in $(tree "$1"); do
    s=$(< "/proc/$p/stat") 2>/dev/null || continue; s=${s##*) }
    read -r -a f <<< "$s"; sum=$(( sum + ${f[11]:-0} + ${f[12]:-0} ))
  done
  echo "$sum"
}

# sample PID CSV: RSS kB, threads, fds, CPU ticks of PID's tree every 0.5 s until PID exits or the
# sampler is killed (report.py skips a line cut short by the kill). Started with `&`, it runs in a
# subshell of its own, without `set -e`: a process that exits between two reads must not end it.
sample() {
  set +e +o pipefail
  local pid=$1 csv=$2
  echo "t,rss_kb,threads,fds,cpu_ticks" > "$csv"
  local t0=$EPOCHREALTIME
  # Bash builtins but for pgrep: the sampler must not take CPU from what it measures.
  while kill -0 "$pid" 2>/dev/null; do
    local rss=0 thr=0 fds=0 cpu=0 p k v rest stat fdlist f
    for p in $(tree "$pid"); do
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

# start_proxy NAME ARGS...: start the proxy with routes/flags on PROXYPORT (PPORT unless set),
# record its settings line.
start_proxy() {
  local name=$1 port=${PROXYPORT:-$PPORT}; shift
  $BIN serve --listen 127.0.0.1:$port --workers "$WORKERS" --log-level warning "$@" & PROXY=$!; pids+=($PROXY)
  wait_up $port
  echo "$name: stream-proxy serve --workers $WORKERS $*" >> "$OUT/settings.txt"
}
stop_proxy() { kill "$PROXY" 2>/dev/null || true; wait "$PROXY" 2>/dev/null || true; }

# measure NAME PID URL BENCH-ARGS...: one bench run against the server PID at URL: JSON, samples,
# CPU ticks of the server's tree before and after (NAME.ticks: "before after"), and for the proxy
# its /metrics before and after (NAME.metrics0.txt, NAME.metrics.txt).
measure() {
  local name=$1 pid=$2 url=$3; shift 3
  local proxy=0; [ "$pid" != "${PROXY:-}" ] || proxy=1
  [ "$proxy" = 1 ] && curl -s "http://127.0.0.1:${PROXYPORT:-$PPORT}/metrics" > "$OUT/$name.metrics0.txt" || true
  sample "$pid" "$OUT/$name.csv" & local sampler=$!
  local t0; t0=$(ticks "$pid")
  $BIN bench --json "$@" "$url" > "$OUT/$name.json" || true
  echo "$t0 $(ticks "$pid")" > "$OUT/$name.ticks"
  stop_sampler "$sampler"
  [ "$proxy" = 1 ] && curl -s "http://127.0.0.1:${PROXYPORT:-$PPORT}/metrics" > "$OUT/$name.metrics.txt" || true
  echo "  $name: $(python3 - "$OUT/$name" "$(getconf CLK_TCK)" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + ".json")); a, b = map(int, open(sys.argv[1] + ".ticks").read().split())
cpu = (b - a) * 1e6 / int(sys.argv[2]) / d["completed"] if d["completed"] else float("nan")
print(d["streamsPerSecond"], "streams/s, done p99", d["done"].get("p99Ms"), "ms,", f"{cpu:.0f} µs CPU/stream, errors", d["errors"] or "none")
PY
)"
}
# run WORKLOAD RUN ROUTE BENCH-ARGS...: one harness run against the proxy's ROUTE.
run() { local w=$1 r=$2 route=$3; shift 3; measure "$w-run$r" "$PROXY" "http://127.0.0.1:${PROXYPORT:-$PPORT}/stream/$route" "$@"; }

# five BASE PATH: five distinct URLs of one file (?u=0..4), so that no de-duplication can hide work.
five() { echo "$1$2?u=0,$1$2?u=1,$1$2?u=2,$1$2?u=3,$1$2?u=4"; }

# W1 (at each concurrency of CS), W2 and W3 are measured in rounds: each round runs every one of
# them once, so that the ratios between them (c=1000 against c=10, W2 and W3 against W1) compare
# runs minutes apart, not a quarter of an hour, on a shared machine whose speed drifts by more
# than the differences measured; the medians are over the rounds. Each has a proxy of its own,
# all started at once on ports of their own (idle but for their own runs), so that CPU, RSS and
# /metrics are each workload's alone (W3's peak RSS must not count as W1's).
declare -A ROUND_PID ROUND_PORT
ROUND=()
round_proxy() {  # NAME ARGS...: start NAME's proxy on the next port
  local name=$1 port=$(( PPORT + 20 + ${#ROUND[@]} )); shift
  PROXYPORT=$port start_proxy "$name" "$@"
  ROUND_PID[$name]=$PROXY; ROUND_PORT[$name]=$port; ROUND+=("$name")
}
round_use() { PROXY=${ROUND_PID[$1]}; PROXYPORT=${ROUND_PORT[$1]}; }
if want W1; then for c in $CS; do round_proxy "W1-c$c" --route "w1@50=$(five "$N" /1k)"; done; fi
if want W2; then round_proxy W2 --route "w2@50=$(five "$N" /64k)"; fi
if want W3; then round_proxy W3 --route "w3@1024=$(five "$N" /100m)"; fi
if [ ${#ROUND[@]} -gt 0 ]; then
  echo "== in rounds: ${ROUND[*]} (nginx, five distinct URLs each)"
  echo "   W1 small: 5 x 1 KiB, prefix 50; W2 page: 5 x 64 KiB, prefix 50; W3 huge: 5 x 100 MiB, prefix 1 KiB"
  for r in $(seq "$RUNS"); do
    echo " round $r"
    for name in "${ROUND[@]}"; do
      round_use "$name"
      case $name in
        W1-c*)
          c=${name#W1-c}
          run "$name" "$r" w1 -c "$c" -d "$DURATION"
          if [ "$c" = 100 ]; then
            # wrk on the same proxy (sampled like the harness's runs), then the harness as an
            # EventSource client would load it (a new connection for every stream).
            sample "$PROXY" "$OUT/W1-wrk-run$r.csv" & wrk_sampler=$!
            wrk -t1 -c100 -d"$DURATION" --latency "http://127.0.0.1:$PROXYPORT/stream/w1" > "$OUT/W1-wrk-run$r.txt"
            stop_sampler "$wrk_sampler"
            echo "  wrk run $r: $(grep Requests/sec "$OUT/W1-wrk-run$r.txt")"
            run "W1-c100-new" "$r" w1 -c "$c" -d "$DURATION" --new-connections
          fi ;;
        W2) run W2 "$r" w2 -c 100 -d "$DURATION" ;;
        W3) run W3 "$r" w3 -c 100 -d "$DURATION" ;;
      esac
    done
  done
  for name in "${ROUND[@]}"; do round_use "$name"; stop_proxy; done
  unset PROXYPORT
fi

if want W4; then
  echo "== W4 delayed: 10/50/100/200/400 ms before headers (nginx echo_sleep)"
  start_proxy W4 --route "w4@1024=$N/delay/10,$N/delay/50,$N/delay/100,$N/delay/200,$N/delay/400"
  # 10 streams/s: the default maxConnectionsPerHost (10) holds the ~8 transfers in flight this needs.
  for r in $(seq "$RUNS"); do run W4 "$r" w4 -r 10 -d "$DURATION"; done
  stop_proxy
fi

if want W5; then
  echo "== W5 faults (built-in origin): refused, unresolvable, stalled, two good"
  start_proxy W5 --route "w5@1024=http://127.0.0.1:1/x,http://no-such-host.invalid/x,$O/stall,$O/bytes/1024,$O/bytes/1024"
  for r in $(seq "$RUNS"); do run W5 "$r" w5 -c 100 -d "$DURATION" --timeout 60s; done
  stop_proxy
fi

if want W6; then
  echo "== W6 held (built-in origin): 8000 streams on trickling upstreams (maxConnections raised to hold them: one upstream connection per stream)"
  start_proxy W6 --route "w6@1024=$O/bytes/100000?rate=100" --max-connections 10000 --max-connections-per-host 10000 --max-streams 10000
  IDLE_RSS=$(awk '/^VmRSS:/ {print $2}' /proc/$PROXY/status); IDLE_THREADS=$(awk '/^Threads:/ {print $2}' /proc/$PROXY/status)
  echo "W6 idle: rss_kb=$IDLE_RSS threads=$IDLE_THREADS" > "$OUT/W6-idle.txt"
  run W6 1 w6 -c 8000 -n 8000 --timeout 60s
  stop_proxy
fi

if want W8; then
  echo "== W8 TLS: W1 over HTTPS (nginx, a CA made here, trusted by --ca-file)"
  for c in $CS; do
    start_proxy "W8-c$c" --ca-file "$CA" --route "w8@50=$(five "$NS" /1k)"
    for r in $(seq "$RUNS"); do run "W8-c$c" "$r" w8 -c "$c" -d "$DURATION"; done
    stop_proxy
  done
  # What a reconnect costs: the same load on nginx's ports that close every connection after one
  # response, so that every transfer connects again (over TLS libcurl's session cache can resume
  # the session: nginx logs whether it did, OUT/W8-reconnect-resumed.txt). Plain HTTP too, to tell
  # the TCP part from the TLS part.
  start_proxy W8-reconnect --ca-file "$CA" --route "w8@50=$(five "https://127.0.0.1:$TLSCLOSEPORT" /1k)"
  for r in $(seq "$RUNS"); do run W8-reconnect "$r" w8 -c 100 -d "$DURATION"; done
  stop_proxy
  sort "$NGINX_DIR/resumed.log" | uniq -c > "$OUT/W8-reconnect-resumed.txt" || true
  start_proxy W1-reconnect --route "w1@50=$(five "http://127.0.0.1:$CLOSEPORT" /1k)"
  for r in $(seq "$RUNS"); do run W1-reconnect "$r" w1 -c 100 -d "$DURATION"; done
  stop_proxy
fi

if want W7; then
  echo "== W7 coalesced: 1000 clients on 5 nginx URLs answering after 200 ms, without and with --coalesce"
  OUT="$OUT" BIN=$BIN WORKERS="$WORKERS" REPS="$RUNS" DURATION="$DURATION" bench/w7-coalesce.sh
fi

# peer_start NAME ROUTES: bench/peers/<dir>/run.sh PORT ROUTES with the env of its variant, exec'd
# (started with `&`, the subshell becomes run.sh, which execs the server: its PID is the server's).
peer_start() {
  local peer=$1 routes=$2
  case $peer in
    hummingbird-keepalive) HB_KEEPALIVE=1 CA_FILE=$CA exec bench/peers/hummingbird/run.sh $PPORT "$routes" ;;
    hummingbird) CA_FILE=$CA exec bench/peers/hummingbird/run.sh $PPORT "$routes" ;;
    node) NODE_EXTRA_CA_CERTS=$CA exec bench/peers/node/run.sh $PPORT "$routes" ;;
    fastapi) SSL_CERT_FILE=$CA exec bench/peers/fastapi/run.sh $PPORT "$routes" ;;
  esac
}
# peer_settings NAME: what the peer runs with (its log holds build output, not settings).
peer_settings() {
  case $1 in
    hummingbird) echo "bench/peers/hummingbird (Hummingbird 2, AsyncHTTPClient pool: 10 connections per host soft limit, idle 5 s); the client's connection closes after each stream, the usual SSE way" ;;
    hummingbird-keepalive) echo "the same with HB_KEEPALIVE=1: the client's connection is kept for its next stream" ;;
    node) echo "bench/peers/node/server.js (node:http, one keep-alive http.Agent: maxSockets 10, maxTotalSockets 100, maxFreeSockets 20), one process" ;;
    fastapi) echo "bench/peers/fastapi (FastAPI + httpx: max_connections 100, max_keepalive_connections 20, keepalive_expiry 5 s), one uvicorn worker" ;;
  esac
}
if want peers; then
  u() { local b=$1 p=$2 i out=""; for i in 0 1 2 3 4; do out+="${out:+, }\"$b$p?u=$i\""; done; echo "$out"; }
  ROUTES="{\"w1\": {\"prefix\": 50, \"upstreams\": [$(u "$N" /1k)]}, \"w8\": {\"prefix\": 50, \"upstreams\": [$(u "$NS" /1k)]}}"
  for peer in $PEER_LIST; do
    dir=${peer%-keepalive}
    [ -x "bench/peers/$dir/run.sh" ] || { echo "== peer $peer: missing, skipped"; continue; }
    echo "== peer $peer: W1 (and W8) at c = $CS"
    peer_start "$peer" "$ROUTES" > "$OUT/peer-$peer.log" 2>&1 & PEERPID=$!; pids+=($PEERPID)   # run.sh execs the server
    for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$PPORT/stream/w1" >/dev/null 2>&1 && break; sleep 0.5; done
    echo "peer-$peer: $(peer_settings "$peer")" >> "$OUT/settings.txt"
    for c in $CS; do
      for r in $(seq "$RUNS"); do
        measure "peer-$peer-c$c-run$r" "$PEERPID" "http://127.0.0.1:$PPORT/stream/w1" -c "$c" -d "$DURATION"
        if want W8 && [[ " $PEER_W8 " == *" $peer "* ]]; then measure "peer-$peer-W8-c$c-run$r" "$PEERPID" "http://127.0.0.1:$PPORT/stream/w8" -c "$c" -d "$DURATION"; fi
      done
    done
    kill "$PEERPID" 2>/dev/null || true; wait "$PEERPID" 2>/dev/null || true
  done
fi

if want storm; then
  echo "== storm: wrk drops 100 streams, then 100 new ones at once (nginx origin), 5 rounds"
  OUT="$OUT" bench/storm.sh
fi

[ -x bench/.venv/bin/python ] || { python3 -m venv bench/.venv && bench/.venv/bin/pip install -q matplotlib==3.9.2; }
if [ "$ONLY" = "$ALL" ]; then
  bench/.venv/bin/python bench/report.py "$OUT" BENCHMARKS.md bench/latency.png bench/peers.png
  echo "wrote BENCHMARKS.md, bench/latency.png and bench/peers.png"
else
  bench/.venv/bin/python bench/report.py "$OUT" "$OUT/BENCHMARKS.md" "$OUT/latency.png" "$OUT/peers.png"
  echo "a partial run (ONLY=$ONLY): wrote $OUT/BENCHMARKS.md and $OUT/*.png"
fi

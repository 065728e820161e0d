#!/usr/bin/env bash
# Instructions the proxy spends on W1 (5 x 1 KiB from nginx, five distinct URLs, prefix 50):
# one worker under callgrind, N streams at concurrency C after a warm-up, counted from a zeroed
# profile to a dump. Instruction counts repeat exactly on this shared machine (unlike time), so
# two builds compare by their totals; `callgrind_annotate OUT.1` gives the top entries.
# Valgrind 3.19 cannot read the DWARF 5 that Swift emits, so a copy without debug info runs.
#
#   bench/callgrind.sh                         (release build; N=2000 C=10 OUT=bench/out/callgrind)
#   BIN=/path/to/stream-proxy bench/callgrind.sh
#   PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 bench/callgrind.sh   (another allocator)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}; C=${C:-10}
OUT=${OUT:-bench/out/callgrind}
./scripts/install-deps.sh
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
if [ -z "${BIN:-}" ]; then swift build -c release --product stream-proxy >/dev/null; BIN=.build/release/stream-proxy; fi
mkdir -p "$(dirname "$OUT")"
NPORT=19440; PPORT=19441
# shellcheck source=nginx/origin.sh
source bench/nginx/origin.sh
PROFILED="$NGINX_DIR/stream-proxy"
cp "$BIN" "$PROFILED" && strip --strip-debug "$PROFILED"
${PRELOAD:+env LD_PRELOAD=$PRELOAD} valgrind --tool=callgrind --callgrind-out-file="$OUT" --dump-instr=no \
  "$PROFILED" serve --listen 127.0.0.1:$PPORT --workers 1 --log-level warning --max-streams 20000 \
  --route "w1@50=$U?u=0,$U?u=1,$U?u=2,$U?u=3,$U?u=4" 2>"$OUT.log" & PP=$!; pids+=($PP)
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PPORT/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN" bench -c "$C" -n 200 "http://127.0.0.1:$PPORT/stream/w1" >/dev/null
callgrind_control -z $PP >/dev/null
"$BIN" bench -c "$C" -n "$N" "http://127.0.0.1:$PPORT/stream/w1" | sed -n 2p
callgrind_control -d $PP >/dev/null
sleep 1
total=$(callgrind_annotate "$OUT.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "instructions: $total in all, $(( total / N )) per stream ($OUT.1)"

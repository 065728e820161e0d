#!/usr/bin/env bash
# Soak: SOAK_SECONDS (default 600) of mixed load against the release build — normal streams
# (closed and open loop), upstream faults (resets, malformed HTTP, stalls, refused ports, huge
# bodies) and abusive clients (garbage, oversized headers, slowloris, clients that vanish
# mid-stream) — sampling the proxy's RSS, open fds and threads every 5 s into
# bench/out/soak.csv, then a one-line verdict on growth. Loopback only; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL=${SOAK_SECONDS:-600}
OUT=bench/out; mkdir -p "$OUT"; CSV=$OUT/soak.csv
./scripts/install-deps.sh
swift build -c release --product stream-proxy >/dev/null
BIN=.build/release/stream-proxy
OPORT=19401; PPORT=19400; O=http://127.0.0.1:$OPORT
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

$BIN origin --listen 127.0.0.1:$OPORT --log-level warning & pids+=($!)
$BIN serve --listen 127.0.0.1:$PPORT --log-level warning --read-timeout 3s --keepalive-expiry 2s \
  --request-header-timeout 2s \
  --route "mix@2048=$O/bytes/1024,$O/utf8/3000?rate=20000,$O/delay/100,$O/reset/300,$O/malformed,http://127.0.0.1:1/x,$O/bytes/104857600" \
  --route "stall@512=$O/stall,$O/bytes/4096" & PROXY=$!; pids+=($PROXY)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PPORT/healthz" >/dev/null && break; sleep 0.1; done
sleep 1

echo "t,rss_kb,fds,threads,streams_open" > "$CSV"
sample() {
  local rss fds thr open
  rss=$(awk '/^VmRSS:/ {print $2}' /proc/$PROXY/status)
  thr=$(awk '/^Threads:/ {print $2}' /proc/$PROXY/status)
  fds=$(ls /proc/$PROXY/fd | wc -l)
  open=$(curl -s "http://127.0.0.1:$PPORT/metrics" | awk '/^streamproxy_streams_open / {print $2}')
  echo "$1,$rss,$fds,$thr,${open:-0}" >> "$CSV"
}
sample 0

$BIN bench -c 50 -d "${SECONDS_TOTAL}s" --timeout 30s "http://127.0.0.1:$PPORT/stream/mix" > "$OUT/soak-closed.txt" & pids+=($!)
$BIN bench -r 20 -d "${SECONDS_TOTAL}s" --timeout 30s "http://127.0.0.1:$PPORT/stream/stall" > "$OUT/soak-open.txt" & pids+=($!)
python3 - "$PPORT" "$SECONDS_TOTAL" > "$OUT/soak-abuse.txt" <<'PY' & pids+=($!)
import random, socket, sys, time
port, total = int(sys.argv[1]), float(sys.argv[2])
deadline = time.time() + total
counts = {}
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s
def kind_garbage():
    s = conn(); s.sendall(bytes(random.getrandbits(8) for _ in range(200)) + b"\r\n\r\n"); s.recv(4096); s.close()
def kind_big_headers():
    s = conn(); s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"z" * 30000 + b"\r\n\r\n"); s.recv(4096); s.close()
def kind_slowloris():
    s = conn(); s.sendall(b"GET /stream/mix HTTP/1.1\r\nHost: x\r\n"); time.sleep(random.uniform(0.1, 0.5)); s.close()
def kind_drop():
    conn().close()
def kind_vanish():
    s = conn(); s.sendall(b"GET /stream/mix HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(2048)
    time.sleep(random.uniform(0, 0.3))
    if random.random() < 0.5:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
kinds = [kind_garbage, kind_big_headers, kind_slowloris, kind_drop, kind_vanish]
while time.time() < deadline:
    k = random.choice(kinds)
    try:
        k(); counts[k.__name__] = counts.get(k.__name__, 0) + 1
    except Exception as e:
        counts["failed " + k.__name__] = counts.get("failed " + k.__name__, 0) + 1
    time.sleep(0.02)
print(counts)
PY

start=$(date +%s)
while :; do
  sleep 5
  now=$(( $(date +%s) - start ))
  sample "$now"
  [ "$now" -ge "$SECONDS_TOTAL" ] && break
done
sleep 8   # let the last streams end and idle connections expire
sample "$(( $(date +%s) - start ))"

python3 - "$CSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n = max(1, len(rows) // 10)
early, late = rows[1:1 + n], rows[-1 - n:-1]
rss_early = statistics.median(int(r["rss_kb"]) for r in early) / 1024
rss_late = statistics.median(int(r["rss_kb"]) for r in late) / 1024
fd0, fd_end = int(rows[0]["fds"]), int(rows[-1]["fds"])
thr = {r["threads"] for r in rows}
growth = rss_late - rss_early
ok = growth < max(5, rss_early * 0.1) and fd_end <= fd0 + 2 and len(thr) == 1
print(f"soak {'PASS' if ok else 'FAIL'}: RSS {rss_early:.1f} MB early -> {rss_late:.1f} MB late under load "
      f"({growth:+.1f} MB); fds {fd0} idle -> {fd_end} after; threads {','.join(sorted(thr))}; {len(rows)} samples")
PY
echo "first and last lines of $CSV:"; sed -n '2p' "$CSV"; tail -1 "$CSV"
tail -3 "$OUT/soak-closed.txt" | head -1; cat "$OUT/soak-abuse.txt"

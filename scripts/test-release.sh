#!/usr/bin/env bash
# The release build, as `make run`, `make bench` and deploy/ run it, as part of `make test` (every
# other test runs the debug build): it builds and links, its malloc is tcmalloc's (Package.swift),
# and it serves a stream from the built-in origin and exits 0 on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

${SWIFT:-swift} build -c release --product stream-proxy
bin=.build/release/stream-proxy

# Every library binds malloc to tcmalloc's, libcurl's included (bound at start to see them all).
bindings=$(LD_BIND_NOW=1 LD_DEBUG=bindings "$bin" --help 2>&1 >/dev/null | grep "normal symbol \`malloc'")
if ! grep -q "libcurl.so.4 .* to .*libtcmalloc_minimal.so.4 .*malloc" <<<"$bindings" \
   || grep -q " to .*libc.so.6 .*malloc" <<<"$bindings"; then
  echo "test-release: malloc is not tcmalloc's everywhere:" >&2
  grep "libcurl\| to .*libc.so.6" <<<"$bindings" >&2 || true
  exit 1
fi

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
origin_port=$(port)
proxy_port=$(port)
"$bin" origin --listen "127.0.0.1:$origin_port" --log-level warning & origin=$!
"$bin" serve --listen "127.0.0.1:$proxy_port" --workers 2 --log-level warning \
  --route "r@100=http://127.0.0.1:$origin_port/bytes/1024,http://127.0.0.1:$origin_port/bytes/64" & proxy=$!
trap 'kill $origin $proxy 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$proxy_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

stream=$(curl -sN --max-time 10 "http://127.0.0.1:$proxy_port/stream/r")
chunks=$(grep -c "^event: chunk" <<<"$stream" || true)
ends=$(grep -c "^event: end" <<<"$stream" || true)
if [ "$ends" -ne 2 ] || [ "$chunks" -lt 2 ] || ! grep -q "^event: done" <<<"$stream"; then
  echo "test-release: the stream was not whole ($chunks chunks, $ends ends):" >&2
  echo "$stream" >&2
  exit 1
fi
kill -TERM $proxy
status=0; wait $proxy || status=$?
[ "$status" -eq 0 ] || { echo "test-release: serve exited $status on SIGTERM" >&2; exit 1; }
echo "test-release: built, malloc is tcmalloc's, a stream of 2 upstreams served, exit 0 on SIGTERM"

#!/usr/bin/env bash
# The release build, as `make run`, `make bench` and deploy/ run it, as part of `make test` (every
# other test runs the debug build): it builds and links, its malloc is tcmalloc's (Package.swift),
# and it serves a stream from the built-in origin and exits 0 on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

${SWIFT:-swift} build -c release --product stream-proxy
bin=.build/release/stream-proxy

# Every library binds the allocator's functions to tcmalloc's (bound at start to see them all):
# libcurl's malloc and free, the Swift runtime's malloc_usable_size, and none to glibc's.
bindings=$(LD_BIND_NOW=1 LD_DEBUG=bindings "$bin" --help 2>&1 >/dev/null | grep "normal symbol \`\(malloc\|free\|realloc\|calloc\|malloc_usable_size\)'" || true)
expect() { grep -q "$1 .* to .*libtcmalloc_minimal.so.4 .*\`$2'" <<<"$bindings" || { echo "test-release: $1's $2 is not tcmalloc's" >&2; exit 1; }; }
expect libcurl.so.4 malloc
expect libcurl.so.4 free
expect libswiftCore.so malloc_usable_size
if grep " to .*libc.so.6 " <<<"$bindings" >&2; then
  echo "test-release: the allocator functions above bind to glibc's" >&2
  exit 1
fi

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
origin_port=$(port)
proxy_port=$(port)
"$bin" origin --listen "127.0.0.1:$origin_port" --log-level warning & origin=$!
"$bin" serve --listen "127.0.0.1:$proxy_port" --workers 2 --log-level warning \
  --route "r@100=http://127.0.0.1:$origin_port/bytes/1024,http://127.0.0.1:$origin_port/bytes/64" & proxy=$!
trap 'kill $origin $proxy 2>/dev/null || true' EXIT
up() { for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "test-release: $1 never answered" >&2; exit 1; }
up "http://127.0.0.1:$origin_port/bytes/1"
up "http://127.0.0.1:$proxy_port/healthz"

stream=$(curl -sN --max-time 10 "http://127.0.0.1:$proxy_port/stream/r" || true)
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
echo "test-release: built, the allocator is tcmalloc's, a stream of 2 upstreams served, exit 0 on SIGTERM"

#!/usr/bin/env bash
# Runs the built tests (swift test --skip-build) in steps, each step's time printed:
#   1. the unit tests (no sockets, no sleeps): a quick failure shows first;
#   2. the socket tests, in parallel, without the floods, and beside them the randomized model
#      tests of the pool and the session at full size (CPU only, seconds long; step 1 runs
#      them small);
#   3. each flood suite alone (1,000 streams, 2,000 clients, 64 MiB bodies, 1,000 joiners of a
#      shared 1 MiB prefix), so that no timing test shares the two cores with them.
# Arguments go to every `swift test` (e.g. --sanitize=address --scratch-path .build-asan).
# Stops at the first failing step, with its status.
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}

floods='StreamProxyTests\.(PressureTests|ProcessTests|CoalescingMemoryTests)'
step() {  # $1: name; the rest: filter arguments
  local name=$1 start ms status=0
  shift
  start=$(date +%s%N)
  "$SWIFT" test --skip-build "$@" || status=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'run-tests: %s: %d.%03d s (status %d)\n' "$name" $((ms / 1000)) $((ms % 1000)) "$status" >&2
  return "$status"
}
step unit --filter 'StreamProxyUnitTests|CurlStreamTests' "$@"
POOL_MODEL_SEQUENCES=2000 SESSION_MODEL_SEQUENCES=2000 \
  step sockets --filter 'StreamProxyTests\.|PoolModelTests|FanOutSessionModelTests' --skip "$floods" "$@"
step pressure --filter 'StreamProxyTests\.PressureTests' "$@"
step process --filter 'StreamProxyTests\.ProcessTests' "$@"
step coalescing-memory --filter 'StreamProxyTests\.CoalescingMemoryTests' "$@"

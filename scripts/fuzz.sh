#!/usr/bin/env bash
# Runs libFuzzer targets (Fuzz/) for a bounded time each: `scripts/fuzz.sh SECONDS TARGET...`.
#
# Builds the one fuzz binary (release, -sanitize=fuzzer,address) into .build-fuzz, then runs each
# target on a scratch copy of its committed seeds (Tests/Fuzz/<target>/corpus/, plus
# Tests/Fuzz/<target>/dictionary when present), so new inputs never dirty the tree. Prints
# executions per second per target; exits 1 if any target crashed, leaked or timed out, with
# the input under .build-fuzz/artifacts/<target>/. Replay one with
#   FUZZ_TARGET=<target> .build-fuzz/release/stream-proxy-fuzz <file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:?usage: fuzz.sh SECONDS TARGET...}
shift
scratch=.build-fuzz
# SwiftPM passes --sanitize=fuzzer to the link only (where it also keeps libFuzzer's `main`),
# which leaves the code uninstrumented: libFuzzer would see 2 counters and fuzz blind. -Xswiftc
# instruments the compiles.
STREAMPROXY_FUZZ=1 ${SWIFT:-swift} build -c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer \
    --scratch-path "$scratch" --product stream-proxy-fuzz 2>&1 | grep -v "Cannot export local symbol" || true
binary="$scratch/release/stream-proxy-fuzz"
[ -x "$binary" ] || { echo "fuzz.sh: $binary was not built" >&2; exit 2; }

failed=()
summary=()
for target in "$@"; do
    seeds="Tests/Fuzz/$target/corpus"
    [ -d "$seeds" ] || { echo "fuzz.sh: no seeds at $seeds" >&2; exit 2; }
    work="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target/"
    mkdir -p "$work" "$artifacts"
    args=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -max_len=4096
          -print_final_stats=1 -artifact_prefix="$artifacts")
    [ -f "Tests/Fuzz/$target/dictionary" ] && args+=(-dict="Tests/Fuzz/$target/dictionary")
    log="$scratch/$target.log"
    echo "== $target: ${seconds} s"
    # The scratch corpus comes first: libFuzzer writes new inputs to the first directory.
    # No Swift backtracer: it hangs under libFuzzer; libFuzzer and ASan print the stack.
    if SWIFT_BACKTRACE=enable=no FUZZ_TARGET="$target" "$binary" "${args[@]}" "$work" "$seeds" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(( ${runs:-0} / seconds ))
        summary+=("$target: ${runs:-0} runs in ${seconds} s, ${rate} exec/s, corpus $(ls "$work" | wc -l) inputs")
    else
        failed+=("$target")
        tail -40 "$log"
        summary+=("$target: FAILED (log $log, input in $artifacts)")
    fi
done

printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi

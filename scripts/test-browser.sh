#!/usr/bin/env bash
# The browser and SSE-client tests (Tests/browser): the page at / in headless Chromium, and the
# stream read by sseclient-py. Installs what is missing (Debian's chromium + chromium-driver, a
# venv at .venv-test with pinned packages), builds the debug binary, serves the demo on a free
# port, runs pytest and stops everything it started, also on failure. Exits with pytest's status.
#
# Fails (status 1) also when the server does not exit 0 after its SIGTERM.
#
#   scripts/test-browser.sh [pytest args]      e.g. -k narrow, -x
#   UPDATE_SCREENSHOT=1 scripts/test-browser.sh   rewrites docs/screenshot.png
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Chromium, chromedriver and the pinned Python packages in .venv-test ---
source scripts/browser-env.sh

# --- the server ---
swift build --product stream-proxy
port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t stream-proxy-browser.XXXXXX)
server=""
tests=""
stop() {  # $1: pid; SIGTERM, then SIGKILL after 5 s. Status: the process's exit status.
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  local status=0
  wait "$1" 2>/dev/null || status=$?
  return $status
}
cleanup() {
  local exit_status=$?
  # pytest runs in a session of its own: whatever it left (chromedriver, chromium) is in it.
  if [ -n "$tests" ]; then kill -KILL -- "-$tests" 2>/dev/null || true; fi
  local failed=0
  if [ -n "$server" ]; then
    # SIGTERM must end the server with status 0 (graceful drain). Anything else is a defect:
    # its log is printed and the run fails, whatever the tests said.
    local status=0
    stop "$server" || status=$?
    if [ "$status" != 0 ]; then
      echo "test-browser: FAIL: stream-proxy exited with status $status after SIGTERM; its log:" >&2
      cat "$log" >&2 || true
      failed=1
    fi
  fi
  rm -f "$log"
  # In an EXIT trap, `exit` replaces the script's status; keep a failure the tests reported.
  if [ "$failed" = 1 ] && [ "$exit_status" = 0 ]; then exit 1; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

.build/debug/stream-proxy serve --listen "127.0.0.1:$port" --workers 1 --log-level warning >"$log" 2>&1 &
server=$!
for _ in $(seq 100); do
  if "$venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "stream-proxy exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done

# --- the tests ---
export STREAMPROXY_URL="http://127.0.0.1:$port"
export SE_OFFLINE=true   # Selenium Manager must not try to download a browser or a driver
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in Tests/browser
setsid "$venv/bin/python" -m pytest -p no:cacheprovider -q Tests/browser "$@" &
tests=$!
status=0
wait "$tests" || status=$?
if [ "$status" -ne 0 ] && [ -s "$log" ]; then echo "--- stream-proxy log ---" >&2; cat "$log" >&2; fi
exit "$status"

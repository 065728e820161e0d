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

# --- Debian packages (the two font packages give the screenshot its CJK and symbol glyphs) ---
packages=(chromium chromium-driver fonts-droid-fallback fonts-symbola)
command -v python3 >/dev/null || packages+=(python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_install() {
  echo "installing: $*" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# --- Python packages, pinned (the direct ones first, then what they pull in) ---
pins=(
  pytest==9.2.0 selenium==4.51.0 sseclient-py==1.9.0 requests==2.34.2
  attrs==26.1.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3 h11==0.16.0 idna==3.20
  iniconfig==2.3.1 outcome==1.3.0.post0 packaging==26.4 pluggy==1.7.0 Pygments==2.21.0
  PySocks==1.7.1 sniffio==1.3.1 sortedcontainers==2.4.0 trio==0.35.0 trio-websocket==0.12.2
  typing_extensions==4.16.0 urllib3==2.8.0 websocket-client==1.9.2 wsproto==1.3.2
)
venv=.venv-test
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "${pins[*]}" ] || ! "$venv/bin/python" -c "" 2>/dev/null; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_install python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$venv/.pins"
fi

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

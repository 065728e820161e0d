#!/usr/bin/env bash
# `make test-scaleout` (issue 14): StreamProxy behind HAProxy on loopback, with a certificate
# made for the run: 3 instances, HTTP/2 to curl and headless Chromium, an instance SIGKILLed
# and a rolling restart under 300 streams of load, a restart on one port with --reuse-port.
# The checks and the counts are in Tests/scaleout/scaleout.py; this builds the release binary
# (the load figures are the release build's) and provides what it runs.
#
#   scripts/test-scaleout.sh            every step
#   scripts/test-scaleout.sh 2 3        only the steps named (1, 2, 3, 4, 6)
set -euo pipefail
cd "$(dirname "$0")/.."

# HAProxy 2.6 (Debian's) and curl; Chromium and Selenium as for the browser tests.
for p in haproxy curl openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_scaleout+=("$p")
done
source scripts/browser-env.sh
if [ -n "${missing_scaleout[*]:-}" ]; then apt_install "${missing_scaleout[@]}"; fi

swift build -c release --product stream-proxy
export SE_OFFLINE=true PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" Tests/scaleout/scaleout.py "$@"

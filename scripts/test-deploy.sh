#!/usr/bin/env bash
# Checks the files in deploy/ (issue 14), quickly, as part of `make test`:
#   - `systemd-analyze verify` on stream-proxy.service and stream-proxy@.service (an instance of
#     it), which must pass with no message at all;
#   - `haproxy -c` on haproxy.cfg, valid with no warning.
# Exits non-zero on the first failure.
#
# systemd-analyze verify checks that ExecStart's binary exists, and /usr/local/bin/stream-proxy
# does not on a build machine; it also needs the system's units (sysinit.target, ...) that the
# unit depends on. So it runs with --root on a scratch tree holding the debug binary at the
# unit's path, a copy of this system's unit directory and the two unit files: nothing is
# installed on the host. --man=no: no man pages are looked up (Documentation= is a URL anyway).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=.build/debug/stream-proxy
[ -x "$binary" ] || swift build --product stream-proxy
root=$(mktemp -d -t stream-proxy-deploy.XXXXXX)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp "$binary" "$root/usr/local/bin/stream-proxy"
units=/usr/lib/systemd/system
[ -d "$units" ] || units=/lib/systemd/system
cp -r "$units" "$root/usr/lib/systemd/"
cp deploy/stream-proxy.service deploy/stream-proxy@.service "$root/etc/systemd/system/"

failed=0
for unit in stream-proxy.service stream-proxy@a.service; do
  status=0
  out=$(systemd-analyze verify --man=no --root="$root" "$unit" 2>&1) || status=$?
  if [ "$status" -ne 0 ] || [ -n "$out" ]; then
    echo "test-deploy: FAIL: systemd-analyze verify $unit (status $status):" >&2
    echo "$out" >&2
    failed=1
  else
    echo "test-deploy: systemd-analyze verify $unit: ok"
  fi
done

# haproxy -c loads the certificate, so it gets a throwaway one; the sockets are not opened.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$root/key.pem" -out "$root/crt.pem" -days 1 \
  -subj /CN=localhost 2>/dev/null
cat "$root/crt.pem" "$root/key.pem" >"$root/cert.pem"
status=0
out=$(SP_CERT="$root/cert.pem" SP_STATS="$root/stats.sock" haproxy -c -f deploy/haproxy.cfg 2>&1) || status=$?
if [ "$status" -ne 0 ] || grep -q -e WARNING -e ALERT <<<"$out" || ! grep -q "Configuration file is valid" <<<"$out"; then
  echo "test-deploy: FAIL: haproxy -c -f deploy/haproxy.cfg (status $status):" >&2
  echo "$out" >&2
  failed=1
else
  echo "test-deploy: haproxy -c -f deploy/haproxy.cfg: ok ($(haproxy -v | head -1 | cut -d' ' -f1-3))"
fi
exit "$failed"

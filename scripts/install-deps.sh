#!/usr/bin/env bash
# Installs the Debian packages StreamProxy builds and tests against, when any is missing
# (libtcmalloc-minimal4: release builds allocate with tcmalloc, see Package.swift)
# (nginx and openssl: the HTTP/2 upstream tests run a real nginx with a certificate they make;
# haproxy and systemd: scripts/test-deploy.sh checks deploy/ with haproxy -c and systemd-analyze).
# Idempotent and quiet when everything is present.
set -euo pipefail

packages=(libcurl4-openssl-dev libevent-dev libtcmalloc-minimal4 pkg-config curl brotli zstd nginx openssl haproxy systemd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

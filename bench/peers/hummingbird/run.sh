#!/usr/bin/env bash
# Usage: run.sh PORT ROUTES_JSON
#   ROUTES_JSON: a JSON string ('{"w1": {"prefix": 50, "upstreams": [...]}}') or a JSON file path.
# Builds the peer in release (the first build takes 5-10 minutes) and runs it on 127.0.0.1:PORT.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${1:?usage: run.sh PORT ROUTES_JSON}
ROUTES=${2:?usage: run.sh PORT ROUTES_JSON}
# The package sits in HBPeer/: a root package in a folder named "hummingbird" would clash with
# the hummingbird dependency's package identity.
swift build -c release --package-path HBPeer --scratch-path .build-peer >&2
export ROUTES
exec .build-peer/release/HBPeer "$PORT"

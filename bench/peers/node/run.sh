#!/usr/bin/env bash
# Usage: run.sh PORT ROUTES_JSON
#   ROUTES_JSON: a JSON string ('{"w1": {"prefix": 50, "upstreams": [...]}}') or a JSON file path.
# Runs the Node peer (built-ins only, nothing to install) on 127.0.0.1:PORT, one process.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${1:?usage: run.sh PORT ROUTES_JSON}
ROUTES=${2:?usage: run.sh PORT ROUTES_JSON}
export ROUTES
exec node server.js "$PORT"

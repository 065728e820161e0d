#!/usr/bin/env bash
# Usage: run.sh PORT ROUTES_JSON [WORKERS]
#   ROUTES_JSON: a JSON string ('{"w1": {"prefix": 50, "upstreams": [...]}}') or a JSON file path.
#   WORKERS: uvicorn worker processes (default 1); each has its own httpx pool.
set -euo pipefail
cd "$(dirname "$0")"
PORT=${1:?usage: run.sh PORT ROUTES_JSON [WORKERS]}
ROUTES=${2:?usage: run.sh PORT ROUTES_JSON [WORKERS]}
WORKERS=${3:-1}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
LOOP=()
if .venv/bin/python -c 'import uvloop' 2>/dev/null; then LOOP=(--loop uvloop); fi
export ROUTES
exec .venv/bin/uvicorn app:app --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
    "${LOOP[@]}" --no-access-log --log-level warning

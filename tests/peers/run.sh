#!/usr/bin/env bash
# Real clients against the sandbox: the official Python client (conformance
# cases + the UDF guide) and aerospike-py (the guide's async example).
#
#   tests/peers/run.sh [PORT]
#
# Creates a venv in target/peers-venv, starts the sandbox with every Lua
# library (the conformance cases were recorded that way) on PORT (default
# 3317), runs ../shared/conformance/check.py (cases, cases-batch-exp) and
# tests/peers/guide_test.py.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PORT="${1:-3317}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/peers-venv"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet aerospike==19.3.0 aerospike-py==0.14.4

cd "$ROOT"
cargo build --quiet --locked --bin asudf
SERVER=("$TARGET/debug/asudf" serve)

start_server() {
    "${SERVER[@]}" --memory --lua-libs all --port "$PORT" "$@" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if (echo >"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "server did not start" >&2
    return 1
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}
trap stop_server EXIT

status=0
start_server
"$VENV/bin/python" "$ROOT/../shared/conformance/check.py" "127.0.0.1:$PORT" || status=1
"$VENV/bin/python" "$ROOT/../shared/conformance/check.py" "127.0.0.1:$PORT" "$ROOT/../shared/conformance/cases-batch-exp" || status=1
stop_server

# The guide's async example names the cluster `docker`.
start_server --cluster-name docker
"$VENV/bin/python" "$ROOT/tests/peers/guide_test.py" "$PORT" || status=1
stop_server

exit $status

#!/usr/bin/env bash
# Two `asudf serve --memory` builds under the same concurrent load, in
# alternating rounds: `asudf bench apply` (one client binary for both) at
# 1, 16 and 64 in flight, then the official Python client from 16 and 64
# threads (bench_threads.py). Prints one JSON line per measurement.
#
#   serve_load.sh CLIENT SERVE_A SERVE_B [CALLS] [ROUNDS] [PYTHON]
#
# Loopback only; every server started here is stopped here.
set -euo pipefail
client=$1 a=$2 b=$3 calls=${4:-20000} rounds=${5:-2} python=${6:-python3}
port=${PORT:-3431}
here=$(cd "$(dirname "$0")" && pwd)
udf=$(mktemp -d)/bench_one.lua
printf 'function one(rec)\n    return 1\nend\n' > "$udf"
server=
stop() { [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=; }
trap stop EXIT
for round in $(seq 1 "$rounds"); do
  # Which build goes first alternates too.
  if (( round % 2 )); then order="A B"; else order="B A"; fi
  for side in $order; do
    bin=$a; [ "$side" = B ] && bin=$b
    "$bin" serve --memory --lua-libs all --port "$port" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 100); do
      "$client" -h "127.0.0.1:$port" udf put "$udf" >/dev/null 2>&1 && break
      sleep 0.1
    done
    for c in 1 16 64; do
      out=$("$client" -h "127.0.0.1:$port" --json bench apply test.demo bench bench_one.one \
            -n "$calls" -c "$c" --allow-errors)
      echo "{\"round\":$round,\"server\":\"$side\",\"client\":\"asudf\",\"c\":$c,\"result\":$out}"
    done
    for t in 16 64; do
      out=$("$python" "$here/bench_threads.py" "127.0.0.1:$port" "$t" $((calls / t)))
      echo "{\"round\":$round,\"server\":\"$side\",\"client\":\"python\",\"c\":$t,\"result\":\"$out\"}"
    done
    stop
  done
done

#!/usr/bin/env python3
"""Trivial-UDF applies from T threads (each sequential) with the official
client: throughput and latency percentiles over a bounded number of calls.

    bench_threads.py HOST:PORT [THREADS] [CALLS_PER_THREAD]
"""

import os
import sys
import tempfile
import threading
import time

import aerospike

ADDR = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:3000"
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
CALLS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
HOST, PORT = ADDR.rsplit(":", 1)

TRIVIAL = "function one(rec)\n    return 1\nend\n"


def main():
    work = tempfile.mkdtemp(prefix="asudf-bench-")
    os.chdir(work)  # the client keeps copies of registered modules here
    client = aerospike.client(
        {"hosts": [(HOST, int(PORT))], "max_conns_per_node": max(THREADS, 100)}
    ).connect()
    path = os.path.join(work, "bench_one.lua")
    with open(path, "w") as f:
        f.write(TRIVIAL)
    client.udf_put(path)
    key = ("test", "demo", "bench")
    for _ in range(200):  # warm up
        client.apply(key, "bench_one", "one", [])

    latencies = [[] for _ in range(THREADS)]
    errors = [0] * THREADS

    def worker(i):
        out = latencies[i]
        for _ in range(CALLS):
            began = time.perf_counter()
            try:
                client.apply(key, "bench_one", "one", [])
            except aerospike.exception.AerospikeError:
                errors[i] += 1
                continue
            out.append(time.perf_counter() - began)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done = sorted(x for lat in latencies for x in lat)
    ok = len(done)

    def pct(q):
        return done[min(ok - 1, int(q * ok))] * 1e6 if ok else 0.0

    print(
        "threads %d: %d ok, %d errors, %.0f ops/s, p50 %.0f us, p99 %.0f us"
        % (THREADS, ok, sum(errors), ok / elapsed, pct(0.50), pct(0.99))
    )
    client.udf_remove("bench_one.lua")
    client.close()


if __name__ == "__main__":
    main()

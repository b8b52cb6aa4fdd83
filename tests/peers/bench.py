#!/usr/bin/env python3
"""Sequential trivial-UDF applies per second vs gets per second, with the
official client, in the same run against one server.

    bench.py [HOST:PORT] [SECONDS]
"""

import os
import sys
import tempfile
import time

import aerospike

ADDR = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:3000"
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
HOST, PORT = ADDR.rsplit(":", 1)

TRIVIAL = "function noop(rec)\n    return 1\nend\n"


def rate(label, call):
    for _ in range(200):  # warm up
        call()
    n = 0
    start = time.perf_counter()
    deadline = start + SECONDS
    while time.perf_counter() < deadline:
        for _ in range(100):
            call()
        n += 100
    elapsed = time.perf_counter() - start
    per_sec = n / elapsed
    print("%-8s %8.0f ops/s  (%6.1f us/op, %d ops)" % (label, per_sec, 1e6 / per_sec, n))
    return per_sec


def main():
    work = tempfile.mkdtemp(prefix="asudf-bench-")
    # The client keeps copies of registered modules in the working directory.
    os.chdir(work)
    client = aerospike.client({"hosts": [(HOST, int(PORT))]}).connect()
    path = os.path.join(work, "bench_noop.lua")
    with open(path, "w") as f:
        f.write(TRIVIAL)
    client.udf_put(path)
    key = ("test", "demo", "bench")
    client.put(key, {"a": 1})
    gets = rate("get", lambda: client.get(key))
    applies = rate("apply", lambda: client.apply(key, "bench_noop", "noop", []))
    print("apply/get ratio: %.2f" % (applies / gets))
    client.udf_remove("bench_noop.lua")
    client.close()


if __name__ == "__main__":
    main()

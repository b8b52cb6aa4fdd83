#!/usr/bin/env python3
"""What the UDF guide shows, done with each Python client against the sandbox.

    guide_test.py PORT

The sandbox must run with `--cluster-name docker` (the guide's async example
names that cluster). Prints one line per check and exits 1 if any failed.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
HERE = os.path.dirname(os.path.abspath(__file__))
COUNTER = os.path.join(HERE, "..", "..", "..", "shared", "samples", "counter.lua")

failures = []


def check(name, got, want):
    ok = got == want
    print("%s %s: got %r%s" % ("ok  " if ok else "FAIL", name, got, "" if ok else ", want %r" % (want,)))
    if not ok:
        failures.append(name)


def official_client():
    import aerospike

    client = aerospike.client({"hosts": [("127.0.0.1", PORT)]}).connect()
    try:
        client.udf_put("counter.lua")
        key = ("test", "demo", "counter1")
        try:
            client.remove(key)
        except aerospike.exception.RecordNotFound:
            pass
        check("official: increment 5", client.apply(key, "counter", "increment", ["count", 5]), 5)
        check("official: increment 3", client.apply(key, "counter", "increment", ["count", 3]), 8)
        # The official client names the file to remove.
        client.udf_remove("counter.lua")
        check("official: removed", "counter.lua" in [m["name"] for m in client.udf_list()], False)
    finally:
        client.close()


def aerospike_py_sync():
    import aerospike_py

    client = aerospike_py.client({"hosts": [("127.0.0.1", PORT)], "cluster_name": "docker"}).connect()
    try:
        client.udf_put("counter.lua")
        key = ("test", "demo", "counter2")
        check("aerospike-py: increment 5", client.apply(key, "counter", "increment", ["count", 5]), 5)
        check("aerospike-py: increment 3", client.apply(key, "counter", "increment", ["count", 3]), 8)
        client.udf_remove("counter")
    finally:
        client.close()


def aerospike_py_async_guide():
    """The guide's AsyncClient example, verbatim apart from printing into a check."""
    from aerospike_py import AsyncClient

    results = []
    print = results.append  # noqa: A001 - the example prints its result

    async def main():
        client = AsyncClient({
            "hosts": [("127.0.0.1", PORT)],
            "cluster_name": "docker",
        })
        await client.connect()

        await client.udf_put("counter.lua")

        key = ("test", "demo", "counter1")
        result = await client.apply(key, "counter", "increment", ["count", 1])
        print(result)

        await client.udf_remove("counter")
        await client.close()

    asyncio.run(main())
    # counter1 holds 8 from the official client's run: +1 = 9.
    check("aerospike-py async guide", results, [9])


TESTS = (official_client, aerospike_py_sync, aerospike_py_async_guide)


def run_one(name):
    """One client in this process; exit status 1 when a check failed."""
    test = {t.__name__: t for t in TESTS}[name]
    work = tempfile.mkdtemp(prefix="asudf-guide-")
    shutil.copy(COUNTER, os.path.join(work, "counter.lua"))
    os.chdir(work)
    try:
        test()
    except Exception as e:
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        failures.append(name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()
    # Skip interpreter teardown: a client's background threads must not decide the status.
    os._exit(1 if failures else 0)


def main():
    if len(sys.argv) > 3 and sys.argv[2] == "--only":
        run_one(sys.argv[3])
    # Each client in its own process, in order (the async example expects
    # the counter the official client left).
    failed = 0
    for test in TESTS:
        status = subprocess.call([sys.executable, os.path.abspath(__file__), str(PORT), "--only", test.__name__])
        failed += status != 0
    print("%d passed, %d failed" % (len(TESTS) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

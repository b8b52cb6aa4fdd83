#!/usr/bin/env python3
"""bg_latency.py HOST:PORT [N]: a foreground apply loop's p50 while a
background UDF job runs, against the same loop idle (official Python client).

Writes N records (set `bglat`), times 2000 sequential trivial applies idle,
starts a background UDF job over the N records (it runs at the server's
default 10,000 records/s), times 2000 applies while the job is active, and
prints both medians and their ratio. Cleans up after itself.
"""
import os, statistics, sys, tempfile, time
import aerospike

host, port = sys.argv[1].rsplit(":", 1)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
SRC = """function touch(rec) rec['w'] = 1; aerospike:update(rec) end
function noop(rec) return 1 end
"""
d = tempfile.mkdtemp()
path = os.path.join(d, "bglat.lua")
with open(path, "w") as f:
    f.write(SRC)
c = aerospike.client({"hosts": [(host, int(port))]}).connect()
c.udf_put(path)
time.sleep(0.5)
for i in range(N):
    c.put(("test", "bglat", i), {"v": i})
key = ("test", "fg", "k")
c.put(key, {"v": 0})


def p50(count=2000):
    times = []
    for _ in range(count):
        t = time.perf_counter()
        c.apply(key, "bglat", "noop", [])
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


idle = p50()
q = c.query("test", "bglat")
q.apply("bglat", "touch")
job = q.execute_background()
busy = p50()
active = c.job_info(job, aerospike.JOB_QUERY)["status"] != aerospike.JOB_STATUS_COMPLETED
idle_after = None
while c.job_info(job, aerospike.JOB_QUERY)["status"] != aerospike.JOB_STATUS_COMPLETED:
    time.sleep(0.05)
idle_after = p50()
print(f"apply p50 idle: {idle:.0f} us; while a background job runs: {busy:.0f} us "
      f"(job still active at the end: {active}); idle again: {idle_after:.0f} us")
print(f"ratio busy/idle: {busy / idle:.2f}")
c.truncate("test", "bglat", 0)
c.remove(key)
c.udf_remove("bglat.lua")

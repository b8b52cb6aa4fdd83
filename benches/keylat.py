# keylat.py BINARY [ROUNDS]: keystroke -> screen latency on ../shared/bench/udf10k.lua
# (typing at line 1, column 0) for asudf BINARY and vim, with measure.sh's own
# harness (../shared/bench/tui/bench.py: tmux 160x45, one control-mode client,
# a poll every 0.5 ms), polled two ways and interleaved:
#   full: capture-pane of the whole screen, as measure.sh does;
#   row:  capture-pane of the typed row only, so the poll costs tmux the same
#         for both programs (a whole capture of asudf's paneled, coloured
#         screen costs tmux more than one of vim's);
#   busy: the typed row, polled again at once (no sleep): when the key is
#         first visible, to about one row capture (~50 us), beside two
#         floors: `echo`, the terminal's own echo (the kernel echoes the key,
#         no program runs), and `dd`, a program that only reads the key and
#         writes it back (what waking any program costs);
#   work: measure.sh's way (whole screen, 0.5 ms pause) for benches/spin.c,
#         which writes each key back after a set number of microseconds of
#         CPU (spin0 .. spin160), beside asudf and vim: how the figure
#         follows the time a program takes from the key to its write;
#   write: that time itself, per program, from the kernel's trace (the
#         program woken, then its write to the terminal); no capture runs.
#         Needs root and tracefs, so it runs only when asked for
#         (MODES=write).
#   race: measure.sh's way for asudf and vim, under the kernel's trace of
#         the tmux server and the program: per key, when the program wrote
#         its frame and when the harness's first capture-pane reached the
#         server (µs after the server wrote the key to the terminal). A key
#         is on screen at the first capture only when that capture comes
#         after the program's write; prints how many captures came early
#         (before 250 µs) and late, and the keys shown at each. Root and
#         tracefs too (MODES=race).
# Prints each program's median keystroke latency per round, in ms, and how
# many of its 30 keys were already shown at the first capture after the key
# (the figure is about one capture and a pause shorter for those); for the
# write mode, how many keys the trace paired with a write.
# Run on a quiet machine: python3 benches/keylat.py target/release/asudf 4
# (MODES=work,write ... runs only those modes; the default is full,row,busy,work)
import os, re, sys, time, statistics, tempfile, random, shutil, subprocess
SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")
R = tempfile.mkdtemp()
os.environ["TUIPEERS_ROOT"] = R; os.environ["CTL_BUFFERED"] = "1"; os.environ["TUIBENCH_SOCK"] = "keylat"
for d in ("data", "screens", "work", "bin", "xdg", "logs"): os.makedirs(f"{R}/{d}", exist_ok=True)
shutil.copy(f"{SHARED}/bench/tui/tmux.conf", R); shutil.copy(f"{SHARED}/bench/udf10k.lua", f"{R}/data/")
sys.path.insert(0, f"{SHARED}/bench/tui")
import bench
bench.tmux("start-server")
F = f"{R}/data/udf10k.lua"
peers = {"asudf": (f"{sys.argv[1]} {F}", 2), "vim": (f"vim --clean -n {F}", 0),
         "echo": ("sh -c 'stty -icanon; printf \"%s\\n\" \"$0\"; exec cat >/dev/null' 'Aerospike UDF module'", 2),
         "dd": ("sh -c 'printf \"%s\\n\" \"$0\"; stty raw -echo; exec dd bs=1 status=none' 'Aerospike UDF module'", 2)}
SPINS = [f"spin{us}" for us in (0, 40, 80, 120, 160)]
MODES = {"full": ("asudf", "vim"), "row": ("asudf", "vim"), "busy": ("asudf", "vim", "echo", "dd"),
         "work": tuple(SPINS) + ("asudf", "vim"), "write": ("asudf", "vim", "spin0"),
         "race": ("asudf", "vim")}
spin = f"{R}/spin"
if subprocess.run(["cc", "-O2", "-o", spin, os.path.join(os.path.dirname(os.path.abspath(__file__)), "spin.c")]).returncode == 0:
    peers.update({name: (f"{spin} {name[4:]}", 2) for name in SPINS})
else:
    print("no C compiler: the work and write modes are left out"); del MODES["work"], MODES["write"]
# The write mode needs root and tracefs, so it runs only when asked for.
MODES = {m: names for m, names in MODES.items() if m in os.environ.get("MODES", "full,row,busy,work").split(",")}
rng = random.Random(1)
KEYS = "abcdefghijklmnopqrstuvwxyzabcd"   # typed after "QQ", one at a time
def run(name, mode):
    cmd, row = peers[name]
    env = {"LANG": "C.UTF-8"}
    if name == "asudf": env.update(bench.asudf_env(name))
    marker = bench.BIG_MARKER if name in ("asudf", "vim") else (lambda c: "Aerospike UDF module" in c)
    pid, _, _ = bench.start(name, cmd, env, marker)
    time.sleep(1.5)
    if name == "vim": bench.vim_insert(name)
    c = bench.Ctl(name)
    cap = f"capture-pane -p -t {name}" + (f" -S {row} -E {row}" if mode != "full" else "")
    typed = "QQ"; c.cmd(f"send-keys -t {name} -l QQ")
    while typed not in c.cmd(cap): time.sleep(0.01)
    time.sleep(0.5)
    if mode == "write":
        return key_to_write(name, pid, c, cap, typed)
    if mode == "race":
        return race(name, pid, c, cap, typed)
    pause = 0 if mode == "busy" else 0.0005
    lats, first = [], 0
    for ch in KEYS:
        typed += ch; t0 = time.perf_counter(); c.cmd(f"send-keys -t {name} -l {ch}")
        polls = 1
        while typed not in c.cmd(cap): time.sleep(pause); polls += 1
        first += polls == 1
        lats.append((time.perf_counter() - t0) * 1000); time.sleep(rng.uniform(0.05, 0.15))
    c.close(); bench.stop(name, pid)
    return statistics.median(lats), first
TRACING = "/sys/kernel/tracing"
def trace(setting, value):
    with open(f"{TRACING}/{setting}", "w") as f: f.write(value)
def threads(pid):
    """The program's threads (asudf reads the terminal on one of its own)."""
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
def key_to_write(name, pid, c, cap, typed):
    """The program's own time from each key to its write, from the kernel's
    trace: the program woken (by the pty's kworker), then its write to the
    terminal. Median in ms, and how many keys the trace paired."""
    tids = threads(pid)
    trace("tracing_on", "0"); trace("trace", ""); trace("set_event_pid", " ".join(map(str, tids)))
    trace("set_event", "sched:sched_wakeup\nsyscalls:sys_enter_write"); trace("tracing_on", "1")
    try:
        for ch in KEYS:
            typed += ch; c.cmd(f"send-keys -t {name} -l {ch}"); time.sleep(rng.uniform(0.05, 0.15))
        while typed not in c.cmd(cap): time.sleep(0.01)
    finally:
        trace("tracing_on", "0")
        with open(f"{TRACING}/trace") as f: lines = f.read().splitlines()
        trace("set_event", ""); trace("set_event_pid", "")
    c.close(); bench.stop(name, pid)
    spans, woken = [], None
    for line in lines:
        m = re.match(r"\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+)[:(] ?(.*)", line)
        if not m: continue
        task_pid, t, event, what = int(m[2]), float(m[3]), m[4], m[5]
        # The waker shows as <idle> when the wake-up came by an interrupt from the other core.
        if event == "sched_wakeup" and any(f" pid={tid} " in what for tid in tids) and task_pid not in tids: woken = t
        elif event == "sys_write" and task_pid in tids and what.startswith("fd: 1,") and woken is not None:
            spans.append((t - woken) * 1000); woken = None
    return statistics.median(spans), len(spans)
EARLY_US = 250
def race(name, pid, c, cap, typed):
    """Who comes first after each key: the program's write or the harness's
    capture. Gives the program's median write time (µs after the key) and
    its keys shown at the first capture, split by the capture's arrival."""
    server = int(bench.tmux("display-message", "-p", "-t", name, "#{pid}"))
    ptys = {int(fd) for fd in os.listdir(f"/proc/{server}/fd")
            if os.readlink(f"/proc/{server}/fd/{fd}") == "/dev/ptmx"}
    tids = threads(pid)
    trace("tracing_on", "0"); trace("trace", ""); trace("set_event_pid", " ".join(map(str, [server] + tids)))
    trace("set_event", "syscalls:sys_enter_write\nsyscalls:sys_enter_writev\nsyscalls:sys_enter_readv")
    trace("tracing_on", "1")
    shown = []
    try:
        for ch in KEYS:
            typed += ch; c.cmd(f"send-keys -t {name} -l {ch}"); polls = 1
            while typed not in c.cmd(cap): time.sleep(0.0005); polls += 1
            shown.append(polls == 1); time.sleep(rng.uniform(0.05, 0.15))
    finally:
        trace("tracing_on", "0")
        with open(f"{TRACING}/trace") as f: lines = f.read().splitlines()
        trace("set_event", ""); trace("set_event_pid", "")
    c.close(); bench.stop(name, pid)
    keys = []   # [key written, program's write, capture read], seconds
    for line in lines:
        m = re.match(r"\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\w+)\(fd: (\w+)", line)
        if not m: continue
        task, t, call, fd = int(m[2]), float(m[3]), m[4], int(m[5], 16)
        if task == server and call == "sys_writev" and fd in ptys: keys.append([t, None, None])
        elif not keys: continue
        elif task in tids and call == "sys_write" and fd == 1 and keys[-1][1] is None: keys[-1][1] = t
        elif task == server and call == "sys_readv" and fd not in ptys and keys[-1][2] is None: keys[-1][2] = t
    us = lambda k, i: (k[i] - k[0]) * 1e6 if k[i] else float("inf")
    writes = [us(k, 1) for k in keys]
    early = [s for k, s in zip(keys, shown) if us(k, 2) < EARLY_US]
    late = [s for k, s in zip(keys, shown) if us(k, 2) >= EARLY_US]
    return statistics.median(writes), f"{len(keys)} keys; captures early {len(early)} (shown {sum(early)}), late {len(late)} (shown {sum(late)})"
if ("write" in os.environ.get("MODES", "") or "race" in os.environ.get("MODES", "")) and not os.access(f"{TRACING}/trace", os.W_OK):
    sys.exit("the write and race modes read the kernel's trace: they need root and tracefs")
res, firsts = {}, {}
for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
    for mode, names in MODES.items():
        for name in (names if r % 2 == 0 else names[::-1]):
            median, first = run(name, mode)
            res.setdefault((name, mode), []).append(round(median, 3))
            firsts.setdefault((name, mode), []).append(first)
for k, v in sorted(res.items()):
    what = {"write": "keys traced", "race": "(median µs of the write)"}.get(k[1], "first-capture keys")
    print(k, v, "median", statistics.median(v), what, firsts[k])
bench.tmux("kill-server")

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
#         writes it back (what waking any program costs).
# Prints each program's median keystroke latency per round, in ms.
# Run on a quiet machine: python3 benches/keylat.py target/release/asudf 4
import os, sys, time, statistics, tempfile, random, shutil
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
MODES = {"full": ("asudf", "vim"), "row": ("asudf", "vim"), "busy": ("asudf", "vim", "echo", "dd")}
rng = random.Random(1)
def run(name, mode):
    cmd, row = peers[name]
    env = {"LANG": "C.UTF-8"}
    if name == "asudf": env.update(bench.asudf_env(name))
    marker = (lambda c: "Aerospike UDF module" in c) if name in ("echo", "dd") else bench.BIG_MARKER
    pid, _, _ = bench.start(name, cmd, env, marker)
    time.sleep(1.5)
    if name == "vim": bench.vim_insert(name)
    c = bench.Ctl(name)
    cap = f"capture-pane -p -t {name}" + (f" -S {row} -E {row}" if mode != "full" else "")
    pause = 0 if mode == "busy" else 0.0005
    typed = "QQ"; c.cmd(f"send-keys -t {name} -l QQ")
    while typed not in c.cmd(cap): time.sleep(0.01)
    time.sleep(0.5)
    lats = []
    for ch in "abcdefghijklmnopqrstuvwxyzabcd":
        typed += ch; t0 = time.perf_counter(); c.cmd(f"send-keys -t {name} -l {ch}")
        while typed not in c.cmd(cap): time.sleep(pause)
        lats.append((time.perf_counter() - t0) * 1000); time.sleep(rng.uniform(0.05, 0.15))
    c.close(); bench.stop(name, pid)
    return statistics.median(lats)
res = {}
for r in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
    for mode, names in MODES.items():
        for name in (names if r % 2 == 0 else names[::-1]):
            res.setdefault((name, mode), []).append(round(run(name, mode), 3))
for k, v in sorted(res.items()): print(k, v, "median", statistics.median(v))
bench.tmux("kill-server")

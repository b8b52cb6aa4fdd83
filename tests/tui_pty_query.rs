//! The form's query-path kinds in a real pseudo-terminal (tmux), against
//! the local sandbox: the sum sample loaded with one key (module, 1,000
//! records, index) and its aggregation with its value and stage counts, the
//! stamp sample's job to 100 % with its counters, the stamped records
//! through the query kind, and a batch apply over three keys with one
//! missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The real binary: `asudf` with no subcommand opens the console.
fn console_program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_asudf"))
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, dir: &Path) -> Tmux {
        // One tmux server per test: tests run in parallel.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux {
            socket: format!("asudf-test-{}-{n}", std::process::id()),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-s",
            "t",
            "env",
            "-i",
            &format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
            "TERM=xterm-256color",
            &format!("HOME={}", dir.display()),
            &format!("XDG_DATA_HOME={}", dir.join("data").display()),
            &format!("XDG_CONFIG_HOME={}", dir.join("config").display()),
            "PS1=READY$ ",
            "bash",
            "--norc",
            "--noprofile",
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", "--", text]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen shows `text`; the screen when it does.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

const BUMP: &str = "function bump(rec, n)
  if not aerospike:exists(rec) then error('no such record') end
  rec['n'] = (rec['n'] or 0) + n
  aerospike:update(rec)
  return rec['n']
end
";

/// Clears the focused form field and types `text` into it.
fn retype(tmux: &Tmux, text: &str) {
    tmux.keys(&["C-u"]);
    if !text.is_empty() {
        tmux.literal(text);
    }
}

#[test]
fn aggregate_background_query_and_batch_in_a_terminal() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bump.lua"), BUMP).unwrap();
    let tmux = Tmux::start(160, 45, dir.path());
    tmux.wait_for("READY$");
    // A module of our own for the batch; the samples come from the console.
    tmux.literal(&format!(
        "cd {} && {p} udf put bump.lua; echo LOADED-$?",
        dir.path().display(),
        p = program.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("LOADED-0");
    tmux.literal(&format!("{}; echo EXIT=$?", program.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("● sandbox");

    // The sum sample with one key (F2 lists them; it is the second): its
    // module, records and index, the editor and the form filled.
    tmux.keys(&["F2"]);
    tmux.wait_for("background UDF: the server stamps");
    tmux.keys(&["Down", "Enter"]);
    let screen = tmux.wait_for("sample sum loaded");
    assert!(screen.contains("1000 records in test.sales"), "{screen}");
    assert!(screen.contains("Apply · aggregate"), "{screen}");
    assert!(
        screen.contains("sum.lua ───"),
        "the editor has it: {screen}"
    );
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("client reduce");
    for text in [
        "= 12300",
        "1 value",
        "map(amount)",
        "reduce(add)",
        "partitions ran",
    ] {
        assert!(screen.contains(text), "{text}:\n{screen}");
    }

    // The stamp sample: a background job over the set, to 100 %.
    tmux.keys(&["F2"]);
    tmux.wait_for("background UDF: the server stamps");
    tmux.keys(&["Down", "Down", "Down", "Enter"]);
    let screen = tmux.wait_for("sample stamp loaded");
    assert!(screen.contains("Apply · background"), "{screen}");
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("done(ok)");
    assert!(screen.contains("100.00%"), "{screen}");
    assert!(screen.contains("succeeded 1000 · failed 0"), "{screen}");

    // Query: the records the job stamped (Alt-3 focuses the form).
    tmux.keys(&["M-3", "F8"]);
    tmux.wait_for("Apply · query");
    tmux.keys(&["Down", "Down"]);
    retype(&tmux, "amount = 7");
    tmux.keys(&["Down"]);
    retype(&tmux, "amount, stamp");
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("10 records");
    assert!(screen.contains("{amount: 7, stamp: '"), "{screen}");

    // Batch: three keys, one missing.
    tmux.keys(&["F8"]);
    tmux.wait_for("Apply · batch");
    tmux.keys(&["Down", "Down"]);
    retype(&tmux, "1, 5000, 2");
    for text in ["bump", "bump", "10"] {
        tmux.keys(&["Down"]);
        retype(&tmux, text);
    }
    tmux.keys(&["F5"]);
    let screen = tmux.wait_for("3 keys · 1 failed");
    assert!(screen.contains("1    ✓ 10"), "{screen}");
    assert!(screen.contains("5000 ✗ error 100"), "{screen}");
    assert!(screen.contains("2    ✓ 10"), "{screen}");

    tmux.keys(&["C-c"]);
    tmux.wait_for("EXIT=0");
}

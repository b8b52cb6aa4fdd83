//! A console in a real pseudo-terminal: a tmux server of its own per test,
//! keys sent to it and its screen read back.
#![allow(dead_code)] // each test target uses part of the shared support

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The real binary: `asudf` with no subcommand opens the console.
pub fn console_program() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_asudf"))
}

pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(width: u16, height: u16, dir: &Path) -> Tmux {
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

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    pub fn literal(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", "--", text]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn alternate_screen(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "t", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Waits until the screen shows `text`; the screen when it does.
    pub fn wait_for(&self, text: &str) -> String {
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

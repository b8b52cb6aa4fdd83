//! The `asudf` binary as a process: one command, or `asudf serve` running
//! beside the test.
#![allow(dead_code)] // each test target uses part of the shared support

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// `asudf ARGS…` (no `ASUDF_HOST` from the environment) → (exit code,
/// stdout, stderr).
pub fn asudf(args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("asudf")
        .unwrap()
        .args(args)
        .env_remove("ASUDF_HOST")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `asudf serve --port 0 ARGS…` in another process, killed on drop.
pub struct Served {
    child: Child,
    /// `127.0.0.1:PORT`, from its banner.
    pub host: String,
    /// Its first line: where it listens, as text or (`--json`) a JSON object.
    pub banner: String,
}

impl Served {
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::cargo_bin("asudf")
            .unwrap()
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        let at = banner
            .find("127.0.0.1:")
            .unwrap_or_else(|| panic!("banner: {banner}"));
        let port: String = banner[at + "127.0.0.1:".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let host = format!("127.0.0.1:{port}");
        Served {
            child,
            host,
            banner,
        }
    }

    /// `asudf -h HOST ARGS…` → (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["-h", self.host.as_str()];
        all.extend_from_slice(args);
        asudf(&all)
    }

    /// As [`run`](Self::run), asserting it succeeds; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "asudf {args:?}: {err}{out}");
        out
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

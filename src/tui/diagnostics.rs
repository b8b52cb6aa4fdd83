//! Diagnostics while typing: when to lint (shortly after typing stops),
//! what to lint for (the buffer's module, the form's function, the
//! server's library mode), and which answer is current. The lint itself
//! runs off the UI thread: the reducer asks for it with an effect and the
//! answer comes back as [`Action::Linted`].

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::lint::{self, Config, Diagnostic, LuaLibs, Options, Severity};
use crate::tui::action::Action;

/// Quiet time after the last edit before the buffer is linted.
pub const LINT_DELAY: Duration = Duration::from_millis(300);

/// One lint to run: everything it needs, owned, so it can leave the UI thread.
#[derive(Debug, Clone, PartialEq)]
pub struct LintRequest {
    pub seq: u64,
    pub source: String,
    pub options: Options,
    /// The buffer's folder, where `asudf-lint.toml` is looked for.
    pub dir: Option<PathBuf>,
}

/// Runs a lint (blocking: reads the config file, parses the buffer).
pub fn run(request: LintRequest) -> Action {
    Action::Linted {
        seq: request.seq,
        diagnostics: findings(&request.source, request.options, request.dir.as_deref()),
    }
}

/// The findings for `source`, with the config file found from `dir`.
fn findings(source: &str, mut options: Options, dir: Option<&std::path::Path>) -> Vec<Diagnostic> {
    if let Some(path) = dir.and_then(lint::find_config) {
        match Config::read(&path) {
            Ok(config) => options.config = config,
            Err(e) => tracing::warn!("lint config ignored: {e}"),
        }
    }
    lint::lint(source, &options)
}

/// What the console sends its lint worker.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerRequest {
    source: String,
    libs: String,
    module: Option<String>,
    function: Option<String>,
    dir: Option<PathBuf>,
}

/// The argument that makes `asudf` a lint worker: one request as JSON on
/// stdin, its findings as JSON on stdout.
pub const WORKER_ARG: &str = "lint-worker";

/// Runs a lint in a child process (`asudf lint-worker`), so the console
/// never holds a syntax tree: a big module's tree and rule passes peak near
/// a hundred MiB, and the parser's code need not be resident in the console.
/// Falls back to linting here when the child cannot run. All of it (the
/// request's JSON, the child's start and answer) happens on the blocking
/// pool, off the console's thread.
pub async fn run_in_child(request: LintRequest) -> Action {
    tokio::task::spawn_blocking(move || match child_lint(&request) {
        Ok(diagnostics) => Action::Linted {
            seq: request.seq,
            diagnostics,
        },
        Err(e) => {
            tracing::warn!("lint worker: {e}; linting in the console");
            run(request)
        }
    })
    .await
    .unwrap_or(Action::Linted {
        seq: 0,
        diagnostics: Vec::new(),
    })
}

fn child_lint(request: &LintRequest) -> std::io::Result<Vec<Diagnostic>> {
    use std::io::{Read, Write};
    let input = serde_json::to_vec(&WorkerRequest {
        source: request.source.clone(),
        libs: request.options.libs.as_str().to_string(),
        module: request.options.module.clone(),
        function: request.options.function.clone(),
        dir: request.dir.clone(),
    })?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg(WORKER_ARG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    // The worker reads all of its input before it writes: written first,
    // then read, neither pipe can fill up and stall the other.
    let written = child.stdin.take().expect("piped").write_all(&input);
    let mut output = Vec::new();
    let read = child.stdout.take().expect("piped").read_to_end(&mut output);
    let status = child.wait()?;
    written?;
    read?;
    if !status.success() {
        return Err(std::io::Error::other(format!("ended with {status}")));
    }
    serde_json::from_slice(&output).map_err(std::io::Error::other)
}

/// `asudf lint-worker`: reads one lint request from stdin, writes the
/// findings to stdout.
pub fn serve_worker() -> std::process::ExitCode {
    let Ok(request) = serde_json::from_reader::<_, WorkerRequest>(std::io::stdin().lock()) else {
        return std::process::ExitCode::FAILURE;
    };
    let options = Options {
        libs: request.libs.parse().unwrap_or_default(),
        module: request.module,
        function: request.function,
        config: Config::default(),
    };
    let found = findings(&request.source, options, request.dir.as_deref());
    match serde_json::to_writer(std::io::stdout().lock(), &found) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(_) => std::process::ExitCode::FAILURE,
    }
}

/// The console's lint state (the findings themselves live with the editor,
/// which draws them).
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// Lint while typing (off: no lint runs, nothing is shown).
    pub on: bool,
    /// The mode linted for: the sandbox's, or `cluster_libs` on a cluster.
    pub libs: LuaLibs,
    /// The mode a cluster is assumed to run (`--lua-libs`, default `default`).
    pub cluster_libs: LuaLibs,
    /// When the next lint is due (set by an edit).
    pub due: Option<Instant>,
    /// The last lint asked for; older answers are dropped.
    seq: u64,
    /// The buffer changed since the findings shown were made.
    pub stale: bool,
}

impl Diagnostics {
    pub fn new(cluster_libs: LuaLibs, now: Instant) -> Diagnostics {
        Diagnostics {
            on: true,
            libs: cluster_libs,
            cluster_libs,
            due: Some(now),
            seq: 0,
            stale: true,
        }
    }

    /// Something linted depends on changed: lint again once typing stops.
    pub fn changed(&mut self, now: Instant) {
        self.stale = true;
        if self.on {
            self.due = Some(now + LINT_DELAY);
        }
    }

    /// The number for a lint due at `now`, if one is.
    pub fn take_due(&mut self, now: Instant) -> Option<u64> {
        match self.due {
            Some(at) if self.on && now >= at => {
                self.due = None;
                self.seq += 1;
                Some(self.seq)
            }
            _ => None,
        }
    }

    /// Whether an answer is the latest asked for.
    pub fn accept(&mut self, seq: u64) -> bool {
        let current = seq == self.seq && self.due.is_none();
        if current {
            self.stale = false;
        }
        current
    }

    /// The mode a connection reports: a sandbox says it in its `sandbox`
    /// info (`lua-libs=…`); a cluster does not.
    pub fn connected(&mut self, sandbox: Option<&str>) {
        self.libs = sandbox
            .and_then(|s| s.split(';').find_map(|kv| kv.strip_prefix("lua-libs=")))
            .and_then(|mode| mode.parse().ok())
            .unwrap_or(if sandbox.is_some() {
                LuaLibs::Default
            } else {
                self.cluster_libs
            });
    }
}

/// The next finding after (or before) a position, wrapping around.
pub fn step(found: &[Diagnostic], line: u32, col: u32, forward: bool) -> Option<usize> {
    if found.is_empty() {
        return None;
    }
    let at = (line, col);
    let index = if forward {
        found.iter().position(|d| (d.line, d.col) > at).unwrap_or(0)
    } else {
        found
            .iter()
            .rposition(|d| (d.line, d.col) < at)
            .unwrap_or(found.len() - 1)
    };
    Some(index)
}

/// The module's own errors among `found`, in order: the finding that the
/// module lacks the form's function is the call's fault, not the
/// module's (F5 meets it, registering does not), so it is left out. The
/// editor's counts and F9's question both count these.
pub fn module_errors(found: &[Diagnostic]) -> impl Iterator<Item = &Diagnostic> {
    found
        .iter()
        .filter(|d| d.severity == Severity::Error && !d.is_missing_function())
}

/// How many of [`module_errors`] there are.
pub fn errors(found: &[Diagnostic]) -> usize {
    module_errors(found).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounced_and_only_the_latest_answer_counts() {
        let t0 = Instant::now();
        let mut d = Diagnostics::new(LuaLibs::Default, t0);
        assert_eq!(d.take_due(t0), Some(1));
        d.changed(t0);
        assert_eq!(d.take_due(t0 + Duration::from_millis(100)), None);
        d.changed(t0 + Duration::from_millis(200));
        assert_eq!(d.take_due(t0 + Duration::from_millis(400)), None);
        assert_eq!(d.take_due(t0 + Duration::from_millis(500)), Some(2));
        assert!(!d.accept(1));
        assert!(d.accept(2));
        assert!(!d.stale);
    }

    #[test]
    fn mode_comes_from_the_sandbox_or_the_flag() {
        let mut d = Diagnostics::new(LuaLibs::Hardened, Instant::now());
        d.connected(Some("asudf=0.1.0;lua-libs=all;max-udf-ms=0"));
        assert_eq!(d.libs, LuaLibs::All);
        d.connected(None);
        assert_eq!(d.libs, LuaLibs::Hardened);
    }
}

//! Headless subcommands: every capability of the console, for scripts.
//!
//! Exit codes: 0 success, 2 usage error, 3 connection error, 4 the server
//! or the UDF answered with an error, 5 the output could not be written.

/// `println!` for a command's output: see [`write_out`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for a command's output: see [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::write_out(format_args!($($arg)*))
    };
}

pub mod apply;
pub mod bench;
pub mod check;
pub mod query;
pub mod record;
pub mod sample;
pub mod sandbox;
pub mod test;
pub mod udf;

use std::process::ExitCode;

use serde_json::json;
use tokio::sync::mpsc;

use crate::cli;
use crate::client::{
    self, ClientHandle, ClusterInfo, Event, Failure, FailureKind, Outcome, Request, Target, Timing,
};
use crate::value::visible;

pub const EXIT_OK: u8 = 0;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONNECTION: u8 = 3;
pub const EXIT_SERVER: u8 = 4;
pub const EXIT_OUTPUT: u8 = 5;

/// Writes a command's output on stdout, where `println!` would panic on a
/// failed write. A reader that went away (`… | head`) ends the process
/// quietly with the shell's code for a broken pipe (128 + SIGPIPE), as a
/// tool in a pipeline does; any other failure (a full disk) ends it with
/// [`output_failed`]: a command whose output is lost has nothing to add.
pub fn write_out(args: std::fmt::Arguments) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    // Flushed here: `out!` text without a line end would wait in the buffer.
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        output_failed(&e);
    }
}

/// Says on stderr that the output could not be written, and exits.
pub fn output_failed(e: &std::io::Error) -> ! {
    eprintln!("cannot write the output: {}", io_text(e));
    std::process::exit(EXIT_OUTPUT.into())
}

/// A file's text, or standard input's for `-` (`--keys-from`, `udf put`,
/// `check`); an error says which could not be read, and why.
pub fn read_input(path: &std::path::Path) -> Result<String, String> {
    let text = if cli::is_stdin(path) {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    text.map_err(|e| format!("cannot read {}: {}", cli::input_name(path), io_text(&e)))
}

/// An I/O error's text without its "(os error 28)": the number tells a
/// user nothing.
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    text.split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A connected client task for one headless command.
pub struct Headless {
    pub handle: ClientHandle,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub cluster: ClusterInfo,
    pub json: bool,
}

impl Headless {
    /// Starts the client task and waits until it is connected.
    pub async fn connect(target: Target, json: bool) -> Result<Headless, ExitCode> {
        match client::spawn_connected(target).await {
            Ok((handle, events, cluster)) => Ok(Headless {
                handle,
                events,
                cluster,
                json,
            }),
            Err(reason) => {
                report_failure(json, &Failure::connection(reason), None);
                Err(ExitCode::from(EXIT_CONNECTION))
            }
        }
    }

    /// Runs one request and waits for its answer.
    pub async fn call(&mut self, request: Request) -> (Result<Outcome, Failure>, Option<Timing>) {
        let (outcome, timing) = self.handle.call(request).await;
        (outcome, Some(timing))
    }
}

/// The exit code for a failure.
pub fn exit_for(failure: &Failure) -> ExitCode {
    ExitCode::from(match failure.kind {
        FailureKind::Connection | FailureKind::Timeout => EXIT_CONNECTION,
        FailureKind::Usage => EXIT_USAGE,
        _ => EXIT_SERVER,
    })
}

/// The JSON shape of every failure: `{"ok": false, "error": {...}}`.
pub fn failure_json(failure: &Failure) -> serde_json::Value {
    let mut error = json!({"code": failure.code, "message": failure.message});
    if let Some((module, line)) = &failure.location {
        error["module"] = json!(module);
        error["line"] = json!(line);
    }
    json!({"ok": false, "error": error})
}

/// Prints a failure: JSON on stdout, or a sentence (and the source line it
/// points at, when known) on stderr.
pub fn report_failure(json: bool, failure: &Failure, source: Option<&str>) {
    if json {
        outln!("{}", failure_json(failure));
        return;
    }
    // The message and the source line are the server's and the UDF's text:
    // escaped, so they cannot drive the terminal.
    match (&failure.location, failure.kind) {
        (Some((module, line)), FailureKind::Compile) => {
            eprintln!("{module}:{line}: {}", visible(&failure.message))
        }
        _ => eprintln!("{}", visible(&failure.to_string())),
    }
    if let (Some((module, line)), Some(source)) = (&failure.location, source)
        && let Some(text) = source.lines().nth(*line as usize - 1)
    {
        if failure.kind != FailureKind::Compile {
            eprintln!("  at {module}:{line}");
        }
        eprintln!("{line:>5} | {}", visible(text));
    }
}

/// Prints a failure (no source line) and gives its exit code.
pub fn fail(json: bool, failure: &Failure) -> ExitCode {
    report_failure(json, failure, None);
    exit_for(failure)
}

/// Milliseconds with two decimals, for timings.
pub fn millis(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

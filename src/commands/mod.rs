//! Headless subcommands: every capability of the console, for scripts.
//!
//! Exit codes: 0 success, 2 usage error, 3 connection error, 4 the server
//! or the UDF answered with an error.

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

use crate::client::{
    self, ClientHandle, ClusterInfo, Event, Failure, FailureKind, Outcome, Request, Target, Timing,
};

pub const EXIT_OK: u8 = 0;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_CONNECTION: u8 = 3;
pub const EXIT_SERVER: u8 = 4;

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
        println!("{}", failure_json(failure));
        return;
    }
    match (&failure.location, failure.kind) {
        (Some((module, line)), FailureKind::Compile) => {
            eprintln!("{module}:{line}: {}", failure.message)
        }
        _ => eprintln!("{failure}"),
    }
    if let (Some((module, line)), Some(source)) = (&failure.location, source)
        && let Some(text) = source.lines().nth(*line as usize - 1)
    {
        if failure.kind != FailureKind::Compile {
            eprintln!("  at {module}:{line}");
        }
        eprintln!("{line:>5} | {text}");
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

//! `asudf test [PATH…]`: runs scenario files and reports them.
//!
//! Exit codes: 0 every step passed, 4 a step failed, 3 the cluster did not
//! answer, 2 a file could not be read (with its line and column).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{EXIT_CONNECTION, EXIT_OK, EXIT_SERVER, EXIT_USAGE, io_text};
use crate::cli::TestArgs;
use crate::client::{Failure, Target};
use crate::testing::{self, FileReport, Mode, format, report, runner, update};

fn usage(json: bool, message: &str) -> ExitCode {
    super::fail(json, &Failure::usage(message))
}

/// A short id unique to this run, for the sets it uses on a cluster.
fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("t{:x}{secs:x}", std::process::id())
}

pub async fn run(target: Target, args: &TestArgs, json: bool) -> ExitCode {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let files = match testing::discover(&paths) {
        Ok(files) if files.is_empty() => {
            return usage(json, &format!("no *{} files found", testing::SUFFIX));
        }
        Ok(files) => files,
        Err(message) => return usage(json, &message),
    };
    // Found out before the run, not after every test ran.
    if let Some(path) = &args.junit
        && let Err(message) = check_writable(path)
    {
        return usage(json, &message);
    }
    let cluster = match target {
        Target::Sandbox { .. } if args.register => {
            return usage(
                json,
                "--register is for runs against a cluster (-h HOST); on the sandbox every file registers its modules",
            );
        }
        Target::Sandbox { .. } => None,
        target @ Target::Cluster { .. } => match runner::connect(target).await {
            Ok(handle) => Some((
                handle,
                Mode::Cluster {
                    run_id: run_id(),
                    register: args.register,
                },
            )),
            Err(reason) => return super::fail(json, &Failure::connection(reason)),
        },
    };

    // Bad files are reported in place; the others run.
    let mut slots: Vec<Option<FileReport>> = Vec::new();
    let mut scenarios = Vec::new();
    for file in &files {
        match format::load(file) {
            Ok(s) => {
                scenarios.push(s);
                slots.push(None);
            }
            Err(e) => slots.push(Some(FileReport {
                path: file.clone(),
                bad_file: Some(e),
                ..FileReport::default()
            })),
        }
    }
    let run_id = cluster.as_ref().and_then(|(_, mode)| match mode {
        Mode::Cluster { run_id, .. } => Some(run_id.clone()),
        Mode::Sandbox => None,
    });
    if let (Some(id), false) = (&run_id, json) {
        eprintln!("on the cluster, this run's sets end in -{id}-N, N the file's number in the run");
    }
    let kept = scenarios.clone();
    let mut ran = testing::run_files(scenarios, cluster).await.into_iter();
    let reports: Vec<FileReport> = slots
        .into_iter()
        .map(|slot| slot.or_else(|| ran.next()).unwrap_or_default())
        .collect();

    if args.update {
        for (scenario, report) in kept
            .iter()
            .zip(reports.iter().filter(|r| r.bad_file.is_none()))
        {
            match rewrite(scenario, report) {
                Err(e) => eprintln!("{}: not updated: {e}", report.path.display()),
                Ok(true) if !json => eprintln!("updated {}", report.path.display()),
                Ok(_) => {}
            }
        }
    }

    // Written before the report is printed, so `--json` can say it failed.
    let junit_failure = args.junit.as_ref().and_then(|path| {
        let e = std::fs::write(path, report::junit(&reports)).err()?;
        Some(Failure::usage(format!(
            "cannot write the JUnit report {}: {}",
            path.display(),
            io_text(&e)
        )))
    });
    if json {
        let mut out = report::json(&reports);
        if let Some(id) = run_id {
            out["run_id"] = serde_json::json!(id);
        }
        if let Some(f) = &junit_failure {
            out["ok"] = false.into();
            out["error"] = super::failure_json(f)["error"].take();
        }
        outln!("{out}");
    } else {
        for r in &reports {
            out!("{}", report::file_text(r));
        }
        outln!("{}", report::summary(&reports));
        if let Some(f) = &junit_failure {
            eprintln!("{}", f.message);
        }
    }
    if junit_failure.is_some() {
        return ExitCode::from(EXIT_USAGE);
    }

    let code = if reports.iter().any(|r| r.bad_file.is_some()) {
        EXIT_USAGE
    } else if reports.iter().any(|r| r.connection.is_some()) {
        EXIT_CONNECTION
    } else if report::totals(&reports).1 > 0 {
        EXIT_SERVER
    } else {
        EXIT_OK
    };
    ExitCode::from(code)
}

/// Whether the JUnit report can be written at `path`: its folder exists and
/// a file can be opened there for writing (an existing one is left as it is).
fn check_writable(path: &Path) -> Result<(), String> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(format!(
            "--junit {}: the folder {} does not exist",
            path.display(),
            folder.display()
        ));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| {
            format!(
                "--junit {}: cannot write it: {}",
                path.display(),
                io_text(&e)
            )
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Rewrites the file's failing expectations; whether it changed.
fn rewrite(scenario: &testing::Scenario, report: &FileReport) -> Result<bool, String> {
    let text = std::fs::read_to_string(&scenario.path).map_err(|e| e.to_string())?;
    let Some(new) = update::rewrite(&text, scenario, report)? else {
        return Ok(false);
    };
    std::fs::write(&scenario.path, new).map_err(|e| e.to_string())?;
    Ok(true)
}

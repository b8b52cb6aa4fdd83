//! `asudf udf put|ls|cat|rm`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::{Headless, exit_for, fail, report_failure};
use crate::client::{Failure, Outcome, Request};

/// The module name a file registers as: its file name. Standard input
/// (`-`) has none, so it needs `--name`.
fn name_for(file: &Path, name: Option<&str>) -> Result<String, Failure> {
    match name {
        Some(n) => Ok(n.to_string()),
        None if crate::cli::is_stdin(file) => Err(Failure::usage(
            "udf put -: the source comes from standard input, which has no file name: give the module's with --name NAME",
        )),
        None => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Failure::usage(format!("{} is not a file", file.display()))),
    }
}

/// The module `udf put` registers: its name and source, read before
/// connecting (a bad file or a missing `--name` is a usage error, and
/// standard input is read off the runtime's threads); the name first, so a
/// missing `--name` is said before standard input is waited on.
pub fn module_to_put(file: &Path, name: Option<&str>) -> Result<(String, String), Failure> {
    let name = name_for(file, name)?;
    let source = super::read_input(file).map_err(Failure::usage)?;
    Ok((name, source))
}

pub async fn put(session: &mut Headless, name: String, source: String) -> ExitCode {
    let (outcome, _) = session
        .call(Request::PutModule {
            name,
            source: source.clone(),
        })
        .await;
    match outcome {
        Ok(Outcome::Registered { name, propagation }) => {
            if session.json {
                outln!(
                    "{}",
                    json!({"ok": true, "module": name, "propagation_ms": propagation.as_secs_f64() * 1000.0})
                );
            } else {
                outln!(
                    "registered {name} (on every node after {})",
                    super::millis(propagation)
                );
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => {
            report_failure(session.json, &f, Some(&source));
            exit_for(&f)
        }
    }
}

pub async fn ls(session: &mut Headless) -> ExitCode {
    match session.call(Request::ListModules).await.0 {
        Ok(Outcome::Modules(modules)) => {
            if session.json {
                let list: Vec<_> = modules
                    .iter()
                    .map(|m| json!({"name": m.name, "hash": m.hash}))
                    .collect();
                outln!("{}", json!({"ok": true, "modules": list}));
            } else {
                for m in &modules {
                    outln!("{}  {}", m.name, m.hash);
                }
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

pub async fn cat(session: &mut Headless, name: &str) -> ExitCode {
    match session
        .call(Request::GetModule {
            name: name.to_string(),
        })
        .await
        .0
    {
        Ok(Outcome::Module { name, source }) => {
            if session.json {
                outln!("{}", json!({"ok": true, "module": name, "source": source}));
            } else {
                out!("{source}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

pub async fn rm(session: &mut Headless, name: &str) -> ExitCode {
    match session
        .call(Request::RemoveModule {
            name: name.to_string(),
        })
        .await
        .0
    {
        Ok(Outcome::Removed { name }) => {
            if session.json {
                outln!("{}", json!({"ok": true, "module": name}));
            } else {
                outln!("removed {name}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

/// An outcome of the wrong shape: a bug in the client task.
pub(super) fn unexpected(outcome: Outcome) -> ExitCode {
    eprintln!("internal error: unexpected answer {outcome:?}");
    ExitCode::FAILURE
}

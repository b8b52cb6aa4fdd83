//! `asudf udf put|ls|cat|rm`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::{Headless, exit_for, report_failure};
use crate::client::{Failure, Outcome, Request};

/// The module name a file registers as: its file name.
fn name_for(file: &Path, name: Option<&str>) -> Result<String, Failure> {
    match name {
        Some(n) => Ok(n.to_string()),
        None => file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Failure::usage(format!("{} is not a file", file.display()))),
    }
}

pub async fn put(session: &mut Headless, file: &Path, name: Option<&str>) -> ExitCode {
    let source = match std::fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(_) => {
                let f = Failure::usage(format!("{}: not UTF-8 text", file.display()));
                report_failure(session.json, &f, None);
                return exit_for(&f);
            }
        },
        Err(e) => {
            let f = Failure::usage(format!("cannot read {}: {e}", file.display()));
            report_failure(session.json, &f, None);
            return exit_for(&f);
        }
    };
    let name = match name_for(file, name) {
        Ok(n) => n,
        Err(f) => {
            report_failure(session.json, &f, None);
            return exit_for(&f);
        }
    };
    let (outcome, _) = session
        .call(Request::PutModule {
            name,
            source: source.clone(),
        })
        .await;
    match outcome {
        Ok(Outcome::Registered { name, propagation }) => {
            if session.json {
                println!(
                    "{}",
                    json!({"ok": true, "module": name, "propagation_ms": propagation.as_secs_f64() * 1000.0})
                );
            } else {
                println!(
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
                println!("{}", json!({"ok": true, "modules": list}));
            } else {
                for m in &modules {
                    println!("{}  {}", m.name, m.hash);
                }
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => {
            report_failure(session.json, &f, None);
            exit_for(&f)
        }
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
                println!("{}", json!({"ok": true, "module": name, "source": source}));
            } else {
                print!("{source}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => {
            report_failure(session.json, &f, None);
            exit_for(&f)
        }
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
                println!("{}", json!({"ok": true, "module": name}));
            } else {
                println!("removed {name}");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => {
            report_failure(session.json, &f, None);
            exit_for(&f)
        }
    }
}

/// An outcome of the wrong shape: a bug in the client task.
pub(super) fn unexpected(outcome: Outcome) -> ExitCode {
    eprintln!("internal error: unexpected answer {outcome:?}");
    ExitCode::FAILURE
}

//! `asudf sandbox reset`: empties the local sandbox, through the client like
//! everything else.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use serde_json::json;

use super::{Headless, fail};
use crate::client::{Failure, Outcome, Request};

pub async fn reset(session: &mut Headless, yes: bool) -> ExitCode {
    if session.cluster.sandbox.is_none() {
        let f = Failure::usage(format!(
            "{} is a real cluster, not a sandbox: refusing to reset it",
            session.cluster.target
        ));
        return fail(session.json, &f);
    }
    if !yes && !confirm(&session.cluster.target) {
        let f = Failure::usage("not reset (pass --yes to skip the question)");
        return fail(session.json, &f);
    }
    match empty(session).await {
        Ok((records, modules)) => {
            if session.json {
                outln!(
                    "{}",
                    json!({"ok": true, "namespaces_truncated": records, "modules_removed": modules})
                );
            } else {
                outln!(
                    "sandbox reset: {} namespace(s) emptied, {} module(s) removed",
                    records.len(),
                    modules.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(f) => fail(session.json, &f),
    }
}

fn confirm(target: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!("Empty {target}: remove every record and module? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

async fn info(session: &mut Headless, command: String) -> Result<String, Failure> {
    match session.call(Request::Info { command }).await.0? {
        Outcome::Info(text) => Ok(text),
        other => Err(Failure::connection(format!("unexpected answer {other:?}"))),
    }
}

/// Truncates every namespace and removes every module.
async fn empty(session: &mut Headless) -> Result<(Vec<String>, Vec<String>), Failure> {
    let namespaces: Vec<String> = info(session, "namespaces".into())
        .await?
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    for ns in &namespaces {
        info(session, format!("truncate-namespace:namespace={ns}")).await?;
    }
    let Outcome::Modules(modules) = session.call(Request::ListModules).await.0? else {
        return Err(Failure::connection("unexpected answer to udf-list"));
    };
    let mut removed = Vec::new();
    for m in modules {
        session
            .call(Request::RemoveModule {
                name: m.name.clone(),
            })
            .await
            .0?;
        removed.push(m.name);
    }
    Ok((namespaces, removed))
}

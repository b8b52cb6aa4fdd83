//! `asudf apply NS[.SET] KEY MODULE.FUNCTION [ARGS…]`.

use std::process::ExitCode;

use serde_json::json;

use super::{Headless, exit_for, fail, failure_json, millis, report_failure, udf::unexpected};
use crate::client::{ApplyCall, BatchApplyCall, Outcome, Request};
use crate::text::plural;
use crate::value;

/// The server's terse texts for a missing module or function, explained.
fn hint(message: &str, module: &str) -> Option<String> {
    match message {
        "UDF: Execution Error 1" => Some(format!(
            "the module '{module}' is not registered or failed to load (see `asudf udf ls`)"
        )),
        "function not found" => Some(format!(
            "'{module}' has no global function by that name (local functions cannot be called)"
        )),
        _ => None,
    }
}

pub async fn run(session: &mut Headless, call: ApplyCall) -> ExitCode {
    let module = call.module.clone();
    let (outcome, _) = session.call(Request::Apply(call.into())).await;
    match outcome {
        Ok(Outcome::Applied {
            result,
            logs,
            call: rtt,
            server_run,
            ..
        }) => {
            if session.json {
                let logs: Vec<_> = logs
                    .iter()
                    .map(|l| json!({"level": l.level, "text": l.text}))
                    .collect();
                let mut out = json!({
                    "ok": true,
                    "result": value::to_plain_json(&result),
                    "value": value::to_typed_json(&result),
                    "rtt_us": rtt.as_micros() as u64,
                    "logs": logs,
                });
                if let Some(run) = server_run {
                    out["server_us"] = json!(run.as_micros() as u64);
                }
                outln!("{out}");
            } else {
                outln!("{}", value::print(&result));
                for line in &logs {
                    eprintln!("[{}] {}", line.level, value::visible(&line.text));
                }
                match server_run {
                    Some(run) => eprintln!("({}, ran {} in the server)", millis(rtt), millis(run)),
                    None => eprintln!("({})", millis(rtt)),
                }
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(failure) => {
            // Show the line the error points at, from the registered source.
            let source = match (&failure.location, session.json) {
                (Some((module, _)), false) => {
                    match session
                        .call(Request::GetModule {
                            name: module.clone(),
                        })
                        .await
                        .0
                    {
                        Ok(Outcome::Module { source, .. }) => Some(source),
                        _ => None,
                    }
                }
                _ => None,
            };
            report_failure(session.json, &failure, source.as_deref());
            if !session.json
                && let Some(hint) = hint(&failure.message, &module)
            {
                eprintln!("hint: {hint}");
            }
            exit_for(&failure)
        }
    }
}

/// A batch apply: one line (or JSON row) per key, in the order given;
/// exit 4 when any key failed.
pub async fn batch(session: &mut Headless, call: BatchApplyCall) -> ExitCode {
    let (outcome, timing) = session.call(Request::BatchApply(Box::new(call))).await;
    let rtt = timing.map(|t| t.round_trip()).unwrap_or_default();
    let rows = match outcome {
        Ok(Outcome::BatchApplied(rows)) => rows,
        Ok(other) => return unexpected(other),
        Err(failure) => return fail(session.json, &failure),
    };
    let failed = rows.iter().filter(|r| r.result.is_err()).count();
    if session.json {
        let results: Vec<_> = rows
            .iter()
            .map(|row| match &row.result {
                Ok(v) => json!({
                    "key": value::to_typed_json(&row.key), "ok": true,
                    "result": value::to_plain_json(v), "value": value::to_typed_json(v),
                }),
                Err(f) => {
                    let mut out = failure_json(f);
                    out["key"] = value::to_typed_json(&row.key);
                    out
                }
            })
            .collect();
        outln!(
            "{}",
            json!({"ok": failed == 0, "results": results, "failed": failed, "rtt_us": rtt.as_micros() as u64})
        );
    } else {
        for row in &rows {
            match &row.result {
                Ok(v) => outln!("{}  ✓ {}", value::print(&row.key), value::print(v)),
                Err(f) => outln!(
                    "{}  ✗ {}",
                    value::print(&row.key),
                    value::visible(&f.to_string())
                ),
            }
        }
        let keys = plural(rows.len(), "key", "keys");
        eprintln!("({keys}, {failed} failed, {})", millis(rtt));
    }
    if failed > 0 {
        ExitCode::from(super::EXIT_SERVER)
    } else {
        ExitCode::SUCCESS
    }
}

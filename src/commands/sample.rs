//! `asudf sample ls` / `asudf sample load NAME`: register a sample module
//! and write the data (and index) its call needs.

use std::process::ExitCode;

use futures::StreamExt;
use serde_json::json;

use super::{Headless, fail};
use crate::client::{Failure, Request};
use crate::samples::{self, SAMPLES, Sample};
use crate::text::plural;

pub fn ls(json: bool) -> ExitCode {
    if json {
        let list: Vec<_> = SAMPLES
            .iter()
            .map(|s| {
                json!({"name": s.name, "kind": s.kind.as_str(), "module": s.module,
                       "description": s.description, "command": s.command()})
            })
            .collect();
        outln!("{}", json!({"ok": true, "samples": list}));
    } else {
        for s in SAMPLES {
            outln!("{:<10} {:<10} {}", s.name, s.kind.as_str(), s.description);
        }
    }
    ExitCode::SUCCESS
}

/// Registers the sample's module, writes its records and creates its
/// index: the steps of [`Sample`], as the console's samples list takes them.
pub async fn load_sample(session: &Headless, sample: &Sample) -> Result<Option<String>, Failure> {
    session.handle.call(sample.put_module()).await.0?;
    let writes: Vec<Request> = (0..sample.records)
        .map(|i| sample.write(i))
        .collect::<Result<_, _>>()
        .map_err(Failure::usage)?;
    let results: Vec<_> = futures::stream::iter(writes)
        .map(|write| session.handle.call(write))
        .buffer_unordered(samples::WRITES_IN_FLIGHT as usize)
        .collect()
        .await;
    for (outcome, _) in results {
        outcome?;
    }
    let Some(spec) = sample.index_spec().map_err(Failure::usage)? else {
        return Ok(None);
    };
    let name = spec.name.clone();
    session.handle.call(Request::CreateIndex(spec)).await.0?;
    Ok(Some(name))
}

pub async fn load(session: &mut Headless, name: &str) -> ExitCode {
    let Some(sample) = samples::find(name) else {
        let names: Vec<_> = SAMPLES.iter().map(|s| s.name).collect();
        let f = Failure::usage(format!(
            "no sample '{name}' (samples: {})",
            names.join(", ")
        ));
        return fail(session.json, &f);
    };
    match load_sample(session, sample).await {
        Ok(index) => {
            if session.json {
                outln!(
                    "{}",
                    json!({"ok": true, "module": sample.module, "records": sample.records,
                           "index": index, "command": sample.command()})
                );
            } else {
                outln!("registered {}", sample.module);
                if sample.records > 0 {
                    let records = plural(sample.records, "record", "records");
                    outln!("wrote {records} to {}", sample.target);
                }
                if let Some(index) = index {
                    outln!("created index {index}");
                }
                outln!("try: {}", sample.command());
            }
            ExitCode::SUCCESS
        }
        Err(f) => fail(session.json, &f),
    }
}

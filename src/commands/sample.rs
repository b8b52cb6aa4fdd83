//! `asudf sample ls` / `asudf sample load NAME`: register a sample module
//! and write the data (and index) its call needs.

use std::process::ExitCode;

use futures::StreamExt;
use serde_json::json;

use super::query::default_index_name;
use super::{Headless, fail};
use crate::cli::NsSet;
use crate::client::{Failure, IndexSpec, RecordKey, Request};
use crate::samples::{self, SAMPLES, Sample};
use crate::where_clause::Collection;

/// Sample records written at once.
const WRITES_IN_FLIGHT: usize = 16;

pub fn ls(json: bool) -> ExitCode {
    if json {
        let list: Vec<_> = SAMPLES
            .iter()
            .map(|s| {
                json!({"name": s.name, "kind": s.kind.as_str(), "module": s.module,
                       "description": s.description, "command": s.command()})
            })
            .collect();
        println!("{}", json!({"ok": true, "samples": list}));
    } else {
        for s in SAMPLES {
            println!("{:<10} {:<10} {}", s.name, s.kind.as_str(), s.description);
        }
    }
    ExitCode::SUCCESS
}

/// Registers the sample's module, writes its records and creates its index.
pub async fn load_sample(session: &Headless, sample: &Sample) -> Result<Option<String>, Failure> {
    let put = Request::PutModule {
        name: sample.module.to_string(),
        source: sample.source.to_string(),
    };
    session.handle.call(put).await.0?;
    let target = NsSet::parse(sample.target).map_err(Failure::usage)?;
    let (ns, set) = (target.namespace, target.set);
    let writes = futures::stream::iter(0..sample.records)
        .map(|i| {
            let (key, bins) = samples::sales_record(i);
            let key = RecordKey {
                ns: ns.clone(),
                set: set.clone(),
                key,
            };
            session.handle.call(Request::PutRecord {
                key,
                bins,
                send_key: false,
            })
        })
        .buffer_unordered(WRITES_IN_FLIGHT);
    let results: Vec<_> = writes.collect().await;
    for (outcome, _) in results {
        outcome?;
    }
    let Some(index) = sample.index else {
        return Ok(None);
    };
    let mut spec = IndexSpec {
        ns,
        set,
        bin: index.bin.to_string(),
        kind: index.kind.to_string(),
        collection: Collection::Scalar,
        name: String::new(),
    };
    spec.name = default_index_name(&spec, None);
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
                println!(
                    "{}",
                    json!({"ok": true, "module": sample.module, "records": sample.records,
                           "index": index, "command": sample.command()})
                );
            } else {
                println!("registered {}", sample.module);
                if sample.records > 0 {
                    println!("wrote {} records to {}", sample.records, sample.target);
                }
                if let Some(index) = index {
                    println!("created index {index}");
                }
                println!("try: {}", sample.command());
            }
            ExitCode::SUCCESS
        }
        Err(f) => fail(session.json, &f),
    }
}

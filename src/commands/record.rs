//! `asudf record get|put|rm NS[.SET] KEY [BIN=VALUE…]`.

use std::process::ExitCode;

use aerospike::Value;
use serde_json::json;

use super::{Headless, fail, udf::unexpected};
use crate::client::{Outcome, RecordKey, RecordView, Request};
use crate::value;

pub fn record_json(record: &RecordView) -> serde_json::Value {
    let mut bins = serde_json::Map::new();
    let mut values = serde_json::Map::new();
    for (name, v) in &record.bins {
        bins.insert(name.clone(), value::to_plain_json(v));
        values.insert(name.clone(), value::to_typed_json(v));
    }
    json!({"bins": bins, "values": values, "gen": record.generation, "ttl": record.ttl})
}

/// `name: value` lines, then the metadata.
pub fn record_text(record: &RecordView) -> String {
    let mut out = String::new();
    for (name, v) in &record.bins {
        out.push_str(&format!("{name}: {}\n", value::print(v)));
    }
    let ttl = record
        .ttl
        .map_or("never expires".to_string(), |s| format!("ttl {s} s"));
    out.push_str(&format!("(gen {}, {ttl})\n", record.generation));
    out
}

pub async fn get(session: &mut Headless, key: RecordKey) -> ExitCode {
    match session.call(Request::GetRecord { key }).await.0 {
        Ok(Outcome::Record(Some(record))) => {
            if session.json {
                let mut out = record_json(&record);
                out["ok"] = json!(true);
                out["found"] = json!(true);
                outln!("{out}");
            } else {
                out!("{}", record_text(&record));
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Record(None)) => {
            if session.json {
                outln!("{}", json!({"ok": true, "found": false}));
            } else {
                outln!("no such record");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

pub async fn put(
    session: &mut Headless,
    key: RecordKey,
    bins: Vec<(String, Value)>,
    send_key: bool,
) -> ExitCode {
    let request = Request::PutRecord {
        key,
        bins,
        send_key,
    };
    match session.call(request).await.0 {
        Ok(Outcome::Written) => {
            if session.json {
                outln!("{}", json!({"ok": true}));
            } else {
                outln!("written");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

pub async fn rm(session: &mut Headless, key: RecordKey) -> ExitCode {
    match session.call(Request::DeleteRecord { key }).await.0 {
        Ok(Outcome::Deleted { existed }) => {
            if session.json {
                outln!("{}", json!({"ok": true, "existed": existed}));
            } else if existed {
                outln!("deleted");
            } else {
                outln!("no such record");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

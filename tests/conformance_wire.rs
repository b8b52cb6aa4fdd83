//! Every recorded conformance case, replayed through the `aerospike` client
//! against the sandbox's wire server (all Lua libraries, as recorded).

#[path = "wire/batch_steps.rs"]
mod batch_steps;
mod common;

use asudf::client::parse_udf_list;

use aerospike::{
    Bin, Bins, Client, ErrorKind, Key as AsKey, ReadPolicy, Value as AsValue, WritePolicy,
};
use asudf::sandbox::Value;
use asudf::sandbox::server::ServerHandle;
use common::cases::{
    Case, Key, StepError, Target, assert_all_cases_pass, assert_cases_pass, udf_put_params,
};
use common::served::{Served, info, to_client};
use std::path::{Path, PathBuf};

/// Sends of one timed apply before a client-side timeout counts as a
/// failure: as many as the conformance recorder and check.py allow.
const MAX_TRIES: u32 = 10;

/// The sandbox behind a real client; every call blocks on the runtime.
struct WireTarget {
    runtime: tokio::runtime::Runtime,
    _server: ServerHandle,
    client: Client,
}

impl WireTarget {
    fn new() -> WireTarget {
        let served = Served::start();
        WireTarget {
            runtime: served.runtime,
            _server: served.server,
            client: served.client,
        }
    }

    fn info(&self, command: &str) -> String {
        info(&self.runtime, &self.client, command)
    }

    fn key(&self, key: &Key) -> AsKey {
        AsKey::new(
            key.ns.as_str(),
            key.set.as_deref().unwrap_or(""),
            to_client(&key.key),
        )
        .unwrap()
    }
}

fn step_error(e: aerospike::Error) -> StepError {
    match e.kind() {
        ErrorKind::UdfBadResponse => StepError {
            code: 100,
            message: e.base_message(),
        },
        ErrorKind::Server { .. } => StepError {
            code: e.result_code() as i64,
            message: String::new(),
        },
        _ => panic!("client-side error (not a server answer): {e}"),
    }
}

impl Target for WireTarget {
    fn reset(&mut self) {
        // What check.py does: truncate, wait for objects=0, remove every module.
        assert_eq!(self.info("truncate-namespace:namespace=test"), "ok");
        while !self.info("namespace/test").starts_with("objects=0;") {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for file in self.udf_list() {
            assert_eq!(self.udf_remove(&file), "ok");
        }
    }

    fn udf_put(&mut self, file: &str, content: &str) -> String {
        self.info(&format!("udf-put:{}", udf_put_params(file, content)))
    }

    fn udf_remove(&mut self, file: &str) -> String {
        self.info(&format!("udf-remove:filename={file};"))
    }

    fn udf_get(&mut self, file: &str) -> String {
        self.info(&format!("udf-get:filename={file};"))
    }

    fn udf_list(&mut self) -> Vec<String> {
        let listing = self.info("udf-list");
        parse_udf_list(&listing)
            .into_iter()
            .map(|m| m.name)
            .collect()
    }

    fn put(
        &mut self,
        key: &Key,
        bins: &[(String, Value)],
        send_key: bool,
    ) -> Result<(), StepError> {
        let policy = WritePolicy {
            send_key,
            ..WritePolicy::default()
        };
        let bins: Vec<Bin> = bins
            .iter()
            .map(|(n, v)| Bin::new(n.as_str(), to_client(v)))
            .collect();
        let key = self.key(key);
        self.runtime
            .block_on(self.client.put(&policy, &key, &bins))
            .map_err(step_error)
    }

    fn get(&mut self, key: &Key) -> Result<(Vec<(String, Value)>, u32), StepError> {
        let key = self.key(key);
        let record = self
            .runtime
            .block_on(self.client.get(&ReadPolicy::default(), &key, Bins::All))
            .map_err(step_error)?;
        let bins = record
            .bins
            .iter()
            .map(|(n, v)| (n.clone(), Value::from_client(v)))
            .collect();
        Ok((bins, record.generation))
    }

    fn apply(
        &mut self,
        key: &Key,
        module: &str,
        function: &str,
        args: &[Value],
        timeout_ms: Option<u32>,
        send_key: bool,
    ) -> Result<Value, StepError> {
        // As the recorder did: the step's limit travels as the server
        // timeout, with room for the server's answer to arrive.
        let mut policy = WritePolicy {
            send_key,
            ..WritePolicy::default()
        };
        policy.base_policy.max_retries = 0;
        match timeout_ms {
            Some(ms) => {
                policy.base_policy.socket_timeout = ms;
                policy.base_policy.total_timeout = ms + 10_000;
            }
            None => {
                policy.base_policy.socket_timeout = 30_000;
                policy.base_policy.total_timeout = 0;
            }
        }
        let key = self.key(key);
        let args: Vec<AsValue> = args.iter().map(to_client).collect();
        let mut tries = 0;
        loop {
            let result = self.runtime.block_on(
                self.client
                    .execute_udf(&policy, &key, module, function, &args),
            );
            match result {
                // The client gave up a moment before the server's own
                // timeout answer: send again once the server is done. The
                // recorder allowed 10 tries; the engine starts its clock
                // only once a Lua state is ready, and a module's first ten
                // calls each build a new state, so allow a warm pool too.
                Err(e) if matches!(e.kind(), ErrorKind::Timeout) && tries < MAX_TRIES => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                other => {
                    if tries > 0 {
                        eprintln!("{module}.{function}: answered after {tries} client timeouts");
                    }
                    return other
                        .map(|v| v.as_ref().map(Value::from_client).unwrap_or(Value::Nil))
                        .map_err(step_error);
                }
            }
        }
    }

    fn own_step(&mut self, step: &serde_json::Value) -> Option<Option<serde_json::Value>> {
        batch_steps::run(self, step)
    }
}

#[test]
fn every_recorded_case_passes_through_the_client() {
    assert_all_cases_pass(&mut WireTarget::new());
}

fn batch_exp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases-batch-exp")
}

/// The two cases that also need queries, indexes and background jobs.
/// (Replayed with the query path in tests/conformance_query.rs.)
const NEEDS_QUERY_PATH: [&str; 2] = [
    "exp_query_filters_records.json",
    "exp_aggregate_and_background_filters.json",
];

fn has_expression(case: &Case) -> bool {
    let with = |s: &serde_json::Value| s.get("expression").is_some();
    case.steps.iter().any(|s| {
        with(s)
            || s["records"]
                .as_array()
                .is_some_and(|subs| subs.iter().any(with))
    })
}

#[test]
fn batch_cases_pass_through_the_client() {
    assert_cases_pass(&mut WireTarget::new(), &batch_exp_dir(), |c| {
        !has_expression(c)
    });
}

/// Needs the expression evaluator.
#[test]
fn filter_expression_cases_pass_through_the_client() {
    assert_cases_pass(&mut WireTarget::new(), &batch_exp_dir(), |c| {
        has_expression(c) && !NEEDS_QUERY_PATH.contains(&c.file.as_str())
    });
}

#[test]
fn batch_exp_cases_are_the_shared_ones() {
    common::cases::assert_copy_matches_shared("cases-batch-exp");
}

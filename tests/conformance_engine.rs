//! Every recorded conformance case, replayed on the in-process engine.

mod common;

use asudf::client::parse_udf_list;

use asudf::sandbox::store::{Change, Record, digest, next_generation, now_cf_ms};
use asudf::sandbox::{ApplyRequest, LuaLibs, Sandbox, SandboxConfig, UdfFailure, Value};
use common::cases::{Key, StepError, Target, assert_all_cases_pass, udf_put_params};

/// The engine driven directly, as the wire server would drive it.
struct EngineTarget {
    sandbox: Sandbox,
}

impl EngineTarget {
    fn new() -> EngineTarget {
        let config = SandboxConfig {
            lua_libs: LuaLibs::All,
            ..SandboxConfig::default()
        };
        EngineTarget {
            sandbox: Sandbox::open(config).unwrap(),
        }
    }

    fn digest_of(key: &Key) -> [u8; 20] {
        digest(key.set.as_deref(), &key.key).expect("a usable key")
    }
}

fn not_found() -> StepError {
    StepError {
        code: 2,
        message: String::new(),
    }
}

impl Target for EngineTarget {
    fn reset(&mut self) {
        // A new sandbox: empty store, no modules, no cached states.
        *self = EngineTarget::new();
    }

    fn udf_put(&mut self, file: &str, content: &str) -> String {
        self.sandbox.info_udf_put(&udf_put_params(file, content))
    }

    fn udf_remove(&mut self, file: &str) -> String {
        self.sandbox.info_udf_remove(&format!("filename={file};"))
    }

    fn udf_get(&mut self, file: &str) -> String {
        self.sandbox.info_udf_get(&format!("filename={file};"))
    }

    fn udf_list(&mut self) -> Vec<String> {
        let listing = self.sandbox.info_udf_list();
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
        let d = Self::digest_of(key);
        self.sandbox
            .store()
            .modify(&key.ns, &d, |current| {
                let mut record = current.cloned().unwrap_or(Record {
                    bins: Vec::new(),
                    generation: 0,
                    void_time: 0,
                    last_update_ms: 0,
                    set: key.set.clone(),
                    key: None,
                });
                for (name, value) in bins {
                    record.bins.retain(|(n, _)| n != name);
                    if *value != Value::Nil {
                        record.bins.push((name.clone(), value.clone()));
                    }
                }
                record.generation = next_generation(record.generation);
                record.last_update_ms = now_cf_ms();
                if send_key {
                    record.key = Some(key.key.clone());
                }
                (Change::Put(record), ())
            })
            .map_err(|e| StepError {
                code: 20,
                message: e.to_string(),
            })
    }

    fn get(&mut self, key: &Key) -> Result<(Vec<(String, Value)>, u32), StepError> {
        let record = self
            .sandbox
            .store()
            .get(&key.ns, &Self::digest_of(key))
            .ok_or_else(not_found)?;
        Ok((record.bins, record.generation as u32))
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
        let outcome = self.sandbox.apply(ApplyRequest {
            ns: key.ns.clone(),
            set: key.set.clone(),
            digest: Self::digest_of(key),
            key: send_key.then(|| key.key.clone()),
            module: module.to_string(),
            function: function.to_string(),
            args: args.to_vec(),
            timeout_ms: timeout_ms.unwrap_or(0),
            received: std::time::Instant::now(),
            ttl: 0,
            filter: Default::default(),
        });
        outcome.result.map_err(|failure| match failure {
            UdfFailure::Execution(message) => StepError { code: 100, message },
            UdfFailure::Code(code) => StepError {
                code: code as i64,
                message: String::new(),
            },
        })
    }
}

#[test]
fn every_recorded_case_passes_on_the_engine() {
    assert_all_cases_pass(&mut EngineTarget::new());
}

#[test]
fn project_cases_match_the_shared_cases() {
    common::cases::assert_copy_matches_shared("cases");
}

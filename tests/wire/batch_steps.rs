//! The steps of `cases-batch-exp` through the `aerospike` crate: batch
//! steps with `Client::batch`, and every step that carries a filter
//! expression (sent as its recorded wire bytes, `expressions::from_base64`).

use aerospike::expressions::{Expression, from_base64};
use aerospike::operations;
use aerospike::{
    BatchDeletePolicy, BatchOperation, BatchPolicy, BatchReadPolicy, BatchUdfPolicy,
    BatchWritePolicy, Bin, Bins, ReadPolicy, Value as AsValue, WritePolicy,
};
use asudf::sandbox::Value;
use serde_json::{Value as Json, json};

use super::{WireTarget, step_error, to_client};
use crate::common::cases::{StepError, Target, key_of, value_from_json, value_to_json};

/// What a batch row did, which decides how its answer reads.
#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    Remove,
    Udf,
}

/// A step this module runs, or `None` for the common runner.
pub fn run(t: &mut WireTarget, step: &Json) -> Option<Option<Json>> {
    let filter = expression(step);
    let send_key = step["send_key"].as_bool().unwrap_or(false);
    let answer = match step["do"].as_str()? {
        "batch_get" => {
            let bins = bins_of(&step["bins"]);
            let ops = keys(step)
                .map(|k| BatchOperation::read(&BatchReadPolicy::default(), t.key(&k), bins.clone()))
                .collect();
            t.batch(filter, ops, &vec![Kind::Read; count(step)])
        }
        "batch_apply" => {
            let policy = BatchUdfPolicy {
                send_key,
                ..BatchUdfPolicy::default()
            };
            let (module, function, args) = udf_call(step);
            let ops = keys(step)
                .map(|k| BatchOperation::udf(&policy, t.key(&k), &module, &function, args.clone()))
                .collect();
            t.batch(filter, ops, &vec![Kind::Udf; count(step)])
        }
        "batch_remove" => {
            let policy = BatchDeletePolicy {
                send_key,
                ..BatchDeletePolicy::default()
            };
            let ops = keys(step)
                .map(|k| BatchOperation::delete(&policy, t.key(&k)))
                .collect();
            t.batch(filter, ops, &vec![Kind::Remove; count(step)])
        }
        "batch_write" => {
            let (ops, kinds) = step["records"]
                .as_array()?
                .iter()
                .map(|sub| sub_command(t, sub, send_key))
                .unzip::<_, _, Vec<_>, Vec<_>>();
            t.batch(filter, ops, &kinds)
        }
        "put_many" => {
            let mut answer = json!({ "ok": null });
            for pair in step["records"].as_array()? {
                if let Err(e) = t.put(&key_of(&pair[0]), &bins_to_write(&pair[1]), send_key) {
                    answer = error(e);
                    break;
                }
            }
            answer
        }
        "delete" => {
            let mut policy = WritePolicy {
                send_key,
                ..WritePolicy::default()
            };
            policy.base_policy.filter_expression = filter;
            let key = t.key(&key_of(&step["key"]));
            match t.runtime.block_on(t.client.delete(&policy, &key)) {
                Ok(true) => json!({ "ok": null }),
                Ok(false) => error(StepError {
                    code: 2,
                    message: String::new(),
                }),
                Err(e) => error(step_error(e)),
            }
        }
        "get" if filter.is_some() => {
            let mut policy = ReadPolicy::default();
            policy.base_policy.filter_expression = filter;
            let key = t.key(&key_of(&step["key"]));
            match t.runtime.block_on(t.client.get(&policy, &key, Bins::All)) {
                Ok(record) => record_json(&record),
                Err(e) => error(step_error(e)),
            }
        }
        "put" if filter.is_some() => {
            let mut policy = WritePolicy {
                send_key,
                ..WritePolicy::default()
            };
            policy.base_policy.filter_expression = filter;
            let key = t.key(&key_of(&step["key"]));
            let bins: Vec<Bin> = bins_to_write(&step["bins"])
                .iter()
                .map(|(n, v)| Bin::new(n.as_str(), to_client(v)))
                .collect();
            match t.runtime.block_on(t.client.put(&policy, &key, &bins)) {
                Ok(()) => json!({ "ok": null }),
                Err(e) => error(step_error(e)),
            }
        }
        "apply" if filter.is_some() => {
            let mut policy = WritePolicy {
                send_key,
                ..WritePolicy::default()
            };
            policy.base_policy.filter_expression = filter;
            policy.base_policy.max_retries = 0;
            let key = t.key(&key_of(&step["key"]));
            let (module, function, args) = udf_call(step);
            let call = t
                .client
                .execute_udf(&policy, &key, &module, &function, &args);
            match t.runtime.block_on(call) {
                Ok(v) => {
                    json!({ "ok": value_to_json(&v.as_ref().map(Value::from_client).unwrap_or(Value::Nil)) })
                }
                Err(e) => error(step_error(e)),
            }
        }
        _ => return None,
    };
    Some(Some(answer))
}

impl WireTarget {
    /// One `Client::batch` call with the parent policy the recorder used,
    /// turned into the step's `results` (or its error when the server
    /// refused the whole batch: the crate puts that on row 0 and leaves the
    /// other rows unanswered).
    fn batch(
        &self,
        filter: Option<Expression>,
        mut ops: Vec<BatchOperation>,
        kinds: &[Kind],
    ) -> Json {
        let mut policy = BatchPolicy::default();
        policy.base_policy.total_timeout = 5000;
        policy.base_policy.max_retries = 0;
        policy.base_policy.filter_expression = filter;
        if let Err(e) = self.runtime.block_on(self.client.batch(&policy, &mut ops)) {
            return error(step_error(e));
        }
        let unanswered = |op: &BatchOperation| op.result_code().is_none();
        let refused = ops
            .first()
            .and_then(BatchOperation::result_code)
            .filter(|c| *c != aerospike::ResultCode::Ok);
        if let Some(code) = refused
            && ops.len() > 1
            && ops[1..].iter().all(unanswered)
        {
            return error(StepError {
                code: i64::from(u8::from(code)),
                message: String::new(),
            });
        }
        let rows: Vec<Json> = ops
            .iter()
            .zip(kinds)
            .map(|(op, kind)| row(op, *kind))
            .collect();
        json!({ "results": rows })
    }
}

fn row(op: &BatchOperation, kind: Kind) -> Json {
    let Some(code) = op.result_code() else {
        panic!("a row without an answer: {op:?}");
    };
    let code = u8::from(code);
    let bin = |name: &str| {
        op.record()
            .and_then(|r| r.bins.get(name))
            .map(Value::from_client)
            .unwrap_or(Value::Nil)
    };
    if code != 0 {
        let message = match (code, bin("FAILURE")) {
            (100, Value::Str(text)) => String::from_utf8_lossy(&text).into_owned(),
            _ => String::new(),
        };
        return error(StepError {
            code: i64::from(code),
            message,
        });
    }
    match kind {
        Kind::Read | Kind::Write => record_json(op.record().expect("an answered row has a record")),
        Kind::Udf => json!({ "ok": value_to_json(&bin("SUCCESS")) }),
        Kind::Remove => json!({ "ok": null }),
    }
}

fn sub_command(t: &WireTarget, sub: &Json, send_key: bool) -> (BatchOperation, Kind) {
    let key = t.key(&key_of(&sub["key"]));
    let filter = expression(sub);
    match sub["op"].as_str().unwrap_or_default() {
        "write" => {
            let policy = BatchWritePolicy {
                send_key,
                filter_expression: filter,
                ..BatchWritePolicy::default()
            };
            let bins: Vec<Bin> = bins_to_write(&sub["bins"])
                .iter()
                .map(|(n, v)| Bin::new(n.as_str(), to_client(v)))
                .collect();
            let ops: Vec<_> = bins.iter().map(operations::put).collect();
            (BatchOperation::write(&policy, key, ops), Kind::Write)
        }
        "read" => {
            let policy = BatchReadPolicy {
                filter_expression: filter,
                ..BatchReadPolicy::default()
            };
            (
                BatchOperation::read(&policy, key, bins_of(&sub["bins"])),
                Kind::Read,
            )
        }
        "remove" => {
            let policy = BatchDeletePolicy {
                send_key,
                filter_expression: filter,
                ..BatchDeletePolicy::default()
            };
            (BatchOperation::delete(&policy, key), Kind::Remove)
        }
        "apply" => {
            let policy = BatchUdfPolicy {
                send_key,
                filter_expression: filter,
                ..BatchUdfPolicy::default()
            };
            let (module, function, args) = udf_call(sub);
            (
                BatchOperation::udf(&policy, key, module, function, args),
                Kind::Udf,
            )
        }
        other => panic!("unknown batch_write sub-command {other:?}"),
    }
}

/// The step's filter, from the bytes the recorder saw on the wire.
fn expression(step: &Json) -> Option<Expression> {
    let wire = step["expression"]["wire"].as_str()?;
    Some(from_base64(wire).unwrap_or_else(|e| panic!("expression {wire}: {e}")))
}

fn keys(step: &Json) -> impl Iterator<Item = crate::common::cases::Key> + '_ {
    step["keys"].as_array().into_iter().flatten().map(key_of)
}

fn count(step: &Json) -> usize {
    step["keys"].as_array().map_or(0, Vec::len)
}

/// Absent: all bins; `[]`: metadata only; else those bins.
fn bins_of(bins: &Json) -> Bins {
    match bins.as_array() {
        None => Bins::All,
        Some(names) if names.is_empty() => Bins::None,
        Some(names) => Bins::Some(
            names
                .iter()
                .map(|n| n.as_str().unwrap_or_default().to_string())
                .collect(),
        ),
    }
}

fn bins_to_write(bins: &Json) -> Vec<(String, Value)> {
    bins.as_object()
        .into_iter()
        .flatten()
        .map(|(name, v)| (name.clone(), value_from_json(v)))
        .collect()
}

fn udf_call(step: &Json) -> (String, String, Vec<AsValue>) {
    let text = |f: &str| step[f].as_str().unwrap_or_default().to_string();
    let args = step["args"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| to_client(&value_from_json(a)))
        .collect();
    (text("module"), text("function"), args)
}

fn record_json(record: &aerospike::Record) -> Json {
    let bins: serde_json::Map<String, Json> = record
        .bins
        .iter()
        .map(|(n, v)| (n.clone(), value_to_json(&Value::from_client(v))))
        .collect();
    json!({"record": {"bins": bins, "gen": record.generation}})
}

fn error(e: StepError) -> Json {
    json!({"error": {"code": e.code, "message": e.message}})
}

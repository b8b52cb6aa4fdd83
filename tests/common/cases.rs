//! The recorded conformance cases: loading, typed VALUEs, the comparison
//! rules of the cases' README, and a runner any target can drive.
//!
//! A target implements [`Target`] (the in-process engine here; the wire
//! server through the `aerospike` client elsewhere) and [`run_case`] replays
//! one case against it, returning a line per failing step.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use asudf::sandbox::Value;
use serde_json::{Value as Json, json};

/// Where the cases live in this project.
pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases")
}

/// Checks that the project's copy `tests/conformance/FOLDER` holds the same
/// files, byte for byte, as `../shared/conformance/FOLDER`, where that exists.
pub fn assert_copy_matches_shared(folder: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../shared/conformance").join(folder);
    if !shared.is_dir() {
        eprintln!("{} is not here: nothing to compare", shared.display());
        return;
    }
    let files = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let ours = files(&root.join("tests/conformance").join(folder));
    let theirs = files(&shared);
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&ours),
        names(&theirs),
        "case file names differ in {folder}"
    );
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        assert!(a == b, "{folder}/{name} differs from the shared copy");
    }
}

pub struct Case {
    pub file: String,
    pub name: String,
    pub steps: Vec<Json>,
}

/// Every `*.json` case in `dir`, sorted by file name.
pub fn load_cases(dir: &Path) -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let json: Json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Case {
                file: path.file_name().unwrap().to_string_lossy().into_owned(),
                name: json["name"].as_str().unwrap_or_default().to_string(),
                steps: json["steps"].as_array().cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// `{"ns", "set", "key": VALUE}`.
#[derive(Debug, Clone)]
pub struct Key {
    pub ns: String,
    pub set: Option<String>,
    pub key: Value,
}

/// A server error: result code and the server's text ("" when none).
#[derive(Debug, Clone, PartialEq)]
pub struct StepError {
    pub code: i64,
    pub message: String,
}

/// What the runner needs from a server under test.
pub trait Target {
    /// Empty namespace `test`, no registered modules.
    fn reset(&mut self);
    /// The raw `udf-put` reply value for this file and (UTF-8) content.
    fn udf_put(&mut self, file: &str, content: &str) -> String;
    fn udf_remove(&mut self, file: &str) -> String;
    fn udf_get(&mut self, file: &str) -> String;
    /// Registered file names.
    fn udf_list(&mut self) -> Vec<String>;
    fn put(&mut self, key: &Key, bins: &[(String, Value)], send_key: bool)
    -> Result<(), StepError>;
    /// Bins and generation.
    fn get(&mut self, key: &Key) -> Result<(Vec<(String, Value)>, u32), StepError>;
    fn apply(
        &mut self,
        key: &Key,
        module: &str,
        function: &str,
        args: &[Value],
        timeout_ms: Option<u32>,
        send_key: bool,
    ) -> Result<Value, StepError>;
    /// A step this target runs itself (batch steps, steps with a filter
    /// expression): `Some(answer)`, where `answer` is `None` for a step
    /// without an `expect`; `None` leaves the step to the common runner.
    fn own_step(&mut self, _step: &Json) -> Option<Option<Json>> {
        None
    }
}

/// The request text `udf-put` is sent with, as the recorder sent it.
pub fn udf_put_params(file: &str, content: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(content.as_bytes());
    format!(
        "filename={file};content={encoded};content-len={};udf-type=LUA;",
        encoded.len()
    )
}

/// Replays a case from a reset target; one line per failing step.
/// Replays every recorded case against `target`, prints each failing step
/// and the count, and fails unless all pass.
pub fn assert_all_cases_pass(target: &mut dyn Target) {
    assert_cases_pass(target, &cases_dir(), |_| true);
}

/// As [`assert_all_cases_pass`], for the cases of `dir` that `pick` picks.
pub fn assert_cases_pass(target: &mut dyn Target, dir: &Path, pick: impl Fn(&Case) -> bool) {
    let cases: Vec<Case> = load_cases(dir).into_iter().filter(|c| pick(c)).collect();
    assert!(!cases.is_empty(), "no cases picked in {}", dir.display());
    let mut failed = Vec::new();
    for case in &cases {
        let failures = run_case(target, case);
        for line in &failures {
            eprintln!("{line}");
        }
        if !failures.is_empty() {
            failed.push(case.file.clone());
        }
    }
    eprintln!(
        "{} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failing cases: {failed:?}");
}

pub fn run_case(target: &mut dyn Target, case: &Case) -> Vec<String> {
    target.reset();
    let mut failures = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let got = run_step(target, step);
        let Some(expect) = step.get("expect") else {
            continue;
        };
        let same = match (canon_result(expect), got.as_ref().map(canon_result)) {
            (Ok(want), Some(Ok(have))) => want == have,
            _ => false,
        };
        if !same {
            failures.push(format!(
                "{}: step {} ({}): expected {}, got {}",
                case.name,
                i + 1,
                step["do"].as_str().unwrap_or("?"),
                expect,
                got.map(|g| g.to_string())
                    .unwrap_or_else(|| "nothing".into())
            ));
        }
    }
    failures
}

fn run_step(target: &mut dyn Target, step: &Json) -> Option<Json> {
    if let Some(answer) = target.own_step(step) {
        return answer;
    }
    let text = |field: &str| step[field].as_str().unwrap_or_default().to_string();
    let send_key = step["send_key"].as_bool().unwrap_or(false);
    let error = |e: StepError| json!({"error": {"code": e.code, "message": e.message}});
    Some(match step["do"].as_str()? {
        "udf_put" => json!({"info": target.udf_put(&text("file"), &text("content"))}),
        "udf_remove" => json!({"info": target.udf_remove(&text("file"))}),
        "udf_get" => json!({"info": target.udf_get(&text("file"))}),
        "udf_list" => {
            let mut files = target.udf_list();
            files.sort();
            json!({ "files": files })
        }
        "put" => {
            let bins: Vec<(String, Value)> = step["bins"]
                .as_object()?
                .iter()
                .map(|(name, v)| (name.clone(), value_from_json(v)))
                .collect();
            match target.put(&key_of(&step["key"]), &bins, send_key) {
                Ok(()) => json!({ "ok": null }),
                Err(e) => error(e),
            }
        }
        "get" => match target.get(&key_of(&step["key"])) {
            Ok((bins, generation)) => {
                let bins: serde_json::Map<String, Json> = bins
                    .iter()
                    .map(|(name, v)| (name.clone(), value_to_json(v)))
                    .collect();
                json!({"record": {"bins": bins, "gen": generation}})
            }
            Err(e) => error(e),
        },
        "apply" => {
            let args: Vec<Value> = step["args"]
                .as_array()
                .map(|a| a.iter().map(value_from_json).collect())
                .unwrap_or_default();
            let timeout = step["timeout_ms"].as_u64().map(|t| t as u32);
            match target.apply(
                &key_of(&step["key"]),
                &text("module"),
                &text("function"),
                &args,
                timeout,
                send_key,
            ) {
                Ok(v) => json!({ "ok": value_to_json(&v) }),
                Err(e) => error(e),
            }
        }
        "sleep_ms" => {
            std::thread::sleep(std::time::Duration::from_millis(step["ms"].as_u64()?));
            return None;
        }
        other => panic!("unknown step {other:?}"),
    })
}

pub fn key_of(json: &Json) -> Key {
    Key {
        ns: json["ns"].as_str().unwrap_or("test").to_string(),
        set: json["set"].as_str().map(str::to_string),
        key: value_from_json(&json["key"]),
    }
}

fn one(value: &Json) -> (&str, &Json) {
    let obj = value
        .as_object()
        .filter(|o| o.len() == 1)
        .unwrap_or_else(|| panic!("a VALUE has exactly one member: {value}"));
    let (kind, x) = obj.iter().next().unwrap();
    (kind.as_str(), x)
}

fn float_of(x: &Json) -> f64 {
    match x {
        Json::String(s) => match s.as_str() {
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            "nan" => f64::NAN,
            other => other.parse().unwrap(),
        },
        other => other.as_f64().unwrap(),
    }
}

fn int_of(x: &Json) -> i128 {
    match x {
        Json::String(s) => s.parse().unwrap(),
        Json::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap(),
        other => panic!("not an int: {other}"),
    }
}

/// Typed VALUE → value.
pub fn value_from_json(value: &Json) -> Value {
    let (kind, x) = one(value);
    match kind {
        "nil" => Value::Nil,
        "bool" => Value::Bool(x.as_bool().unwrap()),
        "int" => Value::Int(int_of(x) as i64),
        "float" => Value::Float(float_of(x)),
        "str" => Value::Str(x.as_str().unwrap().into()),
        "bytes" => Value::Bytes {
            ty: asudf::sandbox::value::BLOB,
            data: hex::decode(x.as_str().unwrap()).unwrap(),
        },
        "geojson" => Value::GeoJson(x.as_str().unwrap().to_string()),
        "list" => Value::List(x.as_array().unwrap().iter().map(value_from_json).collect()),
        "map" => Value::Map(
            x.as_array()
                .unwrap()
                .iter()
                .map(|pair| (value_from_json(&pair[0]), value_from_json(&pair[1])))
                .collect(),
        ),
        other => panic!("unknown VALUE kind {other:?}"),
    }
}

/// Value → typed VALUE.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Nil => json!({ "nil": null }),
        Value::Bool(b) => json!({ "bool": b }),
        Value::Int(i) if i.unsigned_abs() <= 1 << 53 => json!({ "int": i }),
        Value::Int(i) => json!({ "int": i.to_string() }),
        Value::Float(f) if f.is_nan() => json!({"float": "nan"}),
        Value::Float(f) if f.is_infinite() => {
            json!({"float": if *f > 0.0 { "inf" } else { "-inf" }})
        }
        Value::Float(f) => json!({ "float": f }),
        // Recorded strings are text.
        Value::Str(s) => json!({ "str": String::from_utf8_lossy(s) }),
        Value::Bytes { data, .. } => json!({ "bytes": hex::encode(data) }),
        Value::GeoJson(g) => json!({ "geojson": g }),
        Value::List(items) => json!({"list": items.iter().map(value_to_json).collect::<Vec<_>>()}),
        Value::Map(pairs) => json!({"map": pairs
            .iter()
            .map(|(k, v)| json!([value_to_json(k), value_to_json(v)]))
            .collect::<Vec<_>>()}),
    }
}

/// A typed VALUE in a form where equal VALUEs give equal text: ints and
/// floats apart, -0.0 apart from 0.0, nan equal to nan, maps as sorted
/// pairs, GeoJSON as a parsed document.
pub fn canon_value(value: &Json) -> String {
    let (kind, x) = one(value);
    match kind {
        "nil" => "nil".into(),
        "bool" => format!("bool:{}", x.as_bool().unwrap()),
        "int" => format!("int:{}", int_of(x)),
        "float" => {
            let f = float_of(x);
            if f.is_nan() {
                "float:nan".into()
            } else {
                format!("float:{f:?}")
            }
        }
        "str" => format!("str:{x}"),
        "bytes" => format!("bytes:{}", x.as_str().unwrap().to_lowercase()),
        "geojson" => {
            let text = x.as_str().unwrap();
            match serde_json::from_str::<Json>(text) {
                Ok(doc) => format!("geojson:{}", sorted_json(&doc)),
                Err(_) => format!("geojson-text:{text}"),
            }
        }
        "list" => {
            let items: Vec<String> = x.as_array().unwrap().iter().map(canon_value).collect();
            format!("list:[{}]", items.join(","))
        }
        "map" => {
            let mut pairs: Vec<String> = x
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("({}={})", canon_value(&p[0]), canon_value(&p[1])))
                .collect();
            pairs.sort();
            format!("map:{{{}}}", pairs.join(","))
        }
        other => panic!("unknown VALUE kind {other:?}"),
    }
}

/// JSON text with object keys sorted at every level.
fn sorted_json(doc: &Json) -> String {
    match doc {
        Json::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Json::String((*k).clone()), sorted_json(&obj[*k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(sorted_json).collect();
            format!("[{}]", items.join(","))
        }
        Json::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => format!("{f:?}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// An `expect` (or a result of the same shape) → comparable text.
pub fn canon_result(result: &Json) -> Result<String, String> {
    let obj = result
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| format!("an expect has exactly one member: {result}"))?;
    let (kind, x) = obj.iter().next().unwrap();
    Ok(match kind.as_str() {
        "ok" if x.is_null() => "ok:null".into(),
        "ok" => format!("ok:{}", canon_value(x)),
        "error" => format!(
            "error:{}:{}",
            x["code"].as_i64().unwrap_or(-1),
            Json::String(x["message"].as_str().unwrap_or("").to_string())
        ),
        "record" => {
            let mut bins: Vec<String> = x["bins"]
                .as_object()
                .map(|b| {
                    b.iter()
                        .map(|(name, v)| {
                            format!("{}={}", Json::String(name.clone()), canon_value(v))
                        })
                        .collect()
                })
                .unwrap_or_default();
            bins.sort();
            format!("record:{}:gen={}", bins.join(","), x["gen"])
        }
        "info" => format!("info:{x}"),
        "results" => canon_results(x)?,
        "files" => {
            let mut files: Vec<String> = x
                .as_array()
                .map(|a| a.iter().map(|f| f.to_string()).collect())
                .unwrap_or_default();
            files.sort();
            format!("files:{}", files.join(","))
        }
        other => return Err(format!("unknown expect kind {other:?}")),
    })
}

/// `results`: a batch step's rows (every member an `ok`, `error` or
/// `record` object) in order; otherwise an aggregation's values, as a
/// multiset.
fn canon_results(x: &Json) -> Result<String, String> {
    let items = x
        .as_array()
        .ok_or_else(|| format!("results is a list: {x}"))?;
    let is_row = |item: &Json| {
        item.as_object().is_some_and(|o| {
            o.len() == 1 && ["ok", "error", "record"].iter().any(|k| o.contains_key(*k))
        })
    };
    if items.iter().all(is_row) {
        let rows = items
            .iter()
            .map(canon_result)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(format!("rows:[{}]", rows.join(",")));
    }
    let mut values: Vec<String> = items.iter().map(canon_value).collect();
    values.sort();
    Ok(format!("values:[{}]", values.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_rules() {
        let c = |j: Json| canon_value(&j);
        assert_ne!(c(json!({"int": 5})), c(json!({"float": 5.0})));
        assert_ne!(c(json!({"float": -0.0})), c(json!({"float": 0.0})));
        assert_eq!(c(json!({"float": "nan"})), c(json!({"float": "nan"})));
        assert_eq!(
            c(json!({"int": "9007199254740993"})),
            c(json!({"int": 9007199254740993u64}))
        );
        assert_eq!(
            c(json!({"map": [[{"str": "a"}, {"int": 1}], [{"int": 2}, {"nil": null}]]})),
            c(json!({"map": [[{"int": 2}, {"nil": null}], [{"str": "a"}, {"int": 1}]]}))
        );
        assert_eq!(
            c(json!({"geojson": "{\"type\":\"Point\",\"coordinates\":[1.5,2]}"})),
            c(json!({"geojson": "{\"coordinates\": [1.5, 2], \"type\": \"Point\"}"}))
        );
        assert_ne!(
            c(json!({"list": [{"int": 1}]})),
            c(json!({"list": [{"str": "1"}]}))
        );
    }
}

//! The query-path commands (`index`, `aggregate`, `execute`, `query`) as
//! real processes against `asudf serve`: every recorded case with an
//! aggregation or a background job is replayed through the commands, and
//! the values and records they print equal the recorded ones.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use asudf::value;
use common::cases::canon_value;
use common::process::Served;
use serde_json::{Value as Json, json};

/// A typed VALUE in the literal syntax the commands take.
fn literal(typed: &Json) -> String {
    value::print(&value::from_typed_json(typed).unwrap())
}

fn target(step: &Json) -> String {
    match step["set"].as_str() {
        Some(set) => format!("{}.{set}", step["ns"].as_str().unwrap()),
        None => step["ns"].as_str().unwrap().to_string(),
    }
}

/// A case's `where` as a where clause.
fn where_text(w: &Json) -> String {
    let collection = match w["collection"].as_str() {
        Some(c) => format!("{} ", c.to_uppercase()),
        None => String::new(),
    };
    let bin = w["bin"].as_str().unwrap();
    let values = w["values"].as_array().unwrap();
    match w["op"].as_str().unwrap() {
        "equals" => format!("{collection}{bin} = {}", literal(&values[0])),
        "between" => format!(
            "{collection}{bin} BETWEEN {} AND {}",
            literal(&values[0]),
            literal(&values[1])
        ),
        other => panic!("where op {other} not mapped"),
    }
}

/// The arguments of `aggregate` / `execute` for a step.
fn udf_args(step: &Json) -> Vec<String> {
    let mut args = vec![
        target(step),
        format!(
            "{}.{}",
            step["module"].as_str().unwrap(),
            step["function"].as_str().unwrap()
        ),
    ];
    args.extend(step["args"].as_array().unwrap().iter().map(literal));
    if !step["where"].is_null() {
        args.push("--where".into());
        args.push(where_text(&step["where"]));
    }
    args
}

fn multiset(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut all: Vec<String> = values.collect();
    all.sort();
    all
}

fn record_canon(bins: &Json, generation: &Json) -> String {
    let mut bins: Vec<String> = bins
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| format!("{n}={}", canon_value(v)))
        .collect();
    bins.sort();
    format!("{} gen={generation}", bins.join(","))
}

/// Runs `asudf --json COMMAND` for an aggregate or background step: its
/// JSON answer, or `None` when the step expects (and got) an error.
fn run_udf_step(served: &Served, at: &str, command: &str, step: &Json) -> Option<Json> {
    let mut args = vec!["--json".to_string(), command.to_string()];
    args.extend(udf_args(step));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = served.run(&args);
    if step["expect"]["error"].is_object() {
        assert_ne!(code, 0, "{at}: expected an error, got {out}");
        return None;
    }
    assert_eq!(code, 0, "{at}: {err}{out}");
    Some(serde_json::from_str(out.trim()).unwrap())
}

fn replay(served: &Served, dir: &Path, case: &Json) {
    let name = case["name"].as_str().unwrap();
    for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
        let at = format!("{name} step {i} ({})", step["do"]);
        let expect = &step["expect"];
        match step["do"].as_str().unwrap() {
            "udf_put" => {
                let file = dir.join(step["file"].as_str().unwrap());
                std::fs::write(&file, step["content"].as_str().unwrap()).unwrap();
                served.ok(&["udf", "put", file.to_str().unwrap()]);
            }
            "udf_remove" => {
                served.ok(&["udf", "rm", step["file"].as_str().unwrap()]);
            }
            "put_many" | "put" => {
                let records = match step["records"].as_array() {
                    Some(records) => records.clone(),
                    None => vec![json!([step["key"], step["bins"]])],
                };
                for record in records {
                    let key = &record[0];
                    let mut args = vec!["record".to_string(), "put".to_string()];
                    args.push(match key["set"].as_str() {
                        Some(set) => format!("{}.{set}", key["ns"].as_str().unwrap()),
                        None => key["ns"].as_str().unwrap().to_string(),
                    });
                    args.push(literal(&key["key"]));
                    for (bin, v) in record[1].as_object().unwrap() {
                        args.push(format!("{bin}={}", literal(v)));
                    }
                    if step["send_key"].as_bool() == Some(true) {
                        args.push("--send-key".into());
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    served.ok(&args);
                }
            }
            "sindex_create" => {
                let mut args = vec![
                    "index".to_string(),
                    "create".into(),
                    target(step),
                    step["bin"].as_str().unwrap().into(),
                    step["index_type"].as_str().unwrap().into(),
                    "--name".into(),
                    step["name"].as_str().unwrap().into(),
                ];
                if let Some(c) = step["collection"].as_str() {
                    args.extend(["--collection".into(), c.into()]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                served.ok(&args);
            }
            "aggregate" => {
                let Some(got) = run_udf_step(served, &at, "aggregate", step) else {
                    continue;
                };
                let got = multiset(got["values"].as_array().unwrap().iter().map(canon_value));
                let want = multiset(
                    expect["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(canon_value),
                );
                assert_eq!(got, want, "{at}");
            }
            "background_udf" => {
                let Some(got) = run_udf_step(served, &at, "execute", step) else {
                    continue;
                };
                if let Some(fields) = expect["job"].as_object() {
                    for (field, want) in fields {
                        assert_eq!(&got["fields"][field], want, "{at}: job field {field}");
                    }
                }
            }
            "query" => {
                let mut args = vec!["--json".to_string(), "query".into(), target(step)];
                if !step["where"].is_null() {
                    args.extend(["--where".into(), where_text(&step["where"])]);
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = served.ok(&args);
                let mut lines: Vec<Json> = out
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                let summary = lines.pop().expect("a summary line");
                assert_eq!(summary["ok"], true, "{at}");
                assert_eq!(summary["count"], lines.len(), "{at}");
                let got = multiset(lines.iter().map(|r| record_canon(&r["values"], &r["gen"])));
                let want = multiset(
                    expect["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| record_canon(&r["bins"], &r["gen"])),
                );
                assert_eq!(got, want, "{at}");
            }
            // Steps that only check a single record: covered by the
            // conformance replays; here they change nothing.
            "get" => {}
            "apply" => {
                let mut args = vec![
                    "apply".to_string(),
                    target(&step["key"]),
                    literal(&step["key"]["key"]),
                    format!(
                        "{}.{}",
                        step["module"].as_str().unwrap(),
                        step["function"].as_str().unwrap()
                    ),
                ];
                args.extend(step["args"].as_array().unwrap().iter().map(literal));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let _ = served.run(&args);
            }
            other => panic!("{at}: step {other} not replayed"),
        }
    }
}

#[test]
fn cases_with_aggregations_and_jobs_replay_through_the_commands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/cases-query");
    let mut replayed = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let case: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let runs_udfs = case["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| matches!(s["do"].as_str(), Some("aggregate" | "background_udf")));
        if !runs_udfs {
            continue;
        }
        let served = Served::start(&["--memory", "--lua-libs", "all"]);
        let modules = tempfile::tempdir().unwrap();
        replay(&served, modules.path(), &case);
        replayed += 1;
    }
    assert!(replayed >= 20, "only {replayed} cases replayed");
}

#[test]
fn samples_load_and_run_through_the_commands() {
    let served = Served::start(&["--memory", "--lua-libs", "all"]);
    let out = served.ok(&["--json", "sample", "load", "sum"]);
    let loaded: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(loaded["records"], 1000);
    // amount = i * 37 % 100 over i in 0..1000: each amount 0..99 ten times.
    let out = served.ok(&["--json", "aggregate", "test.sales", "sum.total"]);
    let total: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(total["values"], json!([{"int": 49500}]));
    let out = served.ok(&[
        "--json",
        "aggregate",
        "test.sales",
        "sum.total",
        "--where",
        "amount BETWEEN 10 AND 50",
    ]);
    let total: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        total["values"],
        json!([{"int": (10..=50).sum::<i64>() * 10}])
    );

    served.ok(&["sample", "load", "stamp"]);
    let out = served.ok(&["--json", "execute", "test.sales", "stamp.mark", "checked"]);
    let job: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (job["status"].as_str(), job["succeeded"].as_u64()),
        (Some("done(ok)"), Some(1000))
    );
    let out = served.ok(&[
        "--json",
        "query",
        "test.sales",
        "--where",
        "amount = 7",
        "--bins",
        "stamp",
    ]);
    let lines: Vec<Json> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 11, "ten records and the summary");
    for record in &lines[..10] {
        assert_eq!(record["bins"], json!({"stamp": "checked"}));
    }

    served.ok(&["sample", "load", "groupby"]);
    let out = served.ok(&["--json", "aggregate", "test.sales", "groupby.by_region"]);
    let groups: Json = serde_json::from_str(out.trim()).unwrap();
    let regions = groups["results"][0].as_object().unwrap();
    assert_eq!(regions.len(), 4);
    let count: u64 = regions.values().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 1000);

    let out = served.ok(&["--json", "index", "ls", "test"]);
    let indexes: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(indexes["indexes"][0]["bin"], "amount");
    served.ok(&["index", "rm", "test", "test_sales_amount"]);
    let out = served.ok(&["--json", "index", "ls", "test"]);
    assert_eq!(
        serde_json::from_str::<Json>(out.trim()).unwrap()["indexes"],
        json!([])
    );
}

#[test]
fn job_ids_are_json_strings_that_jobs_show_takes_back() {
    let served = Served::start(&["--memory"]);
    served.ok(&["sample", "load", "stamp"]);
    let out = served.ok(&[
        "--json",
        "execute",
        "test.sales",
        "stamp.mark",
        "later",
        "--no-wait",
    ]);
    let started: Json = serde_json::from_str(out.trim()).unwrap();
    let id = started["job"]
        .as_str()
        .expect("the id is a string")
        .to_string();
    let number: u64 = id.parse().unwrap();
    // As `$(… | jq .job)` passes it: a JSON string, quotes included.
    let quoted = started["job"].to_string();
    for given in [quoted.as_str(), id.as_str()] {
        let out = served.ok(&["--json", "jobs", "show", given]);
        let shown: Json = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(shown["jobs"][0]["id"], json!(id), "{given}");
    }
    let out = served.ok(&["--json", "jobs", "ls"]);
    let listed: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(listed["jobs"][0]["id"], json!(id));
    // The text output keeps the number.
    let out = served.ok(&["jobs", "show", &id]);
    assert!(out.starts_with(&format!("{number}  ")), "{out}");
    let (code, _, err) = served.run(&["jobs", "show", "12x"]);
    assert_eq!(code, 2);
    assert!(err.contains("a job id is a number"), "{err}");
}

/// A rate above the server's background-query-max-rps names the option and
/// the limit, not only the server's "Parameter error".
#[test]
fn execute_above_the_highest_rate_names_rps_and_the_limit() {
    let served = Served::start(&["--memory", "--background-max-rps", "500"]);
    served.ok(&["sample", "load", "stamp"]);
    let (code, _, err) = served.run(&["execute", "test.sales", "stamp.mark", "x", "--rps", "501"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("--rps: a rate of 501 records per second is refused (Parameter error)"),
        "{err}"
    );
    assert!(err.contains("background-query-max-rps"), "{err}");
    assert!(err.contains("--background-max-rps"), "{err}");
    served.ok(&["execute", "test.sales", "stamp.mark", "x", "--rps", "500"]);
}

#[test]
fn names_an_info_command_cannot_carry_are_usage_errors() {
    let served = Served::start(&["--memory"]);
    // `;` would end sindex-create's indexname, creating an index called "a".
    let (code, out, err) =
        served.run(&["index", "create", "test.x", "a", "numeric", "--name", "a;b"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains(
            "index name 'a;b' contains ';', which the server's info commands cannot carry"
        ),
        "{err}"
    );
    let (code, _, err) = served.run(&["index", "create", "test.x", "a=1", "numeric"]);
    assert_eq!(code, 2);
    assert!(err.contains("bin 'a=1' contains '='"), "{err}");
    let (code, _, err) = served.run(&["index", "create", "test.x:y", "a", "numeric"]);
    assert_eq!(code, 2);
    assert!(err.contains("set 'x:y' contains ':'"), "{err}");
    let (code, _, err) = served.run(&["index", "rm", "test", "a\tb"]);
    assert_eq!(code, 2);
    assert!(err.contains("index name 'a\\tb' contains '\\t'"), "{err}");
    assert_eq!(
        served.ok(&["index", "ls"]).trim(),
        "",
        "nothing was created"
    );
}

#[test]
fn bad_where_clauses_are_usage_errors_with_the_column() {
    let served = Served::start(&["--memory", "--lua-libs", "all"]);
    let (code, _, err) = served.run(&["query", "test.x", "--where", "age BETWEEN 1 OR 2"]);
    assert_eq!(code, 2);
    assert!(err.contains("column 15: expected AND, found 'OR'"), "{err}");
}

#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    let served = Served::start(&["--memory", "--lua-libs", "all"]);
    served.ok(&["sample", "load", "sum"]);
    let mut child = Command::cargo_bin("asudf")
        .unwrap()
        .args(["-h", &served.host, "query", "test.sales"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("amount"), "{first}");
    // The reader is gone (its end of the pipe dropped with the BufReader).
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(141), "{err}");
}

/// A partition a record of `test.SET` with integer key `key` falls in.
fn partition_of(set: &str, key: i64) -> u16 {
    let digest = aerospike::Key::new("test", set, aerospike::Value::Int(key))
        .unwrap()
        .digest();
    u16::from_le_bytes([digest[0], digest[1]]) & 0x0FFF
}

/// `asudf -h HOST ARGS…` waited for until `limit` at most (then killed):
/// (exit code, stderr, how long it ran).
fn run_within(served: &Served, args: &[&str], limit: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut child = Command::cargo_bin("asudf")
        .unwrap()
        .args(["-h", &served.host])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("asudf {args:?} still ran after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code().unwrap_or(-1), err, started.elapsed())
}

#[test]
fn a_client_reduce_that_loops_forever_fails_at_the_time_limit() {
    let served = Served::start(&["--memory", "--lua-libs", "all"]);
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("spin.lua");
    std::fs::write(
        &module,
        "local function spin(a, b) while true do end end\n\
         function forever(s) return s : map(function(r) return r.n end) : reduce(spin) end\n",
    )
    .unwrap();
    served.ok(&["udf", "put", module.to_str().unwrap()]);
    // One record per partition: the server never calls the reduce, the client does.
    assert_ne!(partition_of("spin", 1), partition_of("spin", 2));
    served.ok(&["record", "put", "test.spin", "1", "n=1"]);
    served.ok(&["record", "put", "test.spin", "2", "n=2"]);

    let generous = Duration::from_secs(30);
    let (code, err, took) = run_within(
        &served,
        &["--timeout", "300", "aggregate", "test.spin", "spin.forever"],
        generous,
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("failed in the client: UDF Execution Timeout (the aggregation ran past its time limit, 300 ms)"),
        "{err}"
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");

    // Without --timeout, a UDF call's default limit applies to its Lua.
    let (code, err, _) = run_within(
        &served,
        &["aggregate", "test.spin", "spin.forever"],
        generous,
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("UDF Execution Timeout (its Lua ran 1000 ms on one value"),
        "{err}"
    );
}

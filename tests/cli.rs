//! The headless commands, run as real processes against a sandbox.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;
use common::process::{self, Served};

fn counter_lua() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/counter.lua")
}

/// `asudf ARGS… --sandbox-dir DIR`, returning (exit code, stdout, stderr).
fn asudf(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--sandbox-dir", dir.to_str().unwrap()]);
    process::asudf(&all)
}

/// A sandbox directory with counter.lua registered.
fn sandbox_with_counter() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = asudf(dir.path(), &["udf", "put", counter_lua().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    dir
}

/// As [`asudf`], with `input` on standard input.
fn asudf_with_stdin(dir: &Path, args: &[&str], input: &str) -> (i32, String, String) {
    let out = assert_cmd::Command::cargo_bin("asudf")
        .unwrap()
        .args(args)
        .args(["--sandbox-dir", dir.to_str().unwrap()])
        .env_remove("ASUDF_HOST")
        .write_stdin(input)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(stdout: &str) -> Json {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The client cannot read a string that is not UTF-8 (a Lua string is
/// bytes, and a server sends them as they are): the error says so.
#[test]
fn a_result_that_is_not_utf8_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = d.join("latin1.lua");
    std::fs::write(&module, "function give(rec)\n  return 'caf\\xe9'\nend\n").unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);
    let (code, _, err) = asudf(d, &["apply", "test", "k", "latin1.give"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("the server sent a string that is not UTF-8, which the client cannot read"),
        "{err}"
    );
}

#[test]
fn guide_walkthrough_as_separate_processes_with_no_server_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let counter = counter_lua();
    let (code, out, err) = asudf(d, &["udf", "put", counter.to_str().unwrap()]);
    assert_eq!(code, 0, "udf put failed: {out}{err}");
    assert!(out.contains("counter.lua"), "{out}");

    let (code, out, err) = asudf(d, &["udf", "ls"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("counter.lua"), "{out}");

    let (code, out, err) = asudf(
        d,
        &[
            "apply",
            "test.demo",
            "counter1",
            "counter.increment",
            "count",
            "5",
        ],
    );
    assert_eq!((code, out.trim()), (0, "5"), "{err}");
    assert!(err.contains("ms"), "the round trip is printed: {err}");
    let (code, out, _) = asudf(
        d,
        &[
            "apply",
            "test.demo",
            "counter1",
            "counter.increment",
            "count",
            "3",
        ],
    );
    assert_eq!((code, out.trim()), (0, "8"));

    let (code, out, _) = asudf(d, &["record", "get", "test.demo", "counter1"]);
    assert_eq!(code, 0);
    assert!(out.contains("count: 8"), "{out}");
    assert!(out.contains("gen 2"), "{out}");

    let (code, out, _) = asudf(d, &["udf", "cat", "counter"]);
    assert_eq!(code, 0);
    assert_eq!(out, std::fs::read_to_string(&counter).unwrap());

    let (code, out, _) = asudf(d, &["udf", "rm", "counter"]);
    assert_eq!(code, 0);
    assert!(out.contains("removed counter.lua"), "{out}");
    let (_, out, _) = asudf(d, &["udf", "ls"]);
    assert_eq!(out.trim(), "");
}

#[test]
fn commands_connect_to_a_running_serve_of_the_same_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A served sandbox: commands started later connect to it and share its data.
    let served = Served::start(&["--sandbox-dir", dir.path().to_str().unwrap()]);

    let (code, _, err) = asudf(dir.path(), &["udf", "put", counter_lua().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = asudf(
        dir.path(),
        &[
            "--json",
            "apply",
            "test",
            "k",
            "counter.increment",
            "n",
            "2",
        ],
    );
    assert_eq!(code, 0);
    let j = json_of(&out);
    assert_eq!(j["ok"], true);
    assert_eq!(j["result"], 2);
    assert_eq!(j["value"], serde_json::json!({"int": 2}));
    // The call's own round trip, and on the sandbox the UDF's run inside it.
    let rtt = j["rtt_us"].as_u64().expect("rtt_us");
    let run = j["server_us"].as_u64().expect("server_us on the sandbox");
    assert!(run <= rtt, "{j}");
    drop(served);
}

/// Commands started together on one sandbox directory, with nothing else
/// serving it: each waits for the one that holds the directory, none fails,
/// and every increment that exited 0 is in the record.
#[test]
fn parallel_commands_on_one_directory_all_succeed_and_lose_no_write() {
    let dir = sandbox_with_counter();
    const N: usize = 12;
    let runs: Vec<_> = (0..N)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                asudf(
                    &dir,
                    &["apply", "test.race", "k", "counter.increment", "n", "1"],
                )
            })
        })
        .collect();
    for run in runs {
        let (code, out, err) = run.join().unwrap();
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = asudf(dir.path(), &["--json", "record", "get", "test.race", "k"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["bins"]["n"], N, "{out}");
}

/// A job started with --no-wait by a command that serves the sandbox
/// itself would stop with it: refused before it starts.
#[test]
fn no_wait_is_refused_when_the_command_serves_the_sandbox_itself() {
    let dir = sandbox_with_counter();
    let no_wait = || {
        let args = ["execute", "test.demo", "counter.increment", "n", "1"];
        asudf(dir.path(), &[&args[..], &["--no-wait"]].concat())
    };
    let (code, _, err) = no_wait();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--no-wait needs a sandbox that outlives"),
        "{err}"
    );
    let (code, out, _) = asudf(dir.path(), &["--json", "jobs"]);
    assert_eq!(code, 0);
    assert!(!out.contains("counter"), "no job was started: {out}");

    // With a served sandbox the job goes on after the command.
    let served = Served::start(&["--sandbox-dir", dir.path().to_str().unwrap()]);
    let (code, out, err) = no_wait();
    assert_eq!(code, 0, "{err}");
    assert!(!out.trim().is_empty(), "the job's id: {out}");
    drop(served);
}

/// A job the server did not start is an error (exit 4) that says why; one
/// whose record calls failed ends ok with a warning.
#[test]
fn execute_reports_a_job_on_an_unknown_set_and_failed_records() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    let (code, _, err) = asudf(
        d,
        &["execute", "test.nosuch", "counter.increment", "n", "1"],
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("set 'nosuch' has never held a record"),
        "{err}"
    );

    assert_eq!(asudf(d, &["record", "put", "test.few", "a", "n=1"]).0, 0);
    assert_eq!(asudf(d, &["record", "put", "test.few", "b", "n=2"]).0, 0);
    let (code, out, err) = asudf(d, &["execute", "test.few", "counter.missing"]);
    assert_eq!(code, 0, "the job itself ended ok: {out}{err}");
    assert!(err.contains("warning: 2 record calls failed"), "{err}");
    let (code, _, err) = asudf(d, &["execute", "test.few", "counter.increment", "n", "1"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn udf_error_exits_4_and_shows_the_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = d.join("boom.lua");
    std::fs::write(
        &module,
        "function ok(rec)\n  return 1\nend\nfunction boom(rec)\n  error('kaboom')\nend\n",
    )
    .unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);

    let (code, _, err) = asudf(d, &["apply", "test", "k", "boom.boom"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("boom.lua:5: kaboom"), "{err}");
    assert!(
        err.contains("error('kaboom')"),
        "the source line is shown: {err}"
    );

    let (code, out, _) = asudf(d, &["--json", "apply", "test", "k", "boom.boom"]);
    assert_eq!(code, 4);
    let j = json_of(&out);
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"]["code"], 100);
    assert_eq!(j["error"]["module"], "boom.lua");
    assert_eq!(j["error"]["line"], 5);

    let (code, _, err) = asudf(d, &["apply", "test", "k", "boom.nosuch"]);
    assert_eq!(code, 4);
    assert!(err.contains("function not found"), "{err}");
    assert!(err.contains("hint: 'boom' has no global function"), "{err}");
    let (code, _, err) = asudf(d, &["apply", "test", "k", "nomodule.f"]);
    assert_eq!(code, 4);
    assert!(err.contains("UDF: Execution Error 1"), "{err}");
    assert!(err.contains("'nomodule' is not registered"), "{err}");
}

/// A UDF's error, log line and value with terminal control characters in
/// them print escaped (as the literal syntax writes them); JSON keeps them.
#[test]
fn plain_output_shows_a_udfs_control_characters_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = d.join("ctl.lua");
    std::fs::write(
        &module,
        "function bad(rec)\n  error('ctl\\27[0m\\8 here', 0)\nend\nfunction logs(rec)\n  info('bell\\7')\n  return 'v\\27'\nend\n",
    )
    .unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);
    let raw = |text: &str| text.chars().any(|c| c.is_control() && c != '\n');

    let (code, out, err) = asudf(d, &["apply", "test", "k", "ctl.bad"]);
    assert_eq!(code, 4, "{err}");
    assert!(!raw(&out) && !raw(&err), "{err:?}");
    assert!(
        err.contains("error 100: ctl\\u{1b}[0m\\u{8} here\n"),
        "{err}"
    );
    let (code, out, err) = asudf(d, &["apply", "test", "k", "ctl.logs"]);
    assert_eq!(code, 0, "{err}");
    assert!(!raw(&out) && !raw(&err), "{out:?} {err:?}");
    assert_eq!(out.trim(), "'v\\u{1b}'");
    assert!(err.contains("[info] bell\\u{7}\n"), "{err}");
    let (code, out, err) = asudf(d, &["apply", "test", "--keys", "a", "ctl.bad"]);
    assert_eq!(code, 4, "{err}");
    assert!(!raw(&out), "{out:?}");
    assert!(
        out.contains("'a'  ✗ error 100: ctl\\u{1b}[0m\\u{8} here\n"),
        "{out}"
    );

    let (_, out, _) = asudf(d, &["--json", "apply", "test", "k", "ctl.bad"]);
    assert_eq!(json_of(&out)["error"]["message"], "ctl\u{1b}[0m\u{8} here");
}

/// A module named with its .lua is refused up front (a server answers
/// "UDF: Execution Error 1" to it), in every command that takes a call.
#[test]
fn a_call_naming_the_module_with_its_lua_is_a_usage_error() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    for args in [
        &["apply", "test.demo", "k", "counter.lua.increment", "n", "1"][..],
        &[
            "apply",
            "test.demo",
            "--keys",
            "a,b",
            "counter.lua.increment",
        ],
        &["aggregate", "test.demo", "counter.lua.increment"],
    ] {
        let (code, out, err) = asudf(d, args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("name the module without its .lua, as servers call it: counter.increment"),
            "{args:?}: {err}"
        );
    }
    let (code, out, _) = asudf(d, &["record", "get", "test.demo", "k"]);
    assert_eq!((code, out.trim()), (0, "no such record"), "nothing ran");
}

/// A count of one takes the singular.
#[test]
fn counts_of_one_are_singular() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    let (code, _, err) = asudf(
        d,
        &[
            "apply",
            "test.demo",
            "--keys",
            "a",
            "counter.increment",
            "n",
            "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("(1 key, 0 failed, "), "{err}");
    let (code, _, err) = asudf(d, &["query", "test.demo"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("(1 record in "), "{err}");
    assert_eq!(asudf(d, &["sample", "load", "sum"]).0, 0);
    let (code, out, err) = asudf(d, &["aggregate", "test.sales", "sum.total"]);
    assert_eq!((code, out.trim()), (0, "49500"), "{err}");
    assert!(err.starts_with("(1 value in "), "{err}");
    let (code, _, err) = asudf(d, &["execute", "test.demo", "counter.missing"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning: 1 record call failed"), "{err}");
}

#[test]
fn deeply_nested_bins_survive_the_next_process_and_a_damaged_log_is_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = d.join("deep.lua");
    std::fs::write(
        &module,
        "function set(rec, n)\n\
           local l = list{}; local c = l\n\
           for i = 1, n do local x = list{}; list.append(c, x); c = x end\n\
           rec.d = l; rec.v = n\n\
           if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end\n\
           return rec.v\n\
         end\n",
    )
    .unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);
    let get = || {
        let (code, out, err) = asudf(d, &["--json", "record", "get", "test.demo", "R"]);
        assert_eq!(code, 0, "{err}");
        // Deeper than serde_json parses by default.
        let mut parser = serde_json::Deserializer::from_str(&out);
        parser.disable_recursion_limit();
        let j = <Json as serde::Deserialize>::deserialize(&mut parser).unwrap();
        (
            j["bins"]["v"].as_i64().unwrap(),
            j["gen"].as_i64().unwrap(),
            j,
        )
    };
    for n in ["3", "130"] {
        let (code, _, err) = asudf(d, &["apply", "test.demo", "R", "deep.set", n]);
        assert_eq!(code, 0, "{err}");
    }
    // Written by the last process, read back by this one: 131 levels, past
    // serde_json's default limit of 128, which dropped the line.
    let (v, generation, j) = get();
    assert_eq!((v, generation), (130, 2));
    let mut d_bin = &j["bins"]["d"];
    for _ in 0..130 {
        d_bin = &d_bin[0];
    }
    assert_eq!(d_bin, &serde_json::json!([]));

    // Far past the sandbox's limit: a UDF error, not a crash, nothing written.
    let (code, _, err) = asudf(d, &["apply", "test.demo", "R", "deep.set", "10000"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("bin d nests lists and maps deeper than 256 levels"),
        "{err}"
    );
    assert_eq!(get().1, 2);

    // A damaged line that is not the last one stops the open, and loses nothing.
    let log = d.join("records/test.log");
    let kept = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{{\"op\":\"pu\n{kept}")).unwrap();
    let (code, _, err) = asudf(d, &["record", "get", "test.demo", "R"]);
    assert_ne!(code, 0);
    assert!(err.contains("test.log line 1 is not a record"), "{err}");
    std::fs::write(&log, &kept).unwrap();
    assert_eq!(get().0, 130);
}

#[test]
fn compile_error_prints_file_line_message_and_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("syntax.lua");
    std::fs::write(&module, "function f(rec)\n  return 1 +\nend\n").unwrap();
    let (code, _, err) = asudf(dir.path(), &["udf", "put", module.to_str().unwrap()]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("syntax.lua:3: unexpected symbol near 'end'"),
        "{err}"
    );
    assert!(err.contains("    3 | end"), "{err}");
    let (_, out, _) = asudf(dir.path(), &["udf", "ls"]);
    assert_eq!(
        out.trim(),
        "",
        "nothing is registered after a compile error"
    );
}

#[test]
fn record_put_get_rm_with_typed_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = asudf(
        d,
        &[
            "record",
            "put",
            "test.demo",
            "r1",
            "a=5",
            "b=2.5",
            "c='x'",
            "d=[1,'two']",
            "e=x'0a1b'",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = asudf(d, &["--json", "record", "get", "test.demo", "r1"]);
    assert_eq!(code, 0);
    let j = json_of(&out);
    assert_eq!(j["found"], true);
    assert_eq!(j["values"]["a"], serde_json::json!({"int": 5}));
    assert_eq!(j["values"]["b"], serde_json::json!({"float": 2.5}));
    assert_eq!(j["values"]["e"], serde_json::json!({"bytes": "0a1b"}));
    assert_eq!(j["gen"], 1);
    assert_eq!(
        asudf(d, &["record", "rm", "test.demo", "r1"]).1.trim(),
        "deleted"
    );
    let (_, out, _) = asudf(d, &["--json", "record", "get", "test.demo", "r1"]);
    assert_eq!(json_of(&out)["found"], false);
}

#[test]
fn record_get_shows_a_bin_named_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let module = d.join("e.lua");
    std::fs::write(
        &module,
        "function e(rec) rec.a = 1; rec[\"\"] = 1; rec.b = 2; return aerospike:create(rec) end",
    )
    .unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);
    assert_eq!(asudf(d, &["apply", "test.demo", "e", "e.e"]).0, 0);
    let (code, out, err) = asudf(d, &["--json", "record", "get", "test.demo", "e"]);
    assert_eq!(code, 0, "{err}");
    let bins = &json_of(&out)["bins"];
    assert_eq!(bins, &serde_json::json!({"a": 1, "": 1, "b": 2}));
    let names: Vec<&String> = bins.as_object().unwrap().keys().collect();
    assert_eq!(names, ["a", "", "b"], "in the stored order");
}

#[test]
fn bench_reports_throughput_and_percentiles() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    let (code, out, err) = asudf(
        d,
        &[
            "--json",
            "bench",
            "apply",
            "test",
            "b",
            "counter.increment",
            "n",
            "1",
            "-n",
            "300",
            "-c",
            "4",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let j = json_of(&out);
    assert_eq!(j["ok"], true, "{j}");
    assert_eq!(j["ops"], 300);
    assert_eq!(j["errors"], 0);
    assert!(j["ops_per_sec"].as_f64().unwrap() > 0.0);
    assert!(j["p50_us"].as_u64().unwrap() <= j["p99_us"].as_u64().unwrap());
    // 300 calls cost the client some CPU, and far less than a second each.
    let cpu = j["cpu_us_per_call"].as_f64().unwrap();
    assert!(cpu > 0.0 && cpu < 1e6, "{j}");
    // Every apply landed: the counter is exactly 300.
    let (_, out, _) = asudf(d, &["--json", "record", "get", "test", "b"]);
    assert_eq!(
        json_of(&out)["values"]["n"],
        serde_json::json!({"int": 300})
    );

    // No more in flight than there are calls; no bench of no calls.
    let bench = |n: &str, c: &str| {
        let args = ["test", "b", "counter.increment", "n", "1", "-n", n, "-c", c];
        asudf(d, &[&["--json", "bench", "apply"][..], &args].concat())
    };
    let (code, out, err) = bench("3", "10");
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["concurrency"], 3);
    // Without --json, the lowered concurrency is said on stderr.
    let args = ["bench", "apply", "test", "b", "counter.increment", "n", "1"];
    let (code, out, err) = asudf(d, &[&args[..], &["-n", "3", "-c", "10"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: -c 10 with -n 3: runs 3 at once"),
        "{err}"
    );
    assert!(out.contains("at concurrency 3"), "{out}");
    let (code, out, err) = bench("0", "1");
    assert_eq!(code, 2, "{err}");
    let message = &json_of(&out)["error"]["message"];
    assert!(message.as_str().unwrap().contains("'--count <N>'"), "{out}");
}

#[test]
fn bench_counts_failed_calls_apart_from_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Succeeds 100 times on a record, then fails every call.
    let module = d.join("capped.lua");
    std::fs::write(
        &module,
        "function bump(rec)\n  local n = (rec['n'] or 0) + 1\n  if n > 100 then error('cap reached') end\n  rec['n'] = n\n  if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end\n  return n\nend\n",
    )
    .unwrap();
    assert_eq!(asudf(d, &["udf", "put", module.to_str().unwrap()]).0, 0);
    let bench = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "bench",
            "apply",
            "test",
            "k",
            "capped.bump",
            "-n",
            "300",
            "-c",
            "4",
        ];
        args.extend_from_slice(extra);
        asudf(d, &args)
    };
    let (code, out, err) = bench(&[]);
    assert_eq!(code, 4, "failed calls make the bench fail: {err}");
    let j = json_of(&out);
    assert_eq!(j["ops"], 100, "only successful calls count: {j}");
    assert_eq!(j["errors"], 200);
    let throughput = j["ops_per_sec"].as_f64().unwrap() * j["seconds"].as_f64().unwrap();
    assert!((throughput - 100.0).abs() < 1.0, "{j}");
    let message = j["first_error"]["message"].as_str().unwrap();
    assert!(message.contains("cap reached"), "{j}");
    // The run failed: the shape of every failure, the measures beside it.
    assert_eq!(j["ok"], false, "{j}");
    assert_eq!(j["error"], j["first_error"], "{j}");

    // Allowed: the same report, exit 0; the bare client's run is reported beside it.
    let (code, out, err) = bench(&["--allow-errors", "--baseline"]);
    assert_eq!(code, 0, "{err}");
    let j = json_of(&out);
    assert_eq!(j["ok"], true, "errors allowed: {j}");
    assert_eq!(j["ops"], 0, "the record was capped before this run: {j}");
    assert_eq!(j["errors"], 300);
    assert_eq!(j["baseline"]["errors"], 300);
    assert_eq!(j["ops_per_sec"], 0.0);
}

#[test]
fn batch_apply_answers_per_key() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    assert_eq!(
        asudf(d, &["record", "put", "test.demo", "a", "count=1"]).0,
        0
    );
    assert_eq!(
        asudf(d, &["record", "put", "test.demo", "c", "count='x'"]).0,
        0
    );
    // a exists, b is missing (the UDF creates it), c holds a string.
    let (code, out, err) = asudf(
        d,
        &[
            "--json",
            "apply",
            "test.demo",
            "--keys",
            "a,b,c",
            "counter.increment",
            "count",
            "2",
        ],
    );
    assert_eq!(code, 4, "one key failed: {err}");
    let j = json_of(&out);
    assert_eq!(j["failed"], 1);
    let rows = j["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (&rows[0]["key"], &rows[0]["value"]),
        (
            &serde_json::json!({"str": "a"}),
            &serde_json::json!({"int": 3})
        )
    );
    assert_eq!(rows[1]["value"], serde_json::json!({"int": 2}));
    assert_eq!(rows[2]["ok"], false);
    assert_eq!(rows[2]["error"]["code"], 100);
    assert_eq!(rows[2]["error"]["line"], 3);
    // Each key's record as a single apply would have left it.
    let (_, out, _) = asudf(d, &["--json", "record", "get", "test.demo", "b"]);
    assert_eq!(
        json_of(&out)["values"]["count"],
        serde_json::json!({"int": 2})
    );
    let (code, _, err) = asudf(
        d,
        &["apply", "test.demo", "--keys", "a,[1]", "counter.increment"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--keys: column 3: a key must be"), "{err}");
    // A bad key in a file is named by its line and column there.
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("keys.txt");
    std::fs::write(&file, "a\n\n 'b\nc\n").unwrap();
    let file = file.to_str().unwrap();
    let (code, _, err) = asudf(
        d,
        &[
            "apply",
            "test.demo",
            "--keys-from",
            file,
            "counter.increment",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("keys.txt:3:2: string is not closed"), "{err}");
}

/// A module name goes into info commands: one with a character that ends or
/// splits a parameter would name another module (`counter.lua;x` removed
/// counter.lua). Refused before anything is sent, naming the problem.
#[test]
fn module_names_the_info_commands_cannot_carry_are_refused() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    let counter = counter_lua();
    let file = counter.to_str().unwrap();
    let long = "x".repeat(200);
    let cases: [(&[&str], &str); 7] = [
        (&["udf", "rm", "counter.lua;x"], "contains ';'"),
        (&["udf", "cat", "counter.lua;x"], "contains ';'"),
        (&["udf", "rm", "counter.lua\tx"], "contains '\\t'"),
        (&["udf", "put", "--name", "x;y", file], "contains ';'"),
        (&["udf", "put", "--name", "x=y", file], "contains '='"),
        (
            &["udf", "put", "--name", "", file],
            "the module name is empty",
        ),
        (
            &["udf", "put", "--name", &long, file],
            "is 204 bytes; servers take at most 127",
        ),
    ];
    for (args, message) in cases {
        let (code, out, err) = asudf(d, args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let (code, out, _) = asudf(d, &["udf", "ls"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("counter.lua"), "nothing was removed: {out}");
    // A name the server itself refuses: its rule, not "needs an extension".
    let (code, _, err) = asudf(d, &["udf", "put", "--name", "a/b", file]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("the name 'a/b.lua': it contains '/'"), "{err}");
}

/// `-` reads the module from standard input, as `--keys-from -` reads keys;
/// `udf put -` has no file name to register it under, so it needs `--name`.
/// Messages call it "standard input", whichever command reads it.
/// The module is read before connecting: a file that cannot be read is a
/// usage error even when no server answers.
#[test]
fn udf_put_reads_its_file_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.lua");
    let (code, _, err) = asudf(
        dir.path(),
        &["-h", "127.0.0.1:1", "udf", "put", missing.to_str().unwrap()],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn udf_put_and_check_read_standard_input_for_dash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = std::fs::read_to_string(counter_lua()).unwrap();
    let (code, _, err) = asudf_with_stdin(d, &["udf", "put", "-"], &source);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give the module's with --name NAME"), "{err}");
    let (code, out, err) = asudf_with_stdin(d, &["udf", "put", "-", "--name", "piped"], &source);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("registered piped"), "{out}");
    let (_, out, _) = asudf(d, &["udf", "cat", "piped"]);
    assert_eq!(out, source);

    let (code, out, _) =
        asudf_with_stdin(d, &["check", "-"], "function f(rec)\n  rec.t = {}\nend\n");
    assert_eq!(code, 4, "{out}");
    assert!(out.starts_with("standard input:2:3: error:"), "{out}");
    let (code, out, err) = asudf_with_stdin(d, &["check", "-"], &source);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let (code, _, err) = asudf_with_stdin(
        d,
        &["apply", "test", "--keys-from", "-", "counter.increment"],
        "a\n  [1]\n",
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("standard input:2:3: a key must be an integer"),
        "{err}"
    );
}

/// `--bins ""` reads no bins (it read no records at all: a bin named ""),
/// and an empty name in a list is a usage error with its column.
#[test]
fn query_bins_empty_reads_none_and_an_empty_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, _, err) = asudf(d, &["record", "put", "test.s", "k", "a=1", "--send-key"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = asudf(d, &["query", "test.s", "--bins", ""]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "'k'  {}  (gen 1, never expires)", "{err}");
    let (code, _, err) = asudf(d, &["query", "test.s", "--bins", "a,,b"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("'a,,b' for '--bins <A,B>': column 3: an empty bin name"),
        "{err}"
    );
}

/// `check --function` names a function the module does not define: a lint
/// error (exit 4), as the server's "function not found" would be.
#[test]
fn check_function_the_module_lacks_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let counter = counter_lua();
    let file = counter.to_str().unwrap();
    let (code, out, err) = asudf(dir.path(), &["check", "--function", "nosuch", file]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        out,
        format!(
            "{file}:1:1: error: the module has no function 'nosuch': the server answers \"function not found\" [missing_function]\n"
        )
    );
    let (code, out, err) = asudf(dir.path(), &["check", "--function", "increment", file]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

/// A server answers ok to removing a module it does not have: `udf rm`
/// looks first, and an empty name is a usage error.
#[test]
fn udf_rm_of_a_module_not_registered_is_not_found() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    let (code, out, err) = asudf(d, &["udf", "rm", "nosuch"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.contains("nosuch.lua is not registered"), "{err}");
    let (code, out, _) = asudf(d, &["--json", "udf", "rm", "nosuch"]);
    assert_eq!(code, 4);
    assert_eq!(json_of(&out)["ok"], false, "{out}");
    let (code, _, err) = asudf(d, &["udf", "rm", ""]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the module name is empty"), "{err}");
    let (code, out, err) = asudf(d, &["--json", "udf", "rm", "counter"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["module"], "counter.lua");
}

/// Output that cannot be written is an error said on stderr (exit 5), not
/// a panic; a closed pipe still ends quietly (query_commands).
#[test]
fn a_failed_write_of_the_output_is_said_with_exit_5() {
    use assert_cmd::cargo::CommandCargoExt;
    let dir = sandbox_with_counter();
    for args in [&["--json", "udf", "ls"][..], &["udf", "cat", "counter"]] {
        let out = std::process::Command::cargo_bin("asudf")
            .unwrap()
            .args(args)
            .args(["--sandbox-dir", dir.path().to_str().unwrap()])
            .env_remove("ASUDF_HOST")
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert_eq!(
            err.trim(),
            "cannot write the output: No space left on device",
            "{args:?}"
        );
    }
}

/// The server refuses an aggregation on a set the namespace never held
/// (2), which the client crate takes for an empty stream: an error, as
/// for `execute`, and a known set with nothing selected stays a success.
#[test]
fn aggregate_on_a_set_never_held_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(asudf(d, &["sample", "load", "sum"]).0, 0);
    let (code, out, err) = asudf(d, &["--json", "aggregate", "test.neverheld", "sum.total"]);
    assert_eq!(code, 4, "{out}{err}");
    let j = json_of(&out);
    assert_eq!(
        (&j["ok"], &j["error"]["code"]),
        (&Json::Bool(false), &Json::from(2))
    );
    let message = j["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("set 'neverheld' has never held a record"),
        "{j}"
    );
    let (code, out, err) = asudf(
        d,
        &[
            "--json",
            "aggregate",
            "test.sales",
            "sum.total",
            "--where",
            "amount = 1000",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["ok"], true, "{out}");
}

#[test]
fn exit_codes_for_usage_and_connection_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = asudf(dir.path(), &["apply", "test"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = asudf(dir.path(), &["apply", "test", "k", "nodot"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("MODULE.FUNCTION"), "{err}");
    // Nothing listens on port 1.
    let (code, _, err) = process::asudf(&["-h", "127.0.0.1:1", "--timeout", "500", "udf", "ls"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("cannot connect to 127.0.0.1:1: connection refused"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
}

/// TLS without a CA file says what file is wanted, in a whole sentence.
#[test]
fn tls_without_a_ca_file_names_what_is_missing() {
    let (code, _, err) = process::asudf(&["-h", "127.0.0.1:1", "--tls-enable", "udf", "ls"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.trim(),
        "TLS needs --tls-cafile FILE (or tls-cafile in astools.conf): the CA certificate \
         that signed the cluster's node certificates"
    );
}

/// A server with users answers a client that sent none: it is not "no node
/// answered", and the flags to give are named.
#[test]
fn a_server_wanting_a_login_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let served = Served::start(&[
        "--sandbox-dir",
        dir.path().to_str().unwrap(),
        "--user",
        "bob",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let (code, _, err) = served.run(&["udf", "ls"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("the server needs a user and password (-U/--user, -P/--password)"),
        "{err}"
    );
    served.ok(&["-U", "bob", "-P=secret", "udf", "ls"]);
}

/// `serve` refuses the global options it has no use for, naming each, and
/// with `--json` says its failures as every command does.
#[test]
fn serve_refuses_options_it_ignores_and_fails_in_json() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["serve", "--memory", "--namespace", "a b"],
            "--namespace: namespace 'a b' contains ' ': a namespace name takes no spaces or '.'",
        ),
        (
            &[
                "serve",
                "--memory",
                "--namespace",
                "test",
                "--namespace",
                "",
            ],
            "--namespace: a namespace name is empty",
        ),
        (
            &["serve", "--memory", "--user", "bob", "-P=secret"],
            "serve does not take -P/--password: it reads the password of --user from --password-file FILE",
        ),
        (
            &["-h", "1.2.3.4", "serve", "--memory"],
            "serve does not take -h/--host",
        ),
        (
            &["serve", "--memory", "--user", "bob"],
            "serve --user needs --password-file FILE",
        ),
        (
            &[
                "serve",
                "--memory",
                "--user",
                " ",
                "--password-file",
                "Cargo.toml",
            ],
            "serve --user: the user name is empty",
        ),
    ];
    for (args, message) in cases {
        let (code, out, err) = process::asudf(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
        let mut json = args.to_vec();
        json.push("--json");
        let (code, out, _) = process::asudf(&json);
        assert_eq!(code, 2, "{json:?}: {out}");
        assert!(
            json_of(&out)["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message)
        );
    }
    // The port is taken by another server: a connection error, in JSON.
    let served = Served::start(&["--memory"]);
    let port = served.host.rsplit(':').next().unwrap();
    let (code, out, err) = process::asudf(&["--json", "serve", "--memory", "--port", port]);
    assert_eq!(code, 3, "{out}{err}");
    let j = json_of(&out);
    assert_eq!(j["ok"], false, "{j}");
    let text = j["error"]["message"].as_str().unwrap();
    assert!(text.starts_with("asudf serve: "), "{text}");
}

/// `serve --json` says where it listens as one JSON object; without
/// `--json` the line scripts read stays as it was.
#[test]
fn serve_says_where_it_listens_in_json() {
    let plain = Served::start(&["--memory"]);
    assert_eq!(
        plain.banner,
        format!(
            "asudf sandbox listening on {} (cluster-name sandbox, namespaces test, lua-libs default, memory)\n",
            plain.host
        )
    );
    drop(plain);
    let served = Served::start(&["--memory", "--json", "--namespace", "a", "--namespace", "b"]);
    assert_eq!(
        json_of(&served.banner),
        serde_json::json!({
            "ok": true,
            "listening": served.host,
            "cluster_name": "sandbox",
            "namespaces": ["a", "b"],
            "lua_libs": "default",
            "storage": "memory",
            "tls": false,
        })
    );
    served.ok(&["udf", "ls"]);
}

/// `asudf serve --json | head -1` with the reader gone before the line is
/// written: the failed write does not end the server.
#[test]
fn serve_goes_on_when_its_stdout_is_closed() {
    use assert_cmd::cargo::CommandCargoExt;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::cargo_bin("asudf")
        .unwrap()
        .args(["--json", "serve", "--port", "0", "--sandbox-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    // It publishes its address just before writing the line.
    let published = std::time::Instant::now();
    while !dir.path().join("address").exists() {
        assert!(published.elapsed().as_secs() < 30, "no address published");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, out, err) = asudf(dir.path(), &["udf", "ls"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let ended = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(ended, None, "serve ended");
}

/// An error in a long word quotes an excerpt of it around the column it
/// names, "…" marking the cut text; the column still counts from the
/// word's start. Read by asudf and by clap's value parsers alike.
#[test]
fn errors_in_long_words_quote_an_excerpt_around_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("[{}x{}]", "1,".repeat(20_000), ",1".repeat(20_000));
    let bin = format!("a={long}");
    let clause = format!("a = {long}");
    let cases: [(&[&str], usize); 6] = [
        (&["apply", "test", "k", "m.f", &long], 40_002),
        (&["aggregate", "test", "m.f", &long], 40_002),
        (&["apply", "test", &long, "m.f"], 40_002),
        (&["record", "get", "test", &long], 40_002),
        (&["record", "put", "test", "k", &bin], 40_004),
        (&["query", "test", "--where", &clause], 40_006),
    ];
    for (args, column) in cases {
        let (code, out, err) = asudf(dir.path(), args);
        assert_eq!(code, 2, "{out}");
        assert!(err.len() < 400, "{} bytes: {err}", err.len());
        assert!(
            err.contains(&format!("column {column}: unknown word 'x'")),
            "{err}"
        );
        assert!(err.contains(",1,1,x,1,1,"), "{err}");
        // Cut at both ends: once, in clap's quote or asudf's.
        assert_eq!(err.matches('…').count(), 2, "{err}");
    }
}

#[test]
fn usage_errors_with_json_print_the_error_object() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        // Read by asudf after clap.
        (
            &["apply", "test", "k", "m.f", "[1,", "--json"],
            "column 4: expected a value",
        ),
        // Refused by clap's value parsers and its own rules.
        (
            &["record", "put", "test", "k", "a=[1,", "--json"],
            "invalid value 'a=[1,' for '<BIN=VALUE>...': column 6",
        ),
        (
            &["query", "test", "--where", "a >", "--json"],
            "expected =, BETWEEN",
        ),
        (&["--json", "udf", "ls", "--bogus"], "--bogus"),
        // Requests carry the time limit in 32 bits: 2^32 + 1 would be 1 ms.
        (
            &["--json", "--timeout", "4294967297", "udf", "ls"],
            "4294967297 is not in 0..=4294967295",
        ),
        // What clap lists under its first line comes too.
        (
            &["--json", "apply", "test.demo"],
            "not provided: <KEY MODULE.FUNCTION [ARGS]>...",
        ),
        (
            &["--json", "index", "create", "test.s", "a", "bogus"],
            "[possible values: numeric, string, blob, geo2dsphere]",
        ),
        (
            &["--json", "check", "--allow", "nope", "x.lua"],
            "unknown rule 'nope'",
        ),
        // Refused by the command: no --yes and no terminal to ask on.
        (&["sandbox", "reset", "--json"], "not reset"),
    ];
    for (args, message) in cases {
        let (code, out, err) = asudf(dir.path(), args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        let j = json_of(&out);
        assert_eq!(
            (&j["ok"], &j["error"]["code"]),
            (&Json::Bool(false), &Json::from(4)),
            "{args:?}"
        );
        let text = j["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

#[test]
fn sandbox_reset_empties_records_and_modules() {
    let dir = sandbox_with_counter();
    let d = dir.path();
    assert_eq!(asudf(d, &["record", "put", "test", "r", "a=1"]).0, 0);
    // Without --yes and without a terminal to ask on, nothing is reset.
    assert_ne!(asudf(d, &["sandbox", "reset"]).0, 0);
    assert!(!asudf(d, &["udf", "ls"]).1.trim().is_empty());
    let (code, _, err) = asudf(d, &["sandbox", "reset", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(asudf(d, &["udf", "ls"]).1.trim(), "");
    let (_, out, _) = asudf(d, &["--json", "record", "get", "test", "r"]);
    assert_eq!(json_of(&out)["found"], false);
}

/// The console lints in a child process (`asudf lint-worker`): its findings
/// for a request are the linter's own.
#[test]
fn lint_worker_answers_a_request_with_the_findings() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let source = "local function increment(rec)\n  hits = 1\n  return 1\nend\n";
    let request = serde_json::json!({
        "source": source, "libs": "default", "module": "counter.lua",
        "function": "increment", "dir": null,
    });
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("asudf"))
        .arg("lint-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let found: Vec<asudf::lint::Diagnostic> = serde_json::from_slice(&out.stdout).unwrap();
    let options = asudf::lint::Options {
        module: Some("counter.lua".into()),
        function: Some("increment".into()),
        ..Default::default()
    };
    assert_eq!(found, asudf::lint::lint(source, &options));
    let rules: Vec<&str> = found.iter().map(|d| d.rule.as_str()).collect();
    assert!(rules.contains(&"local_udf"), "{rules:?}");
    // A request it cannot read fails, and the console lints in-process.
    let (code, _, _) = process::asudf(&["lint-worker"]);
    assert_ne!(code, 0);
}

/// A self-signed certificate for `localhost` in `dir`: (cert, key) paths;
/// the certificate is its own CA.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// `asudf ARGS…` on a thread: its result, or `None` when it has not ended
/// within `limit` (the process is left to the test's end).
fn ends_within(limit: std::time::Duration, args: Vec<String>) -> Option<(i32, String, String)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = tx.send(process::asudf(&args));
    });
    rx.recv_timeout(limit).ok()
}

/// A host that accepts TCP and never answers, over TLS: the handshake has
/// no deadline in the crate, so the command must bound it itself, alone
/// and beside a live TLS seed, in either order.
#[test]
fn a_tls_host_that_never_answers_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    // Accepted connections are kept open and never written to.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let live = Served::start(&[
        "--memory",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let (silent_seed, live_seed) = (
        silent_addr.replace(':', ":localhost:"),
        live.host.replace(':', ":localhost:"),
    );
    for hosts in [
        silent_seed.clone(),
        format!("{silent_seed},{live_seed}"),
        format!("{live_seed},{silent_seed}"),
    ] {
        let args = ["-h", &hosts, "--tls-cafile", cert.to_str().unwrap()];
        let args = [&args[..], &["--timeout", "500", "udf", "ls"]].concat();
        let args = args.iter().map(|a| a.to_string()).collect();
        let (code, _, err) = ends_within(std::time::Duration::from_secs(30), args)
            .unwrap_or_else(|| panic!("-h {hosts}: still connecting after 30 s"));
        assert_eq!(code, 3, "-h {hosts}: {err}");
        assert!(
            err.contains(": no answer, timed out after ") && err.ends_with(" ms\n"),
            "-h {hosts}: {err}"
        );
    }
}

/// A TLS server reached without a TLS name, or without TLS: each failure
/// says what to give.
#[test]
fn tls_mistakes_say_what_to_give() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let served = Served::start(&["--memory", "--tls-cert", cert, "--tls-key", key]);
    let named = served.host.replace(':', ":localhost:");
    process_ok(&["-h", &named, "--tls-cafile", cert, "udf", "ls"]);

    let (code, _, err) = served.run(&["--tls-cafile", cert, "udf", "ls"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(
            "TLS needs the server's certificate name: give the host as HOST:TLSNAME:PORT \
             or add --tls-name NAME"
        ),
        "{err}"
    );
    let (code, _, err) = served.run(&["--timeout", "2000", "udf", "ls"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("if the server wants TLS, give --tls-cafile FILE"),
        "{err}"
    );
}

fn process_ok(args: &[&str]) {
    let (code, out, err) = process::asudf(args);
    assert_eq!(code, 0, "asudf {args:?}: {err}{out}");
}

/// Mistakes of the command line exit 2: serve's empty or missing password
/// file, and the console with no terminal to draw on.
#[test]
fn serve_password_file_and_console_without_a_terminal_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let missing = dir.path().join("missing");
    for file in [&empty, &missing] {
        let file = file.to_str().unwrap();
        let args = ["serve", "--memory", "--port", "0", "--user", "u"];
        let (code, _, err) = process::asudf(&[&args[..], &["--password-file", file]].concat());
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(&format!("the password file {file}")), "{err}");
    }
    // No terminal: stdin and stdout are not one.
    let (code, _, err) = process::asudf(&["--memory"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the console needs a terminal"), "{err}");
}

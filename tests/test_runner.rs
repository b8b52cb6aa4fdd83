//! `asudf test`: scenario files run as a real process, on sandboxes of
//! their own and against `asudf serve` in another process.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

mod common;
use common::process::{Served, asudf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A folder with the counter module and one scenario file.
fn scenario(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("assets/counter.lua"),
        dir.path().join("counter.lua"),
    )
    .unwrap();
    let file = dir.path().join("t.udftest.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

const HEAD: &str = "ns = \"test.demo\"\n[modules]\ncounter = \"counter.lua\"\n";

fn step(args: &str, rest: &str) -> String {
    format!("\n[[step]]\napply = \"counter.increment\"\nkey = \"c1\"\nargs = \"{args}\"\n{rest}\n")
}

fn test_file(file: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["test", file.to_str().unwrap()];
    args.extend(extra);
    asudf(&args)
}

#[test]
fn the_examples_pass() {
    let (code, out, err) = asudf(&["test", root().join("examples").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("counter.udftest.toml"), "{out}");
    assert!(
        out.contains("ok    ") && out.contains("batch.udftest.toml"),
        "{out}"
    );
    assert!(out.trim_end().ends_with(" passed, 0 failed"), "{out}");
}

#[test]
fn a_passing_file_and_the_folder_search() {
    let text = format!(
        "{HEAD}{}{}",
        step("'count', 5", "expect = \"5\""),
        step(
            "'count', 3",
            "expect = \"8\"\nrecord = { bins = { count = \"8\" }, gen = 2, ttl = \"never\" }"
        )
    );
    let (dir, _) = scenario(&text);
    std::fs::write(dir.path().join("ignored.toml"), "not a scenario").unwrap();
    for skipped in [".hidden", "target"] {
        std::fs::create_dir(dir.path().join(skipped)).unwrap();
        std::fs::write(dir.path().join(skipped).join("x.udftest.toml"), "bad").unwrap();
    }
    let (code, out, err) = asudf(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok    "), "{out}");
    assert!(out.trim_end().ends_with("2 passed, 0 failed"), "{out}");
}

/// A file named twice (another way, through its folder) runs once, in the
/// place first given, and `--update` rewrites it once.
#[test]
fn a_file_given_twice_runs_once() {
    let (dir, file) = scenario(&format!("{HEAD}{}", step("'count', 5", "expect = \"9\"")));
    let passing = dir.path().join("a.udftest.toml");
    std::fs::write(
        &passing,
        format!("{HEAD}{}", step("'count', 5", "expect = \"5\"")),
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap();
    let roundabout = dir.path().join("..").join(name).join("t.udftest.toml");
    let f = file.to_str().unwrap();
    let (code, out, err) = asudf(&["test", f, d, roundabout.to_str().unwrap(), "--update"]);
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(out.matches("FAIL").count(), 1, "{out}");
    assert!(out.find("FAIL") < out.find("ok    "), "{out}");
    assert!(out.trim_end().ends_with("1 passed, 1 failed"), "{out}");
    assert_eq!(err.matches("updated").count(), 1, "{err}");
    assert!(
        err.contains(&format!("updated {f}\n")),
        "named as first given: {err}"
    );
}

#[test]
fn a_wrong_value_shows_expected_and_actual_marked() {
    let text = format!("{HEAD}{}", step("'count', 5", "expect = \"[1, 6]\""));
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(
        out.contains("step 1 (line 5): counter.increment('count', 5) @ 'c1'"),
        "{out}"
    );
    assert!(
        out.contains("      expected: [1, 6]\n      actual:   5\n                ^\n"),
        "{out}"
    );
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");
}

/// A huge value is cut to a window around where it first differs, with
/// its full length; the carets stay under the difference.
#[test]
fn a_huge_value_is_cut_around_the_difference_with_its_length() {
    let text = format!(
        "[modules]\nbig = {{ source = '''\nfunction rep(rec, n, last)\n  return string.rep('x', n) .. last\nend\n''' }}\n\n[[step]]\napply = \"big.rep\"\nkey = 1\nargs = \"2000000, ''\"\nexpect = \"1\"\n\n[[step]]\napply = \"big.rep\"\nkey = 1\nargs = \"5000, 'b'\"\nexpect = \"'{}a'\"\n",
        "x".repeat(5000)
    );
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4);
    assert!(out.len() < 4000, "{} bytes of output", out.len());
    let lines: Vec<&str> = out.lines().collect();
    let at = |prefix: &str| {
        let i = lines.iter().position(|l| l.starts_with(prefix)).unwrap();
        &lines[i..]
    };
    // Differing from the first character: the start of each, and its length.
    let first = at("  step 1");
    assert_eq!(first[2], "      expected: 1");
    assert_eq!(
        first[3],
        format!(
            "      actual:   '{}…  (2000002 characters)",
            "x".repeat(299)
        )
    );
    assert_eq!(first[4], format!("                {}", "^".repeat(300)));
    // Differing near the end: both cut the same way, the carets under it.
    let second = at("  step 2");
    let window = format!("…{}", "x".repeat(60));
    assert_eq!(
        second[2],
        format!("      expected: {window}a'  (5003 characters)")
    );
    assert_eq!(
        second[3],
        format!("      actual:   {window}b'  (5003 characters)")
    );
    assert_eq!(second[4], format!("                {}^", " ".repeat(61)));
}

#[test]
fn a_wrong_error_and_an_unexpected_error_point_at_the_module_line() {
    let text = format!(
        "{HEAD}{}{}{}",
        step("'count', 1", "expect = \"1\""),
        step("'count', 'x'", "error = { code = 100, message = \"boom\" }"),
        step("'count', 'x'", "expect = \"2\"")
    );
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &["--json"]);
    assert_eq!(code, 4, "{out}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (j["passed"].as_u64(), j["failed"].as_u64()),
        (Some(1), Some(2))
    );
    let steps = &j["files"][0]["steps"];
    let wrong = &steps[1]["problems"][0];
    assert_eq!(wrong["what"], "error message");
    assert_eq!(wrong["expected"], "'boom'");
    assert!(
        wrong["actual"]
            .as_str()
            .unwrap()
            .contains("counter.lua:3: attempt to"),
        "{wrong}"
    );
    assert_eq!(
        (wrong["module"].as_str(), wrong["line"].as_u64()),
        (Some("counter.lua"), Some(3))
    );
    let unexpected = &steps[2]["problems"][0];
    assert!(
        unexpected["what"]
            .as_str()
            .unwrap()
            .starts_with("the call failed"),
        "{unexpected}"
    );
    assert_eq!(unexpected["expected"], "2");

    // As text: the module's file and the source line of the error.
    let (_, out, _) = test_file(&file, &[]);
    let counter = file.with_file_name("counter.lua");
    assert!(
        out.contains(&format!("at {}:3\n", counter.display())),
        "{out}"
    );
    assert!(
        out.contains("    3 |         rec[bin_name] = rec[bin_name] + amount"),
        "{out}"
    );
}

#[test]
fn a_wrong_record_state_and_the_udf_log_lines() {
    let text = "ns = \"test.demo\"\n[modules]\nlogger = { source = '''\nfunction put(rec, v)\n  info(\"putting %s\", tostring(v))\n  rec['v'] = v\n  aerospike:create(rec)\n  return v\nend\n''' }\n\n[[step]]\napply = \"logger.put\"\nkey = 1\nargs = \"7\"\nexpect = \"7\"\nrecord = { bins = { v = \"8\" }, gen = 3 }\n";
    let (_dir, file) = scenario(text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("record bins\n      expected: {'v': 8}\n      actual:   {'v': 7}"),
        "{out}"
    );
    assert!(
        out.contains("record generation\n      expected: 3\n      actual:   1"),
        "{out}"
    );
    assert!(out.contains("log [info] putting 7"), "{out}");
}

/// A step named with a bell, a UDF logging one and failing with an escape
/// sequence and a backspace (`\27`, `\8` are Lua's escapes).
const CONTROLS: &str = r#"ns = "test.demo"
[modules]
ctl = { source = '''
function f(rec)
  info("bell\7")
  error("ctl\27[0m\8 here\7", 0)
end
''' }

[[step]]
name = "bell \u0007 step"
apply = "ctl.f"
key = 1
expect = "1"
"#;

#[test]
fn plain_output_shows_control_characters_escaped_and_json_keeps_them() {
    let (_dir, file) = scenario(CONTROLS);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters: {out:?}"
    );
    assert!(
        out.contains("step 1 (line 10): bell \\u{7} step\n"),
        "{out}"
    );
    assert!(
        out.contains("the call failed: error 100: ctl\\u{1b}[0m\\u{8} here\\u{7}\n"),
        "{out}"
    );
    assert!(out.contains("log [info] bell\\u{7}\n"), "{out}");

    let (_, out, _) = test_file(&file, &["--json"]);
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    let step = &j["files"][0]["steps"][0];
    assert_eq!(step["title"], "bell \u{7} step");
    assert_eq!(step["logs"][0]["text"], "bell\u{7}");
    assert_eq!(
        step["problems"][0]["what"],
        "the call failed: error 100: ctl\u{1b}[0m\u{8} here\u{7}"
    );
}

#[test]
fn a_module_that_does_not_compile_fails_the_file_with_its_line() {
    let text = "[modules]\nbroken = { source = \"function f(rec)\\n  return (\\nend\\n\" }\n[[step]]\napply = \"broken.f\"\nkey = 1\n";
    let (_dir, file) = scenario(text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("setup (no step ran)"), "{out}");
    assert!(
        out.contains("module broken.lua from its inline source (line 2) was not registered"),
        "{out}"
    );
    // The source is on the file's line 2, its `\n`s escapes.
    assert!(
        out.contains(&format!(
            "at {}:2 (line 3 of inline module broken.lua)\n",
            file.display()
        )),
        "{out}"
    );
    assert!(out.trim_end().ends_with("0 passed, 1 failed"), "{out}");
}

/// A UDF error names the file the user edits: the module's own file, with
/// the name it was registered as when that differs, or the scenario file's
/// line for an inline module.
#[test]
fn a_udf_error_names_the_module_file_or_the_scenario_line() {
    let text = format!(
        "[modules]\nx = \"counter.lua\"\ninl = {{ source = '''\nfunction f(rec)\n  return 1 + nil\nend\n''' }}\n[[record]]\nkey = \"c1\"\nbins = {{ count = \"1\" }}\n{}\n[[step]]\napply = \"inl.f\"\nkey = 1\nexpect = \"1\"\n",
        step("'count', 'x'", "expect = \"1\"").replace("counter.increment", "x.increment")
    );
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    let counter = file.with_file_name("counter.lua");
    assert!(
        out.contains(&format!(
            "at {}:3 (registered as x.lua)\n          3 |         rec[bin_name]",
            counter.display()
        )),
        "{out}"
    );
    // The source starts on line 4, after the newline the quotes trim.
    assert!(
        out.contains(&format!(
            "at {}:5 (line 2 of inline module inl.lua)\n          5 |   return 1 + nil\n",
            file.display()
        )),
        "{out}"
    );
    let (_, out, _) = test_file(&file, &["--json"]);
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    let at = |step: usize| {
        let p = &j["files"][0]["steps"][step]["problems"][0];
        (
            p["module"].as_str().map(str::to_string),
            p["line"].as_u64(),
            p["file"].as_str().map(str::to_string),
            p["file_line"].as_u64(),
        )
    };
    let name = |path: &Path| Some(path.display().to_string());
    assert_eq!(
        at(0),
        (Some("x.lua".into()), Some(3), name(&counter), Some(3))
    );
    assert_eq!(
        at(1),
        (Some("inl.lua".into()), Some(2), name(&file), Some(5))
    );
}

#[test]
fn a_bad_file_exits_2_with_line_and_column() {
    let text = format!("{HEAD}{}", step("'count', 5", "expect = \"[1, @]\""));
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("t.udftest.toml:9:15: expect:"), "{out}");

    let (_dir, file) = scenario("[[step]]\napply = \"m.f\"\nkey = 1\nexpect = 5\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2);
    assert!(out.contains(":4:10: expect must be a string"), "{out}");
}

/// A module named with its .lua is refused before anything runs: a server
/// answers "UDF: Execution Error 1" to it.
#[test]
fn a_call_naming_the_module_with_its_lua_is_a_file_error() {
    let text = format!("{HEAD}\n[[step]]\napply = \"counter.lua.increment\"\nkey = 1\n");
    let (_dir, file) = scenario(&text);
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(
            "t.udftest.toml:6:9: 'counter.lua.increment': name the module without its .lua, as servers call it: counter.increment"
        ),
        "{out}"
    );
}

/// A count of one takes the singular.
#[test]
fn counts_of_one_are_singular() {
    let (dir, file) = scenario(&format!("{HEAD}{}", step("'count', 5", "expect = \"5\"")));
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" (1 step, "), "{out}");
    std::fs::write(dir.path().join("bad.udftest.toml"), "[[step]]\nget = \n").unwrap();
    let (code, out, _) = asudf(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.trim_end().ends_with("(1 file not run to the end)"),
        "{out}"
    );
}

#[test]
fn files_that_cannot_run_are_failures_in_the_summary_json_and_junit() {
    let (dir, _) = scenario(&format!("{HEAD}{}", step("'count', 5", "expect = \"5\"")));
    let bad_args = format!("{HEAD}{}", step("'count', [1,,2]", "expect = \"5\""));
    std::fs::write(dir.path().join("a.udftest.toml"), bad_args).unwrap();
    let missing_module = HEAD.replace("counter.lua", "nope.lua") + &step("'count', 5", "");
    std::fs::write(dir.path().join("b.udftest.toml"), missing_module).unwrap();
    let d = dir.path().to_str().unwrap();

    let (code, out, _) = asudf(&["test", d]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.trim_end()
            .ends_with("1 passed, 2 failed (2 files not run to the end)"),
        "{out}"
    );

    let xml_path = dir.path().join("junit.xml");
    let (code, out, _) = asudf(&["test", d, "--json", "--junit", xml_path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    let j: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&j["ok"], &j["passed"], &j["failed"]),
        (&false.into(), &1.into(), &2.into())
    );
    let failed: Vec<_> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["failed"])
        .collect();
    assert_eq!(failed, [1, 1, 0]);
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    assert!(
        xml.contains("<testsuites name=\"asudf test\" tests=\"3\" failures=\"0\" errors=\"2\">"),
        "{xml}"
    );
}

#[test]
fn update_rewrites_failing_expectations_and_keeps_comments() {
    let text = format!(
        "# counter checks\n{HEAD}{}{}{}",
        step("'count', 5", "expect = \"99\"   # was wrong"),
        step(
            "'count', 'x'",
            "expect = \"1\"\n# a comment between keys\nrecord = { bins = { count = \"0\" } }"
        ),
        step("'count', 1", "expect = \"6\"  # right")
    );
    let (_dir, file) = scenario(&text);
    let (code, _, _) = test_file(&file, &["--update"]);
    assert_eq!(code, 4);
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(new.starts_with("# counter checks\n"), "{new}");
    assert!(new.contains("expect = \"5\"   # was wrong"), "{new}");
    assert!(new.contains("# a comment between keys"), "{new}");
    assert!(
        new.contains(
            "error = { code = 100, message = \"/opt/aerospike/usr/udf/lua/counter.lua:3: attempt to"
        ),
        "{new}"
    );
    assert!(
        new.contains("record = { bins = { count = \"5\" } }"),
        "{new}"
    );
    assert!(new.contains("expect = \"6\"  # right"), "{new}");
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}\n{new}");
    assert!(out.trim_end().ends_with("3 passed, 0 failed"));
}

/// A JUnit path that cannot be written is refused before any test runs; a
/// write that fails anyway at the end is in the `--json` object.
#[test]
fn an_unwritable_junit_path_is_refused_first_and_a_late_failure_is_in_json() {
    let (dir, file) = scenario(&format!("{HEAD}{}", step("'count', 5", "expect = \"5\"")));
    let missing = dir.path().join("nosuch/r.xml");
    let (code, out, err) = test_file(&file, &["--junit", missing.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "nothing ran: {out}");
    assert!(
        err.contains(&format!("--junit {}: the folder", missing.display())),
        "{err}"
    );
    let (code, out, _) = test_file(&file, &["--json", "--junit", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    let j: Json = serde_json::from_str(&out).unwrap();
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{j}"
    );
    // /dev/full opens for writing, and every write to it fails.
    let (code, out, _) = test_file(&file, &["--json", "--junit", "/dev/full"]);
    assert_eq!(code, 2, "{out}");
    let j: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (&j["ok"], &j["passed"]),
        (&Json::Bool(false), &Json::from(1)),
        "{j}"
    );
    let message = j["error"]["message"].as_str().unwrap();
    assert_eq!(
        message,
        "cannot write the JUnit report /dev/full: No space left on device"
    );
}

#[test]
fn junit_output_parses_with_a_case_per_step() {
    use quick_xml::Reader;
    use quick_xml::XmlVersion::Implicit1_0;
    use quick_xml::events::Event;
    let text = format!(
        "{HEAD}{}{}",
        step("'count', 5", "expect = \"5\""),
        step("'count', 1", "expect = \"'<&>'\"")
    );
    let (dir, _) = scenario(&text);
    // A bad file beside it is a case in error (and the run exits 2).
    std::fs::write(dir.path().join("b.udftest.toml"), "[[step]]\nget = \n").unwrap();
    let xml_path = dir.path().join("junit.xml");
    let d = dir.path().to_str().unwrap();
    let (code, _, _) = asudf(&["test", d, "--junit", xml_path.to_str().unwrap()]);
    assert_eq!(code, 2);
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    let mut reader = Reader::from_str(&xml);
    let (mut cases, mut failures, mut suites, mut errors) = (0, Vec::new(), Vec::new(), 0);
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("bad XML: {e}\n{xml}"))
        {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |name: &str| {
                    let a = e.try_get_attribute(name).unwrap().unwrap();
                    a.normalized_value(Implicit1_0).unwrap().into_owned()
                };
                let qname = e.name();
                let name: &str = qname.as_ref();
                match name {
                    "testsuites" => assert_eq!(attr("tests"), "3"),
                    "testsuite" => suites.push((attr("tests"), attr("failures"), attr("errors"))),
                    "testcase" => cases += 1,
                    "failure" => failures.push(attr("message")),
                    "error" => {
                        errors += 1;
                        assert!(attr("message").contains("b.udftest.toml:2:"), "{xml}");
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // The failure's text keeps the value syntax, escaped.
    assert!(xml.contains("expected: '&lt;&amp;&gt;'"), "{xml}");
    let suite = |t: &str, f: &str, e: &str| (t.to_string(), f.to_string(), e.to_string());
    assert_eq!(suites, [suite("1", "0", "1"), suite("2", "1", "0")]);
    assert_eq!((cases, errors), (3, 1));
    assert_eq!(failures, ["value"]);
}

/// XML 1.0 cannot carry most C0 controls, even as character references: a
/// step name, log line or UDF error holding one shows as its escape.
#[test]
fn junit_shows_control_characters_escaped_and_stays_well_formed() {
    let (dir, file) = scenario(CONTROLS);
    let xml_path = dir.path().join("junit.xml");
    let (code, _, _) = test_file(&file, &["--junit", xml_path.to_str().unwrap()]);
    assert_eq!(code, 4);
    let xml = std::fs::read_to_string(&xml_path).unwrap();
    // XML 1.0's Char production.
    let legal = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
            || c >= '\u{10000}'
    };
    assert!(xml.chars().all(legal), "{xml:?}");
    assert!(
        xml.contains("name=\"step 1 (line 10): bell \\u{7} step\""),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<failure message=\"the call failed: error 100: ctl\\u{1b}[0m\\u{8} here\\u{7}\">"
        ),
        "{xml}"
    );
    assert!(xml.contains("log [info] bell\\u{7}\n"), "{xml}");
}

#[test]
fn against_a_served_cluster_modules_are_checked_sets_are_the_runs_and_records_removed() {
    let server = Served::start(&["--memory"]);
    let h = server.host.as_str();
    let text = format!(
        "{HEAD}{}{}",
        step("'count', 5", "expect = \"5\""),
        step(
            "'count', 3",
            "expect = \"8\"\nrecord = { bins = { count = \"8\" }, gen = 2 }"
        )
    );
    let (_dir, file) = scenario(&text);
    let f = file.to_str().unwrap();

    // Not registered, and no --register: the file fails, nothing registered.
    let (code, out, _) = asudf(&["test", f, "-h", h]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("counter.lua is not on the cluster"), "{out}");
    assert!(out.contains("--register"), "{out}");
    let (_, listed, _) = asudf(&["udf", "ls", "-h", h]);
    assert_eq!(listed.trim(), "");

    // --register: the run passes in a set of its own, then removes its records.
    let (code, out, err) = asudf(&["test", f, "-h", h, "--register", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["passed"], 2);
    let set = format!("test.demo-{}", j["files"][0]["run_id"].as_str().unwrap());
    let (code, out, _) = asudf(&["record", "get", &set, "c1", "-h", h]);
    assert_eq!((code, out.trim()), (0, "no such record"));
    let (_, out, _) = asudf(&["record", "get", "test.demo", "c1", "-h", h]);
    assert_eq!(
        out.trim(),
        "no such record",
        "the file's own set is untouched"
    );

    // Registered and equal: passes without --register.
    let (code, out, _) = asudf(&["test", f, "-h", h]);
    assert_eq!(code, 0, "{out}");

    // A differing registered module fails the file.
    let other = file.with_file_name("counter.lua");
    std::fs::write(&other, "function increment(rec) return 0 end\n").unwrap();
    let (code, _, err) = asudf(&["udf", "put", other.to_str().unwrap(), "-h", h]);
    assert_eq!(code, 0, "{err}");
    std::fs::copy(root().join("assets/counter.lua"), &other).unwrap();
    let (code, out, _) = asudf(&["test", f, "-h", h]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("counter.lua on the cluster differs from"),
        "{out}"
    );

    // A step with no set is refused before anything runs.
    let (_dir2, no_set) = scenario("[[step]]\nget = 1\nrecord = \"none\"\n");
    let (code, out, _) = asudf(&["test", no_set.to_str().unwrap(), "-h", h]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(":1:1: no set"), "{out}");
}

#[test]
fn files_sharing_a_set_on_one_cluster_keep_to_records_of_their_own() {
    let server = Served::start(&["--memory"]);
    let h = server.host.as_str();
    // Both write key 1 of test.sales; stamp's job runs over the whole set
    // and its clean-up removes the keys it wrote.
    let files = ["stamp.udftest.toml", "sum.udftest.toml"].map(|f| {
        root()
            .join("examples")
            .join(f)
            .to_str()
            .unwrap()
            .to_string()
    });
    let (code, out, err) = asudf(&[
        "test",
        &files[0],
        &files[1],
        "-h",
        h,
        "--register",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    let run_id = j["run_id"].as_str().unwrap();
    let ids: Vec<&str> = (0..2)
        .map(|i| j["files"][i]["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [format!("{run_id}-1"), format!("{run_id}-2")]);
}

#[test]
fn connection_refused_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_dir, file) = scenario(&format!("{HEAD}{}", step("'count', 5", "")));
    let host = format!("127.0.0.1:{port}");
    let (code, _, err) = test_file(&file, &["-h", &host, "--timeout", "500"]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn the_readme_example_passes() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```toml\n# a file next to counter.lua")
        .expect("README shows the format")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let (_dir, file) = scenario(&readme[start..end]);
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("5 passed, 0 failed"), "{out}");
}

/// A folder with the sum and stamp samples, four sales and an index on
/// `amount` (amounts 37, 74, 11, 48), then `steps`.
fn sales(steps: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for module in ["sum.lua", "stamp.lua"] {
        std::fs::copy(
            root().join("assets/samples").join(module),
            dir.path().join(module),
        )
        .unwrap();
    }
    let mut text = String::from(
        "ns = \"test.sales\"\n[modules]\nsum = \"sum.lua\"\nstamp = \"stamp.lua\"\n\n[[index]]\nbin = \"amount\"\ntype = \"numeric\"\n",
    );
    for (key, amount) in [(1, 37), (2, 74), (3, 11), (4, 48)] {
        text.push_str(&format!(
            "\n[[record]]\nkey = {key}\nbins = {{ amount = \"{amount}\" }}\n"
        ));
    }
    // 8 lines of head, 4 per record: a step's `[[step]]` is on line 26.
    text.push_str(steps);
    let file = dir.path().join("t.udftest.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

#[test]
fn aggregate_steps_compare_values_as_a_multiset() {
    let (_dir, file) = sales(
        "\n[[step]]\naggregate = \"sum.total\"\nexpect = \"[170]\"\n\n[[step]]\naggregate = \"sum.total\"\nwhere = \"amount BETWEEN 10 AND 50\"\nexpect = \"[96]\"\n",
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("2 passed, 0 failed"), "{out}");

    let (_dir, file) = sales(
        "\n[[step]]\naggregate = \"sum.total\"\nwhere = \"amount BETWEEN 10 AND 40\"\nexpect = \"[96]\"\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("sum.total() on test.sales where amount BETWEEN 10 AND 40"),
        "{out}"
    );
    assert!(
        out.contains("      expected: [96]\n      actual:   [48]\n                 ^^\n"),
        "{out}"
    );
    // --update writes what came back, and then the file passes.
    let (code, _, _) = test_file(&file, &["--update"]);
    assert_eq!(code, 4);
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(new.contains("expect = \"[48]\""), "{new}");
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_bad_where_clause_is_a_file_error_with_line_and_column() {
    let (_dir, file) =
        sales("\n[[step]]\naggregate = \"sum.total\"\nwhere = \"amount BETWEN 10 AND 50\"\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    // The clause's column 8 (the misspelt word) is the file's column 17.
    assert!(out.contains("t.udftest.toml:28:17: where:"), "{out}");

    let (_dir, file) = sales("\n[[step]]\nquery = true\nwhere = \"amount = \"\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("t.udftest.toml:28:"), "{out}");
}

#[test]
fn execute_steps_wait_for_the_job_and_compare_its_counts() {
    let (_dir, file) = sales(
        "\n[[step]]\nexecute = \"stamp.mark\"\nargs = \"'seen'\"\nwhere = \"amount BETWEEN 10 AND 50\"\njob = { succeeded = 3, failed = 0, status = \"done(ok)\" }\n\n[[step]]\nget = 2\nrecord = { bins = { amount = \"74\" } }\n\n[[step]]\nget = 3\nrecord = { bins = { amount = \"11\", stamp = \"'seen'\" } }\n",
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("3 passed, 0 failed"), "{out}");

    let (_dir, file) = sales(
        "\n[[step]]\nexecute = \"stamp.mark\"\nargs = \"'seen'\"\njob = { succeeded = 3, status = \"done(ok)\" }\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("job succeeded"), "{out}");
    assert!(
        out.contains("      expected: 3\n      actual:   4\n"),
        "{out}"
    );
    let (_, _, _) = test_file(&file, &["--update"]);
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(
        new.contains("job = { succeeded = 4, status = \"done(ok)\" }"),
        "{new}"
    );
}

/// A job on a set that never held a record: said as the CLI's `execute`
/// says it.
#[test]
fn an_execute_step_on_a_set_never_held_says_no_job_started() {
    let (_dir, file) =
        sales("\n[[step]]\nexecute = \"stamp.mark\"\nns = \"test.neverheld\"\nargs = \"'seen'\"\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains(
            "    the call failed: error 2: the server started no job: set 'neverheld' has never held a record (job not found)\n"
        ),
        "{out}"
    );
}

#[test]
fn query_steps_count_and_compare_records_as_bin_maps() {
    let (_dir, file) = sales(
        "\n[[step]]\nquery = \"test.sales\"\nwhere = \"amount BETWEEN 40 AND 80\"\nrecords = 2\nexpect = \"[{'amount': 74}, {'amount': 48}]\"\n\n[[step]]\nquery = true\nbins = [\"amount\"]\nrecords = 4\n",
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("2 passed, 0 failed"), "{out}");

    let (_dir, file) = sales(
        "\n[[step]]\nquery = true\nwhere = \"amount = 11\"\nrecords = 2\nexpect = \"[{'amount': 12}]\"\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("records (in any order)"), "{out}");
    assert!(
        out.contains("      expected: [{'amount': 12}]\n      actual:   [{'amount': 11}]\n                             ^\n"),
        "{out}"
    );
    assert!(out.contains("number of records"), "{out}");
}

#[test]
fn a_bad_index_table_is_a_file_error() {
    let (_dir, file) = scenario(
        "[[index]]\nbin = \"a\"\ntype = \"number\"\n\n[[step]]\nget = 1\nrecord = \"none\"\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("t.udftest.toml:3:8: index type 'number'"),
        "{out}"
    );
}

#[test]
fn the_readme_query_path_example_passes() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```toml\nns = \"test.sales\"")
        .expect("README shows the query-path steps")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    for module in ["sum.lua", "stamp.lua"] {
        std::fs::copy(
            root().join("assets/samples").join(module),
            dir.path().join(module),
        )
        .unwrap();
    }
    let file = dir.path().join("readme.udftest.toml");
    std::fs::write(&file, &readme[start..end]).unwrap();
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("3 passed, 0 failed"), "{out}");
}

#[test]
fn query_path_steps_against_a_served_cluster_keep_to_the_runs_set_and_index() {
    let server = Served::start(&["--memory"]);
    let h = server.host.as_str();
    let (_dir, file) = sales(
        "\n[[step]]\naggregate = \"sum.total\"\nwhere = \"amount BETWEEN 10 AND 50\"\nexpect = \"[96]\"\n\n[[step]]\nexecute = \"stamp.mark\"\nargs = \"'seen'\"\njob = { succeeded = 4 }\n\n[[step]]\nquery = true\nrecords = 4\n",
    );
    let f = file.to_str().unwrap();
    // Twice: a run creates its index again after the last one dropped its own.
    for _ in 0..2 {
        let (code, out, err) = asudf(&["test", f, "-h", h, "--register"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    // The run's indexes are dropped with its records.
    let (code, out, err) = asudf(&["index", "ls", "-h", h]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "", "{out}");
}

#[test]
fn update_swaps_query_path_answers_and_errors() {
    // A query on a bin with no index fails; an execute expected to fail succeeds.
    let (_dir, file) = sales(
        "\n[[step]]\nquery = true\nwhere = \"region = 'x'\"\nrecords = 0\n\n[[step]]\nexecute = \"stamp.mark\"\nargs = \"'seen'\"\nerror = { code = 4 }\n",
    );
    let (code, out, _) = test_file(&file, &["--update"]);
    assert_eq!(code, 4, "{out}");
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(!new.contains("records = 0"), "{new}");
    assert!(new.contains("error = { code = 201"), "{new}");
    assert!(
        new.contains("job = { succeeded = 4, failed = 0, filtered = 0, status = \"done(ok)\" }"),
        "{new}"
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}\n{new}");
}

/// The counter and a module whose `take` fails on a missing record, two
/// records (`a`: count 1, `b`: count 5), then `steps`. Its first `[[step]]` is on line 19.
fn batch(steps: &str) -> (tempfile::TempDir, PathBuf) {
    let text = format!(
        "{HEAD}stock = {{ source = '''\nfunction take(rec)\n  if not aerospike:exists(rec) then error('no such item') end\n  return rec['count']\nend\n''' }}\n\n[[record]]\nkey = \"a\"\nbins = {{ count = \"1\" }}\n\n[[record]]\nkey = \"b\"\nbins = {{ count = \"5\" }}\n{steps}"
    );
    scenario(&text)
}

#[test]
fn batch_steps_pass_with_a_value_or_an_error_per_key() {
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"counter.increment\"\nkeys = \"'a', 'b', 'c'\"\nargs = \"'count', 2\"\nexpect = [\"3\", \"7\", \"2\"]\n\n[[step]]\napply = \"stock.take\"\nkeys = [\"a\", \"missing\", \"c\"]\nexpect = [\"3\", { code = 100, pattern = \"stock.lua:2: no such item\" }, \"2\"]\n\n[[step]]\nget = \"missing\"\nrecord = \"none\"\n",
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.trim_end().ends_with("3 passed, 0 failed"), "{out}");
}

#[test]
fn a_failing_batch_step_names_its_keys_with_expected_and_actual() {
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"stock.take\"\nkeys = \"'a', 'missing', 'b'\"\nexpect = [\"1\", \"0\", \"6\"]\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("step 1 (line 19): stock.take() @ 'a', 'missing', 'b'"),
        "{out}"
    );
    // The passing key is not named; the missing key's error row is, with its module line.
    assert!(!out.contains("key 'a'"), "{out}");
    assert!(
        out.contains("    key 'missing' (#2): the call failed: ") && out.contains("no such item"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "      expected: 0\n      at {}:6 (line 2 of inline module stock.lua)\n",
            file.display()
        )),
        "{out}"
    );
    assert!(
        out.contains("    key 'b' (#3): value\n      expected: 6\n      actual:   5\n"),
        "{out}"
    );

    // An error expected where the key answered, and the wrong code, in JSON.
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"stock.take\"\nkeys = \"'a', 'missing'\"\nexpect = [{ code = 100 }, { code = 2 }]\n",
    );
    let (code, out, _) = test_file(&file, &["--json"]);
    assert_eq!(code, 4, "{out}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    let problems = &j["files"][0]["steps"][0]["problems"];
    assert_eq!(
        problems[0]["what"],
        "key 'a' (#1): expected an error, the call succeeded"
    );
    assert_eq!(problems[0]["actual"], "1");
    assert_eq!(problems[1]["what"], "key 'missing' (#2): error code");
    assert_eq!(
        (
            problems[1]["expected"].as_str(),
            problems[1]["actual"].as_str()
        ),
        (Some("2"), Some("100"))
    );
}

/// A key given twice in one batch: its problems say which of the two.
#[test]
fn a_batch_problem_names_the_keys_place_in_the_list() {
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"counter.increment\"\nkeys = \"'a', 'b', 'a'\"\nargs = \"'count', 1\"\nexpect = [\"2\", \"6\", \"2\"]\n",
    );
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("    key 'a' (#3): value\n      expected: 2\n      actual:   3\n"),
        "{out}"
    );
    assert!(!out.contains("(#1)"), "{out}");
}

#[test]
fn update_rewrites_a_batch_steps_rows_and_keeps_comments() {
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"stock.take\"\nkeys = \"'a', 'missing', 'b'\"\nexpect = [\n  \"1\",  # a is right\n  { code = 100, pattern = \"no such item\" },\n  \"6\",  # b was wrong\n]\n\n[[step]]\napply = \"counter.increment\"\nkeys = \"'a', 'z'\"\nargs = \"'count', 1\"   # no expectation yet\n",
    );
    let (code, _, _) = test_file(&file, &["--update"]);
    assert_eq!(code, 4);
    let new = std::fs::read_to_string(&file).unwrap();
    assert!(
        new.contains(
            "expect = [\n  \"1\",  # a is right\n  { code = 100, pattern = \"no such item\" },\n  \"5\",  # b was wrong\n]\n"
        ),
        "{new}"
    );
    // A batch step that only had to succeed passed, so it is left alone.
    assert!(
        new.ends_with("args = \"'count', 1\"   # no expectation yet\n"),
        "{new}"
    );
    let (code, out, err) = test_file(&file, &[]);
    assert_eq!(code, 0, "{out}{err}\n{new}");
    assert!(out.trim_end().ends_with("2 passed, 0 failed"), "{out}");
}

#[test]
fn a_bad_batch_step_is_a_file_error_with_line_and_column() {
    let (_dir, file) = batch("\n[[step]]\napply = \"stock.take\"\nkeys = \"'a', @\"\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("t.udftest.toml:21:14: keys:"), "{out}");

    let (_dir, file) =
        batch("\n[[step]]\napply = \"stock.take\"\nkey = \"a\"\nkeys = \"'a', 'b'\"\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("t.udftest.toml:22:1: give key (one record) or keys (a batch), not both"),
        "{out}"
    );

    let (_dir, file) =
        batch("\n[[step]]\napply = \"stock.take\"\nkeys = \"'a', 'b'\"\nexpect = [\"1\"]\n");
    let (code, out, _) = test_file(&file, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("t.udftest.toml:22:10: expect has 1 entry for 2 keys"),
        "{out}"
    );
}

#[test]
fn batch_steps_against_a_served_cluster_keep_to_the_runs_set() {
    let server = Served::start(&["--memory"]);
    let h = server.host.as_str();
    let (_dir, file) = batch(
        "\n[[step]]\napply = \"counter.increment\"\nkeys = \"'a', 'new'\"\nargs = \"'count', 1\"\nexpect = [\"2\", \"1\"]\n",
    );
    let f = file.to_str().unwrap();
    // 'a' counts from its seed: the batch's keys are in the seeds' set, the run's.
    let (code, out, err) = asudf(&["test", f, "-h", h, "--register", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let j: Json = serde_json::from_str(out.trim()).unwrap();
    let set = format!("test.demo-{}", j["files"][0]["run_id"].as_str().unwrap());
    // The run removed what its batch created, and never wrote the file's own set.
    for set in [set.as_str(), "test.demo"] {
        let (code, out, _) = asudf(&["record", "get", set, "new", "-h", h]);
        assert_eq!((code, out.trim()), (0, "no such record"), "{set}");
    }
}

//! The linter against real modules: every module the recorded server ran
//! without an error has no error-level diagnostic (with every library open,
//! as that server had), the bundled samples lint clean, and `asudf check`
//! prints, exits and reads its config as documented.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use asudf::lint::{self, LuaLibs, Options, Severity};
use serde_json::Value as Json;

/// `tests/conformance/cases` and every `../shared/conformance/cases*` folder.
fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/conformance/cases")];
    if let Ok(entries) = std::fs::read_dir(root.join("../shared/conformance")) {
        let mut shared: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("cases"))
            })
            .collect();
        shared.sort();
        dirs.extend(shared);
    }
    dirs
}

/// (case, file, source) of each module a case registered and never saw
/// fail: no call to it answered an error.
fn clean_modules(case: &Json) -> Vec<(String, String)> {
    // Each registration, and whether a call to it failed since.
    let mut puts: Vec<(String, String, bool)> = Vec::new();
    let mut current: HashMap<String, usize> = HashMap::new();
    for step in case["steps"].as_array().into_iter().flatten() {
        let expect = &step["expect"];
        match step["do"].as_str() {
            Some("udf_put") => {
                let file = step["file"].as_str().unwrap_or_default().to_string();
                let source = step["content"].as_str().unwrap_or_default().to_string();
                let ok = expect["info"] == "ok";
                puts.push((file.clone(), source, ok));
                if ok {
                    current.insert(file, puts.len() - 1);
                }
            }
            Some("apply" | "aggregate" | "background_udf" | "batch_apply") => {
                let rows = expect["results"].as_array();
                let failed = expect.get("error").is_some()
                    || rows.is_some_and(|r| r.iter().any(|row| row.get("error").is_some()));
                let file = format!("{}.lua", step["module"].as_str().unwrap_or_default());
                if failed && let Some(i) = current.get(&file) {
                    puts[*i].2 = false;
                }
            }
            _ => {}
        }
    }
    puts.into_iter()
        .filter(|(_, _, ok)| *ok)
        .map(|(f, s, _)| (f, s))
        .collect()
}

#[test]
fn modules_the_server_ran_cleanly_have_no_errors() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for dir in case_dirs() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let case: Json =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for (file, source) in clean_modules(&case) {
                checked += 1;
                let options = Options {
                    libs: LuaLibs::All,
                    module: Some(file.clone()),
                    ..Options::default()
                };
                for d in lint::lint(&source, &options) {
                    if d.severity == Severity::Error {
                        wrong.push(format!(
                            "{} {}",
                            path.display(),
                            lint::format_line(&file, &d)
                        ));
                    }
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} modules found");
    assert!(wrong.is_empty(), "false errors:\n{}", wrong.join("\n"));
}

#[test]
fn bundled_samples_lint_clean() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let mut seen = 0;
    // assets/ and its folders (the samples).
    for entry in walkdir::WalkDir::new(assets) {
        let path = entry.unwrap().into_path();
        if path.extension().is_some_and(|x| x == "lua") {
            seen += 1;
            let options = Options {
                module: path.file_name().map(|n| n.to_string_lossy().into_owned()),
                ..Options::default()
            };
            let found = lint::lint(&std::fs::read_to_string(&path).unwrap(), &options);
            assert!(found.is_empty(), "{}: {found:?}", path.display());
        }
    }
    assert!(seen > 1, "the bundled samples are found");
}

fn asudf() -> Command {
    let mut cmd = Command::cargo_bin("asudf").unwrap();
    cmd.env("HOME", std::env::temp_dir());
    cmd
}

#[test]
fn check_prints_lines_and_exits_by_severity() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("ok.lua");
    std::fs::write(&clean, "function f(rec)\n  return 1\nend\n").unwrap();
    let warn = dir.path().join("warn.lua");
    std::fs::write(
        &warn,
        "function f(rec)\n  total = (total or 0) + 1\n  return total\nend\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.lua");
    std::fs::write(&bad, "function f(rec)\n  rec.t = {}\nend\n").unwrap();

    asudf().arg("check").arg(&clean).assert().code(0).stdout("");
    let out = asudf().arg("check").arg(&warn).assert().code(0);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        text,
        format!(
            "{}:2:3: warning: 'total' is a global set inside a function: it persists between calls on pooled Lua states [global_in_function]\n",
            warn.display()
        )
    );
    let out = asudf()
        .args(["check", "--json"])
        .arg(&bad)
        .arg(&clean)
        .assert()
        .code(4);
    let json: Json = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["errors"], 1);
    let d = &json["files"][0]["diagnostics"][0];
    assert_eq!(d["rule"], "table_in_bin");
    assert_eq!(d["severity"], "error");
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(2), Some(3)));
    assert!(d["fix"].as_str().unwrap().contains("list{"));

    // Usage: a missing file, an unknown rule, a bad mode.
    asudf()
        .args(["check", "/nonexistent/x.lua"])
        .assert()
        .code(2);
    asudf()
        .arg("check")
        .arg(&clean)
        .args(["--allow", "nope"])
        .assert()
        .code(2);
    asudf()
        .arg("check")
        .arg(&clean)
        .args(["--lua-libs", "some"])
        .assert()
        .code(2);
}

#[test]
fn check_reads_the_mode_and_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.lua");
    std::fs::write(&file, "function f(rec)\n  return os.getenv('HOME')\nend\n").unwrap();
    asudf().arg("check").arg(&file).assert().code(4);
    asudf()
        .args(["check", "--lua-libs", "all"])
        .arg(&file)
        .assert()
        .code(0);
    asudf()
        .arg("check")
        .arg(&file)
        .args(["--allow", "unavailable_library"])
        .assert()
        .code(0);
    // The nearest asudf-lint.toml above the file switches the rule off.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let nested = sub.join("t.lua");
    std::fs::copy(&file, &nested).unwrap();
    std::fs::write(
        dir.path().join(lint::CONFIG_FILE),
        "[rules]\nunavailable_library = \"allow\"\n",
    )
    .unwrap();
    asudf().arg("check").arg(&nested).assert().code(0);
    std::fs::write(dir.path().join(lint::CONFIG_FILE), "[rules]\nx = 1\n").unwrap();
    asudf().arg("check").arg(&nested).assert().code(2);
    // An unknown rule is a usage error, in the file as with --allow.
    let config = dir.path().join(lint::CONFIG_FILE);
    std::fs::write(&config, "[rules]\nbogus = \"error\"\n").unwrap();
    let out = asudf().arg("check").arg(&nested).assert().code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert_eq!(
        err.trim(),
        format!(
            "asudf check: {}:2:1: unknown rule 'bogus'",
            config.display()
        )
    );
}

#[test]
fn check_json_reports_an_unknown_library_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.lua");
    std::fs::write(&file, "function f(rec)\n  return math.flor(rec.n)\nend\n").unwrap();
    let out = asudf()
        .args(["check", "--json"])
        .arg(&file)
        .assert()
        .code(0);
    let json: Json = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["warnings"], 1);
    let d = &json["files"][0]["diagnostics"][0];
    assert_eq!(d["rule"], "unknown_field");
    assert_eq!(d["severity"], "warning");
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(2), Some(15)));
    assert_eq!(
        d["message"],
        "'math' has no field 'flor': it is nil at run time"
    );
    assert_eq!(d["fix"], "did you mean `math.floor`?");
    // A config file switches it off like any rule.
    std::fs::write(
        dir.path().join(lint::CONFIG_FILE),
        "[rules]\nunknown_field = \"allow\"\n",
    )
    .unwrap();
    asudf().arg("check").arg(&file).assert().code(0).stdout("");
}

/// README lists `fix` among a diagnostic's JSON fields: every finding has one.
#[test]
fn check_json_gives_every_finding_a_fix() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.lua");
    std::fs::write(&broken, "function f(rec)\n  return +\nend\n").unwrap();
    let selene = dir.path().join("selene.lua");
    std::fs::write(
        &selene,
        "function f(rec)\n  if rec.a then end\n  while rec.b do end\n  return {x = 1, x = 2}, '\\\"'\nend\n",
    )
    .unwrap();
    let out = asudf()
        .args(["check", "--json"])
        .arg(&broken)
        .arg(&selene)
        .assert()
        .code(4);
    let json: Json = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let found: Vec<&Json> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["diagnostics"].as_array().unwrap())
        .collect();
    let rules: Vec<&str> = found.iter().map(|d| d["rule"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        [
            "syntax_error",
            "empty_if",
            "empty_loop",
            "duplicate_keys",
            "bad_string_escape"
        ]
    );
    for d in found {
        assert!(d["fix"].as_str().is_some_and(|f| !f.is_empty()), "{d}");
    }
}

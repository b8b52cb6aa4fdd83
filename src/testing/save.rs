//! Writes a scenario file from calls made in the console, their results as
//! the expectations.

use std::path::{Component, Path, PathBuf};

use aerospike::Value;
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value as Toml};

use super::update::{bins_table, record_value};
use crate::client::{ApplyCall, Failure, RecordView, module_file};
use crate::value;

/// One call as the console made it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCall {
    pub call: ApplyCall,
    pub outcome: Result<Value, Failure>,
    /// The record before and after, when the console read them.
    pub before: Option<Option<RecordView>>,
    pub after: Option<Option<RecordView>>,
}

/// A module the calls use: its file when it has one, else its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleRef {
    /// `counter.lua`.
    pub name: String,
    pub path: Option<PathBuf>,
    pub source: Option<String>,
}

/// `to` written relative to the folder `from` (both absolute, or both relative to the same folder).
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 && to.is_absolute() {
        return to.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part);
    }
    out
}

fn key_text(key: &Value) -> Toml {
    Toml::from(value::print(key))
}

/// The scenario text for `calls`, to be saved at `file` (module paths are
/// written relative to its folder).
pub fn scenario_text(calls: &[SavedCall], modules: &[ModuleRef], file: &Path) -> String {
    let mut doc = DocumentMut::new();
    let Some(first) = calls.first() else {
        return String::new();
    };
    let ns_of = |c: &ApplyCall| match &c.key.set {
        Some(set) => format!("{}.{set}", c.key.ns),
        None => c.key.ns.clone(),
    };
    let default_ns = ns_of(&first.call);
    doc.insert("ns", Item::Value(default_ns.as_str().into()));
    doc.as_table_mut().decor_mut().set_prefix(format!(
        "# Saved from the asudf console: {} call(s), their results as expectations.\n# Run it with `asudf test {}`.\n",
        calls.len(),
        file.file_name().map_or(file.display(), |n| Path::new(n).display())
    ));

    let dir = file.parent().unwrap_or(Path::new("."));
    let mut module_table = Table::new();
    let mut used: Vec<String> = Vec::new();
    for c in calls {
        let name = module_file(&c.call.module);
        if !used.contains(&name) {
            used.push(name);
        }
    }
    for name in &used {
        let stem = name.strip_suffix(".lua").unwrap_or(name);
        let found = modules.iter().find(|m| &m.name == name);
        match found {
            Some(ModuleRef {
                path: Some(path), ..
            }) => {
                let rel = relative(dir, path);
                module_table.insert(stem, Item::Value(rel.display().to_string().into()));
            }
            Some(ModuleRef {
                source: Some(source),
                ..
            }) => {
                let mut inline = InlineTable::new();
                inline.insert("source", source.as_str().into());
                module_table.insert(stem, Item::Value(Toml::InlineTable(inline)));
            }
            _ => {}
        }
    }
    if !module_table.is_empty() {
        doc.insert("modules", Item::Table(module_table));
    }

    // Records that were there before the first call on them.
    let mut records = ArrayOfTables::new();
    let mut seen: Vec<&crate::client::RecordKey> = Vec::new();
    for c in calls {
        if seen.contains(&&c.call.key) {
            continue;
        }
        seen.push(&c.call.key);
        if let Some(Some(before)) = &c.before {
            let mut t = Table::new();
            if ns_of(&c.call) != default_ns {
                t.insert("ns", Item::Value(ns_of(&c.call).into()));
            }
            t.insert("key", Item::Value(key_text(&c.call.key.key)));
            t.insert(
                "bins",
                Item::Value(Toml::InlineTable(bins_table(&before.bins))),
            );
            records.push(t);
        }
    }
    if !records.is_empty() {
        doc.insert("record", Item::ArrayOfTables(records));
    }

    let mut steps = ArrayOfTables::new();
    for c in calls {
        let mut t = Table::new();
        if ns_of(&c.call) != default_ns {
            t.insert("ns", Item::Value(ns_of(&c.call).into()));
        }
        t.insert(
            "apply",
            Item::Value(format!("{}.{}", c.call.module, c.call.function).into()),
        );
        t.insert("key", Item::Value(key_text(&c.call.key.key)));
        if !c.call.args.is_empty() {
            let args: Vec<String> = c.call.args.iter().map(value::print).collect();
            t.insert("args", Item::Value(args.join(", ").into()));
        }
        match &c.outcome {
            Ok(v) => {
                t.insert("expect", Item::Value(value::print(v).into()));
            }
            Err(f) => {
                let mut error = InlineTable::new();
                error.insert("code", i64::from(f.code).into());
                error.insert("message", f.message.as_str().into());
                t.insert("error", Item::Value(Toml::InlineTable(error)));
            }
        }
        if let Some(after) = &c.after {
            t.insert(
                "record",
                Item::Value(record_value(after.as_ref(), false, false)),
            );
        }
        steps.push(t);
    }
    doc.insert("step", Item::ArrayOfTables(steps));
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RecordKey;
    use crate::testing::format;

    #[test]
    fn relative_paths_climb_out_of_the_scenario_folder() {
        assert_eq!(
            relative(Path::new("/w/tests"), Path::new("/w/udf/counter.lua")),
            PathBuf::from("../udf/counter.lua")
        );
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/counter.lua")),
            PathBuf::from("counter.lua")
        );
    }

    #[test]
    fn saved_calls_read_back_as_the_same_steps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("counter.lua"), "function f(r) end").unwrap();
        let call = |key: i64, args: Vec<Value>| ApplyCall {
            key: RecordKey {
                ns: "test".into(),
                set: Some("demo".into()),
                key: Value::Int(key),
            },
            module: "counter".into(),
            function: "increment".into(),
            args,
            timeout_ms: None,
            send_key: true,
            with_record: true,
            with_logs: true,
        };
        let before = RecordView {
            bins: vec![("count".into(), Value::Int(1))],
            generation: 4,
            ttl: None,
        };
        let calls = vec![
            SavedCall {
                call: call(1, vec![Value::from("count"), Value::Int(5)]),
                outcome: Ok(Value::Int(6)),
                before: Some(Some(before)),
                after: None,
            },
            SavedCall {
                call: call(1, vec![Value::from("it's")]),
                outcome: Err(Failure::usage("bad 'thing'")),
                before: None,
                after: Some(None),
            },
        ];
        let modules = [ModuleRef {
            name: "counter.lua".into(),
            path: Some(dir.path().join("counter.lua")),
            source: None,
        }];
        let file = dir.path().join("s.udftest.toml");
        let text = scenario_text(&calls, &modules, &file);
        std::fs::write(&file, &text).unwrap();
        let s = format::load(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(text.contains("counter = \"counter.lua\""), "{text}");
        assert_eq!(s.records.len(), 1);
        assert_eq!(s.steps.len(), 2);
        assert_eq!(
            s.steps[0].action.describe(),
            "counter.increment('count', 5) @ 1"
        );
        assert_eq!(s.steps[0].expect.value, Some(Value::Int(6)));
        assert_eq!(s.steps[1].expect.record, Some(format::RecordExpect::Absent));
        let error = s.steps[1].expect.error.as_ref().unwrap();
        assert_eq!(error.code, Some(4));
        assert_eq!(
            error.message,
            Some(format::MessageMatch::Exact("bad 'thing'".into()))
        );
    }
}

//! Writes a scenario file from runs made in the console, their results as
//! the expectations.

use std::path::{Component, Path, PathBuf};

use aerospike::Value;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value as Toml};

use super::update::{bins_table, error_table, record_value};
use crate::client::query::{AggregateCall, ExecuteCall, JobInfo, QueryCall, Scope};
use crate::client::{
    ApplyCall, BatchApplyCall, BatchRow, Failure, IndexSpec, RecordView, module_file,
};
use crate::value;
use crate::where_clause::Collection;

/// One record apply as the console made it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedCall {
    pub call: ApplyCall,
    pub outcome: Result<Value, Failure>,
    /// The record before and after, when the console read them.
    pub before: Option<Option<RecordView>>,
    pub after: Option<Option<RecordView>>,
}

/// What a query answered.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAnswer {
    /// Records the server sent.
    pub count: u64,
    /// Each record's bins; `None` when the console kept only some of them.
    pub records: Option<Vec<Vec<(String, Value)>>>,
}

/// One finished run of any kind, with what it answered.
#[derive(Debug, Clone, PartialEq)]
pub enum SavedRun {
    Apply(SavedCall),
    /// The values; `None` when the console kept only some of them.
    Aggregate {
        call: AggregateCall,
        outcome: Result<Option<Vec<Value>>, Failure>,
    },
    /// The job's last progress entry, once it was done.
    Execute {
        call: ExecuteCall,
        outcome: Result<JobInfo, Failure>,
    },
    Query {
        call: QueryCall,
        outcome: Result<QueryAnswer, Failure>,
    },
    /// A batch that failed as a whole has no place in the format: only rows.
    Batch {
        call: BatchApplyCall,
        rows: Vec<BatchRow>,
    },
}

impl SavedRun {
    /// `ns` or `ns.set`, as a step's `ns` is written.
    fn ns_set(&self) -> String {
        let (ns, set) = match self {
            SavedRun::Apply(c) => (&c.call.key.ns, &c.call.key.set),
            SavedRun::Aggregate { call, .. } => (&call.scope.ns, &call.scope.set),
            SavedRun::Execute { call, .. } => (&call.scope.ns, &call.scope.set),
            SavedRun::Query { call, .. } => (&call.scope.ns, &call.scope.set),
            SavedRun::Batch { call, .. } => match call.keys.first() {
                Some(k) => (&k.ns, &k.set),
                None => return "test".into(),
            },
        };
        match set {
            Some(set) => format!("{ns}.{set}"),
            None => ns.clone(),
        }
    }

    /// The records a query-path run reads.
    fn scope(&self) -> Option<&Scope> {
        match self {
            SavedRun::Aggregate { call, .. } => Some(&call.scope),
            SavedRun::Execute { call, .. } => Some(&call.scope),
            SavedRun::Query { call, .. } => Some(&call.scope),
            SavedRun::Apply(_) | SavedRun::Batch { .. } => None,
        }
    }

    /// The module the run calls (a query calls none).
    fn module(&self) -> Option<&str> {
        match self {
            SavedRun::Apply(c) => Some(&c.call.module),
            SavedRun::Aggregate { call, .. } => Some(&call.module),
            SavedRun::Execute { call, .. } => Some(&call.module),
            SavedRun::Batch { call, .. } => Some(&call.module),
            SavedRun::Query { .. } => None,
        }
    }
}

/// A module the calls use: its file when it has one, else its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleRef {
    /// `counter.lua`.
    pub name: String,
    pub path: Option<PathBuf>,
    pub source: Option<String>,
}

/// Records the session wrote before its runs (a sample's), for the file to
/// write first: each test file runs on its own empty sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SeededRecords {
    /// What wrote them, for the file's header (`sample sum`).
    pub source: String,
    pub ns: String,
    pub set: Option<String>,
    /// Each record's key and bins.
    pub records: Vec<(Value, Vec<(String, Value)>)>,
}

impl SeededRecords {
    fn ns_set(&self) -> String {
        match &self.set {
            Some(set) => format!("{}.{set}", self.ns),
            None => self.ns.clone(),
        }
    }

    /// Whether `run` reads or writes records of this set.
    fn used_by(&self, run: &SavedRun) -> bool {
        match run.scope() {
            Some(scope) => scope.ns == self.ns && (scope.set.is_none() || scope.set == self.set),
            None => run.ns_set() == self.ns_set(),
        }
    }
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

fn list_text(values: &[Value]) -> String {
    values
        .iter()
        .map(value::print)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A query's record as the runner compares it: its bins as a map.
fn bins_map(bins: &[(String, Value)]) -> Value {
    Value::HashMap(
        bins.iter()
            .map(|(n, v)| (Value::String(n.clone()), v.clone()))
            .collect(),
    )
}

/// Whether `index` serves the `where` clause of `scope`.
fn serves(index: &IndexSpec, scope: &Scope) -> bool {
    scope.where_clause.as_ref().is_some_and(|w| {
        index.ns == scope.ns
            && (index.set.is_none() || index.set == scope.set)
            && index.bin == w.bin
            && index.collection == w.collection
    })
}

/// The scenario text for `runs`, to be saved at `file` (module paths are
/// written relative to its folder). Of `indexes` (those the console knows),
/// the ones a run's `where` clause needs are created by the file; of
/// `seeds`, the records of the sets the runs use are written by it first.
/// `notes` (comment lines) end its header.
pub fn scenario_text(
    runs: &[SavedRun],
    modules: &[ModuleRef],
    indexes: &[IndexSpec],
    seeds: &[SeededRecords],
    file: &Path,
    notes: &str,
) -> String {
    let mut doc = DocumentMut::new();
    let Some(first) = runs.first() else {
        return String::new();
    };
    let default_ns = first.ns_set();
    doc.insert("ns", Item::Value(default_ns.as_str().into()));
    doc.as_table_mut().decor_mut().set_prefix(format!(
        "# Saved from the asudf console: {} run(s), their results as expectations.\n# Run it with `asudf test {}`.\n{notes}",
        runs.len(),
        file.file_name().map_or(file.display(), |n| Path::new(n).display())
    ));
    let seeds: Vec<&SeededRecords> = seeds
        .iter()
        .filter(|seed| runs.iter().any(|r| seed.used_by(r)))
        .collect();
    if runs.iter().any(|r| r.scope().is_some()) {
        // The console saw what the runs read, not the records behind it
        // (but for those it wrote itself, as a sample's).
        let prefix = doc.as_table().decor().prefix().and_then(|p| p.as_str());
        let mut note = String::new();
        for seed in &seeds {
            note += &format!(
                "# The records {} wrote ({} in {}) are written first.\n",
                seed.source,
                seed.records.len(),
                seed.ns_set()
            );
        }
        note += "# Records that were there before the session are not saved: add them as\n# [[record]] tables for the aggregate, execute and query steps to read.\n";
        let text = format!("{}{note}", prefix.unwrap_or_default());
        doc.as_table_mut().decor_mut().set_prefix(text);
    }

    let dir = file.parent().unwrap_or(Path::new("."));
    let mut module_table = Table::new();
    let mut used: Vec<String> = Vec::new();
    for name in runs.iter().filter_map(SavedRun::module).map(module_file) {
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

    let mut index_tables = ArrayOfTables::new();
    let needed = indexes.iter().filter(|i| {
        runs.iter()
            .filter_map(SavedRun::scope)
            .any(|s| serves(i, s))
    });
    for index in needed {
        let mut t = Table::new();
        let ns = match &index.set {
            Some(set) => format!("{}.{set}", index.ns),
            None => index.ns.clone(),
        };
        if ns != default_ns {
            t.insert("ns", Item::Value(ns.into()));
        }
        t.insert("bin", Item::Value(index.bin.as_str().into()));
        t.insert("type", Item::Value(index.kind.to_ascii_lowercase().into()));
        let collection = match index.collection {
            Collection::Scalar => None,
            Collection::List => Some("list"),
            Collection::MapKeys => Some("mapkeys"),
            Collection::MapValues => Some("mapvalues"),
        };
        if let Some(collection) = collection {
            t.insert("collection", Item::Value(collection.into()));
        }
        t.insert("name", Item::Value(index.name.as_str().into()));
        index_tables.push(t);
    }
    if !index_tables.is_empty() {
        doc.insert("index", Item::ArrayOfTables(index_tables));
    }

    // Records that were there before the first call on them (a batch
    // before it may have written them: those the file's steps write).
    let mut records = ArrayOfTables::new();
    // The seeded records were there before any run: the state the file's
    // steps start from, which an apply's record before may not be.
    let seeded_keys: Vec<crate::client::RecordKey> = seeds
        .iter()
        .flat_map(|seed| {
            seed.records
                .iter()
                .map(|(key, _)| crate::client::RecordKey {
                    ns: seed.ns.clone(),
                    set: seed.set.clone(),
                    key: key.clone(),
                })
        })
        .collect();
    for seed in &seeds {
        for (key, bins) in &seed.records {
            let mut t = Table::new();
            if seed.ns_set() != default_ns {
                t.insert("ns", Item::Value(seed.ns_set().into()));
            }
            t.insert("key", Item::Value(key_text(key)));
            t.insert("bins", Item::Value(Toml::InlineTable(bins_table(bins))));
            records.push(t);
        }
    }
    let mut seen: Vec<&crate::client::RecordKey> = seeded_keys.iter().collect();
    for run in runs {
        if let SavedRun::Batch { call, .. } = run {
            seen.extend(&call.keys);
        }
        let SavedRun::Apply(c) = run else { continue };
        if seen.contains(&&c.call.key) {
            continue;
        }
        seen.push(&c.call.key);
        if let Some(Some(before)) = &c.before {
            let mut t = Table::new();
            if run.ns_set() != default_ns {
                t.insert("ns", Item::Value(run.ns_set().into()));
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
    for run in runs {
        let mut t = Table::new();
        if run.ns_set() != default_ns {
            t.insert("ns", Item::Value(run.ns_set().into()));
        }
        match run {
            SavedRun::Apply(c) => apply_step(&mut t, c),
            SavedRun::Aggregate { call, outcome } => {
                let udf = format!("{}.{}", call.module, call.function);
                t.insert("aggregate", Item::Value(udf.into()));
                scope_and_args(&mut t, &call.scope, &call.args);
                match outcome {
                    Ok(Some(values)) => {
                        let text = format!("[{}]", list_text(values));
                        t.insert("expect", Item::Value(text.into()));
                    }
                    Ok(None) => note(
                        &mut t,
                        "too many values to keep: only that it runs is checked",
                    ),
                    Err(f) => error(&mut t, f),
                }
            }
            SavedRun::Execute { call, outcome } => {
                let udf = format!("{}.{}", call.module, call.function);
                t.insert("execute", Item::Value(udf.into()));
                scope_and_args(&mut t, &call.scope, &call.args);
                match outcome {
                    Ok(job) => {
                        let mut expect = InlineTable::new();
                        expect.insert("succeeded", (job.succeeded() as i64).into());
                        expect.insert("failed", (job.failed() as i64).into());
                        expect.insert("filtered", (job.filtered() as i64).into());
                        expect.insert("status", job.status().into());
                        t.insert("job", Item::Value(Toml::InlineTable(expect)));
                    }
                    Err(f) => error(&mut t, f),
                }
            }
            SavedRun::Query { call, outcome } => {
                t.insert("query", Item::Value(true.into()));
                scope_and_args(&mut t, &call.scope, &[]);
                if let Some(bins) = &call.bins {
                    let names: Array = bins.iter().map(String::as_str).collect();
                    t.insert("bins", Item::Value(Toml::Array(names)));
                }
                match outcome {
                    // The file has no limit: a query cut short expects nothing.
                    Ok(answer) if call.max_records.is_some_and(|max| answer.count >= max) => note(
                        &mut t,
                        "stopped at its record limit: only that it runs is checked",
                    ),
                    Ok(QueryAnswer {
                        records: Some(records),
                        ..
                    }) => {
                        let maps: Vec<Value> = records.iter().map(|r| bins_map(r)).collect();
                        let text = format!("[{}]", list_text(&maps));
                        t.insert("expect", Item::Value(text.into()));
                    }
                    Ok(QueryAnswer {
                        count,
                        records: None,
                    }) => {
                        t.insert("records", Item::Value((*count as i64).into()));
                    }
                    Err(f) => error(&mut t, f),
                }
            }
            SavedRun::Batch { call, rows } => {
                let udf = format!("{}.{}", call.module, call.function);
                t.insert("apply", Item::Value(udf.into()));
                let keys: Vec<Value> = call.keys.iter().map(|k| k.key.clone()).collect();
                t.insert("keys", Item::Value(list_text(&keys).into()));
                if !call.args.is_empty() {
                    t.insert("args", Item::Value(list_text(&call.args).into()));
                }
                let mut expect: Array = rows
                    .iter()
                    .map(|row| match &row.result {
                        Ok(v) => Toml::from(value::print(v)),
                        Err(f) => Toml::InlineTable(error_table(f, None)),
                    })
                    .collect();
                expect.fmt();
                t.insert("expect", Item::Value(Toml::Array(expect)));
            }
        }
        steps.push(t);
    }
    doc.insert("step", Item::ArrayOfTables(steps));
    doc.to_string()
}

fn apply_step(t: &mut Table, c: &SavedCall) {
    t.insert(
        "apply",
        Item::Value(format!("{}.{}", c.call.module, c.call.function).into()),
    );
    t.insert("key", Item::Value(key_text(&c.call.key.key)));
    if !c.call.args.is_empty() {
        t.insert("args", Item::Value(list_text(&c.call.args).into()));
    }
    match &c.outcome {
        Ok(v) => {
            t.insert("expect", Item::Value(value::print(v).into()));
        }
        Err(f) => error(t, f),
    }
    if let Some(after) = &c.after {
        t.insert(
            "record",
            Item::Value(record_value(after.as_ref(), false, false)),
        );
    }
}

/// A query-path step's `where` and `args` (the namespace is written apart).
fn scope_and_args(t: &mut Table, scope: &Scope, args: &[Value]) {
    if let Some(clause) = &scope.where_clause {
        t.insert("where", Item::Value(clause.to_string().into()));
    }
    if !args.is_empty() {
        t.insert("args", Item::Value(list_text(args).into()));
    }
}

fn error(t: &mut Table, f: &Failure) {
    t.insert(
        "error",
        Item::Value(Toml::InlineTable(error_table(f, None))),
    );
}

/// A comment above the step saying what it does not check.
fn note(t: &mut Table, text: &str) {
    t.decor_mut().set_prefix(format!("\n# {text}\n"));
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
            SavedRun::Apply(SavedCall {
                call: call(1, vec![Value::from("count"), Value::Int(5)]),
                outcome: Ok(Value::Int(6)),
                before: Some(Some(before)),
                after: None,
            }),
            SavedRun::Apply(SavedCall {
                call: call(1, vec![Value::from("it's")]),
                outcome: Err(Failure::usage("bad 'thing'")),
                before: None,
                after: Some(None),
            }),
        ];
        let modules = [ModuleRef {
            name: "counter.lua".into(),
            path: Some(dir.path().join("counter.lua")),
            source: None,
        }];
        let file = dir.path().join("s.udftest.toml");
        let text = scenario_text(&calls, &modules, &[], &[], &file, "");
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

    fn scope(set: &str, clause: Option<&str>) -> Scope {
        Scope {
            ns: "test".into(),
            set: Some(set.into()),
            where_clause: clause.map(|c| crate::where_clause::parse(c).unwrap()),
        }
    }

    fn server_error(code: i32, message: &str) -> Failure {
        Failure {
            kind: crate::client::FailureKind::Server,
            code,
            ..Failure::usage(message)
        }
    }

    fn job(fields: &[(&str, &str)]) -> JobInfo {
        JobInfo {
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// One run of each query-path kind, as the console would save them.
    fn runs_of_each_kind() -> Vec<SavedRun> {
        let key = |k: &str| RecordKey {
            ns: "test".into(),
            set: Some("demo".into()),
            key: Value::from(k),
        };
        vec![
            SavedRun::Batch {
                call: BatchApplyCall {
                    keys: vec![key("a"), key("missing")],
                    module: "bump".into(),
                    function: "bump".into(),
                    args: vec![Value::Int(10)],
                    send_key: true,
                },
                rows: vec![
                    BatchRow {
                        key: Value::from("a"),
                        result: Ok(Value::Int(15)),
                    },
                    BatchRow {
                        key: Value::from("missing"),
                        result: Err(server_error(100, "bump.lua:2: no such record")),
                    },
                ],
            },
            SavedRun::Aggregate {
                call: AggregateCall {
                    scope: scope("sales", Some("amount BETWEEN 10 AND 50")),
                    module: "sum".into(),
                    function: "total".into(),
                    args: vec![],
                    source: None,
                    timeout_ms: None,
                },
                outcome: Ok(Some(vec![Value::Int(12_300), Value::from("x")])),
            },
            SavedRun::Execute {
                call: ExecuteCall {
                    scope: scope("sales", None),
                    module: "stamp".into(),
                    function: "mark".into(),
                    args: vec![Value::from("checked")],
                    records_per_second: None,
                },
                outcome: Ok(job(&[
                    ("trid", "7"),
                    ("status", "done(ok)"),
                    ("recs-succeeded", "1000"),
                    ("recs-failed", "2"),
                    ("recs-filtered-bins", "3"),
                ])),
            },
            SavedRun::Query {
                call: QueryCall {
                    scope: scope("sales", Some("amount = 7")),
                    bins: Some(vec!["amount".into(), "stamp".into()]),
                    max_records: None,
                },
                outcome: Ok(QueryAnswer {
                    count: 2,
                    records: Some(vec![
                        vec![("amount".into(), Value::Int(7))],
                        vec![
                            ("amount".into(), Value::Int(7)),
                            ("stamp".into(), Value::from("it's")),
                        ],
                    ]),
                }),
            },
        ]
    }

    #[test]
    fn every_kind_of_run_reads_back_as_its_step_with_its_answer() {
        let file = Path::new("/w/s.udftest.toml");
        let modules: Vec<ModuleRef> = ["bump", "sum", "stamp"]
            .into_iter()
            .map(|m| ModuleRef {
                name: format!("{m}.lua"),
                path: None,
                source: Some(format!("-- {m}")),
            })
            .collect();
        let index = |set: &str, bin: &str, kind: &str, collection| IndexSpec {
            ns: "test".into(),
            set: Some(set.into()),
            bin: bin.into(),
            kind: kind.into(),
            collection,
            name: format!("{set}_{bin}"),
        };
        // The console lists indexes as the server names their types.
        let indexes = [
            index("sales", "amount", "NUMERIC", Collection::Scalar),
            index("sales", "tags", "STRING", Collection::List),
            index("other", "amount", "NUMERIC", Collection::Scalar),
        ];
        let text = scenario_text(&runs_of_each_kind(), &modules, &indexes, &[], file, "");
        let s = format::parse(file, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Only the index the where clauses need.
        assert_eq!(s.indexes.len(), 1, "{text}");
        assert_eq!(
            s.indexes[0].spec,
            index("sales", "amount", "numeric", Collection::Scalar)
        );
        assert!(text.contains("# Records that were there before"), "{text}");
        let names: Vec<&str> = s.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["bump.lua", "sum.lua", "stamp.lua"], "{text}");
        assert_eq!(s.steps.len(), 4);

        let describe: Vec<String> = s.steps.iter().map(|s| s.action.describe()).collect();
        assert_eq!(
            describe,
            [
                "bump.bump(10) @ 'a', 'missing'",
                "aggregate sum.total() on test.sales where amount BETWEEN 10 AND 50",
                "execute stamp.mark('checked') on test.sales",
                "query test.sales where amount = 7",
            ],
            "{text}"
        );
        // The batch: a value or an error per key, in the keys' order.
        let rows = s.steps[0].expect.rows.as_ref().unwrap();
        assert_eq!(rows[0], format::RowExpect::Value(Value::Int(15)));
        assert_eq!(
            rows[1],
            format::RowExpect::Error(format::ErrorExpect {
                code: Some(100),
                message: Some(format::MessageMatch::Exact(
                    "bump.lua:2: no such record".into()
                )),
            })
        );
        assert_eq!(s.steps[0].action.scope(), None);
        // The aggregation's values, compared as a multiset.
        assert_eq!(
            s.steps[1].expect.values,
            Some(vec![Value::Int(12_300), Value::from("x")])
        );
        // The job's counters and status.
        assert_eq!(
            s.steps[2].expect.job,
            Some(format::JobExpect {
                succeeded: Some(1000),
                failed: Some(2),
                filtered: Some(3),
                status: Some("done(ok)".into()),
            })
        );
        // The query's records as bin maps, and only the bins it read.
        let format::Action::Query { bins, .. } = &s.steps[3].action else {
            panic!("a query step");
        };
        assert_eq!(
            bins.as_deref(),
            Some(&["amount".into(), "stamp".into()][..])
        );
        let values = s.steps[3].expect.values.as_ref().unwrap();
        assert_eq!(
            crate::testing::runner::multiset_text(values),
            r"[{'amount': 7, 'stamp': 'it\'s'}, {'amount': 7}]"
        );
        // The file's namespace is the first run's; the others name theirs.
        let format::Action::BatchApply { keys, .. } = &s.steps[0].action else {
            panic!("a batch step");
        };
        assert!(keys.iter().all(|k| k.set.as_deref() == Some("demo")));
        for step in &s.steps[1..] {
            let scope = step.action.scope().unwrap();
            assert_eq!(
                (scope.ns.as_str(), scope.set.as_deref()),
                ("test", Some("sales"))
            );
        }
    }

    #[test]
    fn a_record_a_batch_wrote_first_is_not_seeded() {
        let key = RecordKey {
            ns: "test".into(),
            set: Some("demo".into()),
            key: Value::from("a"),
        };
        let put = SavedRun::Batch {
            call: BatchApplyCall {
                keys: vec![key.clone()],
                module: "m".into(),
                function: "put".into(),
                args: vec![],
                send_key: true,
            },
            rows: vec![BatchRow {
                key: key.key.clone(),
                result: Ok(Value::Nil),
            }],
        };
        let apply = |key: &RecordKey| {
            SavedRun::Apply(SavedCall {
                call: ApplyCall {
                    key: key.clone(),
                    module: "m".into(),
                    function: "f".into(),
                    args: vec![],
                    timeout_ms: None,
                    send_key: true,
                    with_record: true,
                    with_logs: false,
                },
                outcome: Ok(Value::Int(1)),
                before: Some(Some(RecordView {
                    bins: vec![("n".into(), Value::Int(1))],
                    generation: 1,
                    ttl: None,
                })),
                after: None,
            })
        };
        let other = RecordKey {
            key: Value::from("b"),
            ..key.clone()
        };
        let file = Path::new("/w/s.udftest.toml");
        let runs = [put, apply(&key), apply(&other)];
        let text = scenario_text(&runs, &[], &[], &[], file, "");
        let s = format::parse(file, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let seeded: Vec<&Value> = s.records.iter().map(|r| &r.key.key).collect();
        assert_eq!(seeded, [&Value::from("b")], "{text}");
    }

    #[test]
    fn failed_and_partial_runs_expect_what_the_format_can_check() {
        let file = Path::new("/w/s.udftest.toml");
        let query = |max_records, records| SavedRun::Query {
            call: QueryCall {
                scope: scope("sales", None),
                bins: None,
                max_records,
            },
            outcome: Ok(QueryAnswer { count: 20, records }),
        };
        let all = Some(vec![vec![("n".to_string(), Value::Int(1))]; 20]);
        let runs = vec![
            SavedRun::Aggregate {
                call: AggregateCall {
                    scope: scope("sales", None),
                    module: "failing".into(),
                    function: "run".into(),
                    args: vec![],
                    source: None,
                    timeout_ms: None,
                },
                outcome: Err(server_error(100, "failing.lua:2: attempt to add")),
            },
            SavedRun::Execute {
                call: ExecuteCall {
                    scope: scope("other", None),
                    module: "stamp".into(),
                    function: "mark".into(),
                    args: vec![],
                    records_per_second: None,
                },
                outcome: Err(server_error(4, "bad job")),
            },
            // More records than the console kept: their number only.
            query(None, None),
            // Cut short at its limit: the file cannot say so, so no expectation.
            query(Some(20), all.clone()),
            // Under its limit: all of them.
            query(Some(50), all),
        ];
        let text = scenario_text(&runs, &[], &[], &[], file, "");
        let s = format::parse(file, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let error = |i: usize| s.steps[i].expect.error.clone().unwrap();
        assert_eq!(error(0).code, Some(100));
        assert_eq!(
            error(0).message,
            Some(format::MessageMatch::Exact(
                "failing.lua:2: attempt to add".into()
            ))
        );
        assert_eq!(error(1).code, Some(4));
        assert_eq!(
            s.steps[1].action.scope().unwrap().set.as_deref(),
            Some("other")
        );
        assert_eq!(s.steps[2].expect.count, Some(20));
        assert_eq!(s.steps[2].expect.values, None);
        assert_eq!(s.steps[3].expect, format::Expect::default(), "{text}");
        assert!(text.contains("# stopped at its record limit"), "{text}");
        assert_eq!(s.steps[4].expect.values.as_ref().map(Vec::len), Some(20));
    }
}

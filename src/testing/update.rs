//! `--update`: rewrites the expectations of failing steps from what came
//! back, editing the TOML in place so comments and layout stay.

use aerospike::Value;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value as Toml};

use super::format::{ErrorExpect, JobExpect, MessageMatch, RowExpect, Scenario};
use super::runner::{FileReport, Observed, multiset_text};
use crate::client::{BatchRow, Failure, RecordView};
use crate::value;

/// The file's text with every failing step's expectations set to what it
/// got. `None` when nothing changes.
pub fn rewrite(
    text: &str,
    scenario: &Scenario,
    report: &FileReport,
) -> Result<Option<String>, String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.to_string())?;
    let mut changed = false;
    let Some(steps) = doc.get_mut("step").and_then(Item::as_array_of_tables_mut) else {
        return Ok(None);
    };
    for step_report in report.steps.iter().filter(|s| !s.passed()) {
        let (Some(table), Some(step)) = (
            steps.get_mut(step_report.index),
            scenario.steps.get(step_report.index),
        ) else {
            continue;
        };
        changed |= update_step(table, &step_report.observed, step);
    }
    Ok(changed.then(|| doc.to_string()))
}

/// Replaces a key's value, keeping the old value's comments and spacing.
fn set(table: &mut Table, key: &str, mut new: Toml) {
    match table.get_mut(key) {
        // In place: `insert` would drop the key's own comments.
        Some(item) => {
            if let Some(old) = item.as_value() {
                *new.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(new);
        }
        None => {
            table.insert(key, Item::Value(new));
        }
    }
}

fn update_step(table: &mut Table, observed: &Observed, step: &super::format::Step) -> bool {
    let mut changed = false;
    // A value is written where the step expected one (or an error instead);
    // a step that only checks the record keeps checking only that.
    let expected_answer = step.expect.value.is_some() || step.expect.error.is_some();
    if let (Some(v), true) = (&observed.value, expected_answer) {
        set(table, "expect", Toml::from(value::print(v)));
        table.remove("error");
        changed = true;
    }
    if let Some(rows) = &observed.rows {
        set_rows(table, rows, step.expect.rows.as_deref().unwrap_or_default());
        changed = true;
    }
    if let Some(f) = &observed.error {
        let error = error_table(f, step.expect.error.as_ref());
        set(table, "error", Toml::InlineTable(error));
        for answer in ["expect", "records", "job"] {
            table.remove(answer);
        }
        changed = true;
    }
    if let (Some(existed), true) = (observed.existed, step.expect.existed.is_some()) {
        set(table, "expect", Toml::from(existed));
        changed = true;
    }
    // A step that expected an error and got values: the values (or the
    // count, when the step checks only that) take the error's place.
    let was_error = step.expect.error.is_some();
    if let Some(values) = &observed.values {
        if step.expect.values.is_some() || (was_error && step.expect.count.is_none()) {
            set(table, "expect", Toml::from(multiset_text(values)));
            changed = true;
        }
        if step.expect.count.is_some() {
            set(table, "records", Toml::from(values.len() as i64));
            changed = true;
        }
        table.remove("error");
    }
    if let Some(job) = &observed.job {
        // The parts the step checked (all of them in place of an error).
        let all = JobExpect {
            succeeded: Some(0),
            failed: Some(0),
            filtered: Some(0),
            status: Some(String::new()),
        };
        let expected = step.expect.job.as_ref().unwrap_or(&all);
        let mut new = InlineTable::new();
        let counts = [
            ("succeeded", expected.succeeded, job.succeeded()),
            ("failed", expected.failed, job.failed()),
            ("filtered", expected.filtered, job.filtered()),
        ];
        for (name, want, got) in counts {
            if want.is_some() {
                new.insert(name, (got as i64).into());
            }
        }
        if expected.status.is_some() {
            new.insert("status", job.status().into());
        }
        if step.expect.job.is_some() || was_error {
            set(table, "job", Toml::InlineTable(new));
            table.remove("error");
            changed = true;
        }
    }
    if let Some(record) = &observed.record {
        let had = |field: &str| {
            table
                .get("record")
                .and_then(|r| r.as_table_like())
                .is_some_and(|r| r.contains_key(field))
        };
        let new = record_value(record.as_ref(), had("gen"), had("ttl"));
        set(table, "record", new);
        changed = true;
    }
    changed
}

/// `{ code = N, message = "…" }`; a pattern that still matches stays a pattern.
pub fn error_table(f: &Failure, old: Option<&ErrorExpect>) -> InlineTable {
    let mut error = InlineTable::new();
    error.insert("code", i64::from(f.code).into());
    match old.and_then(|e| e.message.as_ref()) {
        Some(MessageMatch::Pattern(p)) if p.is_match(&f.message) => {
            error.insert("pattern", p.as_str().into());
        }
        _ => {
            error.insert("message", f.message.as_str().into());
        }
    }
    error
}

/// A batch step's `expect` from its rows. An old list of the same length is
/// edited entry by entry, so comments between its entries stay.
fn set_rows(table: &mut Table, rows: &[BatchRow], old: &[RowExpect]) {
    let entries: Vec<Toml> = rows
        .iter()
        .enumerate()
        .map(|(i, row)| match &row.result {
            Ok(v) => Toml::from(value::print(v)),
            Err(f) => {
                let old = match old.get(i) {
                    Some(RowExpect::Error(e)) => Some(e),
                    _ => None,
                };
                Toml::InlineTable(error_table(f, old))
            }
        })
        .collect();
    if let Some(array) = table.get_mut("expect").and_then(Item::as_array_mut)
        && array.len() == entries.len()
    {
        for (i, entry) in entries.into_iter().enumerate() {
            array.replace(i, entry);
        }
        return;
    }
    let mut array: Array = entries.into_iter().collect();
    array.fmt();
    set(table, "expect", Toml::Array(array));
}

/// `"none"` or `{ bins = {…}, gen = N, ttl = … }` (gen and ttl when asked for).
pub fn record_value(record: Option<&RecordView>, generation: bool, ttl: bool) -> Toml {
    let Some(record) = record else {
        return Toml::from("none");
    };
    let mut table = InlineTable::new();
    table.insert("bins", Toml::InlineTable(bins_table(&record.bins)));
    if generation {
        table.insert("gen", i64::from(record.generation).into());
    }
    if ttl {
        let ttl = match record.ttl {
            None => Toml::from("never"),
            Some(t) => Toml::from(i64::from(t)),
        };
        table.insert("ttl", ttl);
    }
    Toml::InlineTable(table)
}

pub fn bins_table(bins: &[(String, Value)]) -> InlineTable {
    let mut table = InlineTable::new();
    for (name, v) in bins {
        table.insert(name, value::print(v).into());
    }
    table
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::testing::format;
    use crate::testing::runner::{Problem, StepReport};

    fn failed(index: usize, observed: Observed) -> StepReport {
        StepReport {
            index,
            line: 1,
            title: String::new(),
            problems: vec![Problem {
                what: "x".into(),
                expected: None,
                actual: None,
                at: None,
                mark: false,
            }],
            logs: Vec::new(),
            observed,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn only_the_expectations_a_step_has_are_rewritten() {
        let text = "[[step]]\napply = \"m.f\"\nkey = 1\nrecord = \"none\"  # gone\n\n[[step]]\nremove = 2\nexpect = true\n";
        let scenario = format::parse(Path::new("t.udftest.toml"), text).unwrap();
        let record = RecordView {
            bins: vec![("n".into(), Value::Int(1))],
            generation: 1,
            ttl: None,
        };
        let report = FileReport {
            steps: vec![
                failed(
                    0,
                    Observed {
                        value: Some(Value::Int(1)),
                        record: Some(Some(record)),
                        ..Observed::default()
                    },
                ),
                failed(
                    1,
                    Observed {
                        existed: Some(false),
                        ..Observed::default()
                    },
                ),
            ],
            ..FileReport::default()
        };
        let new = rewrite(text, &scenario, &report).unwrap().unwrap();
        assert_eq!(
            new,
            "[[step]]\napply = \"m.f\"\nkey = 1\nrecord = { bins = { n = \"1\" } }  # gone\n\n[[step]]\nremove = 2\nexpect = false\n"
        );
    }

    #[test]
    fn batch_rows_are_rewritten_entry_by_entry() {
        let text = "[[step]]\napply = \"m.f\"\nkeys = \"1, 2, 3\"\nexpect = [\n  \"1\",  # one\n  { code = 100, pattern = \"boom\" },\n  \"3\",\n]\n\n[[step]]\napply = \"m.f\"\nkeys = \"1, 2\"\n";
        let scenario = format::parse(Path::new("t.udftest.toml"), text).unwrap();
        let boom = |message: &str| Failure {
            kind: crate::client::FailureKind::Server,
            code: 100,
            message: message.into(),
            location: None,
            logs: Vec::new(),
        };
        let row = |key: i64, result| BatchRow {
            key: Value::Int(key),
            result,
        };
        let rows = |rows: Vec<BatchRow>| Observed {
            rows: Some(rows),
            ..Observed::default()
        };
        let report = FileReport {
            steps: vec![
                failed(
                    0,
                    rows(vec![
                        row(1, Err(boom("x.lua:2: no"))),
                        row(2, Err(boom("x.lua:1: boom"))),
                        row(3, Ok(Value::String("c".into()))),
                    ]),
                ),
                failed(
                    1,
                    rows(vec![row(1, Ok(Value::Int(1))), row(2, Err(boom("no")))]),
                ),
            ],
            ..FileReport::default()
        };
        let new = rewrite(text, &scenario, &report).unwrap().unwrap();
        // The comment stays; the pattern that still matches stays a pattern.
        assert_eq!(
            new,
            "[[step]]\napply = \"m.f\"\nkeys = \"1, 2, 3\"\nexpect = [\n  { code = 100, message = \"x.lua:2: no\" },  # one\n  { code = 100, pattern = \"boom\" },\n  \"'c'\",\n]\n\n[[step]]\napply = \"m.f\"\nkeys = \"1, 2\"\nexpect = [\"1\", { code = 100, message = \"no\" }]\n"
        );
        let again = format::parse(Path::new("t.udftest.toml"), &new).unwrap();
        assert_eq!(again.steps[1].expect.rows.as_ref().map(Vec::len), Some(2));
    }
}

//! Runs a scenario through the client task: register its modules, write
//! its records, run its steps, compare what came back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aerospike::Value;

use super::format::{
    Action, ErrorExpect, FileError, MessageMatch, Origin, RecordExpect, Scenario, Step,
};
use crate::client::{
    self, ApplyCall, ClientHandle, ConnectionState, Event, Failure, FailureKind, Outcome,
    RecordKey, RecordView, Request, Target, UdfLog,
};
use crate::value;

/// Where the files run.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Each file on its own in-memory sandbox.
    Sandbox,
    /// A real cluster, shared by every file of the run.
    Cluster {
        /// Appended to every set, so a run touches only its own records.
        run_id: String,
        /// Register the files' modules (else they must already match).
        register: bool,
    },
}

/// One way a step (or the setup) did not go as the file says.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub what: String,
    /// Both in the value syntax when they are values (the report marks the difference).
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// The module line an error points at: `counter.lua`, line, its text.
    pub at: Option<(String, u32, Option<String>)>,
    /// Mark where `actual` departs from `expected` (not for a pattern).
    pub mark: bool,
}

impl Problem {
    fn said(what: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            expected: None,
            actual: None,
            at: None,
            mark: false,
        }
    }

    fn differs(what: impl Into<String>, expected: String, actual: String) -> Problem {
        Problem {
            what: what.into(),
            expected: Some(expected),
            actual: Some(actual),
            at: None,
            mark: true,
        }
    }
}

/// What a step got back, kept for `--update`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub value: Option<Value>,
    pub error: Option<Failure>,
    /// `Some(None)`: the record was read and is not there.
    pub record: Option<Option<RecordView>>,
    pub existed: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub index: usize,
    pub line: usize,
    pub title: String,
    pub problems: Vec<Problem>,
    pub logs: Vec<UdfLog>,
    pub observed: Observed,
    pub elapsed: Duration,
}

impl StepReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileReport {
    pub path: std::path::PathBuf,
    /// Registering modules or writing records went wrong: no step ran.
    pub setup: Vec<Problem>,
    pub steps: Vec<StepReport>,
    /// The file could not be read or run here (exit 2).
    pub bad_file: Option<FileError>,
    /// The cluster stopped answering (exit 3).
    pub connection: Option<String>,
    pub elapsed: Duration,
}

impl FileReport {
    pub fn passed(&self) -> usize {
        self.steps.iter().filter(|s| s.passed()).count()
    }
    /// Failed steps, plus one for a failed setup.
    pub fn failed(&self) -> usize {
        self.steps.iter().filter(|s| !s.passed()).count() + usize::from(!self.setup.is_empty())
    }
}

/// Starts a client task for `target` and waits until it is connected.
pub async fn connect(target: Target) -> Result<ClientHandle, String> {
    let (handle, mut events) = client::spawn(target);
    while let Some(event) = events.recv().await {
        match event {
            Event::Connection(ConnectionState::Connected(_)) => {
                // Nobody reads the task's events from here on: drop them.
                tokio::spawn(async move { while events.recv().await.is_some() {} });
                return Ok(handle);
            }
            Event::Connection(ConnectionState::Lost { reason }) => return Err(reason),
            _ => {}
        }
    }
    Err("the client task ended".into())
}

/// Runs one file on its own in-memory sandbox.
pub async fn run_on_sandbox(scenario: &Scenario) -> FileReport {
    let target = Target::Sandbox {
        dir: None,
        config: crate::sandbox::SandboxConfig::default(),
    };
    match connect(target).await {
        Ok(handle) => run(&handle, scenario, &Mode::Sandbox).await,
        Err(reason) => FileReport {
            path: scenario.path.clone(),
            connection: Some(reason),
            ..FileReport::default()
        },
    }
}

/// A set of this run: the file's set with the run's id appended.
fn run_set(set: &str, run_id: &str) -> String {
    let mut name = format!("{set}-{run_id}");
    // The server's limit on set names (63 bytes): keep the run id.
    while name.len() > 63 {
        name.remove(0);
    }
    name
}

/// Against a cluster every step needs a set, so the run can keep to its own.
pub fn check_for_cluster(scenario: &Scenario) -> Result<(), FileError> {
    let seeds = scenario.records.iter().map(|r| (&r.key, r.pos));
    let steps = scenario.steps.iter().map(|s| (s.action.key(), s.pos));
    for (key, pos) in seeds.chain(steps) {
        if key.set.is_none() {
            return Err(FileError {
                path: scenario.path.clone(),
                pos,
                message: format!(
                    "no set: against a cluster every record needs one (ns = \"{}.SET\"), so the run keeps to records of its own",
                    key.ns
                ),
            });
        }
    }
    Ok(())
}

struct Run<'a> {
    handle: &'a ClientHandle,
    scenario: &'a Scenario,
    mode: &'a Mode,
    /// Every record the run may have written (removed after it on a cluster).
    touched: Vec<RecordKey>,
    connection: Option<String>,
}

/// Runs a scenario with a connected client.
pub async fn run(handle: &ClientHandle, scenario: &Scenario, mode: &Mode) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport {
        path: scenario.path.clone(),
        ..FileReport::default()
    };
    if matches!(mode, Mode::Cluster { .. })
        && let Err(e) = check_for_cluster(scenario)
    {
        report.bad_file = Some(e);
        return report;
    }
    let mut run = Run {
        handle,
        scenario,
        mode,
        touched: Vec::new(),
        connection: None,
    };
    report.setup = run.setup().await;
    if report.setup.is_empty() && run.connection.is_none() {
        for step in &scenario.steps {
            let step_report = run.step(step).await;
            report.steps.push(step_report);
            if run.connection.is_some() {
                break;
            }
        }
    }
    if matches!(mode, Mode::Cluster { .. }) {
        run.clean_up().await;
    }
    report.connection = run.connection;
    report.elapsed = started.elapsed();
    report
}

impl Run<'_> {
    fn key(&mut self, key: &RecordKey) -> RecordKey {
        let mut key = key.clone();
        if let Mode::Cluster { run_id, .. } = self.mode {
            key.set = key.set.map(|s| run_set(&s, run_id));
        }
        if !self.touched.contains(&key) {
            self.touched.push(key.clone());
        }
        key
    }

    async fn call(&mut self, request: Request) -> Result<Outcome, Failure> {
        let (outcome, _) = self.handle.call(request).await;
        if let Err(f) = &outcome
            && matches!(f.kind, FailureKind::Connection | FailureKind::Timeout)
            && self.connection.is_none()
        {
            self.connection = Some(f.message.clone());
        }
        outcome
    }

    /// The source line an error points at, from the file's own modules.
    fn locate(&self, failure: &Failure) -> Option<(String, u32, Option<String>)> {
        let (module, line) = failure.location.clone()?;
        let text = self
            .scenario
            .modules
            .iter()
            .find(|m| m.name == module)
            .and_then(|m| m.source.lines().nth((line as usize).checked_sub(1)?))
            .map(str::to_string);
        Some((module, line, text))
    }

    async fn setup(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let register = match self.mode {
            Mode::Sandbox => true,
            Mode::Cluster { register, .. } => *register,
        };
        for module in &self.scenario.modules {
            let from = match &module.origin {
                Origin::File(path) => path.display().to_string(),
                Origin::Inline => format!("its inline source (line {})", module.pos.line),
            };
            if register {
                let request = Request::PutModule {
                    name: module.name.clone(),
                    source: module.source.clone(),
                };
                if let Err(f) = self.call(request).await {
                    let mut p = Problem::said(format!(
                        "module {} from {from} was not registered: {f}",
                        module.name
                    ));
                    p.at = self.locate(&f);
                    problems.push(p);
                }
                continue;
            }
            let request = Request::GetModule {
                name: module.name.clone(),
            };
            match self.call(request).await {
                Ok(Outcome::Module { source, .. }) if source == module.source => {}
                Ok(_) => problems.push(Problem::said(format!(
                    "module {} on the cluster differs from {from} (--register replaces it for every user of the cluster)",
                    module.name
                ))),
                Err(f) => problems.push(Problem::said(format!(
                    "module {} is not on the cluster ({f}); --register registers it",
                    module.name
                ))),
            }
        }
        if !problems.is_empty() || self.connection.is_some() {
            return problems;
        }
        for seed in &self.scenario.records {
            let key = self.key(&seed.key);
            let request = Request::PutRecord {
                key,
                bins: seed.bins.clone(),
                send_key: false,
            };
            if let Err(f) = self.call(request).await {
                problems.push(Problem::said(format!(
                    "the record at line {} was not written: {f}",
                    seed.pos.line
                )));
            }
        }
        problems
    }

    async fn step(&mut self, step: &Step) -> StepReport {
        let started = Instant::now();
        let mut observed = Observed::default();
        let mut problems = Vec::new();
        let mut logs = Vec::new();
        let key = self.key(step.action.key());
        match &step.action {
            Action::Apply { call, args, .. } => {
                let request = Request::Apply(ApplyCall {
                    key: key.clone(),
                    module: call.module.clone(),
                    function: call.function.clone(),
                    args: args.clone(),
                    timeout_ms: None,
                    send_key: true,
                    with_record: false,
                    with_logs: true,
                });
                match self.call(request).await {
                    Ok(Outcome::Applied {
                        result, logs: l, ..
                    }) => {
                        logs = l;
                        observed.value = Some(result);
                    }
                    Ok(other) => {
                        problems.push(Problem::said(format!("unexpected answer {other:?}")))
                    }
                    Err(f) => {
                        logs = f.logs.clone();
                        observed.error = Some(f);
                    }
                }
                self.check_answer(step, &observed, &mut problems);
            }
            Action::Get { .. } => {}
            Action::Put { bins, .. } => {
                let request = Request::PutRecord {
                    key: key.clone(),
                    bins: bins.clone(),
                    send_key: false,
                };
                if let Err(f) = self.call(request).await {
                    problems.push(Problem::said(format!("the write failed: {f}")));
                }
            }
            Action::Remove { .. } => {
                match self.call(Request::DeleteRecord { key: key.clone() }).await {
                    Ok(Outcome::Deleted { existed }) => {
                        observed.existed = Some(existed);
                        if let Some(expected) = step.expect.existed
                            && expected != existed
                        {
                            problems.push(Problem::differs(
                                "whether the record existed",
                                expected.to_string(),
                                existed.to_string(),
                            ));
                        }
                    }
                    Ok(other) => {
                        problems.push(Problem::said(format!("unexpected answer {other:?}")))
                    }
                    Err(f) => problems.push(Problem::said(format!("the remove failed: {f}"))),
                }
            }
        }
        if let Some(expected) = &step.expect.record {
            match self.call(Request::GetRecord { key }).await {
                Ok(Outcome::Record(record)) => {
                    compare_record(expected, record.as_ref(), &mut problems);
                    observed.record = Some(record);
                }
                Ok(other) => problems.push(Problem::said(format!("unexpected answer {other:?}"))),
                Err(f) => problems.push(Problem::said(format!("reading the record failed: {f}"))),
            }
        }
        StepReport {
            index: step.index,
            line: step.pos.line,
            title: step.name.clone().unwrap_or_else(|| step.action.describe()),
            problems,
            logs,
            observed,
            elapsed: started.elapsed(),
        }
    }

    /// An apply's value or error against the step's expectation.
    fn check_answer(&self, step: &Step, observed: &Observed, problems: &mut Vec<Problem>) {
        match (&observed.error, &step.expect.error) {
            (Some(f), None) => {
                let mut p = Problem::said(format!("the call failed: {f}"));
                if let Some(v) = &step.expect.value {
                    p.expected = Some(value::print(v));
                }
                p.at = self.locate(f);
                problems.push(p);
            }
            (Some(f), Some(expected)) => {
                let mut found = compare_error(expected, f);
                if !found.is_empty() {
                    found[0].at = self.locate(f);
                }
                problems.extend(found);
            }
            (None, Some(expected)) => {
                let actual = observed
                    .value
                    .as_ref()
                    .map(value::print)
                    .unwrap_or_default();
                problems.push(Problem::differs(
                    "expected an error, the call succeeded",
                    describe_error(expected),
                    actual,
                ));
            }
            (None, None) => {
                if let (Some(expected), Some(actual)) = (&step.expect.value, &observed.value) {
                    let (expected, actual) = (value::print(expected), value::print(actual));
                    if expected != actual {
                        problems.push(Problem::differs("value", expected, actual));
                    }
                }
            }
        }
    }

    /// Removes every record the run wrote (on a cluster).
    async fn clean_up(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            let _ = self.call(Request::DeleteRecord { key }).await;
        }
    }
}

fn describe_error(expected: &ErrorExpect) -> String {
    let mut parts = Vec::new();
    if let Some(code) = expected.code {
        parts.push(format!("code {code}"));
    }
    match &expected.message {
        Some(MessageMatch::Exact(m)) => parts.push(format!("message {m:?}")),
        Some(MessageMatch::Pattern(p)) => parts.push(format!("message matching /{}/", p.as_str())),
        None => {}
    }
    if parts.is_empty() {
        "an error".into()
    } else {
        format!("an error, {}", parts.join(", "))
    }
}

fn compare_error(expected: &ErrorExpect, failure: &Failure) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(code) = expected.code
        && code != failure.code
    {
        problems.push(Problem::differs(
            "error code",
            code.to_string(),
            failure.code.to_string(),
        ));
    }
    match &expected.message {
        Some(MessageMatch::Exact(m)) if *m != failure.message => {
            problems.push(Problem::differs(
                "error message",
                value::print(&Value::String(m.clone())),
                value::print(&Value::String(failure.message.clone())),
            ));
        }
        Some(MessageMatch::Pattern(p)) if !p.is_match(&failure.message) => {
            problems.push(Problem {
                mark: false,
                ..Problem::differs(
                    "error message does not match",
                    format!("/{}/", p.as_str()),
                    value::print(&Value::String(failure.message.clone())),
                )
            });
        }
        _ => {}
    }
    problems
}

/// Bins as a map literal sorted by name: `{'count': 8}`.
pub fn bins_text(bins: &[(String, Value)]) -> String {
    let sorted: BTreeMap<&str, String> = bins
        .iter()
        .map(|(n, v)| (n.as_str(), value::print(v)))
        .collect();
    let parts: Vec<String> = sorted
        .iter()
        .map(|(n, v)| format!("{}: {v}", value::print(&Value::String(n.to_string()))))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn ttl_text(ttl: Option<u32>) -> String {
    ttl.map_or("never".into(), |t| t.to_string())
}

fn compare_record(expected: &RecordExpect, actual: Option<&RecordView>, out: &mut Vec<Problem>) {
    let (bins, generation, ttl) = match (expected, actual) {
        (RecordExpect::Absent, None) => return,
        (RecordExpect::Absent, Some(r)) => {
            out.push(Problem::differs(
                "record",
                "none".into(),
                bins_text(&r.bins),
            ));
            return;
        }
        (RecordExpect::Present { bins, .. }, None) => {
            let want = bins.as_deref().map_or("a record".into(), bins_text);
            out.push(Problem::differs("record", want, "none".into()));
            return;
        }
        (
            RecordExpect::Present {
                bins,
                generation,
                ttl,
            },
            Some(_),
        ) => (bins, generation, ttl),
    };
    let record = actual.expect("matched Some above");
    if let Some(bins) = bins {
        let (want, got) = (bins_text(bins), bins_text(&record.bins));
        if want != got {
            out.push(Problem::differs("record bins", want, got));
        }
    }
    if let Some(generation) = generation
        && *generation != record.generation
    {
        out.push(Problem::differs(
            "record generation",
            generation.to_string(),
            record.generation.to_string(),
        ));
    }
    if let Some(ttl) = ttl {
        // Seconds tick while the step runs: a second or two less is the same TTL.
        let same = match (ttl, record.ttl) {
            (None, None) => true,
            (Some(want), Some(got)) => got <= *want && got + 2 >= *want,
            _ => false,
        };
        if !same {
            out.push(Problem::differs(
                "record ttl",
                ttl_text(*ttl),
                ttl_text(record.ttl),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_sets_keep_the_run_id_within_the_server_limit() {
        assert_eq!(run_set("demo", "r1"), "demo-r1");
        let long = run_set(&"s".repeat(63), "abc");
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-abc"));
    }

    #[test]
    fn records_compare_bins_generation_and_ttl() {
        let record = RecordView {
            bins: vec![("b".into(), Value::Int(2)), ("a".into(), Value::Int(1))],
            generation: 3,
            ttl: Some(99),
        };
        let expect = |bins: Vec<(&str, i64)>, generation, ttl| RecordExpect::Present {
            bins: Some(
                bins.into_iter()
                    .map(|(n, v)| (n.to_string(), Value::Int(v)))
                    .collect(),
            ),
            generation,
            ttl,
        };
        let problems = |e: &RecordExpect, r: Option<&RecordView>| {
            let mut out = Vec::new();
            compare_record(e, r, &mut out);
            out
        };
        assert!(
            problems(
                &expect(vec![("a", 1), ("b", 2)], Some(3), Some(Some(100))),
                Some(&record)
            )
            .is_empty()
        );
        let found = problems(&expect(vec![("a", 1)], Some(2), Some(None)), Some(&record));
        let whats: Vec<&str> = found.iter().map(|p| p.what.as_str()).collect();
        assert_eq!(whats, ["record bins", "record generation", "record ttl"]);
        assert_eq!(found[0].actual.as_deref(), Some("{'a': 1, 'b': 2}"));
        // A record expectation without bins compares only what it names.
        let generation_only = RecordExpect::Present {
            bins: None,
            generation: Some(3),
            ttl: None,
        };
        assert!(problems(&generation_only, Some(&record)).is_empty());
        assert_eq!(problems(&generation_only, None).len(), 1);
        assert_eq!(problems(&RecordExpect::Absent, Some(&record)).len(), 1);
        assert!(problems(&RecordExpect::Absent, None).is_empty());
    }
}

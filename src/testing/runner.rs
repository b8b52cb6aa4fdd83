//! Runs a scenario through the client task: register its modules, write
//! its records, run its steps, compare what came back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::Value;

use tokio::sync::mpsc;

use super::format::{
    Action, ErrorExpect, FileError, JobExpect, MessageMatch, Origin, RecordExpect, RowExpect,
    Scenario, Step,
};
use crate::client::{
    self, AggregateCall, ApplyCall, BatchApplyCall, BatchRow, ClientHandle, ExecuteCall, Failure,
    FailureKind, JobInfo, Outcome, QueryCall, RecordKey, RecordView, Request, Scope, StreamItem,
    Target, UdfLog,
};
use crate::value;

/// Where the files run.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Each file on its own in-memory sandbox.
    Sandbox,
    /// A real cluster, shared by every file of the run.
    Cluster {
        /// Appended to every set, so a file touches only its own records:
        /// the run's id, then the file's number (see [`Mode::for_file`]).
        run_id: String,
        /// Register the files' modules (else they must already match).
        register: bool,
    },
}

impl Mode {
    /// The mode of the run's file number `n` (from 1). On a cluster every
    /// file's sets get a suffix of their own: files run side by side, and two
    /// that share a set would write, scan and remove each other's records.
    pub fn for_file(&self, n: usize) -> Mode {
        match self {
            Mode::Cluster { run_id, register } => Mode::Cluster {
                run_id: format!("{run_id}-{n}"),
                register: *register,
            },
            Mode::Sandbox => Mode::Sandbox,
        }
    }
}

/// One way a step (or the setup) did not go as the file says.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub what: String,
    /// Both in the value syntax when they are values (the report marks the difference).
    pub expected: Option<String>,
    pub actual: Option<String>,
    /// The module line an error points at.
    pub at: Option<At>,
    /// Mark where `actual` departs from `expected` (not for a pattern).
    pub mark: bool,
}

/// A UDF error's place: as the server names it, and in the files the user edits.
#[derive(Debug, Clone, PartialEq)]
pub struct At {
    /// The registered module (`counter.lua`) and the line in it.
    pub module: String,
    pub line: u32,
    /// That line in the module's file, or in the scenario file for an
    /// inline module (`None`: the module is not the scenario's).
    pub file: Option<(std::path::PathBuf, usize)>,
    /// Whether the module is inline in the scenario file (set with `file`,
    /// from the same match on the module's origin).
    pub inline: bool,
    /// The line's text.
    pub text: Option<String>,
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
    /// An aggregation's values, or a query's records as bin maps.
    pub values: Option<Vec<Value>>,
    /// A background job's `query-show` entry once it was done.
    pub job: Option<JobInfo>,
    /// A batch apply's rows, one per key.
    pub rows: Option<Vec<BatchRow>>,
}

/// How often a step waiting for its background job asks how it is going.
const JOB_POLL: Duration = Duration::from_millis(20);
/// A job still running after this long fails the step instead of hanging the run.
const JOB_WAIT: Duration = Duration::from_secs(120);

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
    /// On a cluster, what the file's sets end in (after a `-`).
    pub run_id: Option<String>,
    pub elapsed: Duration,
}

impl FileReport {
    pub fn passed(&self) -> usize {
        self.steps.iter().filter(|s| s.passed()).count()
    }
    /// Failed steps, plus one for a failed setup and one for a file that
    /// did not run to its end: each is a case in JUnit, and the run is not
    /// ok while any is counted.
    pub fn failed(&self) -> usize {
        self.steps.iter().filter(|s| !s.passed()).count()
            + usize::from(!self.setup.is_empty())
            + usize::from(self.unfinished())
    }
    /// The file could not be read or run, or its run lost the connection.
    pub fn unfinished(&self) -> bool {
        self.bad_file.is_some() || self.connection.is_some()
    }
}

/// Starts a client task for `target` and waits until it is connected.
pub async fn connect(target: Target) -> Result<ClientHandle, String> {
    let (handle, mut events, _) = client::spawn_connected(target).await?;
    // Nobody reads the task's events from here on: drop them.
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(handle)
}

/// Runs one file on its own in-memory sandbox.
pub async fn run_on_sandbox(scenario: &Scenario) -> FileReport {
    let target = Target::in_memory(crate::sandbox::SandboxConfig::default());
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
    let seeds = scenario
        .records
        .iter()
        .map(|r| (&r.key.ns, &r.key.set, r.pos));
    let indexes = scenario
        .indexes
        .iter()
        .map(|i| (&i.spec.ns, &i.spec.set, i.pos));
    let steps =
        scenario
            .steps
            .iter()
            .map(|s| match (&s.action, s.action.key(), s.action.scope()) {
                // A batch's keys share the step's namespace and set.
                (Action::BatchApply { keys, .. }, _, _) => (&keys[0].ns, &keys[0].set, s.pos),
                (_, Some(key), _) => (&key.ns, &key.set, s.pos),
                (_, None, Some(scope)) => (&scope.ns, &scope.set, s.pos),
                (_, None, None) => unreachable!("a step reads records or a scope"),
            });
    for (ns, set, pos) in seeds.chain(indexes).chain(steps) {
        if set.is_none() {
            return Err(FileError {
                path: scenario.path.clone(),
                pos,
                message: format!(
                    "no set: against a cluster every record needs one (ns = \"{ns}.SET\"), so the run keeps to records of its own"
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
    /// Indexes the run created (dropped after it on a cluster).
    indexes: Vec<(String, String)>,
    connection: Option<String>,
}

/// Runs a scenario with a connected client.
pub async fn run(handle: &ClientHandle, scenario: &Scenario, mode: &Mode) -> FileReport {
    let started = Instant::now();
    let mut report = FileReport {
        path: scenario.path.clone(),
        ..FileReport::default()
    };
    if let Mode::Cluster { run_id, .. } = mode {
        report.run_id = Some(run_id.clone());
    }
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
        indexes: Vec::new(),
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

    /// The run's own set on a cluster (the file's set elsewhere).
    fn set(&self, set: &Option<String>) -> Option<String> {
        match self.mode {
            Mode::Cluster { run_id, .. } => set.as_ref().map(|s| run_set(s, run_id)),
            Mode::Sandbox => set.clone(),
        }
    }

    fn scope(&self, scope: &Scope) -> Scope {
        Scope {
            set: self.set(&scope.set),
            ..scope.clone()
        }
    }

    async fn call(&mut self, request: Request) -> Result<Outcome, Failure> {
        self.call_streaming(request, mpsc::unbounded_channel().0)
            .await
    }

    /// A query-path request: its items are collected in `items`.
    async fn collect(
        &mut self,
        request: Request,
        items: &mut Vec<StreamItem>,
    ) -> Result<Outcome, Failure> {
        let (sink, mut rx) = mpsc::unbounded_channel();
        let outcome = self.call_streaming(request, sink).await;
        while let Ok(item) = rx.try_recv() {
            items.push(item);
        }
        outcome
    }

    async fn call_streaming(
        &mut self,
        request: Request,
        sink: client::query::ItemSink,
    ) -> Result<Outcome, Failure> {
        let (outcome, _) = self.handle.call_streaming(request, sink).await;
        if let Err(f) = &outcome
            && matches!(f.kind, FailureKind::Connection | FailureKind::Timeout)
            && self.connection.is_none()
        {
            self.connection = Some(f.message.clone());
        }
        outcome
    }

    /// The source line an error points at, from the file's own modules.
    fn locate(&self, failure: &Failure) -> Option<At> {
        let (module, line) = failure.location.clone()?;
        let found = self.scenario.modules.iter().find(|m| m.name == module);
        let index = (line as usize).checked_sub(1);
        let text = found
            .zip(index)
            .and_then(|(m, i)| m.source.lines().nth(i))
            .map(str::to_string);
        let (file, inline) = match found.map(|m| &m.origin) {
            Some(Origin::File(path)) => (Some((path.clone(), line as usize)), false),
            Some(Origin::Inline(lines)) => (
                index
                    .and_then(|i| lines.get(i))
                    .map(|l| (self.scenario.path.clone(), *l)),
                true,
            ),
            None => (None, false),
        };
        Some(At {
            module,
            line,
            file,
            inline,
            text,
        })
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
                Origin::Inline(_) => format!("its inline source (line {})", module.pos.line),
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
        for index in &self.scenario.indexes {
            let mut spec = index.spec.clone();
            spec.set = self.set(&spec.set);
            if let Mode::Cluster { run_id, .. } = self.mode {
                spec.name = run_set(&spec.name, run_id);
            }
            let (ns, name) = (spec.ns.clone(), spec.name.clone());
            match self.call(Request::CreateIndex(spec)).await {
                Ok(_) => self.indexes.push((ns, name)),
                Err(f) => problems.push(Problem::said(format!(
                    "the index at line {} was not created: {f}",
                    index.pos.line
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
        let mut logs = Vec::new();
        let problems = match step.action.key() {
            Some(key) => {
                let key = self.key(key);
                self.record_step(step, key, &mut observed, &mut logs).await
            }
            None if matches!(step.action, Action::BatchApply { .. }) => {
                self.batch_step(step, &mut observed).await
            }
            None => self.query_step(step, &mut observed).await,
        };
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

    /// Runs a step on one record (apply, get, put, remove) and compares.
    async fn record_step(
        &mut self,
        step: &Step,
        key: RecordKey,
        observed: &mut Observed,
        logs: &mut Vec<UdfLog>,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        match &step.action {
            Action::Apply { call, args, .. } => {
                let request = Request::Apply(Arc::new(ApplyCall {
                    key: key.clone(),
                    module: call.module.clone(),
                    function: call.function.clone(),
                    args: args.clone(),
                    timeout_ms: None,
                    send_key: true,
                    with_record: false,
                    with_logs: true,
                }));
                match self.call(request).await {
                    Ok(Outcome::Applied {
                        result, logs: l, ..
                    }) => {
                        *logs = l;
                        observed.value = Some(result);
                    }
                    Ok(other) => {
                        problems.push(Problem::said(format!("unexpected answer {other:?}")))
                    }
                    Err(f) => {
                        *logs = f.logs.clone();
                        observed.error = Some(f);
                    }
                }
                problems.extend(self.check_answer(
                    observed.value.as_ref(),
                    observed.error.as_ref(),
                    step.expect.value.as_ref(),
                    step.expect.error.as_ref(),
                ));
            }
            Action::Get { .. }
            | Action::BatchApply { .. }
            | Action::Aggregate { .. }
            | Action::Execute { .. }
            | Action::Query { .. } => {}
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
        problems
    }

    /// Runs a batch apply in one request and compares each key's row.
    async fn batch_step(&mut self, step: &Step, observed: &mut Observed) -> Vec<Problem> {
        let Action::BatchApply { keys, call, args } = &step.action else {
            unreachable!("only batch steps come here")
        };
        let keys: Vec<RecordKey> = keys.iter().map(|k| self.key(k)).collect();
        let count = keys.len();
        let request = Request::BatchApply(Box::new(BatchApplyCall {
            keys,
            module: call.module.clone(),
            function: call.function.clone(),
            args: args.clone(),
            send_key: true,
        }));
        let rows = match self.call(request).await {
            Ok(Outcome::BatchApplied(rows)) => rows,
            Ok(other) => return vec![Problem::said(format!("unexpected answer {other:?}"))],
            Err(f) => {
                let mut p = Problem::said(format!("the batch request failed: {f}"));
                p.at = self.locate(&f);
                return vec![p];
            }
        };
        let mut problems = Vec::new();
        if rows.len() != count {
            problems.push(Problem::differs(
                "number of rows",
                count.to_string(),
                rows.len().to_string(),
            ));
        }
        for (i, row) in rows.iter().enumerate() {
            let (value, error) = match &row.result {
                Ok(v) => (Some(v), None),
                Err(f) => (None, Some(f)),
            };
            let (want_value, want_error) = match step.expect.rows.as_ref().and_then(|r| r.get(i)) {
                Some(RowExpect::Value(v)) => (Some(v), None),
                Some(RowExpect::Error(e)) => (None, Some(e)),
                None => (None, None),
            };
            // Each problem names its key and its place in the list, so a
            // report says which rows failed (a key may be given twice).
            let key = value::print(&row.key);
            for mut p in self.check_answer(value, error, want_value, want_error) {
                p.what = format!("key {key} (#{}): {}", i + 1, p.what);
                problems.push(p);
            }
        }
        observed.rows = Some(rows);
        problems
    }

    /// Runs an aggregate, execute or query step and compares what came back.
    async fn query_step(&mut self, step: &Step, observed: &mut Observed) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut items = Vec::new();
        let outcome = match &step.action {
            Action::Aggregate { scope, call, args } => {
                let request = Request::Aggregate(Box::new(AggregateCall {
                    scope: self.scope(scope),
                    module: call.module.clone(),
                    function: call.function.clone(),
                    args: args.clone(),
                    source: None,
                    timeout_ms: None,
                }));
                self.collect(request, &mut items).await
            }
            Action::Query { scope, bins } => {
                let request = Request::Query(Box::new(QueryCall {
                    scope: self.scope(scope),
                    bins: bins.clone(),
                    max_records: None,
                }));
                self.collect(request, &mut items).await
            }
            Action::Execute { scope, call, args } => {
                let request = Request::Execute(Box::new(ExecuteCall {
                    scope: self.scope(scope),
                    module: call.module.clone(),
                    function: call.function.clone(),
                    args: args.clone(),
                    records_per_second: None,
                }));
                match self.call(request).await {
                    Ok(Outcome::JobStarted { id }) => self.wait_for_job(id, scope).await,
                    other => other,
                }
            }
            _ => unreachable!("only query-path steps come here"),
        };
        match outcome {
            Ok(Outcome::Streamed { .. }) => {
                let values = items
                    .into_iter()
                    .filter_map(|item| match item {
                        StreamItem::Value(v) => Some(v),
                        StreamItem::Record { view, .. } => Some(bins_map(&view.bins)),
                        // A series' runs: no step sends one.
                        StreamItem::Runs { .. } => None,
                    })
                    .collect();
                observed.values = Some(values);
            }
            Ok(Outcome::Jobs(mut jobs)) if !jobs.is_empty() => {
                observed.job = Some(jobs.remove(0));
            }
            Ok(other) => {
                problems.push(Problem::said(format!("unexpected answer {other:?}")));
                return problems;
            }
            Err(f) => observed.error = Some(f),
        }
        match (&observed.error, &step.expect.error) {
            (Some(f), None) => {
                let mut p = Problem::said(format!("the call failed: {f}"));
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
            (None, Some(expected)) => problems.push(Problem::differs(
                "expected an error, the call succeeded",
                describe_error(expected),
                "success".into(),
            )),
            (None, None) => {}
        }
        if let (Some(expected), Some(actual)) = (&step.expect.values, &observed.values) {
            let (want, got) = (multiset_text(expected), multiset_text(actual));
            if want != got {
                let what = match step.action {
                    Action::Query { .. } => "records (in any order)",
                    _ => "values (in any order)",
                };
                problems.push(Problem::differs(what, want, got));
            }
        }
        if let (Some(expected), Some(actual)) = (step.expect.count, &observed.values)
            && expected != actual.len() as u64
        {
            problems.push(Problem::differs(
                "number of records",
                expected.to_string(),
                actual.len().to_string(),
            ));
        }
        if let (Some(expected), Some(job)) = (&step.expect.job, &observed.job) {
            compare_job(expected, job, &mut problems);
        }
        problems
    }

    /// Polls a background job until it is done: its last `query-show` entry.
    async fn wait_for_job(&mut self, id: u64, scope: &Scope) -> Result<Outcome, Failure> {
        let started = Instant::now();
        // The file's set, not the run's: an expected message stays the same
        // from run to run.
        let set = scope.set.as_deref();
        let mut first = true;
        loop {
            let read = self.call(Request::Jobs { id: Some(id) }).await;
            let read = read.map_err(|mut f| {
                // The first read failing can mean the job never started.
                if first && let Some(message) = client::no_job_started(&f, set) {
                    f.message = message;
                }
                f
            })?;
            first = false;
            match read {
                Outcome::Jobs(jobs) if jobs.first().is_some_and(JobInfo::is_done) => {
                    return Ok(Outcome::Jobs(jobs));
                }
                Outcome::Jobs(_) if started.elapsed() < JOB_WAIT => {
                    tokio::time::sleep(JOB_POLL).await
                }
                Outcome::Jobs(_) => {
                    return Err(Failure::connection(format!(
                        "job {id} was not done after {} s",
                        JOB_WAIT.as_secs()
                    )));
                }
                other => return Ok(other),
            }
        }
    }

    /// An apply's value or error against what was expected.
    fn check_answer(
        &self,
        value: Option<&Value>,
        error: Option<&Failure>,
        want_value: Option<&Value>,
        want_error: Option<&ErrorExpect>,
    ) -> Vec<Problem> {
        let mut problems = Vec::new();
        match (error, want_error) {
            (Some(f), None) => {
                let mut p = Problem::said(format!("the call failed: {f}"));
                if let Some(v) = want_value {
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
                let actual = value.map(value::print).unwrap_or_default();
                problems.push(Problem::differs(
                    "expected an error, the call succeeded",
                    describe_error(expected),
                    actual,
                ));
            }
            (None, None) => {
                if let (Some(expected), Some(actual)) = (want_value, value) {
                    let (expected, actual) = (value::print(expected), value::print(actual));
                    if expected != actual {
                        problems.push(Problem::differs("value", expected, actual));
                    }
                }
            }
        }
        problems
    }

    /// Removes every record the run wrote (on a cluster).
    async fn clean_up(&mut self) {
        for key in std::mem::take(&mut self.touched) {
            let _ = self.call(Request::DeleteRecord { key }).await;
        }
        for (ns, name) in std::mem::take(&mut self.indexes) {
            let _ = self.call(Request::DropIndex { ns, name }).await;
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

/// A query's record as the value it is compared as: its bins as a map.
fn bins_map(bins: &[(String, Value)]) -> Value {
    Value::HashMap(
        bins.iter()
            .map(|(n, v)| (Value::String(n.clone()), v.clone()))
            .collect(),
    )
}

/// Values as a list literal in a canonical order, so two multisets compare
/// equal as text exactly when they hold the same values.
pub fn multiset_text(values: &[Value]) -> String {
    let mut printed: Vec<String> = values.iter().map(canonical).collect();
    printed.sort();
    format!("[{}]", printed.join(", "))
}

/// A value's literal with map entries sorted (a map's order is not its value).
fn canonical(v: &Value) -> String {
    match v {
        Value::HashMap(map) => {
            let mut entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", canonical(k), canonical(v)))
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(", "))
        }
        Value::List(list) => format!(
            "[{}]",
            list.iter().map(canonical).collect::<Vec<_>>().join(", ")
        ),
        other => value::print(other),
    }
}

fn compare_job(expected: &JobExpect, job: &JobInfo, out: &mut Vec<Problem>) {
    let counts = [
        ("job succeeded", expected.succeeded, job.succeeded()),
        ("job failed", expected.failed, job.failed()),
        ("job filtered", expected.filtered, job.filtered()),
    ];
    for (what, want, got) in counts {
        if let Some(want) = want
            && want != got
        {
            out.push(Problem::differs(what, want.to_string(), got.to_string()));
        }
    }
    if let Some(status) = &expected.status
        && status != job.status()
    {
        out.push(Problem::differs(
            "job status",
            status.clone(),
            job.status().to_string(),
        ));
    }
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

//! F7 against a real sandbox: a session of batch applies, an aggregation, a
//! background job and queries through the client task and the wire
//! protocol; the file it saves then passes when the test runner replays it
//! on a fresh sandbox.

use std::path::Path;
use std::time::{Duration, Instant};

use aerospike::Value;
use asudf::client::{self, Event, IndexSpec, Outcome, Request, Target};
use asudf::commands::Headless;
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use asudf::testing::{self, format};
use asudf::tui::app::{App, StartOptions};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::results::CallState;
use asudf::tui::panes::runs::{Detail, Stages};
use asudf::tui::{Action, Driver};
use asudf::where_clause::Collection;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::sync::mpsc::UnboundedReceiver;

/// Record UDFs for the batches and the job, a stream UDF for the aggregation.
const MODULE: &str = "function put(rec, n)
  rec['n'] = n
  if aerospike:exists(rec) then aerospike:update(rec) else aerospike:create(rec) end
  return n
end

function bump(rec, by)
  if not aerospike:exists(rec) then error('no such record') end
  rec['n'] = rec['n'] + by
  aerospike:update(rec)
  return rec['n']
end

function mark(rec, label)
  rec['seen'] = label
  aerospike:update(rec)
end

local function n_of(rec)
  return rec['n']
end

local function add(a, b)
  return a + b
end

function total(stream)
  return stream : map(n_of) : reduce(add)
end
";

struct Live {
    app: App,
    driver: Driver,
    events: UnboundedReceiver<Event>,
    _server: ServerHandle,
}

impl Live {
    /// A console on a fresh sandbox that already has an index on `n`.
    async fn start() -> Live {
        let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
        let server = server::start(sandbox, ServerOptions::default())
            .await
            .unwrap();
        let addr = server.addr();
        let target = || Target::Cluster {
            hosts: vec![aerospike::Host::new(&addr.ip().to_string(), addr.port())],
            policy: aerospike::ClientPolicy::default(),
        };
        let Ok(setup) = Headless::connect(target(), true).await else {
            panic!("the setup session connects");
        };
        setup
            .handle
            .call(Request::CreateIndex(IndexSpec {
                ns: "test".into(),
                set: Some("demo".into()),
                bin: "n".into(),
                kind: "numeric".into(),
                collection: Collection::Scalar,
                name: "demo_n".into(),
            }))
            .await
            .0
            .expect("the index is created");
        let (handle, events) = client::spawn(target());
        let mut live = Live {
            app: App::new(StartOptions::sample(&target().label())),
            driver: Driver::new(handle, None),
            events,
            _server: server,
        };
        live.act(Action::Resize(160, 45)).await;
        live.wait("connected", |app| app.connected()).await;
        live
    }

    async fn act(&mut self, action: Action) {
        let mut queue = vec![action];
        while let Some(action) = queue.pop() {
            let effects = self.app.update(action);
            queue.extend(self.driver.perform(effects).await.actions);
        }
    }

    /// Feeds client events and ticks (job progress is read on the tick)
    /// until `done` holds.
    async fn wait(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done(&self.app) {
            let wake = self
                .app
                .next_wake()
                .map(tokio::time::Instant::from_std)
                .unwrap_or(deadline)
                .min(deadline);
            tokio::select! {
                event = self.events.recv() => {
                    let event = event.expect("the client task runs");
                    if let Some(action) = self.driver.translate(event) {
                        self.act(action).await;
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
                    self.act(Action::Tick(Instant::now())).await;
                }
            }
        }
    }

    async fn key(&mut self, code: KeyCode) {
        self.act(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .await
    }

    async fn with(&mut self, modifiers: KeyModifiers, c: char) {
        self.act(Action::Key(KeyEvent::new(KeyCode::Char(c), modifiers)))
            .await;
    }

    async fn kind(&mut self, kind: FormKind) {
        while self.app.apply.kind != kind {
            self.key(KeyCode::F(8)).await;
        }
    }

    async fn set(&mut self, field: Field, text: &str) {
        self.with(KeyModifiers::ALT, '3').await;
        self.app.apply.focus_field(field);
        assert_eq!(self.app.apply.focused_field(), field);
        self.with(KeyModifiers::CONTROL, 'u').await;
        for c in text.chars() {
            self.key(KeyCode::Char(c)).await;
        }
    }

    /// Runs the form and waits for its result to be complete.
    async fn run(&mut self) -> Option<Outcome> {
        let before = self.app.results.entries.len();
        self.key(KeyCode::F(5)).await;
        self.wait("the run's result", |app| {
            app.results.entries.len() > before
                && app.results.entries.last().is_some_and(|e| {
                    !e.in_flight()
                        && !matches!(
                            &e.run.as_ref().map(|r| &r.detail),
                            Some(Detail::Aggregate(v)) if v.stages == Stages::Waiting
                        )
                })
        })
        .await;
        match &self.app.results.entries.last()?.state {
            CallState::Done { outcome, .. } => outcome.clone().ok(),
            CallState::InFlight => None,
        }
    }

    async fn batch(&mut self, keys: &str, function: &str, args: &str) -> Option<Outcome> {
        self.kind(FormKind::Batch).await;
        self.set(Field::Set, "demo").await;
        self.set(Field::Keys, keys).await;
        self.set(Field::Module, "session").await;
        self.set(Field::Function, function).await;
        self.set(Field::Args, args).await;
        self.run().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_of_every_kind_passes_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("session.lua");
    std::fs::write(&module, MODULE).unwrap();
    let mut live = Live::start().await;
    // The module is opened from its file and registered with F9.
    live.act(Action::FileLoaded {
        path: module.clone(),
        result: Ok(MODULE.to_string()),
    })
    .await;
    live.key(KeyCode::F(9)).await;
    live.wait("registered, and the index listed", |app| {
        app.modules.entries.iter().any(|m| m.name == "session.lua")
            && !app.indexes.entries.is_empty()
    })
    .await;

    let rows = |outcome: Option<Outcome>| match outcome {
        Some(Outcome::BatchApplied(rows)) => rows,
        other => panic!("batch rows: {other:?}"),
    };
    // The records come from the session itself, so a fresh sandbox has them too.
    let created = rows(live.batch("'a', 'b', 'c'", "put", "5").await);
    assert!(created.iter().all(|r| r.result == Ok(Value::Int(5))));
    let bumped = rows(live.batch("'a', 'missing'", "bump", "10").await);
    assert_eq!(bumped[0].result, Ok(Value::Int(15)));
    assert!(bumped[1].result.is_err(), "{bumped:?}");

    live.kind(FormKind::Aggregate).await;
    live.set(Field::Set, "demo").await;
    live.set(Field::Where, "").await;
    live.set(Field::Module, "session").await;
    live.set(Field::Function, "total").await;
    live.set(Field::Args, "").await;
    live.run().await;
    let Some(Detail::Aggregate(view)) = live
        .app
        .results
        .entries
        .last()
        .unwrap()
        .run
        .as_ref()
        .map(|r| &r.detail)
    else {
        panic!("an aggregation");
    };
    assert_eq!(view.values, vec![Value::Int(25)]);

    live.kind(FormKind::Background).await;
    live.set(Field::Function, "mark").await;
    live.set(Field::Args, "'seen'").await;
    live.run().await;

    live.kind(FormKind::Query).await;
    live.set(Field::Where, "n = 5").await;
    live.set(Field::Bins, "n, seen").await;
    live.set(Field::MaxRecords, "").await;
    assert!(matches!(
        live.run().await,
        Some(Outcome::Streamed { count: 2, .. })
    ));

    // F7, Enter on a file beside the module.
    let file = dir.path().join("session.udftest.toml");
    live.key(KeyCode::F(7)).await;
    live.with(KeyModifiers::CONTROL, 'u').await;
    for c in file.display().to_string().chars() {
        live.key(KeyCode::Char(c)).await;
    }
    live.key(KeyCode::Enter).await;
    let text = std::fs::read_to_string(&file).expect("the file is written");
    let status = live.app.status.as_ref().map(|s| s.text.clone());
    assert_eq!(status, Some(format!("saved {}", file.display())));

    let scenario = format::load(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(scenario.steps.len(), 5, "{text}");
    assert!(text.contains("session = \"session.lua\""), "{text}");
    assert_eq!(scenario.indexes.len(), 1, "{text}");
    let job = scenario.steps[3]
        .expect
        .job
        .clone()
        .expect("the job's counts");
    assert_eq!((job.succeeded, job.failed), (Some(3), Some(0)), "{text}");
    assert_eq!(
        scenario.steps[4].expect.values.as_ref().map(Vec::len),
        Some(2)
    );

    let reports = testing::run_files(vec![scenario], None).await;
    let report = &reports[0];
    assert!(
        report.connection.is_none() && report.setup.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.passed(), 5, "{report:?}\n{text}");
    assert_eq!(report.failed(), 0, "{report:?}\n{text}");

    // The replay really compares: a changed expectation fails.
    let wrong = text.replace("expect = \"[25]\"", "expect = \"[26]\"");
    assert_ne!(wrong, text, "{text}");
    let scenario = format::parse(Path::new(&file), &wrong).unwrap();
    let reports = testing::run_files(vec![scenario], None).await;
    assert_eq!(reports[0].failed(), 1, "{:?}", reports[0]);
}

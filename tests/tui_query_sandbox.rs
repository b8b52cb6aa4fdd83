//! The apply form's query-path kinds against a real sandbox server, through
//! the client task and the wire protocol: the sum sample's aggregation with
//! its stage counts, the stamp sample as a background job to 100 %, the
//! stamped records browsed with the query kind, and a batch apply over
//! three keys, one missing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aerospike::Value;
use asudf::client::{self, Event, Outcome, RecordKey, Request, Target};
use asudf::commands::Headless;
use asudf::commands::sample::load_sample;
use asudf::sandbox::server::{self, ServerHandle, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use asudf::tui::app::{App, StartOptions};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::results::{CallEntry, CallState};
use asudf::tui::panes::runs::{Detail, Stages};
use asudf::tui::{Action, Driver, ui};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc::UnboundedReceiver;

fn fixed_time(_: Duration) -> String {
    "T".to_string()
}

struct Live {
    app: App,
    driver: Driver,
    events: UnboundedReceiver<Event>,
    terminal: Terminal<TestBackend>,
    /// Loads samples and writes records beside the console.
    setup: Headless,
    _server: ServerHandle,
}

impl Live {
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
        let mut app = App::new(StartOptions::sample(&target().label()));
        app.time_format = fixed_time;
        let (handle, events) = client::spawn(target());
        let mut live = Live {
            app,
            driver: Driver::new(handle, None),
            events,
            terminal: Terminal::new(TestBackend::new(160, 45)).unwrap(),
            setup,
            _server: server,
        };
        live.act(Action::Resize(160, 45)).await;
        live.wait("connected", |app| app.connected()).await;
        live.wait("modules listed", |app| app.modules.loaded_once)
            .await;
        live
    }

    async fn act(&mut self, action: Action) {
        let mut queue = vec![action];
        while let Some(action) = queue.pop() {
            let effects = self.app.update(action);
            queue.extend(self.driver.perform(effects).await.actions);
        }
    }

    /// Feeds client events, and ticks when the console asks to be woken
    /// (job progress is read through the tick), until `done` holds.
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
                    if tokio::time::Instant::now() >= deadline {
                        panic!("waited for {what}:\n{}", self.screen());
                    }
                    self.act(Action::Tick(Instant::now())).await;
                }
            }
        }
    }

    async fn key(&mut self, code: KeyCode) {
        self.act(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
            .await;
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

    /// Runs the form and waits until its result (and anything it reads
    /// after: stage counts, job progress) is complete.
    async fn run(&mut self) -> CallEntry {
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
        self.app.results.entries.last().cloned().unwrap()
    }

    fn screen(&mut self) -> String {
        let app = &self.app;
        self.terminal.draw(|frame| ui::draw(app, frame)).unwrap();
        ui::screen_text(self.terminal.backend().buffer())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sum_aggregation_then_stamp_job_then_browse_the_stamped_records() {
    let mut live = Live::start().await;
    let sum = asudf::samples::find("sum").unwrap();
    load_sample(&live.setup, sum)
        .await
        .expect("the sum sample loads");
    let stamp = asudf::samples::find("stamp").unwrap();
    live.setup
        .handle
        .call(Request::PutModule {
            name: stamp.module.into(),
            source: stamp.source.into(),
        })
        .await
        .0
        .expect("stamp.lua registers");

    // The aggregation: its value, and the sandbox's stage counts.
    live.kind(FormKind::Aggregate).await;
    live.set(Field::Set, "sales").await;
    live.set(Field::Where, "amount BETWEEN 10 AND 50").await;
    live.set(Field::Module, "sum").await;
    live.set(Field::Function, "total").await;
    live.set(Field::Args, "").await;
    let entry = live.run().await;
    let Some(Detail::Aggregate(view)) = entry.run.map(|r| r.detail) else {
        panic!("an aggregation result")
    };
    // Amounts are i * 37 % 100 over 1,000 records: 10 of each of 10..=50.
    assert_eq!(view.values, vec![Value::Int(12_300)]);
    let Stages::Ready(report) = &view.stages else {
        panic!("the stage view: {:?}", view.stages)
    };
    assert_eq!(report.stages[0].stage, "map(amount)");
    assert_eq!(report.stages[0].values_in, 410, "{report:?}");
    assert!(report.partitions > 0);
    let screen = live.screen();
    for text in [
        "= 12300",
        "map(amount)",
        "reduce(add)",
        "client reduce",
        "partitions ran",
    ] {
        assert!(screen.contains(text), "{text}:\n{screen}");
    }

    // The background job: the gauge reaches 100 % with its counters.
    live.kind(FormKind::Background).await;
    live.set(Field::Where, "").await;
    live.set(Field::Module, "stamp").await;
    live.set(Field::Function, "mark").await;
    live.set(Field::Args, "'checked'").await;
    let entry = live.run().await;
    let Some(Detail::Background(job)) = entry.run.map(|r| r.detail) else {
        panic!("a background result")
    };
    let info = job.info.expect("progress was read");
    assert_eq!(info.status(), "done(ok)");
    assert_eq!((info.succeeded(), info.failed()), (1000, 0));
    let screen = live.screen();
    assert!(screen.contains("100.00%"), "{screen}");
    assert!(screen.contains("succeeded 1000 · failed 0"), "{screen}");

    // The query kind shows the records the job changed.
    live.kind(FormKind::Query).await;
    live.set(Field::Where, "amount = 7").await;
    live.set(Field::Bins, "amount, stamp").await;
    live.set(Field::MaxRecords, "").await;
    let entry = live.run().await;
    assert!(
        matches!(
            &entry.state,
            CallState::Done {
                outcome: Ok(Outcome::Streamed { count: 10, .. }),
                ..
            }
        ),
        "{:?}",
        entry.state
    );
    let Some(Detail::Query(rows)) = entry.run.map(|r| r.detail) else {
        panic!("a query result")
    };
    assert!(rows.iter().all(|r| r.view.bins
        == vec![
            ("amount".to_string(), Value::Int(7)),
            ("stamp".to_string(), Value::from("checked"))
        ]));
    let screen = live.screen();
    assert!(screen.contains("10 records · T"), "{screen}");
    assert!(screen.contains("{amount: 7, stamp: '"), "{screen}");
}

const BUMP: &str = "function bump(rec, n)
  if not aerospike:exists(rec) then error('no such record') end
  rec['n'] = (rec['n'] or 0) + n
  aerospike:update(rec)
  return rec['n']
end
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_apply_over_three_keys_one_missing_shows_a_row_each() {
    let mut live = Live::start().await;
    for (key, n) in [("a", 5), ("b", 1)] {
        live.setup
            .handle
            .call(Request::PutRecord {
                key: RecordKey {
                    ns: "test".into(),
                    set: Some("demo".into()),
                    key: Value::from(key),
                },
                bins: vec![("n".into(), Value::Int(n))],
                send_key: true,
            })
            .await
            .0
            .expect("the record is written");
    }
    live.act(Action::FileLoaded {
        path: PathBuf::from("/nonexistent/bump.lua"),
        result: Ok(BUMP.to_string()),
    })
    .await;
    live.key(KeyCode::F(9)).await;
    live.wait("registered", |app| {
        app.status
            .as_ref()
            .is_some_and(|s| s.text.starts_with("registered"))
    })
    .await;

    live.kind(FormKind::Batch).await;
    live.set(Field::Keys, "'a', 'missing', 'b'").await;
    live.set(Field::Module, "bump").await;
    live.set(Field::Function, "bump").await;
    live.set(Field::Args, "10").await;
    let entry = live.run().await;
    let CallState::Done {
        outcome: Ok(Outcome::BatchApplied(rows)),
        ..
    } = &entry.state
    else {
        panic!("per-key rows: {:?}", entry.state)
    };
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].result, Ok(Value::Int(15)));
    assert_eq!(rows[2].result, Ok(Value::Int(11)));
    let failure = rows[1].result.clone().unwrap_err();
    assert!(failure.message.contains("no such record"), "{failure:?}");
    let screen = live.screen();
    assert!(screen.contains("3 keys · 1 failed"), "{screen}");
    assert!(screen.contains("'a'       ✓ 15"), "{screen}");
    assert!(screen.contains("'missing' ✗"), "{screen}");
    assert!(screen.contains("'b'       ✓ 11"), "{screen}");
    // The failing row points into the module: its line is marked.
    assert_eq!(live.app.editor.marks.first().map(|m| m.line), Some(2));
}

const FAILING_STREAM: &str = "local function broken(rec)
  return rec['amount'] + nil
end

function run(stream)
  return stream : map(broken)
end
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_stream_function_marks_its_line() {
    let mut live = Live::start().await;
    let sum = asudf::samples::find("sum").unwrap();
    load_sample(&live.setup, sum)
        .await
        .expect("the sum sample loads");
    live.act(Action::FileLoaded {
        path: PathBuf::from("/nonexistent/failing.lua"),
        result: Ok(FAILING_STREAM.to_string()),
    })
    .await;
    live.key(KeyCode::F(9)).await;
    live.wait("registered", |app| {
        app.status
            .as_ref()
            .is_some_and(|s| s.text.starts_with("registered"))
    })
    .await;
    live.kind(FormKind::Aggregate).await;
    live.set(Field::Set, "sales").await;
    live.set(Field::Where, "").await;
    live.set(Field::Module, "failing").await;
    live.set(Field::Function, "run").await;
    live.set(Field::Args, "").await;
    let entry = live.run().await;
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the aggregation fails: {:?}", entry.state)
    };
    assert_eq!(
        failure.location,
        Some(("failing.lua".to_string(), 2)),
        "{failure:?}"
    );
    assert_eq!(live.app.editor.marks.first().map(|m| m.line), Some(2));
    let screen = live.screen();
    assert!(screen.contains("at failing.lua line 2"), "{screen}");
}

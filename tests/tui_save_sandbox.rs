//! F7 against a real sandbox: a session of batch applies, an aggregation, a
//! background job and queries through the client task and the wire
//! protocol; the file it saves then passes when the test runner replays it
//! on a fresh sandbox.

use std::path::Path;

use aerospike::Value;
use asudf::client::{IndexSpec, Outcome, Request};
use asudf::testing::{self, format};
use asudf::tui::Action;
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::results::CallState;
use asudf::tui::panes::runs::Detail;
use crossterm::event::{KeyCode, KeyModifiers};

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

mod common;
use common::live::OnServer;

// The runs of this file's flows.
impl OnServer {
    /// Runs the form; its outcome once complete.
    async fn outcome(&mut self) -> Option<Outcome> {
        match self.run().await.state {
            CallState::Done { outcome, .. } => outcome.ok(),
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
        self.outcome().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_of_every_kind_passes_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("session.lua");
    std::fs::write(&module, MODULE).unwrap();
    // A fresh sandbox that already has an index on `n`.
    let mut live = OnServer::start(160, 45, async |setup| {
        setup
            .handle
            .call(Request::CreateIndex(IndexSpec::new(
                "test".into(),
                Some("demo".into()),
                "n",
                "numeric",
                None,
                Some("demo_n"),
            )))
            .await
            .0
            .expect("the index is created");
    })
    .await;
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
        live.outcome().await,
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

impl OnServer {
    /// F7 on `file`; the text written.
    async fn save_test(&mut self, file: &Path) -> String {
        self.key(KeyCode::F(7)).await;
        self.with(KeyModifiers::CONTROL, 'u').await;
        for c in file.display().to_string().chars() {
            self.key(KeyCode::Char(c)).await;
        }
        self.key(KeyCode::Enter).await;
        std::fs::read_to_string(file).expect("the file is written")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_loaded_samples_saves_their_records_and_passes_when_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = OnServer::start(160, 45, async |_| {}).await;
    // sum (the 2nd sample) with its where clause, then stamp (the 4th).
    live.load_sample(1).await;
    let sum = live.run().await;
    assert!(
        matches!(sum.state, CallState::Done { outcome: Ok(_), .. }),
        "{sum:?}"
    );
    live.load_sample(3).await;
    let stamp = live.run().await;
    assert!(
        matches!(stamp.state, CallState::Done { outcome: Ok(_), .. }),
        "{stamp:?}"
    );

    let file = dir.path().join("session.udftest.toml");
    let text = live.save_test(&file).await;
    let status = live.app.status.as_ref().map(|s| s.text.clone());
    assert_eq!(status, Some(format!("saved {}", file.display())), "{text}");
    let scenario = format::load(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // The samples' records, once: both wrote the same 1000 sales.
    assert_eq!(scenario.records.len(), 1000, "{text}");
    assert!(
        text.contains("# The records sample sum wrote (1000 in test.sales) are written first."),
        "{text}"
    );
    assert_eq!(scenario.steps.len(), 2, "{text}");

    let reports = testing::run_files(vec![scenario], None).await;
    let report = &reports[0];
    assert!(
        report.connection.is_none() && report.setup.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.passed(), 2, "{report:?}");
    assert_eq!(report.failed(), 0, "{report:?}");
}

/// A series (not saved) that changed a record between two saved steps on it
/// would leave the later step expecting a state the file never makes: that
/// step is left out, and the file passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_after_a_left_out_series_changed_its_record_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = OnServer::start(160, 45, async |_| {}).await;
    // The bundled counter.lua, registered with F9.
    live.key(KeyCode::F(9)).await;
    live.wait("registered", |app| {
        app.modules.entries.iter().any(|m| m.name == "counter.lua")
    })
    .await;
    live.set(Field::Key, "'k3'").await;
    live.set(Field::Module, "counter").await;
    live.set(Field::Function, "increment").await;
    live.set(Field::Args, "'c2', 1").await;
    for times in ["1", "5", "1"] {
        live.set(Field::Times, times).await;
        let entry = live.run().await;
        assert!(
            matches!(entry.state, CallState::Done { outcome: Ok(_), .. }),
            "{entry:?}"
        );
    }

    let file = dir.path().join("session.udftest.toml");
    let text = live.save_test(&file).await;
    let status = live.app.status.as_ref().map(|s| s.text.clone()).unwrap();
    assert!(
        status.ends_with("(left out: #2 run ×N; #3 record changed)"),
        "{status}"
    );
    let scenario = format::load(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(scenario.steps.len(), 1, "{text}");
    let reports = testing::run_files(vec![scenario], None).await;
    let report = &reports[0];
    assert!(
        report.connection.is_none() && report.setup.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        (report.passed(), report.failed()),
        (1, 0),
        "{report:?}\n{text}"
    );
}

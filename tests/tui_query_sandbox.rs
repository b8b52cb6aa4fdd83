//! The apply form's query-path kinds against a real sandbox server, through
//! the client task and the wire protocol: the sum sample's aggregation with
//! its stage counts, the stamp sample as a background job to 100 %, the
//! stamped records browsed with the query kind, and a batch apply over
//! three keys, one missing.

use std::path::PathBuf;

use aerospike::Value;
use asudf::client::{Outcome, RecordKey, Request};
use asudf::commands::sample::load_sample;
use asudf::tui::Action;
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::results::CallState;
use asudf::tui::panes::runs::{Detail, Stages};
use crossterm::event::{KeyCode, KeyModifiers};

mod common;
use common::live::OnServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sum_aggregation_then_stamp_job_then_browse_the_stamped_records() {
    let mut live = OnServer::start(160, 45, async |_| {}).await;
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

    // On a set the namespace never held the server started nothing: an
    // error, not an empty result.
    live.set(Field::Set, "neverheld").await;
    live.set(Field::Where, "").await;
    let entry = live.run().await;
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the aggregation fails: {:?}", entry.state)
    };
    assert_eq!(failure.code, 2, "{failure:?}");
    assert!(
        failure
            .message
            .contains("set 'neverheld' has never held a record")
    );
    live.set(Field::Set, "sales").await;

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
    let mut live = OnServer::start(160, 45, async |_| {}).await;
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
    let mut live = OnServer::start(160, 45, async |_| {}).await;
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
    // The stage view shows how far the stream got: the first partition
    // failed on its first record.
    let Some(Detail::Aggregate(view)) = entry.run.as_ref().map(|r| &r.detail) else {
        panic!("an aggregation result")
    };
    let Stages::Ready(report) = &view.stages else {
        panic!("the stage view: {:?}", view.stages)
    };
    let counts: Vec<(&str, u64, u64)> = report
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.values_in, s.values_out))
        .collect();
    assert_eq!(counts, [("map(broken)", 1, 0)], "{report:?}");
    assert_eq!(report.partitions, 1, "{report:?}");
    assert!(screen.contains("1 partition ran"), "{screen}");
    assert!(screen.contains("map(broken)"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregation_refused_at_its_start_shows_no_stage_counts() {
    let mut live = OnServer::start(160, 45, async |_| {}).await;
    // groupby (the 3rd sample) runs with its stage counts.
    live.load_sample(2).await;
    let first = live.run().await;
    let Some(Detail::Aggregate(view)) = first.run.map(|r| r.detail) else {
        panic!("an aggregation result")
    };
    assert!(matches!(view.stages, Stages::Ready(_)), "{:?}", view.stages);

    // No string index on amount: the server refuses the query before any
    // job starts, and the run before's job is not this one's.
    live.set(Field::Where, "amount = 'x'").await;
    let entry = live.run().await;
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the aggregation fails: {:?}", entry.state)
    };
    assert_eq!(failure.code, 201, "{failure:?}");
    let Some(Detail::Aggregate(view)) = entry.run.as_ref().map(|r| &r.detail) else {
        panic!("an aggregation result")
    };
    assert_eq!(view.stages, Stages::NotRun);
    // Only the first run's stage view is on the screen.
    let screen = live.screen();
    assert!(screen.contains("Index not found"), "{screen}");
    assert_eq!(screen.matches("partitions ran").count(), 1, "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_job_shows_as_aborted_with_the_progress_it_reached() {
    let mut live = OnServer::start(160, 45, async |_| {}).await;
    // stamp (the 4th sample), slowed to 10 records a second.
    live.load_sample(3).await;
    live.set(Field::Rps, "10").await;
    live.key(KeyCode::F(5)).await;
    let view = |app: &asudf::tui::app::App| match app.results.entries.last()?.run.as_ref()?.detail {
        Detail::Background(ref job) => Some(job.clone()),
        _ => None,
    };
    let job = |app: &asudf::tui::app::App| view(app)?.info;
    // Some progress read while it runs, which the console must keep.
    live.wait("some progress read", |app| {
        job(app).is_some_and(|i| !i.is_done() && i.percent() > 0.0)
    })
    .await;
    let read = view(&live.app).unwrap().percent();
    live.with(KeyModifiers::CONTROL, 'k').await;
    live.wait("the job ended", |app| job(app).is_some_and(|i| i.is_done()))
        .await;
    let info = job(&live.app).unwrap();
    assert_eq!(info.status(), "done(user-aborted)");
    // The server reads 100 for a stopped job; the console shows how far it got.
    assert_eq!(info.percent(), 100.0, "{info:?}");
    let shown = view(&live.app).unwrap().percent();
    assert!(read <= shown && shown < 100.0, "{read} then {shown}");
    let screen = live.screen();
    assert!(screen.contains(&format!("{shown:>6.2}%")), "{screen}");
    let header = screen
        .lines()
        .find(|l| l.contains("#1 "))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(header.contains("✗ T") && !header.contains("✓"), "{screen}");
    assert!(screen.contains("done(user-aborted)"), "{screen}");
    assert!(!screen.contains("100.00%"), "{screen}");
    // The jobs list agrees.
    live.key(KeyCode::F(12)).await;
    live.wait("the jobs listed", |app| app.jobs.loaded_once)
        .await;
    let screen = live.screen();
    assert!(screen.contains("done(user-aborted)"), "{screen}");
    assert!(!screen.contains("100.0%"), "{screen}");
}

/// A rate above the server's background-query-max-rps: the console says
/// what the limit is, as `asudf execute` does, not the bare "Parameter
/// error" the client crate gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_job_above_the_highest_rate_names_the_limit() {
    let mut live = OnServer::start(160, 45, async |_| {}).await;
    // stamp (the 4th sample), asking for more than the default 10000.
    live.load_sample(3).await;
    live.set(Field::Rps, "10001").await;
    let entry = live.run().await;
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the job is refused: {:?}", entry.state)
    };
    assert_eq!(failure.code, 4, "{failure:?}");
    assert!(
        failure.message.starts_with(
            "a rate of 10001 records per second is refused (Parameter error): a background job \
             may ask for at most the server's background-query-max-rps"
        ),
        "{failure:?}"
    );
    let screen = live.screen();
    assert!(
        screen.contains("a rate of 10001 records per second"),
        "{screen}"
    );
}

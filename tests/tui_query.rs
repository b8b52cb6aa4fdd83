//! The apply form's query-path kinds (aggregate, background, query, batch)
//! and their results, through the reducer: keys in, requests and screens
//! out, with the client task's answers and items given by the test.

use std::time::Duration;

use aerospike::Value;
use asudf::client::query::parse_jobs;
use asudf::client::{BatchRow, Failure, FailureKind, Outcome, RecordView, Request, StreamItem};
use asudf::tui::Action;
use asudf::tui::app::{Effect, JOB_POLL};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::panes::runs::Detail;
use asudf::where_clause::{self, Predicate};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

mod common;
use common::console::Console;

/// Connected (to a sandbox or a cluster), the modules listing answered: it
/// is not what these tests are about.
fn console(width: u16, height: u16, sandbox: bool) -> Console {
    let mut console = Console::new(width, height);
    console.connect(sandbox);
    console.modules_listed(&[]);
    console
}

fn is_aggregate(r: &Request) -> bool {
    matches!(r, Request::Aggregate(_))
}
fn is_query(r: &Request) -> bool {
    matches!(r, Request::Query(_))
}
fn is_execute(r: &Request) -> bool {
    matches!(r, Request::Execute(_))
}
fn is_batch(r: &Request) -> bool {
    matches!(r, Request::BatchApply(_))
}
fn is_job_poll(r: &Request) -> bool {
    matches!(r, Request::Jobs { id: Some(_) })
}
fn is_job_list(r: &Request) -> bool {
    matches!(r, Request::Jobs { id: None })
}
fn is_stage_read(r: &Request) -> bool {
    matches!(r, Request::Info { command } if command.starts_with("sandbox-stream:"))
}

/// The sum sample's form: an aggregation over test.sales.
fn sum_form(console: &mut Console) {
    console.kind(FormKind::Aggregate);
    console.set(Field::Set, "sales");
    console.set(Field::Where, "amount BETWEEN 10 AND 50");
    console.set(Field::Module, "sum");
    console.set(Field::Function, "total");
    console.set(Field::Args, "");
}

fn streamed(count: u64) -> Result<Outcome, Failure> {
    Ok(Outcome::Streamed {
        count,
        elapsed: Duration::from_millis(3),
    })
}

/// What `query-show` lists: jobs of other kinds and sets, an older run of
/// the same aggregation, then ours (newest last, as the sandbox lists them).
fn jobs_listed() -> Result<Outcome, Failure> {
    let reply = [
        "trid=11:ns=test:set=sales:rps=0:active-threads=0:status=done(ok):job-progress=100.00:job-type=aggregation",
        "trid=12:ns=test:set=other:rps=0:active-threads=0:status=done(ok):job-progress=100.00:job-type=aggregation",
        "trid=13:ns=test:set=sales:rps=0:active-threads=0:status=done(ok):job-progress=100.00:job-type=basic",
        "trid=14:ns=test:set=sales:rps=0:active-threads=0:status=done(ok):job-progress=100.00:job-type=aggregation",
    ]
    .join(";");
    Ok(Outcome::Jobs(parse_jobs(&reply)))
}

/// A `sandbox-stream` value: map then aggregate then reduce, over 41 records
/// in 3 partitions, with a log line; `udf` names the stream.
fn stage_reply(udf: &str) -> Result<Outcome, Failure> {
    stage_reply_done(udf, true)
}

fn stage_reply_done(udf: &str, done: bool) -> Result<Outcome, Failure> {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    Ok(Outcome::Info(format!(
        "done={done};partitions=3;stages={}:41:41,{}:41:3,{}:3:3;logs=info:{};udf={}",
        b64("map(amount_of)"),
        b64("aggregate(add)"),
        b64("reduce(add)"),
        b64("summing 41 sales"),
        b64(udf)
    )))
}

#[test]
fn each_kind_builds_its_request_from_the_form() {
    let mut console = console(120, 40, true);
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    let Request::Aggregate(call) = console.request(is_aggregate) else {
        unreachable!()
    };
    assert_eq!(call.scope.ns, "test");
    assert_eq!(call.scope.set.as_deref(), Some("sales"));
    let clause = call.scope.where_clause.expect("the where clause is sent");
    assert_eq!(clause.bin, "amount");
    assert_eq!(clause.predicate, Predicate::Between(10, 50));
    assert_eq!(
        (call.module.as_str(), call.function.as_str()),
        ("sum", "total")
    );
    assert!(call.args.is_empty());

    console.kind(FormKind::Background);
    console.set(Field::Module, "stamp.lua");
    console.set(Field::Function, "mark");
    console.set(Field::Args, "'checked'");
    console.set(Field::Where, "");
    console.set(Field::Rps, "500");
    console.key(KeyCode::F(5));
    let Request::Execute(call) = console.request(is_execute) else {
        unreachable!()
    };
    assert_eq!(call.module, "stamp", "the .lua suffix is dropped");
    assert_eq!(call.args, vec![Value::from("checked")]);
    assert_eq!(
        call.scope.where_clause, None,
        "an empty where reads every record"
    );
    assert_eq!(call.records_per_second, Some(500));

    console.kind(FormKind::Query);
    console.set(Field::Where, "stamp = 'checked'");
    console.set(Field::Bins, "amount, stamp");
    console.set(Field::MaxRecords, "20");
    console.key(KeyCode::F(5));
    let Request::Query(call) = console.request(is_query) else {
        unreachable!()
    };
    assert_eq!(
        call.bins,
        Some(vec!["amount".to_string(), "stamp".to_string()])
    );
    assert_eq!(call.max_records, Some(20));
    assert_eq!(
        call.scope.where_clause,
        Some(where_clause::parse("stamp = 'checked'").unwrap())
    );

    console.kind(FormKind::Batch);
    console.set(Field::Set, "demo");
    console.set(Field::Keys, "'a', 7, x'0a'");
    console.set(Field::Module, "counter");
    console.set(Field::Function, "increment");
    console.set(Field::Args, "'count', 1");
    console.key(KeyCode::F(5));
    let Request::BatchApply(call) = console.request(is_batch) else {
        unreachable!()
    };
    let keys: Vec<Value> = call.keys.iter().map(|k| k.key.clone()).collect();
    assert_eq!(
        keys,
        vec![Value::from("a"), Value::Int(7), Value::Blob(vec![0x0a])]
    );
    assert!(
        call.keys
            .iter()
            .all(|k| k.ns == "test" && k.set.as_deref() == Some("demo"))
    );
    assert_eq!(call.args, vec![Value::from("count"), Value::Int(1)]);

    // The record kind still applies to one key, with the fields it had.
    console.kind(FormKind::Record);
    console.key(KeyCode::F(5));
    let Request::Apply(call) = console.request(|r| matches!(r, Request::Apply(_))) else {
        unreachable!()
    };
    assert_eq!(call.key.key, Value::from("k1"));

    // The history keeps each form's kind.
    console.ctrl('p');
    assert_eq!(console.app.apply.kind, FormKind::Record);
    console.ctrl('p');
    assert_eq!(console.app.apply.kind, FormKind::Batch);
    console.ctrl('p');
    assert_eq!(console.app.apply.kind, FormKind::Query);
    assert_eq!(console.app.apply.value(Field::Bins), "amount, stamp");
}

#[test]
fn bad_where_or_keys_show_the_column_and_send_nothing() {
    let mut console = console(120, 40, true);
    sum_form(&mut console);
    console.set(Field::Where, "amount BETWEEN 10 50");
    let screen = console.screen();
    assert!(screen.contains("where: column 19:"), "{screen}");
    console.key(KeyCode::F(5));
    assert!(!console.sent.iter().any(|(_, r)| is_aggregate(r)));
    let status = console.app.status.clone().expect("a message says why");
    assert!(
        status.error && status.text.contains("column 19"),
        "{status:?}"
    );
    insta::assert_snapshot!("where_error", console.screen());

    console.kind(FormKind::Batch);
    console.set(Field::Keys, "'a', [1], 'c'");
    let screen = console.screen();
    assert!(
        screen.contains("keys: column 6: a key is an integer"),
        "{screen}"
    );
    console.key(KeyCode::F(5));
    console.set(Field::Keys, "'a' 'b'");
    assert!(console.screen().contains("keys: column 5: expected ','"));
    console.key(KeyCode::F(5));
    assert!(!console.sent.iter().any(|(_, r)| is_batch(r)));
    assert_eq!(console.app.results.entries.len(), 0, "nothing ran");
}

/// A column of keys pasted into the keys field (one per line, as
/// `--keys-from` reads them) is a list of them, not one key run together.
#[test]
fn a_pasted_column_of_keys_is_a_list() {
    let mut console = console(120, 40, true);
    console.kind(FormKind::Batch);
    console.set(Field::Keys, "");
    console.act(Action::Paste("1\n2\r\n'three'\n".into()));
    assert_eq!(console.app.apply.value(Field::Keys), "1, 2, 'three'");
    console.key(KeyCode::F(5));
    let batch = console.sent.iter().find(|(_, r)| is_batch(r));
    assert!(format!("{batch:?}").contains("three"), "{batch:?}");
}

#[test]
fn a_long_key_list_is_checked_once_per_edit_and_runs_every_key() {
    let mut console = console(120, 40, true);
    console.kind(FormKind::Batch);
    console.set(Field::Keys, "");
    let list: Vec<String> = (1..=3000).map(|n| n.to_string()).collect();
    console.act(Action::Paste(list.join(", ")));
    console.screen();
    let checks = console.app.apply.checks_made();
    // Frames drawn while nothing is edited answer from the cache.
    for _ in 0..3 {
        console.act(Action::Resize(120, 40)); // a whole frame each
        console.screen();
    }
    assert_eq!(
        console.app.apply.checks_made(),
        checks,
        "drawing re-checked"
    );
    console.type_text(",");
    let screen = console.screen();
    assert!(
        screen.contains("keys: column 16893: expected a key"),
        "{screen}"
    );
    assert_eq!(
        console.app.apply.checks_made(),
        checks + 1,
        "one edit, one check"
    );
    console.key(KeyCode::Backspace);
    console.key(KeyCode::F(5));
    let Request::BatchApply(call) = console.request(is_batch) else {
        unreachable!()
    };
    assert_eq!(call.keys.len(), 3000);
    assert_eq!(call.keys[2999].key, Value::Int(3000));
}

#[test]
fn aggregate_values_show_as_they_arrive_then_the_stage_view() {
    for (width, height) in [(80, 24), (160, 45)] {
        let mut console = console(width, height, true);
        sum_form(&mut console);
        console.key(KeyCode::F(5));
        // The focus follows the result at a narrow size, where panes stack.
        console.act(Action::Key(KeyEvent::new(
            KeyCode::Char('4'),
            KeyModifiers::ALT,
        )));
        console.item(is_aggregate, StreamItem::Value(Value::Int(1230)));
        let screen = console.screen();
        assert!(
            screen.contains("= 1230"),
            "the first value shows at once:\n{screen}"
        );
        assert!(screen.contains("1 value so far"), "{screen}");
        console.answer(is_aggregate, streamed(1));
        // On the sandbox: the newest aggregation on test.sales is asked for its stages.
        console.answer(is_job_list, jobs_listed());
        let Request::Info { command } = console.request(is_stage_read) else {
            unreachable!()
        };
        assert_eq!(command, "sandbox-stream:id=14");
        console.answer(is_stage_read, stage_reply("sum.total"));
        let screen = console.screen();
        for text in [
            "1 value · T",
            "3 partitions ran",
            "map(amount_of)",
            "client reduce",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
        insta::assert_snapshot!(format!("stage_view_{width}x{height}"), screen);
    }
}

#[test]
fn the_stage_view_skips_another_streams_run() {
    let mut console = console(160, 45, true);
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    console.answer(is_aggregate, streamed(0));
    console.answer(is_job_list, jobs_listed());
    // The newest one ran another function: the next newest is checked.
    console.answer(is_stage_read, stage_reply("sum.other"));
    let Request::Info { command } = console.request(is_stage_read) else {
        unreachable!()
    };
    assert_eq!(command, "sandbox-stream:id=11");
    console.answer(is_stage_read, stage_reply("sum.other"));
    let screen = console.screen();
    assert!(
        screen.contains("another aggregation ran meanwhile"),
        "{screen}"
    );
    assert!(!console.sent.iter().any(|(_, r)| is_stage_read(r)));
}

#[test]
fn stage_counts_of_a_run_still_ending_are_read_again_on_the_tick() {
    let mut console = console(160, 45, true);
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    console.answer(is_aggregate, streamed(1));
    console.answer(is_job_list, jobs_listed());
    console.answer(is_stage_read, stage_reply_done("sum.total", false));
    assert!(console.screen().contains("(still running)"));
    assert!(
        !console.sent.iter().any(|(_, r)| is_stage_read(r)),
        "not at once"
    );
    assert!(console.app.next_wake().is_some());
    console.tick(Duration::from_millis(150));
    let Request::Info { command } = console.request(is_stage_read) else {
        unreachable!()
    };
    assert_eq!(command, "sandbox-stream:id=14", "the same run");
    console.answer(is_stage_read, stage_reply("sum.total"));
    assert!(!console.screen().contains("(still running)"));
    console.tick(Duration::from_millis(400));
    assert!(
        !console.sent.iter().any(|(_, r)| is_stage_read(r)),
        "done: no more reads"
    );
}

#[test]
fn on_a_cluster_the_stage_view_needs_the_sandbox() {
    let mut console = console(160, 45, false);
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    console.item(is_aggregate, StreamItem::Value(Value::Int(7)));
    console.answer(is_aggregate, streamed(1));
    assert!(
        !console.sent.iter().any(|(_, r)| is_job_list(r)),
        "no stage read"
    );
    let screen = console.screen();
    assert!(screen.contains("= 7"), "{screen}");
    assert!(screen.contains("stage view: needs the sandbox"), "{screen}");
}

#[test]
fn a_failing_stream_function_marks_its_editor_line() {
    let mut console = console(120, 40, true);
    sum_form(&mut console);
    console.set(Field::Module, "counter");
    console.key(KeyCode::F(5));
    console.answer(
        is_aggregate,
        Err(Failure {
            kind: FailureKind::Server,
            code: 100,
            message: "/opt/udf/counter.lua:4: attempt to perform arithmetic on a nil value".into(),
            location: Some(("counter.lua".into(), 4)),
            logs: vec![],
        }),
    );
    assert_eq!(console.app.editor.marks.len(), 1);
    assert_eq!(console.app.editor.marks[0].line, 4);
    let screen = console.screen();
    assert!(screen.contains("at counter.lua line 4"), "{screen}");
    // Its stages and logs are still read: they show how far it got.
    assert!(console.sent.iter().any(|(_, r)| is_job_list(r)));
}

#[test]
fn an_aggregation_that_ended_without_its_answer_says_nothing_of_more_to_come() {
    let cancelled = Failure::cancelled();
    let failed = Failure {
        kind: FailureKind::Server,
        code: 100,
        message: "/opt/udf/sum.lua:4: attempt to perform arithmetic on a nil value".into(),
        location: Some(("sum.lua".into(), 4)),
        logs: vec![],
    };
    for (received, end) in [(0, failed), (2, cancelled)] {
        let mut console = console(160, 45, false);
        sum_form(&mut console);
        console.key(KeyCode::F(5));
        for i in 0..received {
            console.item(is_aggregate, StreamItem::Value(Value::Int(i)));
        }
        let screen = console.screen();
        assert!(screen.contains("so far…"), "{screen}");
        console.answer(is_aggregate, Err(end));
        let screen = console.screen();
        assert!(!screen.contains("so far"), "{screen}");
        assert!(
            screen.contains(&format!("  {received} values received")),
            "{screen}"
        );
    }
}

fn job_entry(status: &str, percent: &str, succeeded: u64, failed: u64) -> Outcome {
    Outcome::Jobs(parse_jobs(&format!(
        "trid=7:ns=test:set=sales:rps=10000:active-threads=1:status={status}:job-progress={percent}:run-time=40:time-since-done=0:recs-throttled=0:recs-filtered-meta=1:recs-filtered-bins=2:recs-succeeded={succeeded}:recs-failed={failed}:from=127.0.0.1+5000:job-type=background-udf"
    )))
}

fn background_form(console: &mut Console) {
    console.kind(FormKind::Background);
    console.set(Field::Set, "sales");
    console.set(Field::Module, "stamp");
    console.set(Field::Function, "mark");
    console.set(Field::Args, "'checked'");
}

#[test]
fn a_background_job_polls_its_progress_and_ctrl_k_aborts_it() {
    let mut console = console(120, 40, true);
    background_form(&mut console);
    console.key(KeyCode::F(5));
    console.answer(is_execute, Ok(Outcome::JobStarted { id: 7 }));
    assert_eq!(console.request(is_job_poll), Request::Jobs { id: Some(7) });
    console.answer(is_job_poll, Ok(job_entry("active(ok)", "40.00", 400, 0)));
    assert!(console.screen().contains("40.00%"));
    // The next read waits for the tick, and the loop wakes for it.
    assert!(!console.sent.iter().any(|(_, r)| is_job_poll(r)));
    let wake = console.app.next_wake().expect("a poll is due");
    assert!(wake <= console.start + JOB_POLL, "{wake:?}");
    console.tick(JOB_POLL / 2);
    assert!(!console.sent.iter().any(|(_, r)| is_job_poll(r)), "not yet");
    console.tick(JOB_POLL + Duration::from_millis(10));
    assert_eq!(console.request(is_job_poll), Request::Jobs { id: Some(7) });

    console.ctrl('k');
    assert_eq!(
        console.request(|r| matches!(r, Request::AbortJob { .. })),
        Request::AbortJob { id: 7 }
    );
    assert!(
        !console
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Cancel(_))),
        "the job is aborted on the server, not a request cancelled"
    );
    console.answer(
        |r| matches!(r, Request::AbortJob { .. }),
        Ok(Outcome::Info("ok".into())),
    );
    console.answer(
        is_job_poll,
        Ok(job_entry("done(user-aborted)", "100.00", 410, 0)),
    );
    let screen = console.screen();
    assert!(screen.contains("done(user-aborted)"), "{screen}");
    // Done: no more reads, and nothing animates.
    console.tick(JOB_POLL * 4);
    assert!(!console.sent.iter().any(|(_, r)| is_job_poll(r)));
    assert!(console.app.results.in_flight().is_none());
}

/// Why the newest background job's reads stopped.
fn job_error(console: &Console) -> Option<String> {
    match &console.app.results.entries.last()?.run.as_ref()?.detail {
        Detail::Background(job) => job.error.clone(),
        _ => None,
    }
}

#[test]
fn a_job_the_server_never_started_says_why_instead_of_started() {
    let mut console = console(120, 40, true);
    background_form(&mut console);
    console.set(Field::Set, "never");
    console.key(KeyCode::F(5));
    console.answer(is_execute, Ok(Outcome::JobStarted { id: 7 }));
    let not_found = Failure {
        kind: FailureKind::Server,
        code: 2,
        message: "not found".into(),
        location: None,
        logs: vec![],
    };
    console.answer(is_job_poll, Err(not_found));
    let screen = console.screen();
    assert!(
        screen.contains("job 7: the server started no job"),
        "{screen}"
    );
    assert!(!screen.contains("job 7 started"), "{screen}");
    // No job ran: a failure, as `asudf execute` exits 4 for it.
    assert_eq!(status_mark(&screen), "✗", "{screen}");
    assert_eq!(
        job_error(&console).as_deref(),
        Some("the server started no job: set 'never' has never held a record (not found)")
    );
    console.tick(JOB_POLL * 4);
    assert!(
        !console.sent.iter().any(|(_, r)| is_job_poll(r)),
        "not read again"
    );
    assert!(console.app.results.in_flight().is_none());
}

#[test]
fn a_job_read_lost_with_the_connection_is_read_again_after_a_reconnect() {
    let mut console = console(120, 40, true);
    background_form(&mut console);
    console.key(KeyCode::F(5));
    console.answer(is_execute, Ok(Outcome::JobStarted { id: 7 }));
    console.answer(is_job_poll, Err(Failure::connection("connection reset")));
    let screen = console.screen();
    assert!(screen.contains("job 7: cannot read the job's"), "{screen}");
    assert_eq!(
        job_error(&console).as_deref(),
        Some("cannot read the job's progress: connection reset")
    );
    console.act(Action::Client(asudf::client::Event::Connection(
        asudf::client::ConnectionState::Lost {
            reason: "connection reset".into(),
        },
    )));
    console.tick(JOB_POLL * 4);
    assert!(!console.sent.iter().any(|(_, r)| is_job_poll(r)));
    console.connect(true);
    console.tick(JOB_POLL * 5);
    assert_eq!(console.request(is_job_poll), Request::Jobs { id: Some(7) });
    console.answer(is_job_poll, Ok(job_entry("done(ok)", "100.00", 10, 0)));
    let screen = console.screen();
    assert!(screen.contains("job 7 · done(ok)"), "{screen}");
    assert!(!screen.contains("cannot read"), "{screen}");
}

#[test]
fn the_job_gauge_while_running_and_when_done() {
    for (width, height) in [(80, 24), (160, 45)] {
        let mut console = console(width, height, true);
        background_form(&mut console);
        console.key(KeyCode::F(5));
        console.act(Action::Key(KeyEvent::new(
            KeyCode::Char('4'),
            KeyModifiers::ALT,
        )));
        console.answer(is_execute, Ok(Outcome::JobStarted { id: 7 }));
        console.answer(is_job_poll, Ok(job_entry("active(ok)", "62.50", 625, 0)));
        insta::assert_snapshot!(format!("job_running_{width}x{height}"), console.screen());
        console.tick(JOB_POLL * 2);
        console.answer(is_job_poll, Ok(job_entry("done(ok)", "100.00", 997, 3)));
        let screen = console.screen();
        assert!(screen.contains("100.00%"), "{screen}");
        assert!(
            screen.contains("succeeded 997 · failed 3 · filtered 3"),
            "{screen}"
        );
        insta::assert_snapshot!(format!("job_done_{width}x{height}"), screen);
    }
}

fn record(i: i64) -> StreamItem {
    StreamItem::Record {
        key: (i % 2 == 0).then(|| Value::from(format!("sale{i}"))),
        digest: [i as u8; 20],
        view: RecordView {
            bins: vec![
                ("amount".into(), Value::Int(i)),
                ("stamp".into(), Value::from("checked")),
            ],
            generation: 2,
            ttl: (i % 3 == 0).then_some(3600),
        },
    }
}

#[test]
fn query_records_list_scrolls_and_ctrl_k_cancels() {
    for (width, height) in [(80, 24), (160, 45)] {
        let mut console = console(width, height, true);
        console.kind(FormKind::Query);
        console.set(Field::Set, "sales");
        console.key(KeyCode::F(5));
        console.act(Action::Key(KeyEvent::new(
            KeyCode::Char('4'),
            KeyModifiers::ALT,
        )));
        console.item(is_query, record(1));
        assert!(console.screen().contains("1 record so far"));
        for i in 2..=25 {
            console.item(is_query, record(i));
        }
        console.answer(is_query, streamed(25));
        let screen = console.screen();
        assert!(screen.contains("25 records · T"), "{screen}");
        insta::assert_snapshot!(format!("query_list_{width}x{height}"), screen);
        // PageDown shows the next rows.
        console.key(KeyCode::PageDown);
        let screen = console.screen();
        assert!(screen.contains("rows 11–20 of 25"), "{screen}");
        assert!(screen.contains("'sale12'"), "{screen}");
    }

    // Ctrl-K cancels a query in flight (the client stops it on the server);
    // what arrived stays.
    let mut console = console(120, 40, true);
    console.kind(FormKind::Query);
    console.key(KeyCode::F(5));
    console.item(is_query, record(2));
    let tag = console.tag_of(is_query);
    console.ctrl('k');
    assert!(console.effects.contains(&Effect::Cancel(tag)));
    console.answer(is_query, Err(Failure::cancelled()));
    let screen = console.screen();
    assert!(
        screen.contains("'sale2'") && screen.contains("cancelled"),
        "{screen}"
    );
}

#[test]
fn a_batch_apply_shows_a_row_per_key() {
    for (width, height) in [(80, 24), (160, 45)] {
        let mut console = console(width, height, true);
        console.kind(FormKind::Batch);
        console.set(Field::Keys, "'a', 'b', 'missing'");
        console.set(Field::Function, "bump_existing");
        run_batch_failing_for_missing(
            &mut console,
            &[("a", 6), ("b", 1)],
            "counter.lua:9: no such record",
        );
        let screen = console.screen();
        assert!(screen.contains("3 keys · 1 failed"), "{screen}");
        assert!(screen.contains("'a'       ✓ 6"), "{screen}");
        assert!(screen.contains("'missing' ✗ error 100"), "{screen}");
        assert_eq!(console.app.editor.marks.first().map(|m| m.line), Some(9));
        insta::assert_snapshot!(format!("batch_table_{width}x{height}"), screen);
        // Copied as JSON: a row per key, typed values.
        console.key(KeyCode::Char('c'));
        let Some(Effect::Copy(json)) = console.effects.last() else {
            panic!("c copies the result")
        };
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(json["results"][0]["value"], serde_json::json!({"int": 6}));
        assert_eq!(json["results"][2]["ok"], serde_json::json!(false));
    }
}

/// The mark (✓, ! or ✗) before the first result's time (T in tests).
fn status_mark(screen: &str) -> String {
    let found: Vec<&str> = ["✓", "!", "✗"]
        .into_iter()
        .filter(|m| screen.contains(&format!("{m}\u{a0}T")) || screen.contains(&format!("{m} T")))
        .collect();
    assert_eq!(found.len(), 1, "{screen}");
    found[0].to_string()
}

#[test]
fn a_batch_is_a_failure_when_every_key_failed_and_a_warning_when_some_did() {
    // The CLI exits 4 when any key failed: never a ✓ then.
    for (ok, mark) in [(&[][..], "✗"), (&[("a", 6)][..], "!")] {
        let mut console = console(160, 45, true);
        console.kind(FormKind::Batch);
        console.set(Field::Function, "bump_existing");
        run_batch_failing_for_missing(&mut console, ok, "no such record");
        assert_eq!(status_mark(&console.screen()), mark);
    }
}

/// F5 on the batch form, the results pane focused, and the batch answered:
/// each of `ok` keys with its value, then key 'missing' failing at
/// counter.lua line 9 with `message`.
fn run_batch_failing_for_missing(console: &mut Console, ok: &[(&str, i64)], message: &str) {
    console.key(KeyCode::F(5));
    console.act(Action::Key(KeyEvent::new(
        KeyCode::Char('4'),
        KeyModifiers::ALT,
    )));
    let mut rows: Vec<BatchRow> = ok
        .iter()
        .map(|(key, value)| BatchRow {
            key: Value::from(*key),
            result: Ok(Value::Int(*value)),
        })
        .collect();
    rows.push(BatchRow {
        key: Value::from("missing"),
        result: Err(Failure {
            kind: FailureKind::Server,
            code: 100,
            message: message.into(),
            location: Some(("counter.lua".into(), 9)),
            logs: vec![],
        }),
    });
    console.answer(is_batch, Ok(Outcome::BatchApplied(rows)));
}

#[test]
fn an_expanded_batch_shows_each_rows_whole_error() {
    let mut console = console(80, 24, true);
    console.kind(FormKind::Batch);
    console.set(Field::Keys, "'a', 'missing'");
    console.set(Field::Function, "bump_existing");
    run_batch_failing_for_missing(
        &mut console,
        &[("a", 6)],
        "/opt/aerospike/usr/udf/lua/counter.lua:9: the record 'missing' does not exist yet: create it with counter.increment first",
    );
    // Folded, the row is cut to the pane.
    let screen = console.screen();
    assert!(screen.contains("'missing' ✗ error 100"), "{screen}");
    assert!(!screen.contains("increment first"), "{screen}");
    // Expanded, the whole error shows, wrapped over the rows below.
    console.key(KeyCode::Enter);
    let screen = console.screen();
    let words: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("create it with counter.increment first"),
        "{screen}"
    );
    assert!(words.contains("does not exist yet"), "{screen}");
}

/// An aggregation's long value shows folded; Enter opens it whole over as
/// many rows as it takes, as a record call's value, and folds it again.
#[test]
fn enter_expands_and_folds_an_aggregations_value() {
    let mut console = console(80, 30, false);
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    let region = |total| {
        Value::from(std::collections::HashMap::from([
            (Value::from("count"), Value::Int(250)),
            (Value::from("total"), Value::Int(total)),
        ]))
    };
    let regions = ["east", "west", "north", "south"]
        .into_iter()
        .zip([12500, 13500, 14500, 15500])
        .map(|(name, total)| (Value::from(name), region(total)));
    let value = Value::from(regions.collect::<std::collections::HashMap<_, _>>());
    console.item(is_aggregate, StreamItem::Value(value));
    console.answer(is_aggregate, streamed(1));
    let screen = console.screen();
    assert!(screen.contains("more} ⏎"), "folded, marked: {screen}");
    assert!(!screen.contains("15500"), "{screen}");

    console.alt('4');
    console.key(KeyCode::Enter);
    let screen = console.screen();
    for total in ["12500", "13500", "14500", "15500"] {
        assert!(screen.contains(total), "{total} shows: {screen}");
    }
    assert!(!screen.contains("more}"), "{screen}");

    console.key(KeyCode::Enter);
    let screen = console.screen();
    assert!(screen.contains("more} ⏎"), "folded again: {screen}");
}

#[test]
fn a_copied_job_id_is_a_json_string() {
    // Above 2^53: as a JSON number, jq and JavaScript would round it.
    let id = 18_354_546_278_278_244_983;
    let mut console = console(120, 40, true);
    background_form(&mut console);
    console.key(KeyCode::F(5));
    console.act(Action::Key(KeyEvent::new(
        KeyCode::Char('4'),
        KeyModifiers::ALT,
    )));
    console.answer(is_execute, Ok(Outcome::JobStarted { id }));
    console.key(KeyCode::Char('c'));
    let Some(Effect::Copy(json)) = console.effects.last() else {
        panic!("c copies the result")
    };
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(json["job"], serde_json::json!("18354546278278244983"));
}

/// Whether the first result's title ends with `mark` and `time` (a wrap
/// may put them on the next row).
fn shows_status(screen: &str, mark: &str, time: &str) -> bool {
    [" ", "\u{a0}"]
        .iter()
        .any(|space| screen.contains(&format!("{mark}{space}{time} ")))
}

#[test]
fn an_ended_job_shows_the_time_it_ran_not_its_start() {
    use asudf::tui::panes::results::real_time;
    // A background job aborted after 37.2 s: not its start's round trip.
    let mut console = console(160, 45, true);
    console.app.time_format = real_time;
    background_form(&mut console);
    console.key(KeyCode::F(5));
    console.answer(is_execute, Ok(Outcome::JobStarted { id: 7 }));
    console.answer(is_job_poll, Ok(job_entry("active(ok)", "40.00", 400, 0)));
    console.tick(Duration::from_millis(37_200));
    console.ctrl('k');
    console.answer(
        |r| matches!(r, Request::AbortJob { .. }),
        Ok(Outcome::Info("ok".into())),
    );
    console.answer(
        is_job_poll,
        Ok(job_entry("done(user-aborted)", "100.00", 410, 0)),
    );
    let screen = console.screen();
    assert!(shows_status(&screen, "✗", "37.2s"), "{screen}");
}

#[test]
fn a_cancelled_run_shows_the_time_it_ran() {
    use asudf::tui::panes::results::real_time;
    // An aggregation cancelled after 3 s: the cancel has no round trip.
    let mut console = console(160, 45, true);
    console.app.time_format = real_time;
    sum_form(&mut console);
    console.key(KeyCode::F(5));
    console.tick(Duration::from_secs(3));
    console.ctrl('k');
    console.answer(is_aggregate, Err(Failure::cancelled()));
    let screen = console.screen();
    assert!(shows_status(&screen, "✗", "3000.0ms"), "{screen}");
}

#[test]
fn the_client_reduce_is_a_stage_on_screen_and_in_json_even_when_it_failed() {
    let failed_in_client = Failure {
        kind: FailureKind::Server,
        code: -1,
        message: "stream UDF aggregation failed in the client: (client)/sum.lua:12: boom".into(),
        location: Some(("sum.lua".into(), 12)),
        logs: vec![],
    };
    // (answer, the client reduce's row, its stage in the JSON)
    for (outcome, row, stage) in [
        (streamed(1), "client reduce         3        1", (3, 1)),
        (
            Err(failed_in_client),
            "client reduce         3        0 ✗",
            (3, 0),
        ),
    ] {
        let mut console = console(160, 45, true);
        sum_form(&mut console);
        console.key(KeyCode::F(5));
        console.act(Action::Key(KeyEvent::new(
            KeyCode::Char('4'),
            KeyModifiers::ALT,
        )));
        if outcome.is_ok() {
            console.item(is_aggregate, StreamItem::Value(Value::Int(1230)));
        }
        console.answer(is_aggregate, outcome);
        console.answer(is_job_list, jobs_listed());
        console.answer(is_stage_read, stage_reply("sum.total"));
        let screen = console.screen();
        assert!(screen.contains(row), "{row}:\n{screen}");
        console.key(KeyCode::Char('c'));
        let Some(Effect::Copy(json)) = console.effects.last() else {
            panic!("c copies the result")
        };
        let json: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            json["stages"][3],
            serde_json::json!({"stage": "client reduce", "in": stage.0, "out": stage.1}),
            "{json}"
        );
    }
}

/// The screen's row holding `needle`, from `needle` on (the form is the
/// rightmost pane), or a panic showing the screen.
fn row_with(screen: &str, needle: &str) -> String {
    let row = screen
        .lines()
        .find(|r| r.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?}:\n{screen}"));
    row[row.find(needle).unwrap()..].to_string()
}

#[test]
fn form_text_cut_at_the_pane_edge_is_marked() {
    let mut console = console(120, 40, true);
    console.kind(FormKind::Query);
    // A message longer than the pane ends in `…` at its border.
    console.set(
        Field::Where,
        "amount BETWEEN 10 AND 50 AND stamp = 'checked' AND x",
    );
    let screen = console.screen();
    let message = row_with(&screen, "where: column");
    assert!(message.ends_with("…│"), "{screen}");
    // The field scrolled to its end shows `‹` where its start is cut off;
    // at its start, `›` where its end is, and the cursor is on neither.
    let field = row_with(&screen, "where ");
    assert!(field.starts_with("where ‹"), "{screen}");
    assert!(!field.contains('›'), "{screen}");
    console.key(KeyCode::Home);
    let screen = console.screen();
    let field = row_with(&screen, "where ");
    assert!(field.starts_with("where amount BETWEEN"), "{screen}");
    assert!(field.contains("› ✗"), "{screen}");
    console.key(KeyCode::End);
    let screen = console.screen();
    let cursor = console.cursor().unwrap();
    let at = screen.lines().nth(cursor.y as usize).unwrap();
    assert!(at.contains("where ‹"), "{screen}");
    let under: String = at.chars().skip(cursor.x as usize).take(1).collect();
    assert_eq!(under, " ", "{screen}");
    assert_eq!(
        console.app.apply.value(Field::Where),
        "amount BETWEEN 10 AND 50 AND stamp = 'checked' AND x",
        "the typed text is kept whole"
    );
}

#[test]
fn the_focused_fields_error_shows_at_80x24() {
    let mut console = console(80, 24, true);
    console.kind(FormKind::Query);
    console.set(Field::Where, "amount BETWEEN 10 50");
    let screen = console.screen();
    assert!(screen.contains("column 19"), "{screen}");
    // On the status row (the top one), and not in the form's rows.
    let rows: Vec<&str> = screen.lines().collect();
    assert_eq!(rows.len(), 24, "{screen}");
    let (status, below) = rows.split_first().unwrap();
    assert!(status.contains("where: column 19"), "{screen}");
    assert!(!below.iter().any(|r| r.contains("column 19")), "{screen}");
    // Once the field is right, the message goes.
    console.set(Field::Where, "amount BETWEEN 10 AND 50");
    let screen = console.screen();
    assert!(!screen.contains("column"), "{screen}");
}

/// On a tall screen the form shows the focused field's error under it: the
/// status line does not say it again.
#[test]
fn the_focused_fields_error_shows_once_on_a_tall_screen() {
    let mut console = console(160, 45, true);
    console.kind(FormKind::Query);
    console.set(Field::Where, "amount BETWEEN 10 50");
    let screen = console.screen();
    let rows: Vec<&str> = screen.lines().collect();
    assert_eq!(rows.len(), 45, "{screen}");
    let shown = rows.iter().filter(|r| r.contains("column 19")).count();
    assert_eq!(shown, 1, "{screen}");
    assert!(!rows[0].contains("column 19"), "the status row: {screen}");
}

#[test]
fn a_result_too_big_for_the_terminal_clipboard_is_not_copied() {
    let mut console = console(120, 40, true);
    console.kind(FormKind::Query);
    console.set(Field::Set, "sales");
    console.key(KeyCode::F(5));
    console.alt('4');
    for i in 1..=2000 {
        console.item(is_query, record(i));
    }
    console.answer(is_query, streamed(2000));
    console.key(KeyCode::Char('c'));
    assert!(
        !console.effects.iter().any(|e| matches!(e, Effect::Copy(_))),
        "not sent"
    );
    let status = console.app.status.clone().unwrap();
    assert!(status.error, "{status:?}");
    let json = serde_json::to_string_pretty(&console.app.results.to_json(true)).unwrap();
    assert!(json.len() > 100_000);
    assert_eq!(
        status.text,
        format!(
            "the result is {} KB, too big for the terminal's clipboard; s saves it to a file",
            json.len().div_ceil(1024)
        )
    );
    // A small one still goes.
    console.kind(FormKind::Query);
    console.key(KeyCode::F(5));
    console.alt('4');
    console.item(is_query, record(1));
    console.answer(is_query, streamed(1));
    console.key(KeyCode::Char('c'));
    assert!(matches!(console.effects.last(), Some(Effect::Copy(_))));
    assert_eq!(console.status(), "copied the result as JSON");
}

/// The limit is `CLIPBOARD_MAX` bytes of JSON: a result just under it is
/// copied, one between 75,000 and 100,000 bytes is not.
#[test]
fn the_clipboard_limit_is_clipboard_max_bytes_of_json() {
    use asudf::tui::app::CLIPBOARD_MAX;
    // The JSON length of a result of `n` records, and whether `c` copied it.
    let copy_of = |n: i64| {
        let mut console = console(120, 40, true);
        console.kind(FormKind::Query);
        console.set(Field::Set, "sales");
        console.key(KeyCode::F(5));
        console.alt('4');
        for i in 1..=n {
            console.item(is_query, record(i));
        }
        console.answer(is_query, streamed(n as u64));
        console.key(KeyCode::Char('c'));
        let json = serde_json::to_string_pretty(&console.app.results.to_json(true)).unwrap();
        let copied = console
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Copy(c) if *c == json));
        (json.len(), copied)
    };
    // The fewest records whose JSON passes `bytes` (it grows with each).
    let first_over = |bytes: usize| {
        let (mut low, mut high) = (1, 2000);
        assert!(copy_of(high).0 > bytes);
        while low < high {
            let mid = (low + high) / 2;
            if copy_of(mid).0 > bytes {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        low
    };
    let under = first_over(CLIPBOARD_MAX) - 1;
    let (len, copied) = copy_of(under);
    assert!(len <= CLIPBOARD_MAX && len > CLIPBOARD_MAX - 200, "{len}");
    assert!(copied, "{len} bytes, just under the limit, are copied");
    let over = first_over(74_999);
    let (len, copied) = copy_of(over);
    assert!((75_000..100_000).contains(&len), "{len}");
    assert!(!copied, "{len} bytes are not copied");
}

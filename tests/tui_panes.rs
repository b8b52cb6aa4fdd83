//! The console's indexes list, samples list, jobs list and name completion:
//! keys in, requests and screens out, with the client task's answers given
//! by the test.

use std::time::Duration;

use asudf::client::query::parse_jobs;
use asudf::client::{ConnectionState, Event, Failure, IndexInfo, Outcome, Request};
use asudf::tui::Action;
use asudf::tui::app::{Overlay, Pane};
use asudf::tui::panes::apply::Field;
use asudf::tui::panes::jobs;
use asudf::where_clause::Collection;
use crossterm::event::{KeyCode, KeyModifiers};

mod common;
use common::console::Console;
use common::live::Live;

/// Connected to a sandbox, with the first listings answered: no modules,
/// and `indexes`.
fn console(width: u16, height: u16, indexes: Vec<IndexInfo>) -> Console {
    let mut console = Console::new(width, height);
    console.connect(true);
    console.modules_listed(&[]);
    console.answer(
        |r| matches!(r, Request::ListIndexes { ns: None }),
        Ok(Outcome::Indexes(indexes)),
    );
    console
}

fn index(name: &str, set: &str, bin: &str, kind: &str) -> IndexInfo {
    IndexInfo {
        ns: "test".into(),
        name: name.into(),
        set: Some(set.into()),
        bin: bin.into(),
        kind: kind.into(),
        collection: "default".into(),
        state: "RW".into(),
    }
}

fn two_indexes() -> Vec<IndexInfo> {
    vec![
        index("test_sales_amount", "sales", "amount", "numeric"),
        index("test_sales_region", "sales", "region", "string"),
    ]
}

#[test]
fn indexes_pane_lists_creates_and_drops() {
    let mut console = console(120, 40, two_indexes());
    console.with(KeyModifiers::ALT, '1');
    console.key(KeyCode::Char('i'));
    assert!(console.app.indexes.shown);
    let screen = console.screen();
    assert!(screen.contains(" 1 Indexes (2) "), "{screen}");
    assert!(screen.contains("test_sales_amount RW"), "{screen}");
    assert!(screen.contains("│  amount numeric "), "{screen}");
    assert!(screen.contains("n create"), "the hint bar: {screen}");

    // Create from the prompt, in the words of `asudf index create`; the
    // prompt starts with the form's namespace and set.
    console.key(KeyCode::Char('n'));
    let Some(Overlay::Prompt { input, .. }) = &console.app.overlay else {
        panic!("a prompt opens")
    };
    assert_eq!(input.text, "test.demo ");
    console.type_text("tags strng");
    console.key(KeyCode::Enter);
    // Refused with the column, not sent, the prompt kept with the cursor on it.
    assert!(
        console.status().contains("column 16"),
        "{}",
        console.status()
    );
    assert!(console.status().contains("'strng'"), "{}", console.status());
    assert_eq!(console.count(|r| matches!(r, Request::CreateIndex(_))), 0);
    let Some(Overlay::Prompt { input, .. }) = &console.app.overlay else {
        panic!("the prompt stays open")
    };
    assert_eq!(input.cursor, 15);
    console.with(KeyModifiers::CONTROL, 'u');
    console.type_text("test.demo tags string list");
    console.key(KeyCode::Enter);
    assert!(console.app.overlay.is_none());
    let spec = console
        .sent
        .iter()
        .find_map(|(_, r)| match r {
            Request::CreateIndex(spec) => Some(spec.clone()),
            _ => None,
        })
        .expect("the create is sent");
    assert_eq!(
        (spec.ns.as_str(), spec.set.as_deref(), spec.bin.as_str()),
        ("test", Some("demo"), "tags")
    );
    assert_eq!(
        (spec.kind.as_str(), spec.collection),
        ("string", Collection::List)
    );
    assert_eq!(spec.name, "test_demo_tags_list");
    console.answer(
        |r| matches!(r, Request::CreateIndex(_)),
        Ok(Outcome::IndexCreated {
            name: spec.name.clone(),
        }),
    );
    assert_eq!(console.status(), "created index test_demo_tags_list");
    let mut listed = two_indexes();
    listed.push(index("test_demo_tags_list", "demo", "tags", "string"));
    console.answer(
        |r| matches!(r, Request::ListIndexes { .. }),
        Ok(Outcome::Indexes(listed)),
    );
    assert_eq!(console.app.indexes.entries.len(), 3);
    assert_eq!(console.app.known.indexes["test_demo_tags_list"], "tags");

    // Drop the selected one, after a yes only.
    console.key(KeyCode::Down);
    console.key(KeyCode::Char('d'));
    let Some(Overlay::Confirm { question, .. }) = &console.app.overlay else {
        panic!("a drop asks first")
    };
    assert!(question.contains("test_sales_amount"), "{question}");
    console.key(KeyCode::Char('n'));
    assert_eq!(console.count(|r| matches!(r, Request::DropIndex { .. })), 0);
    console.key(KeyCode::Delete);
    console.key(KeyCode::Char('y'));
    assert!(console.sent.iter().any(|(_, r)| *r
        == Request::DropIndex {
            ns: "test".into(),
            name: "test_sales_amount".into()
        }));
    console.answer(
        |r| matches!(r, Request::DropIndex { .. }),
        Ok(Outcome::IndexDropped {
            name: "test_sales_amount".into(),
        }),
    );
    assert_eq!(
        console.count(|r| matches!(r, Request::ListIndexes { .. })),
        1
    );

    // `i` goes back to the modules.
    console.key(KeyCode::Char('i'));
    assert!(console.screen().contains(" 1 Modules (0) "));
}

#[test]
fn indexes_pane_at_two_sizes() {
    for (w, h) in [(80, 24), (160, 45)] {
        let mut console = console(w, h, two_indexes());
        console.with(KeyModifiers::ALT, '1');
        console.key(KeyCode::Char('i'));
        insta::assert_snapshot!(format!("indexes_{w}x{h}"), console.screen());
    }
}

fn sent_module(console: &Console) -> Option<String> {
    console.sent.iter().find_map(|(_, r)| match r {
        Request::PutModule { name, .. } => Some(name.clone()),
        _ => None,
    })
}

/// Answers the sample's writes as they come: how many there were.
fn answer_writes(console: &mut Console) -> usize {
    let mut writes = 0;
    let mut most_in_flight = 0;
    loop {
        let in_flight = console.count(|r| matches!(r, Request::PutRecord { .. }));
        if in_flight == 0 {
            break;
        }
        most_in_flight = most_in_flight.max(in_flight);
        console.answer(
            |r| matches!(r, Request::PutRecord { .. }),
            Ok(Outcome::Written),
        );
        writes += 1;
    }
    assert_eq!(most_in_flight, 16, "a window of writes, not all at once");
    writes
}

#[test]
fn loading_a_sample_registers_writes_indexes_and_fills_the_form() {
    let mut console = console(120, 40, Vec::new());
    console.key(KeyCode::F(2));
    assert!(matches!(
        console.app.overlay,
        Some(Overlay::Samples { selected: 0 })
    ));
    let screen = console.screen();
    assert!(screen.contains("groupby"), "{screen}");
    assert!(screen.contains("stream UDF: the total amount"), "{screen}");
    console.key(KeyCode::Down);
    assert!(
        console
            .screen()
            .contains("as a command: asudf aggregate test.sales sum.total")
    );
    console.key(KeyCode::Enter);
    assert!(console.app.overlay.is_none());
    assert_eq!(sent_module(&console).as_deref(), Some("sum.lua"));
    assert!(console.status().contains("registering sum.lua"));
    console.answer(
        |r| matches!(r, Request::PutModule { .. }),
        Ok(Outcome::Registered {
            name: "sum.lua".into(),
            propagation: Duration::ZERO,
        }),
    );
    let Some((_, Request::PutRecord { key, bins, .. })) = console.sent.first() else {
        panic!("the records are written next")
    };
    assert_eq!(
        (key.ns.as_str(), key.set.as_deref()),
        ("test", Some("sales"))
    );
    assert_eq!(bins[0].0, "amount");
    console.answer(
        |r| matches!(r, Request::PutRecord { .. }),
        Ok(Outcome::Written),
    );
    assert!(
        console
            .status()
            .contains("writing records 1/1000 to test.sales"),
        "{}",
        console.status()
    );
    assert_eq!(answer_writes(&mut console) + 1, 1000);
    let Some((_, Request::CreateIndex(spec))) = console.sent.first().cloned() else {
        panic!("then the index: {:?}", console.sent)
    };
    assert_eq!(
        (spec.bin.as_str(), spec.kind.as_str()),
        ("amount", "numeric")
    );
    console.answer(
        |r| matches!(r, Request::CreateIndex(_)),
        Ok(Outcome::IndexCreated {
            name: spec.name.clone(),
        }),
    );
    // Loaded: the module in the editor, the form filled, the lists refreshed.
    assert_eq!(
        console.status(),
        "sample sum loaded: sum.lua, 1000 records in test.sales, index test_sales_amount; \
         try where amount BETWEEN 10 AND 50"
    );
    assert_eq!(console.app.editor.module, "sum.lua");
    assert!(console.app.editor.contents().contains("function total("));
    assert_eq!(console.app.focus, Pane::Editor);
    let form = &console.app.apply;
    assert_eq!(form.value(Field::Namespace), "test");
    assert_eq!(form.value(Field::Set), "sales");
    assert_eq!(form.value(Field::Module), "sum");
    assert_eq!(form.value(Field::Function), "total");
    assert_eq!(form.value(Field::Args), "");
    assert_eq!(console.count(|r| *r == Request::ListModules), 1);
    assert_eq!(
        console.count(|r| matches!(r, Request::ListIndexes { .. })),
        1
    );
}

#[test]
fn a_sample_asks_before_replacing_unsaved_edits() {
    let mut console = console(120, 40, Vec::new());
    console.type_text("-- mine ");
    let form_before = console.app.apply.value(Field::Key).to_string();
    console.key(KeyCode::F(2));
    console.key(KeyCode::Enter); // counter: a record UDF, no records
    let Some(Overlay::Confirm { question, .. }) = &console.app.overlay else {
        panic!("asks before loading")
    };
    assert!(
        question.contains("Discard unsaved changes to counter.lua and load sample counter"),
        "{question}"
    );
    assert_eq!(sent_module(&console), None, "nothing registered yet");
    // No: nothing registered, written or filled in, the buffer kept.
    console.key(KeyCode::Char('n'));
    assert!(console.app.overlay.is_none());
    assert!(console.app.sample_load.is_none());
    assert_eq!(sent_module(&console), None);
    assert_eq!(console.count(|r| matches!(r, Request::PutRecord { .. })), 0);
    assert_eq!(console.app.apply.value(Field::Key), form_before);
    assert!(console.app.editor.contents().starts_with("-- mine"), "kept");
    assert!(console.app.editor.dirty());

    // Yes: the load goes on and its module replaces the buffer without a
    // second question.
    console.key(KeyCode::F(2));
    console.key(KeyCode::Enter);
    console.key(KeyCode::Char('y'));
    assert_eq!(sent_module(&console).as_deref(), Some("counter.lua"));
    console.answer(
        |r| matches!(r, Request::PutModule { .. }),
        Ok(Outcome::Registered {
            name: "counter.lua".into(),
            propagation: Duration::ZERO,
        }),
    );
    assert!(console.app.overlay.is_none(), "{:?}", console.app.overlay);
    assert_eq!(console.app.editor.contents(), asudf::tui::app::SAMPLE);
    assert!(!console.app.editor.dirty());
    assert_eq!(console.app.apply.value(Field::Args), "'count', 5");

    // A failed step says which, and the next load starts afresh.
    console.key(KeyCode::F(2));
    console.key(KeyCode::Enter);
    console.answer(
        |r| matches!(r, Request::PutModule { .. }),
        Err(Failure::connection("gone")),
    );
    assert_eq!(
        console.status(),
        "sample counter not loaded: registering its module failed: gone"
    );
    assert!(console.app.sample_load.is_none());

    // Edits typed while a load is under way are asked about when it ends.
    console.key(KeyCode::F(2));
    console.key(KeyCode::Enter);
    console.type_text("-- typed meanwhile ");
    console.answer(
        |r| matches!(r, Request::PutModule { .. }),
        Ok(Outcome::Registered {
            name: "counter.lua".into(),
            propagation: Duration::ZERO,
        }),
    );
    let Some(Overlay::Confirm { question, .. }) = &console.app.overlay else {
        panic!("asks before replacing what was typed meanwhile")
    };
    assert!(question.contains("Discard unsaved changes"), "{question}");
    console.key(KeyCode::Char('n'));
    assert!(
        console
            .app
            .editor
            .contents()
            .starts_with("-- typed meanwhile")
    );
}

#[test]
fn samples_list_at_two_sizes() {
    for (w, h) in [(80, 24), (160, 45)] {
        let mut console = console(w, h, Vec::new());
        console.key(KeyCode::F(2));
        console.key(KeyCode::Down);
        insta::assert_snapshot!(format!("samples_{w}x{h}"), console.screen());
    }
}

const RUNNING: &str = "trid=77:ns=test:set=sales:rps=0:active-threads=1:status=active(ok):\
    job-progress=40.00:recs-filtered-meta=0:recs-filtered-bins=2:recs-succeeded=400:recs-failed=1:\
    job-type=background-udf:udf-filename=stamp:udf-function=mark";
const DONE: &str = "trid=12:ns=test:set=sales:status=done(ok):job-progress=100.00:\
    recs-succeeded=1000:recs-failed=0:job-type=aggregation";

#[test]
fn jobs_list_polls_while_a_job_runs_and_aborts_it() {
    let mut console = console(120, 40, Vec::new());
    console.key(KeyCode::F(12));
    assert!(matches!(console.app.overlay, Some(Overlay::Jobs)));
    assert_eq!(console.count(|r| *r == Request::Jobs { id: None }), 1);
    console.answer(
        |r| matches!(r, Request::Jobs { .. }),
        Ok(Outcome::Jobs(parse_jobs(&format!("{DONE};{RUNNING}")))),
    );
    let screen = console.screen();
    assert!(
        screen.contains("77  background-udf  test.sales  stamp.mark"),
        "{screen}"
    );
    assert!(screen.contains("active(ok)"), "{screen}");
    let counters = format!("{}  40.0%  ✓ 400  ✗ 1  filtered 2", jobs::gauge(40.0, 30));
    assert!(screen.contains(&counters), "{screen}");
    assert!(
        screen.contains("12  aggregation  test.sales  -"),
        "{screen}"
    );

    // Polled about every 500 ms while open and a job runs: the loop wakes for it.
    let due = console.timing().answered + Duration::from_millis(500);
    assert_eq!(console.app.jobs_due(), Some(due));
    assert!(console.app.next_wake().is_some_and(|at| at <= due));
    console.act(Action::Tick(due - Duration::from_millis(100)));
    assert_eq!(console.count(|r| matches!(r, Request::Jobs { .. })), 0);
    console.act(Action::Tick(due));
    assert_eq!(console.count(|r| matches!(r, Request::Jobs { .. })), 1);
    console.answer(
        |r| matches!(r, Request::Jobs { .. }),
        Ok(Outcome::Jobs(parse_jobs(&format!("{RUNNING};{DONE}")))),
    );

    // Abort the selected running job, after a yes; the list comes back.
    console.key(KeyCode::Char('a'));
    let Some(Overlay::Confirm { question, .. }) = &console.app.overlay else {
        panic!("an abort asks first")
    };
    assert!(
        question.contains("Abort job 77 (stamp.mark on test.sales)"),
        "{question}"
    );
    console.key(KeyCode::Char('y'));
    assert!(matches!(console.app.overlay, Some(Overlay::Jobs)));
    assert_eq!(console.count(|r| *r == Request::AbortJob { id: 77 }), 1);
    console.answer(
        |r| matches!(r, Request::AbortJob { .. }),
        Ok(Outcome::Info("ok".into())),
    );
    assert_eq!(console.status(), "aborted job 77");
    let aborted = RUNNING.replace("active(ok)", "done(user-aborted)");
    console.answer(
        |r| matches!(r, Request::Jobs { .. }),
        Ok(Outcome::Jobs(parse_jobs(&format!("{aborted};{DONE}")))),
    );
    // Nothing runs: no more polls, and a done job is not aborted.
    assert_eq!(console.app.jobs.due, None);
    console.key(KeyCode::Char('a'));
    assert!(
        console.status().contains("is not running"),
        "{}",
        console.status()
    );
    console.act(Action::Tick(due + Duration::from_secs(5)));
    assert_eq!(console.count(|r| matches!(r, Request::Jobs { .. })), 0);
    console.key(KeyCode::Esc);
    assert!(console.app.overlay.is_none());
}

#[test]
fn jobs_list_shows_the_newest_first_marks_hidden_ones_and_its_messages() {
    let mut console = console(80, 24, Vec::new());
    console.key(KeyCode::F(12));
    // As a server lists them: the oldest finished first.
    let list: Vec<String> = (1..=36)
        .map(|i| {
            format!(
                "trid={i}:ns=test:status=done(ok):job-progress=100.00:time-since-done={}:job-type=basic",
                1000 - i * 10
            )
        })
        .collect();
    console.answer(
        |r| matches!(r, Request::Jobs { .. }),
        Ok(Outcome::Jobs(parse_jobs(&list.join(";")))),
    );
    let screen = console.screen();
    let rows: Vec<&str> = screen.lines().collect();
    let first = rows.iter().position(|r| r.contains("Jobs (36)")).unwrap();
    assert!(rows[first + 1].starts_with("│36  basic"), "{screen}");
    assert!(rows[first + 3].starts_with("│35  basic"), "{screen}");
    let shown = rows.iter().filter(|r| r.contains("  basic  ")).count();
    let more = format!("↓ {} more", 36 - shown);
    assert!(screen.contains(&more), "{screen}");
    assert!(!screen.contains('↑'), "{screen}");
    for _ in 0..shown {
        console.key(KeyCode::Down);
    }
    let screen = console.screen();
    assert!(screen.contains("↑ 1 more"), "{screen}");

    // A refused abort is said inside the list, where the user looks.
    console.key(KeyCode::Char('a'));
    let screen = console.screen();
    let message = screen
        .lines()
        .find(|r| r.contains("is not running"))
        .unwrap_or_else(|| panic!("{screen}"));
    let refused = format!("│job {} is not running (done(ok))", 36 - shown);
    assert!(message.starts_with(&refused), "{screen}");
}

#[test]
fn a_closed_jobs_list_does_not_wake_the_loop() {
    let mut console = console(120, 40, Vec::new());
    console.key(KeyCode::F(12));
    console.answer(
        |r| matches!(r, Request::Jobs { .. }),
        Ok(Outcome::Jobs(parse_jobs(RUNNING))),
    );
    console.key(KeyCode::Esc);
    let due = console.timing().answered + Duration::from_millis(500);
    console.act(Action::Tick(due));
    assert_eq!(console.count(|r| matches!(r, Request::Jobs { .. })), 0);
    assert_eq!(console.app.jobs_due(), None, "closed: not polled");
}

#[test]
fn jobs_list_at_two_sizes() {
    for (w, h) in [(80, 24), (160, 45)] {
        let mut console = console(w, h, Vec::new());
        console.key(KeyCode::F(12));
        console.answer(
            |r| matches!(r, Request::Jobs { .. }),
            Ok(Outcome::Jobs(parse_jobs(&format!("{RUNNING};{DONE}")))),
        );
        insta::assert_snapshot!(format!("jobs_{w}x{h}"), console.screen());
    }
}

#[test]
fn tab_completes_module_and_function_names_it_knows() {
    let mut console = console(120, 40, Vec::new());
    console.act(Action::Tick(console.start + Duration::from_secs(31)));
    console.modules_listed(&[("stamp.lua", "a"), ("sum.lua", "b")]);
    console.answer(
        |r| matches!(r, Request::GetModule { name } if name == "sum.lua"),
        Ok(Outcome::Module {
            name: "sum.lua".into(),
            source: "function total(s)\nend\nfunction to_amount(r)\nend\n".into(),
        }),
    );
    console.with(KeyModifiers::ALT, '3');
    console.app.apply.focus = 3; // module
    console.with(KeyModifiers::CONTROL, 'u');
    console.type_text("s");
    console.key(KeyCode::Tab);
    // Two modules start with `s`: nothing to add, so Tab moves on.
    assert_eq!(console.app.apply.value(Field::Module), "s");
    assert_eq!(console.app.apply.focused_field(), Field::Function);
    console.app.apply.focus = 3;
    console.type_text("u");
    console.key(KeyCode::Tab);
    assert_eq!(console.app.apply.value(Field::Module), "sum");
    assert_eq!(console.app.apply.focused_field(), Field::Module);
    console.key(KeyCode::Tab);
    assert_eq!(console.app.apply.focused_field(), Field::Function);
    console.with(KeyModifiers::CONTROL, 'u');
    console.type_text("t");
    console.key(KeyCode::Tab);
    assert_eq!(console.app.apply.value(Field::Function), "to");
    assert_eq!(console.status(), "completions: total · to_amount");
    console.type_text("t");
    console.key(KeyCode::Tab);
    assert_eq!(console.app.apply.value(Field::Function), "total");

    // Down only moves: an empty module field is left empty (Tab fills it).
    console.app.apply.focus = 3;
    console.with(KeyModifiers::CONTROL, 'u');
    console.type_text("su");
    console.key(KeyCode::Down);
    assert_eq!(console.app.apply.value(Field::Module), "su");
    assert_eq!(console.app.apply.focused_field(), Field::Function);
}

/// A second client on the same sandbox, to see what the console left there.
async fn observer(target: asudf::client::Target) -> asudf::client::ClientHandle {
    let (handle, mut events) = asudf::client::spawn(target);
    while let Some(event) = events.recv().await {
        if let Event::Connection(ConnectionState::Connected(_)) = event {
            return handle;
        }
    }
    panic!("the observer connects")
}

async fn count(
    handle: &asudf::client::ClientHandle,
    where_clause: Option<asudf::where_clause::Where>,
) -> u64 {
    let call = asudf::client::QueryCall {
        scope: asudf::client::Scope {
            ns: "test".into(),
            set: Some("sales".into()),
            where_clause,
        },
        bins: Some(Vec::new()),
        max_records: None,
    };
    match handle.call(Request::Query(Box::new(call))).await.0 {
        Ok(Outcome::Streamed { count, .. }) => count,
        other => panic!("a query: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sum_sample_loads_into_the_sandbox_with_one_key() {
    use asudf::sandbox::server::{self, ServerOptions};
    use asudf::sandbox::{Sandbox, SandboxConfig};

    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let addr = server.addr();
    let target = || asudf::client::Target::Cluster {
        hosts: vec![aerospike::Host::new(&addr.ip().to_string(), addr.port())],
        policy: aerospike::ClientPolicy::default(),
    };
    let mut live = Live::start(target(), 120, 40).await;
    live.load_sample(1).await;
    let status = live.app.status.clone().unwrap();
    assert!(
        status.text.starts_with(
            "sample sum loaded: sum.lua, 1000 records in test.sales, index test_sales_amount"
        ),
        "{}",
        status.text
    );
    // The editor shows the module and the form calls it.
    assert_eq!(live.app.editor.module, "sum.lua");
    assert_eq!(
        live.app.editor.contents(),
        asudf::samples::find("sum").unwrap().source
    );
    let form = &live.app.apply;
    assert_eq!(
        (form.value(Field::Namespace), form.value(Field::Set)),
        ("test", "sales")
    );
    assert_eq!(
        (form.value(Field::Module), form.value(Field::Function)),
        ("sum", "total")
    );
    // The lists show what was loaded.
    live.wait("the lists refreshed", |app| {
        app.modules.get("sum").is_some_and(|m| m.source.is_some())
            && !app.indexes.loading
            && app
                .indexes
                .entries
                .iter()
                .any(|i| i.name == "test_sales_amount")
    })
    .await;
    assert_eq!(live.app.known.modules["sum"], ["total"].map(String::from));

    // The sandbox has the module, the 1,000 records and the index.
    let handle = observer(target()).await;
    let source = match handle
        .call(Request::GetModule {
            name: "sum.lua".into(),
        })
        .await
        .0
    {
        Ok(Outcome::Module { source, .. }) => source,
        other => panic!("the module: {other:?}"),
    };
    assert_eq!(source, asudf::samples::find("sum").unwrap().source);
    let Ok(Outcome::Indexes(indexes)) = handle
        .call(Request::ListIndexes {
            ns: Some("test".into()),
        })
        .await
        .0
    else {
        panic!("the indexes")
    };
    assert!(
        indexes
            .iter()
            .any(|i| i.name == "test_sales_amount" && i.bin == "amount" && i.state == "RW"),
        "{indexes:?}"
    );
    assert_eq!(count(&handle, None).await, 1000);
    // Amounts spread evenly over 0..100: 41 values, ten records each.
    let clause = asudf::where_clause::parse("amount BETWEEN 10 AND 50").unwrap();
    assert_eq!(count(&handle, Some(clause)).await, 410);

    // Loading it again rewrites the same records and finds its index there.
    live.key(KeyCode::F(2)).await;
    live.key(KeyCode::Down).await;
    live.key(KeyCode::Enter).await;
    live.wait("the sample loaded again", |app| app.sample_load.is_none())
        .await;
    let status = live.app.status.clone().unwrap();
    assert!(!status.error, "{}", status.text);
    assert_eq!(count(&handle, None).await, 1000);
}

#[test]
fn the_lists_draw_at_any_size() {
    for (w, h) in [(1, 1), (12, 5), (30, 8), (200, 12)] {
        let mut console = console(w, h, two_indexes());
        console.with(KeyModifiers::ALT, '1');
        console.key(KeyCode::Char('i'));
        console.screen();
        console.key(KeyCode::F(2));
        console.screen();
        console.key(KeyCode::Esc);
        console.key(KeyCode::F(12));
        console.answer(
            |r| matches!(r, Request::Jobs { .. }),
            Ok(Outcome::Jobs(parse_jobs(&format!("{RUNNING};{DONE}")))),
        );
        console.screen();
    }
}

#[test]
fn bins_of_the_records_an_apply_read_are_known() {
    use asudf::client::RecordView;
    let mut console = console(120, 40, two_indexes());
    console.key(KeyCode::F(5));
    let view = |bins: &[&str]| RecordView {
        bins: bins
            .iter()
            .map(|b| (b.to_string(), aerospike::Value::Int(1)))
            .collect(),
        generation: 1,
        ttl: None,
    };
    console.answer(
        |r| matches!(r, Request::Apply(_)),
        Ok(Outcome::Applied {
            result: aerospike::Value::Int(1),
            logs: Vec::new(),
            before: Some(view(&["count"])),
            after: Some(view(&["count", "seen"])),
            call: Duration::from_micros(50),
            server_run: None,
        }),
    );
    let bins: Vec<&str> = console.app.known.bins.iter().map(String::as_str).collect();
    assert_eq!(bins, ["count", "seen"]);
    // The where line's completion (for the form's `where` field) uses them
    // with the indexes' bins.
    let known = &console.app.known;
    assert_eq!(
        asudf::tui::completion::tab_where("se", 2, known),
        Some(("seen ".to_string(), 5))
    );
    assert_eq!(
        asudf::tui::completion::tab_where("reg", 3, known),
        Some(("region ".to_string(), 7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_sandbox_job_is_listed_polled_and_aborted() {
    use asudf::sandbox::server::{self, ServerOptions};
    use asudf::sandbox::{Sandbox, SandboxConfig};

    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let addr = server.addr();
    let target = || asudf::client::Target::Cluster {
        hosts: vec![aerospike::Host::new(&addr.ip().to_string(), addr.port())],
        policy: aerospike::ClientPolicy::default(),
    };
    let mut live = Live::start(target(), 120, 40).await;
    // The background sample, loaded from the list.
    live.key(KeyCode::F(2)).await;
    for _ in 0..3 {
        live.key(KeyCode::Down).await;
    }
    live.key(KeyCode::Enter).await;
    live.wait("the stamp sample loaded", |app| app.sample_load.is_none())
        .await;
    assert_eq!(live.app.apply.value(Field::Module), "stamp");
    assert_eq!(live.app.apply.value(Field::Args), "'checked'");

    // A slow job over the 1,000 records (20 records a second).
    let handle = observer(target()).await;
    let call = asudf::client::ExecuteCall {
        scope: asudf::client::Scope {
            ns: "test".into(),
            set: Some("sales".into()),
            where_clause: None,
        },
        module: "stamp".into(),
        function: "mark".into(),
        args: vec![aerospike::Value::from("checked")],
        records_per_second: Some(20),
    };
    let Ok(Outcome::JobStarted { id }) = handle.call(Request::Execute(Box::new(call))).await.0
    else {
        panic!("the job starts")
    };

    live.key(KeyCode::F(12)).await;
    live.wait("the jobs listed", |app| {
        app.jobs.loaded_once && !app.jobs.loading
    })
    .await;
    let job = live.app.jobs.list.iter().find(|j| j.id() == id).unwrap();
    assert!(!job.is_done(), "{job:?}");
    let screen = live.screen();
    assert!(
        screen.contains(&format!("{id}  background-udf  test.sales  stamp.mark")),
        "{screen}"
    );
    // It runs, so the loop is due to ask again; a tick then asks.
    let due = live.app.jobs_due().expect("polled while a job runs");
    assert!(live.app.next_wake().is_some_and(|at| at <= due));
    live.act(Action::Tick(due)).await;
    assert!(live.app.jobs.loading, "asked again");
    live.wait("the poll answered", |app| !app.jobs.loading)
        .await;

    // Abort it, with a yes.
    let at = live
        .app
        .jobs
        .list
        .iter()
        .position(|j| j.id() == id)
        .unwrap();
    live.app.jobs.selected = at;
    live.key(KeyCode::Char('a')).await;
    live.key(KeyCode::Char('y')).await;
    live.wait("the job aborted and listed", |app| {
        !app.jobs.loading && app.jobs.list.iter().any(|j| j.id() == id && j.is_done())
    })
    .await;
    let job = live.app.jobs.list.iter().find(|j| j.id() == id).unwrap();
    assert_eq!(job.status(), "done(user-aborted)");
    assert_eq!(
        live.app.status.as_ref().unwrap().text,
        format!("aborted job {id}")
    );
    assert_eq!(live.app.jobs_due(), None, "nothing runs: no more polls");
}

/// In a narrow terminal a message shows in full before the connection's
/// details: they give way first, then its name; the dot stays.
#[test]
fn a_message_takes_the_status_line_before_the_connection_details() {
    use asudf::tui::app::StatusMessage;
    let mut console = console(80, 24, Vec::new());
    let first_row = |console: &mut Console| console.screen().lines().next().unwrap().to_string();
    assert!(
        first_row(&mut console).contains("1 node · build"),
        "room for it all"
    );
    let message = "saved /tmp/project/tests/counter.udftest.toml (2 run(s) left out)";
    console.app.status = Some(StatusMessage {
        text: message.into(),
        error: false,
    });
    console.act(Action::Resize(80, 24)); // a whole frame
    let row = first_row(&mut console);
    assert!(row.contains(&format!("│ {message}")), "{row}");
    assert!(row.starts_with(" asudf ●"), "{row}");
    assert!(!row.contains("build"), "{row}");
}

//! The console's reducer and screens, driven by key events, with the client
//! task's answers given by the test: Action in, state and screen out.

use std::time::Duration;

use aerospike::Value;
use asudf::client::{
    ConnectionState, Event, Failure, FailureKind, Outcome, RecordView, Request, StreamItem, UdfLog,
};
use asudf::tui::app::{App, Effect, Overlay, Pane, PromptKind, Recovered, StartOptions};
use asudf::tui::keymap::Keymap;
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::{Action, ui};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

mod common;
use common::console::Console;

fn applied(result: Value, before: Option<(i64, u32)>, after: (i64, u32)) -> Outcome {
    let view = |(count, generation): (i64, u32)| RecordView {
        bins: vec![("count".into(), Value::Int(count))],
        generation,
        ttl: None,
    };
    Outcome::Applied {
        result,
        logs: vec![UdfLog {
            level: "info".into(),
            text: "counted".into(),
        }],
        before: before.map(view),
        after: Some(view(after)),
        call: Duration::from_micros(75),
        server_run: Some(Duration::from_micros(20)),
    }
}

fn is_apply(r: &Request) -> bool {
    matches!(r, Request::Apply(_))
}

#[test]
fn first_start_opens_the_sample_and_lists_modules_once_connected() {
    let mut console = Console::new(120, 40);
    assert_eq!(console.app.focus, Pane::Editor);
    assert!(console.app.editor.contents().contains("function increment"));
    assert!(
        console.sent.is_empty(),
        "nothing is sent before the connection"
    );
    insta::assert_snapshot!("start_connecting", console.screen());

    let mut console = Console::connected();
    // The indexes are listed with the modules.
    assert!(matches!(
        console.sent[..],
        [
            (_, Request::ListModules),
            (_, Request::ListIndexes { ns: None })
        ]
    ));
    console.answer(
        |r| matches!(r, Request::ListIndexes { .. }),
        Ok(Outcome::Indexes(Vec::new())),
    );
    console.modules_listed(&[("counter.lua", "abc")]);
    // The source of each listed module is fetched to find its functions.
    assert!(
        matches!(&console.sent[..], [(_, Request::GetModule { name })] if name == "counter.lua")
    );
    let source = console.app.editor.contents();
    console.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: "counter.lua".into(),
            source,
        }),
    );
    let screen = console.screen();
    assert!(screen.contains("increment(rec, bin_nam"), "{screen}");
    assert!(screen.contains("=buffer"), "{screen}");
    insta::assert_snapshot!("start_connected", screen);

    // An edit makes the badge say the buffer differs.
    console.type_text("-- x");
    assert!(console.screen().contains("≠buffer"));
    // Undone, it is the registered source again.
    for _ in 0..6 {
        console.ctrl('z');
    }
    assert!(console.screen().contains("=buffer"));
}

#[test]
fn help_scrolls_to_its_last_line_and_no_further() {
    let mut console = Console::new(80, 24);
    console.key(KeyCode::F(1));
    for _ in 0..500 {
        console.key(KeyCode::Down);
    }
    let screen = console.screen();
    let Some(Overlay::Help { scroll }) = console.app.overlay else {
        panic!("help is open")
    };
    assert!(scroll > 0 && scroll < 100, "scrolled {scroll}");
    // The help's last line (the Jobs list's r) is on the box's last row
    // inside its border.
    let rows: Vec<&str> = screen.lines().collect();
    let bottom = rows.iter().rposition(|r| r.contains("└")).unwrap();
    assert!(rows[bottom - 1].contains("│  r  "), "{screen}");
    // There r refreshes the jobs list, not the modules.
    assert!(
        rows[bottom - 1].contains("refresh the jobs list"),
        "{screen}"
    );
    // One Up moves it at once.
    console.key(KeyCode::Up);
    assert!(matches!(console.app.overlay, Some(Overlay::Help { scroll: s }) if s == scroll - 1));
    assert_ne!(console.screen(), screen);
}

#[test]
fn help_pages_with_page_keys_and_closes_only_on_its_keys() {
    let mut console = Console::new(80, 24);
    let scroll = |console: &Console| match console.app.overlay {
        Some(Overlay::Help { scroll }) => scroll,
        _ => panic!("help is closed"),
    };
    console.key(KeyCode::F(1));
    console.key(KeyCode::End);
    let last = scroll(&console);
    assert!(last > 22, "scrolled {last}");
    console.key(KeyCode::Home);
    assert_eq!(scroll(&console), 0);
    // A page is the box's rows inside its border: 24 - 2 for the border.
    console.key(KeyCode::PageDown);
    assert_eq!(scroll(&console), 22);
    console.key(KeyCode::PageDown);
    console.key(KeyCode::PageUp);
    assert_eq!(scroll(&console), 22.min(last));
    console.key(KeyCode::PageUp);
    assert_eq!(scroll(&console), 0);
    // Other keys leave it open; each key the help names closes it.
    console.key(KeyCode::Char('x'));
    console.key(KeyCode::Enter);
    assert_eq!(scroll(&console), 0);
    assert!(console.screen().contains("Esc, F1 or q closes this help"));
    for close in [KeyCode::Esc, KeyCode::F(1), KeyCode::Char('q')] {
        scroll(&console);
        console.key(close);
        assert!(console.app.overlay.is_none(), "{close:?}");
        console.key(KeyCode::F(1));
    }
    assert!(!console.quit_requested());
}

#[test]
fn printable_keys_type_in_text_and_command_outside() {
    let mut console = Console::connected();
    console.type_text("q?");
    assert!(!console.quit_requested());
    assert!(console.app.overlay.is_none());
    assert!(console.app.editor.contents().starts_with("q?function"));

    // Tab indents in the editor.
    console.key(KeyCode::Tab);
    assert!(console.app.editor.contents().starts_with("q?  function"));

    // Outside text `?` is help and Esc closes it.
    console.alt('4');
    console.type_text("?");
    assert!(matches!(console.app.overlay, Some(Overlay::Help { .. })));
    let help = console.screen();
    assert!(help.contains("F8: the form's kind"), "{help}");
    assert!(help.contains("F5 Ctrl-J Alt-Enter Ctrl-Enter"), "{help}");
    console.key(KeyCode::Esc);
    assert!(console.app.overlay.is_none());

    // Ctrl-C with unsaved changes asks, and a no keeps the console open.
    console.ctrl('c');
    assert!(matches!(console.app.overlay, Some(Overlay::Confirm { .. })));
    insta::assert_snapshot!("quit_confirm", console.screen());
    console.key(KeyCode::Char('n'));
    assert!(!console.quit_requested());
    // Yes quits and keeps a recovery copy of the unsaved buffer.
    console.ctrl('c');
    console.key(KeyCode::Char('y'));
    assert!(console.quit_requested());
    assert!(console.effects.iter().any(
        |e| matches!(e, Effect::WriteRecovery(copy) if copy.text.starts_with("q?  function"))
    ));
}

#[test]
fn clean_buffer_quits_with_q_outside_text() {
    let mut console = Console::connected();
    console.alt('1');
    console.type_text("q");
    assert!(console.quit_requested());
}

#[test]
fn a_wrapped_result_header_keeps_each_time_with_its_mark() {
    for width in 100..=180 {
        let mut console = Console::new(width, 30);
        console.connect(true);
        console.app.time_format = |_| "863µs".to_string();
        console.key(KeyCode::F(5));
        console.answer(is_apply, Ok(applied(Value::Int(5), None, (5, 1))));
        let screen = console.screen();
        for row in screen.lines() {
            let results = row
                .rsplit("││")
                .next()
                .unwrap_or(row)
                .trim_end_matches(['│', ' ']);
            assert!(
                !results.ends_with(['✓', '·']) && !results.ends_with("server"),
                "width {width}: a mark is cut from its time:\n{screen}"
            );
        }
        assert!(screen.contains("server 863µs"), "width {width}:\n{screen}");
    }
}

#[test]
fn apply_twice_shows_results_and_record_changes() {
    let mut console = Console::connected();
    console.key(KeyCode::F(5));
    let Some((_, Request::Apply(call))) = console.sent.iter().find(|(_, r)| is_apply(r)) else {
        panic!("F5 sends the apply")
    };
    assert_eq!(call.module, "counter");
    assert_eq!(call.function, "increment");
    assert_eq!(
        call.args,
        vec![Value::String("count".into()), Value::Int(5)]
    );
    assert!(call.with_record);
    // In flight at once, with a spinner and the elapsed time.
    console.tick(Duration::from_millis(300));
    let screen = console.screen();
    assert!(
        screen.contains("#1 counter.increment('count', 5) @ 'k1'"),
        "{screen}"
    );
    assert!(screen.contains(" T"), "{screen}");
    insta::assert_snapshot!("apply_in_flight", screen);

    console.answer(is_apply, Ok(applied(Value::Int(5), None, (5, 1))));
    let screen = console.screen();
    assert!(screen.contains("✓ T"), "{screen}");
    assert!(screen.contains("= 5"), "{screen}");
    assert!(screen.contains("(created)"), "{screen}");

    console.set_field(5, "'count', 3");
    console.ctrl('j');
    let Some((_, Request::Apply(call))) = console.sent.iter().find(|(_, r)| is_apply(r)) else {
        panic!("Ctrl-J sends the apply")
    };
    assert_eq!(call.args[1], Value::Int(3));
    console.answer(is_apply, Ok(applied(Value::Int(8), Some((5, 1)), (8, 2))));
    let screen = console.screen();
    assert!(screen.contains("= 8"), "{screen}");
    assert!(screen.contains("record gen 1 → 2"), "{screen}");
    assert!(screen.contains("~ count: 5 → 8"), "{screen}");
    assert!(screen.contains("log info: counted"), "{screen}");
    insta::assert_snapshot!("apply_twice", screen);

    // The form history brings back the first form.
    console.ctrl('p');
    console.ctrl('p');
    assert_eq!(console.app.apply.inputs[5].text, "'count', 5");
}

#[test]
fn bad_arguments_show_the_column_and_are_not_sent() {
    let mut console = Console::connected();
    console.set_field(5, "'count', 5 6");
    let screen = console.screen();
    assert!(screen.contains("args: column 12"), "{screen}");
    insta::assert_snapshot!("args_error", screen);
    console.key(KeyCode::F(5));
    assert!(!console.sent.iter().any(|(_, r)| is_apply(r)));
    assert!(console.app.status.as_ref().is_some_and(|s| s.error));
}

/// The column where `symbol` is first drawn on row `y`.
fn column_of(console: &Console, symbol: &str, y: u16) -> Option<u16> {
    let buffer = console.terminal.backend().terminal.buffer();
    (0..buffer.area.width).find(|x| buffer[(*x, y)].symbol() == symbol)
}

/// The row of the first form field labelled `label`.
fn row_of(screen: &str, label: &str) -> u16 {
    let label = format!(" {label} ");
    screen
        .lines()
        .position(|l| l.contains(&label))
        .expect(&label) as u16
}

#[test]
fn a_field_wider_than_the_pane_scrolls_to_keep_the_cursor_and_caret_in_view() {
    let mut console = Console::connected_at(80, 30);
    console.kind(FormKind::Batch);
    let keys: Vec<String> = (1..=30).map(|n| format!("'k{n}'")).collect();
    let keys = keys.join(", ");
    console.set(asudf::tui::panes::apply::Field::Keys, &keys);
    let screen = console.screen();
    let row = row_of(&screen, "keys");
    let line = screen.lines().nth(row as usize).unwrap();
    // The end of the text and the cursor after it are in view.
    assert!(line.ends_with("'k30' │"), "{screen}");
    let cursor = console.cursor().expect("a cursor");
    assert_eq!((cursor.x, cursor.y), (78, row), "{screen}");

    // An error at the cursor: its ✗ and its caret in view.
    console.type_text(" x");
    let screen = console.screen();
    let line = screen.lines().nth(row as usize).unwrap();
    assert!(line.ends_with("'k30' x ✗ │"), "{screen}");
    let cursor = console.cursor().expect("a cursor");
    assert_eq!(column_of(&console, "^", row + 1), Some(cursor.x - 1));
    assert_eq!(column_of(&console, "x", row), Some(cursor.x - 1));

    // Home: the field shows from its start again.
    console.key(KeyCode::Home);
    let screen = console.screen();
    let line = screen.lines().nth(row as usize).unwrap();
    assert!(line.contains("keys 'k1', 'k2'"), "{screen}");
    assert_eq!(console.cursor().map(|c| c.x), Some(12));
}

#[test]
fn wide_characters_put_the_cursor_and_caret_under_their_columns() {
    let mut console = Console::connected_at(80, 30);
    console.set(asudf::tui::panes::apply::Field::Key, "'日本語' x");
    let screen = console.screen();
    assert!(screen.contains("key: column 7:"), "{screen}");
    let row = row_of(&screen, "key");
    let cursor = console.cursor().expect("a cursor");
    assert_eq!(cursor.y, row);
    // 'x' is the 7th character, 9 cells after the field's start.
    assert_eq!(column_of(&console, "x", row), Some(12 + 9));
    assert_eq!(column_of(&console, "^", row + 1), Some(12 + 9));
    assert_eq!(cursor.x, 12 + 10, "after the x");
}

#[test]
fn compile_error_marks_its_line() {
    let mut console = Console::connected();
    console.key(KeyCode::F(9));
    let Some((_, Request::PutModule { name, source })) = console
        .sent
        .iter()
        .find(|(_, r)| matches!(r, Request::PutModule { .. }))
    else {
        panic!("F9 registers the buffer")
    };
    assert_eq!(name, "counter.lua");
    assert!(source.contains("function increment"));
    console.answer(
        |r| matches!(r, Request::PutModule { .. }),
        Err(Failure {
            kind: FailureKind::Compile,
            code: 4,
            message: "counter.lua:3: unexpected symbol near '+'".into(),
            location: Some(("counter.lua".into(), 3)),
            logs: vec![],
        }),
    );
    assert_eq!(console.app.editor.marks.len(), 1);
    assert_eq!(console.app.editor.marks[0].line, 3);
    let screen = console.screen();
    assert!(screen.contains("● 3 "), "{screen}");
    assert!(
        screen.contains("line 3: counter.lua:3: unexpected"),
        "{screen}"
    );
    insta::assert_snapshot!("compile_error", screen);
    // Editing clears the mark.
    console.type_text("x");
    assert!(console.app.editor.marks.is_empty());
}

/// The server's answer to a call whose UDF failed at counter.lua line 3.
fn runtime_error_at_line_3(error: &str) -> Failure {
    Failure {
        kind: FailureKind::Server,
        code: 100,
        message: format!("/opt/aerospike/usr/udf/lua/counter.lua:3: {error}"),
        location: Some(("counter.lua".into(), 3)),
        logs: vec![],
    }
}

/// F5, and the call fails at counter.lua line 3 with `error`.
fn run_failing_at_line_3(console: &mut Console, error: &str) {
    console.key(KeyCode::F(5));
    console.answer(is_apply, Err(runtime_error_at_line_3(error)));
}

/// A complaint about the form does not outlive the run that goes out once
/// the form is right.
#[test]
fn a_run_that_goes_out_clears_an_earlier_complaint() {
    let mut console = Console::connected();
    console.set_field(5, "'count', 5 6");
    console.key(KeyCode::F(5));
    assert!(
        console.status().starts_with("cannot run: args"),
        "{}",
        console.status()
    );
    console.set_field(5, "'count', 5");
    console.key(KeyCode::F(5));
    assert_eq!(console.count(is_apply), 1);
    assert!(
        !console.status().contains("cannot run"),
        "{}",
        console.status()
    );
}

#[test]
fn runtime_error_marks_its_line_and_shows_the_error() {
    let mut console = Console::connected();
    run_failing_at_line_3(&mut console, "attempt to perform arithmetic on a nil value");
    assert_eq!(console.app.editor.marks[0].line, 3);
    let screen = console.screen();
    assert!(screen.contains("error 100"), "{screen}");
    assert!(screen.contains("at counter.lua line 3"), "{screen}");
}

#[test]
fn a_runtime_error_marks_no_editor_line_when_the_editor_differs_from_the_registered_module() {
    let mut console = Console::connected();
    console.modules_listed(&[("counter.lua", "abc")]);
    let source = console.app.editor.contents();
    console.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: "counter.lua".into(),
            source,
        }),
    );
    // A line inserted at the top, not registered: the server's line 3 is
    // the editor's line 4.
    console.type_text("-- a new first line\n");
    assert!(console.screen().contains("≠buffer"));
    run_failing_at_line_3(&mut console, "boom");
    assert!(console.app.editor.marks.is_empty());
    assert_eq!(
        console.status(),
        "line 3 of the registered counter.lua; the editor differs"
    );
    let screen = console.screen();
    assert!(screen.contains("at counter.lua line 3 (the"), "{screen}");
    assert!(screen.contains("version; the editor differs)"), "{screen}");

    // Undone back to the registered text, the line is marked again.
    while console.screen().contains("≠buffer") {
        console.ctrl('z');
    }
    run_failing_at_line_3(&mut console, "boom");
    assert_eq!(console.app.editor.marks[0].line, 3);
}

#[test]
fn the_newest_result_shows_to_its_last_line_when_its_words_wrap() {
    // The results pane of a 100-column terminal is 38 columns inside: the
    // long words below wrap onto more rows than the message's width makes.
    let error = "attempt to index a nil value (field 'regional_configuration') \
        while reading bin 'accumulated_totals' of record 'customer_account'";
    for height in 28..=40 {
        let mut console = Console::connected_at(100, height);
        for _ in 0..3 {
            console.key(KeyCode::F(5));
            console.answer(is_apply, Ok(applied(Value::Int(5), None, (5, 1))));
        }
        run_failing_at_line_3(&mut console, error);
        let screen = console.screen();
        assert!(screen.contains("#4 "), "height {height}:\n{screen}");
        assert!(
            screen.contains("at counter.lua line 3"),
            "height {height}:\n{screen}"
        );
    }
}

#[test]
fn a_lua_traceback_shows_line_by_line() {
    let mut console = Console::connected();
    run_failing_at_line_3(
        &mut console,
        "boom\nstack traceback:\n\tcounter.lua:3: in function 'f'\n\t[C]: in ?",
    );
    let screen = console.screen();
    let results: Vec<&str> = screen
        .lines()
        .map(|row| {
            row.rsplit("││")
                .next()
                .unwrap_or(row)
                .trim_end_matches(['│', ' '])
        })
        .collect();
    for row in [
        "    stack traceback:",
        "      counter.lua:3: in function 'f'",
        "      [C]: in ?",
    ] {
        assert!(results.contains(&row), "{row:?}:\n{screen}");
    }
}

#[test]
fn the_editor_view_follows_the_message_row_and_the_gutter() {
    let mut console = Console::connected();
    let (rows, cols) = (console.app.editor.view_rows, console.app.editor.view_cols);
    // A mark's message takes the pane's last row.
    run_failing_at_line_3(&mut console, "boom");
    assert_eq!(console.app.editor.view_rows, rows - 1);
    // A file of 10,000 lines has a gutter three columns wider than 10 lines'.
    let text: String = (1..=10_000)
        .map(|i| format!("local v{i} = {i}\n"))
        .collect();
    console.open_file("/tmp/long.lua", &text);
    assert_eq!(
        console.app.editor.view_rows, rows,
        "the mark went with the load"
    );
    assert_eq!(console.app.editor.view_cols, cols - 3);
}

#[test]
fn cancel_and_timeout() {
    let mut console = Console::connected();
    console.key(KeyCode::F(5));
    let tag = console.sent.iter().find(|(_, r)| is_apply(r)).unwrap().0;
    console.ctrl('k');
    assert!(console.effects.contains(&Effect::Cancel(tag)));
    console.answer(
        is_apply,
        Err(Failure {
            kind: FailureKind::Timeout,
            code: 9,
            message: "timeout".into(),
            location: None,
            logs: vec![],
        }),
    );
    let screen = console.screen();
    assert!(screen.contains("✗ T"), "{screen}");
    assert!(screen.contains("timeout"), "{screen}");
}

#[test]
fn lost_connection_shows_and_calls_fail_fast() {
    let mut console = Console::connected();
    console.act(Action::Client(Event::Connection(ConnectionState::Lost {
        reason: "the cluster stopped answering".into(),
    })));
    console.key(KeyCode::F(5));
    assert!(!console.sent.iter().any(|(_, r)| is_apply(r)));
    let screen = console.screen();
    assert!(
        screen.contains("disconnected: the cluster stopped answering"),
        "{screen}"
    );
    assert!(screen.contains("not connected"), "{screen}");
    insta::assert_snapshot!("disconnected", screen);
}

fn is_series(r: &Request) -> bool {
    matches!(r, Request::ApplySeries { .. })
}

/// `n` runs of a series done, as the client task reports them.
fn runs(n: usize) -> StreamItem {
    StreamItem::Runs {
        round_trips: vec![Duration::from_micros(75); n],
        failed: 0,
    }
}

#[test]
fn run_many_times_is_one_series_request_that_reports_its_runs() {
    let mut console = Console::connected();
    console.set_field(7, "3");
    console.key(KeyCode::F(5));
    // The runs go back to back from the client task: one request, no
    // round through the console per run.
    let sent: Vec<_> = console.sent.iter().filter(|(_, r)| is_series(r)).collect();
    assert_eq!(sent.len(), 1, "{:?}", console.sent);
    assert!(
        matches!(&sent[0].1, Request::ApplySeries { times: 3, call } if call.with_record),
        "{sent:?}"
    );
    assert!(!console.sent.iter().any(|(_, r)| is_apply(r)));
    console.item(is_series, runs(2));
    assert!(console.screen().contains("2/3 runs, 0 failed"));
    assert!(console.app.results.entries[0].in_flight());
    console.item(is_series, runs(1));
    console.answer(is_series, Ok(applied(Value::Int(2), None, (2, 1))));
    assert!(!console.app.results.entries[0].in_flight());
    let screen = console.screen();
    assert!(screen.contains("3/3 runs, 0 failed"), "{screen}");
    assert!(screen.contains("min T p50 T p90 T p99 T max T"), "{screen}");
    insta::assert_snapshot!("run_many", screen);
}

#[test]
fn a_cancelled_run_many_says_how_many_of_the_asked_runs_were_done() {
    // Wide enough for the result's title and progress on a row each.
    let mut console = Console::connected_at(200, 40);
    console.set_field(7, "20000");
    console.key(KeyCode::F(5));
    console.item(is_series, runs(3));
    console.ctrl('k');
    let tag = console.tag_of(is_series);
    assert!(console.effects.contains(&Effect::Cancel(tag)));
    // The series stops between runs: it reports the runs done since its
    // last report and answers as its last run, the record read before its
    // first run → after that one.
    console.item(is_series, runs(1));
    console.answer(is_series, Ok(applied(Value::Int(4), Some((0, 1)), (4, 5))));
    let screen = console.screen();
    assert!(screen.contains("×4 of 20000, cancelled"), "{screen}");
    assert!(
        screen.contains("4/20000 runs, 0 failed, cancelled"),
        "{screen}"
    );
    assert_eq!(console.status(), "#1 cancelled: 4 of 20000 runs done");
    assert!(!console.app.results.entries[0].in_flight());
    assert!(screen.contains("min T p50 T p90 T p99 T max T"), "{screen}");
    assert!(screen.contains("= 4"), "{screen}");
    assert!(screen.contains("record gen 1 → 5"), "{screen}");
    assert!(screen.contains("~ count: 0 → 4"), "{screen}");
    assert!(!screen.contains('✗'), "{screen}");

    // Cancelled before any run was done: the cancel is its end.
    console.key(KeyCode::F(5));
    console.ctrl('k');
    console.answer(is_series, Err(Failure::cancelled()));
    assert!(console.screen().contains("×0 of 20000, cancelled"));
    assert_eq!(console.status(), "#2 cancelled: 0 of 20000 runs done");
}

#[test]
fn modules_pane_opens_and_removes_with_confirmation() {
    let mut console = Console::connected();
    console.modules_listed(&[("other.lua", "h")]);
    console.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: "other.lua".into(),
            source: "function hello(rec, who)\n  return 'hi ' .. who\nend\n".into(),
        }),
    );
    assert!(console.screen().contains("  not registered"));

    // The function picker offers the module's functions with parameters.
    console.set_field(3, "other");
    console.app.apply.focus = 4;
    console.key(KeyCode::Enter);
    let screen = console.screen();
    assert!(screen.contains("hello(rec, who)"), "{screen}");
    console.key(KeyCode::Enter);
    assert_eq!(console.app.apply.inputs[4].text, "hello");

    console.alt('1');
    console.key(KeyCode::Delete);
    assert!(matches!(console.app.overlay, Some(Overlay::Confirm { .. })));
    console.key(KeyCode::Char('y'));
    assert!(
        console
            .sent
            .iter()
            .any(|(_, r)| matches!(r, Request::RemoveModule { name } if name == "other.lua"))
    );

    // Enter opens it in the editor (the sample is unchanged: no question).
    console.key(KeyCode::Enter);
    assert_eq!(console.app.editor.module, "other.lua");
    assert!(console.app.editor.contents().starts_with("function hello"));
    assert_eq!(console.app.focus, Pane::Editor);
}

/// How many recovery copies the console asked to write.
fn recovery_writes(console: &Console) -> usize {
    console
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::WriteRecovery(_)))
        .count()
}

#[test]
fn recovery_copy_is_written_after_a_pause_in_typing() {
    let mut console = Console::connected();
    console.type_text("x");
    console.tick(Duration::from_millis(500));
    assert_eq!(recovery_writes(&console), 0);
    console.tick(Duration::from_secs(3));
    assert_eq!(recovery_writes(&console), 1);
    console.tick(Duration::from_secs(6));
    assert_eq!(recovery_writes(&console), 1, "written once per pause");
}

/// Ended (a signal, or the terminal gone), the console quits without a
/// question and writes the recovery copy at once, not when it falls due.
#[test]
fn an_ended_console_keeps_its_last_edits_at_once() {
    let mut console = Console::connected();
    console.type_text("x");
    console.act(Action::Ended);
    assert!(console.quit_requested(), "{:?}", console.effects);
    assert!(console.app.overlay.is_none(), "nothing asked");
    let copies: Vec<_> = console
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::WriteRecovery(copy) => Some(copy.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(copies, [console.app.editor.contents()]);
    assert!(copies[0].starts_with('x'), "{copies:?}");

    // A buffer its file holds keeps no copy.
    let mut clean = Console::connected();
    clean.act(Action::Ended);
    assert!(clean.quit_requested());
    assert_eq!(recovery_writes(&clean), 0);
}

#[test]
fn undoing_back_to_what_the_file_holds_leaves_nothing_unsaved() {
    let mut console = Console::connected();
    assert!(!console.app.editor.dirty());
    console.type_text("x");
    assert!(console.app.editor.dirty());
    assert!(console.screen().contains("[+]"));
    console.ctrl('z');
    assert!(!console.app.editor.dirty());
    assert!(!console.screen().contains("[+]"), "{}", console.screen());
    // The recovery copy due after the pause is not needed any more.
    console.tick(Duration::from_secs(3));
    assert!(console.effects.contains(&Effect::ClearRecovery));
    assert_eq!(recovery_writes(&console), 0);
    console.ctrl('y');
    assert!(console.app.editor.dirty(), "redo brings the edit back");

    // A copy written at a pause, then undone and quit at once: the copy
    // is not offered on the next start.
    console.tick(Duration::from_secs(6));
    assert!(recovery_writes(&console) > 0);
    console.effects.clear();
    console.ctrl('z');
    console.ctrl('c');
    assert!(console.quit_requested(), "{:?}", console.effects);
    assert!(console.effects.contains(&Effect::ClearRecovery));
}

#[test]
fn opening_another_file_over_discarded_edits_removes_their_recovery_copy() {
    let mut console = Console::connected();
    console.type_text("x");
    console.tick(Duration::from_secs(3));
    assert!(recovery_writes(&console) > 0);
    console.ctrl('o');
    console.type_text("/tmp/other.lua");
    console.key(KeyCode::Enter);
    console.key(KeyCode::Char('y'));
    assert!(!console.effects.contains(&Effect::ClearRecovery));
    console.act(Action::FileLoaded {
        path: "/tmp/other.lua".into(),
        result: Ok("local a = 1\n".into()),
    });
    assert!(console.effects.contains(&Effect::ClearRecovery));
}

#[test]
fn a_save_counts_the_text_it_wrote_not_edits_made_while_writing() {
    let mut console = Console::connected();
    console.open_file("/tmp/saved.lua", "local a = 1\n");
    console.type_text("b");
    console.ctrl('s');
    let Some(Effect::SaveFile {
        path, text, saving, ..
    }) = console.effects.pop()
    else {
        panic!("a save: {:?}", console.effects)
    };
    assert_eq!(text, "blocal a = 1\n");
    // A key typed while the file is written, then the write ends.
    console.type_text("c");
    console.act(Action::FileSaved {
        path: path.clone(),
        saving,
        result: Ok(()),
    });
    assert!(console.app.editor.dirty(), "the 'c' is not in the file");
    assert!(!console.effects.contains(&Effect::ClearRecovery));
    // Undoing the 'c' comes back to what was written.
    console.ctrl('z');
    assert!(!console.app.editor.dirty());
    assert_eq!(console.app.editor.contents(), text);
}

/// A save as a new file takes the file's name once written; a file
/// opened meanwhile keeps its own name when that write ends.
#[test]
fn a_save_as_ending_after_another_file_opened_does_not_rename_it() {
    let mut console = Console::connected();
    console.ctrl('s');
    console.ctrl('u');
    console.type_text("/tmp/x/mine.lua");
    console.key(KeyCode::Enter);
    let Some(Effect::SaveFile { path, saving, .. }) = console.effects.pop() else {
        panic!("a save: {:?}", console.effects)
    };
    console.act(Action::FileLoaded {
        path: "/tmp/other.lua".into(),
        result: Ok("local a = 1\n".into()),
    });
    console.act(Action::FileSaved {
        path,
        saving,
        result: Ok(()),
    });
    assert_eq!(console.app.editor.path, Some("/tmp/other.lua".into()));
    assert_eq!(console.app.editor.module, "other.lua");
}

#[test]
fn recovered_buffer_is_offered_on_start() {
    let mut options = StartOptions::sample("sandbox");
    options.recovered = Some(Recovered {
        text: "function kept(rec) end\n".into(),
        path: None,
        module: None,
        base: None,
    });
    let mut app = App::new(options);
    assert!(matches!(app.overlay, Some(Overlay::Confirm { .. })));
    app.update(Action::Key(KeyEvent::new(
        KeyCode::Char('y'),
        KeyModifiers::NONE,
    )));
    assert!(app.editor.contents().starts_with("function kept"));
    assert!(app.editor.dirty());
}

#[test]
fn a_keymap_error_stays_in_the_status_line_when_the_console_connects() {
    let mut options = StartOptions::sample("sandbox");
    options.keymap_error = Keymap::with_overrides("run = [\"Foo-9\"]\n")
        .err()
        .map(|e| e.to_string());
    let error = options.keymap_error.clone().expect("Foo-9 is no key");
    let mut console = Console::new(120, 40);
    console.app = App::new(options);
    assert_eq!(console.status(), error);
    console.connect(true);
    assert_eq!(console.status(), error);
    assert!(console.screen().contains(&error));
    // "connected" replaces the message of a lost connection.
    console.act(Action::Client(Event::Connection(ConnectionState::Lost {
        reason: "the cluster stopped answering".into(),
    })));
    console.connect(true);
    assert_eq!(console.status(), "connected");
}

#[test]
fn in_a_short_terminal_the_focused_form_field_stays_in_view() {
    // 80×24: the stacked apply pane shows four of a form's rows.
    let mut console = Console::new(80, 24);
    for kind in [
        FormKind::Record,
        FormKind::Aggregate,
        FormKind::Background,
        FormKind::Query,
        FormKind::Batch,
    ] {
        console.kind(kind);
        console.alt('3');
        while console.app.apply.focus != 0 {
            console.key(KeyCode::Up);
        }
        for (i, field) in kind.fields().iter().enumerate() {
            if i > 0 {
                console.key(KeyCode::Down);
            }
            assert_eq!(console.app.apply.focus, i);
            let screen = console.screen();
            let label = format!("│{:>10} ", field.label());
            let at = screen.lines().position(|row| row.starts_with(&label));
            assert!(
                at.is_some(),
                "{kind:?}, field {i} ({}) is out of view:\n{screen}",
                field.label()
            );
            // The cursor is in that field's row.
            assert_eq!(
                console.cursor().map(|p| p.y as usize),
                at,
                "{kind:?}, field {i}:\n{screen}"
            );
        }
    }
    // A field with an error keeps its caret in view too.
    console.kind(FormKind::Record);
    console.set_field(5, "'count', [1,");
    let screen = console.screen();
    let at = screen
        .lines()
        .position(|row| row.starts_with("│      args 'count', [1,"));
    assert!(
        at.is_some_and(|at| screen.lines().nth(at + 1).is_some_and(|r| r.contains('^'))),
        "{screen}"
    );
}

#[test]
fn in_a_short_narrow_terminal_the_focused_pane_takes_the_spare_rows() {
    let mut console = Console::connected_at(80, 24);
    let rows_of = |screen: &str, title: &str| {
        let lines: Vec<&str> = screen.lines().collect();
        let top = lines.iter().position(|l| l.contains(title)).unwrap();
        lines[top + 1..]
            .iter()
            .take_while(|l| l.starts_with('│'))
            .count()
    };
    // The editor has the focus on start: eight lines, not the four it gets
    // when the form has it.
    let screen = console.screen();
    assert_eq!(rows_of(&screen, "2 Editor"), 8, "{screen}");
    assert_eq!(console.app.editor.view_rows, 8);
    console.alt('3');
    let screen = console.screen();
    assert_eq!(rows_of(&screen, "2 Editor"), 4, "{screen}");
    assert_eq!(
        console.app.editor.view_rows, 4,
        "the editor follows its pane"
    );
    assert_eq!(rows_of(&screen, "3 Apply"), 6, "{screen}");
    console.alt('1');
    let screen = console.screen();
    assert!(rows_of(&screen, "1 Modules") > 3, "{screen}");
    // Tall enough for every pane: the layout does not move with the focus.
    let mut console = Console::connected_at(80, 40);
    let before = console.screen();
    console.alt('3');
    let after = console.screen();
    assert_eq!(rows_of(&before, "2 Editor"), rows_of(&after, "2 Editor"));
}

#[test]
fn in_a_very_short_terminal_the_focused_pane_keeps_its_rows_first() {
    for (width, height) in [(80, 16), (80, 14), (80, 12), (60, 10), (40, 10), (20, 5)] {
        let mut console = Console::new(width, height);
        console.alt('2');
        console.type_text("--");
        let screen = console.screen();
        let at = format!("{width}×{height}");
        let areas = ui::layout_for(
            ratatui::layout::Rect::new(0, 0, width, height),
            Pane::Editor,
        );
        let text_rows = areas.editor.height.saturating_sub(2);
        // Four lines of text at least when the body has room for them, else
        // all it has.
        assert!(text_rows >= 4.min(height - 4), "{at}:\n{screen}");
        // The typed text and the cursor after it are in the editor's box.
        let cursor = console
            .cursor()
            .unwrap_or_else(|| panic!("{at}: {:?}\n{screen}", console.app.apply.focus));
        assert!(areas.editor.contains(cursor), "{at}: {cursor:?}\n{screen}");
        let row = screen.lines().nth(cursor.y as usize).unwrap();
        assert!(row.contains("--function"), "{at}:\n{screen}");
        // The others shrink first: each still shows its title while it fits.
        if height >= 12 {
            for title in ["1 Modules", "3 Apply", "4 Results"] {
                assert!(screen.contains(title), "{at}: {title}\n{screen}");
            }
        }
        // The form's focused field too (a 20-column form cuts the value the
        // cursor is after).
        console.alt('3');
        let screen = console.screen();
        let label = console.app.apply.focused_field().label();
        assert!(screen.contains(label), "{at}: {label}\n{screen}");
        if width >= 40 {
            let cursor = console.cursor().expect("the cursor shows");
            let row = screen.lines().nth(cursor.y as usize).unwrap();
            assert!(row.contains(label), "{at}: {label}\n{screen}");
        }
    }
}

#[test]
fn narrow_terminal_stacks_panes_and_focus_moves() {
    let mut console = Console::new(80, 40);
    let screen = console.screen();
    insta::assert_snapshot!("narrow", screen);
    console.key(KeyCode::F(6));
    assert_eq!(console.app.focus, Pane::Apply);
    console.act(Action::Key(KeyEvent::new(
        KeyCode::F(6),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(console.app.focus, Pane::Editor);
    // A click focuses the pane under the mouse.
    let areas = ui::layout(ratatui::layout::Rect::new(0, 0, 80, 40));
    console.act(Action::Mouse(crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: areas.results.x + 2,
        row: areas.results.y + 2,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(console.app.focus, Pane::Results);
}

#[test]
fn save_writes_the_buffer_and_clears_dirty() {
    let mut console = Console::connected();
    console.type_text("-- edited\n");
    console.ctrl('s');
    // No file yet: it asks where, then saves there.
    assert!(matches!(console.app.overlay, Some(Overlay::Prompt { .. })));
    console.ctrl('u');
    console.type_text("/tmp/x/mine.lua");
    console.key(KeyCode::Enter);
    let saved = console.effects.iter().find_map(|e| match e {
        Effect::SaveFile {
            path, text, saving, ..
        } => Some((path.clone(), text.clone(), *saving)),
        _ => None,
    });
    let (path, text, saving) = saved.expect("a save");
    assert_eq!(path.to_str(), Some("/tmp/x/mine.lua"));
    assert!(text.starts_with("-- edited\nfunction increment"));
    console.act(Action::FileSaved {
        path,
        saving,
        result: Ok(()),
    });
    // Written, the file is the buffer's and names its module.
    assert_eq!(console.app.editor.module, "mine.lua");
    assert!(!console.app.editor.dirty());
    assert!(console.effects.contains(&Effect::ClearRecovery));
}

#[test]
fn results_save_as_json_and_expand() {
    let mut console = Console::connected();
    console.key(KeyCode::F(5));
    let big = Value::List((0..200).map(Value::Int).collect());
    console.answer(is_apply, Ok(applied(big, None, (1, 1))));
    let folded = console.screen();
    assert!(folded.contains("more"), "a big value is folded: {folded}");
    console.alt('4');
    console.key(KeyCode::Enter);
    assert!(console.app.results.entries[0].expanded);
    let expanded = console.screen();
    assert!(expanded.contains("  = ["), "{expanded}");

    console.type_text("s");
    console.key(KeyCode::Enter);
    let (path, text) = console
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::SaveFile { path, text, .. } => Some((path.clone(), text.clone())),
            _ => None,
        })
        .expect("results saved");
    assert_eq!(path.to_str(), Some("results.json"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json[0]["result"].as_array().map(Vec::len), Some(200));
    assert_eq!(json[0]["after"]["generation"], 1);
    // The call's own round trip (75 µs), not the whole request's (700 µs).
    assert_eq!(json[0]["round_trip_ms"], 0.075);
    assert_eq!(json[0]["server_run_ms"], 0.02);

    console.type_text("c");
    assert!(
        console
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Copy(t) if t.contains("\"result\"")))
    );
}

#[test]
fn open_search_and_scroll_in_the_editor() {
    let mut console = Console::connected();
    console.ctrl('o');
    console.type_text("/tmp/other.lua");
    console.key(KeyCode::Enter);
    assert!(
        console
            .effects
            .contains(&Effect::LoadFile("/tmp/other.lua".into()))
    );
    let text: String = (1..=300).map(|i| format!("local v{i} = {i}\n")).collect();
    console.act(Action::FileLoaded {
        path: "/tmp/other.lua".into(),
        result: Ok(text),
    });
    assert_eq!(console.app.editor.module, "other.lua");
    assert!(!console.app.editor.dirty());

    console.ctrl('f');
    console.type_text("v250 ");
    console.key(KeyCode::Enter);
    assert_eq!(console.app.editor.cursor().0, 249);
    let screen = console.screen();
    assert!(
        screen.contains("250 local v250 = 250"),
        "the match is on screen: {screen}"
    );

    let areas = ui::layout(ratatui::layout::Rect::new(0, 0, 120, 40));
    let top = console.app.editor.scroll_row;
    console.act(Action::Mouse(crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::ScrollUp,
        column: areas.editor.x + 5,
        row: areas.editor.y + 5,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(console.app.editor.scroll_row, top - 3);

    // A file that cannot be read says so and keeps the buffer.
    console.act(Action::FileLoaded {
        path: "/nope.lua".into(),
        result: Err("No such file or directory".into()),
    });
    assert_eq!(console.app.editor.module, "other.lua");
    assert!(
        console
            .app
            .status
            .as_ref()
            .unwrap()
            .text
            .contains("cannot open /nope.lua")
    );
}

#[test]
fn any_terminal_size_draws_without_panicking() {
    for (width, height) in [(1, 1), (10, 5), (40, 12), (99, 20), (100, 20), (300, 100)] {
        let mut console = Console::new(width, height);
        console.key(KeyCode::F(5));
        console.key(KeyCode::F(1));
        let screen = console.screen();
        assert_eq!(screen.lines().count(), height as usize);
        console.key(KeyCode::Esc);
        console.alt('3');
        console.app.apply.focus = 4;
        console.key(KeyCode::Enter);
        console.screen();
    }
}

/// Ticks to `at` and performs the lints the reducer asks for, as the
/// driver does off the UI thread.
fn lint_at(console: &mut Console, at: Duration) -> usize {
    console.tick(at);
    let requests: Vec<_> = console
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Lint(request) => Some(request.clone()),
            _ => None,
        })
        .collect();
    console.effects.retain(|e| !matches!(e, Effect::Lint(_)));
    let count = requests.len();
    for request in requests {
        console.act(asudf::tui::diagnostics::run(request));
    }
    count
}

#[test]
fn diagnostics_show_while_typing_and_registering_with_errors_asks() {
    let mut console = Console::connected();
    assert_eq!(lint_at(&mut console, Duration::from_secs(1)), 1);
    assert!(
        console.app.editor.problems.is_empty(),
        "the sample is clean"
    );

    // The form calls counter.increment; make it local and add a global write.
    console.type_text("local ");
    console.key(KeyCode::Down);
    console.key(KeyCode::End);
    console.key(KeyCode::Enter);
    console.type_text("hits = (hits or 0) + 1");
    // Typing does not lint; it runs once typing has stopped for a moment.
    assert_eq!(lint_at(&mut console, Duration::from_millis(1100)), 0);
    assert_eq!(lint_at(&mut console, Duration::from_secs(3)), 1);
    let rules: Vec<&str> = console
        .app
        .editor
        .problems
        .iter()
        .map(|d| d.rule.as_str())
        .collect();
    assert_eq!(rules, ["local_udf", "global_in_function"]);
    let screen = console.screen();
    assert!(screen.contains("E 1 local function increment"), "{screen}");
    // The message row says the cursor line's finding in full.
    assert!(
        screen.contains("│warning 3:1: 'hits' is a global set"),
        "{screen}"
    );
    assert!(screen.contains("W 3"), "{screen}");
    insta::assert_snapshot!("lint_diagnostics", screen);

    // F4 steps to the next finding (wrapping to the first) and says it
    // with its fix; Shift-F4 goes back.
    console.key(KeyCode::F(4));
    assert_eq!(console.app.editor.cursor(), (0, 15));
    let status = console.app.status.clone().expect("a message");
    assert!(status.text.starts_with("1/2 line 1:"), "{}", status.text);
    assert!(status.error);
    console.key(KeyCode::F(4));
    assert_eq!(console.app.editor.cursor(), (2, 0));
    let status = console.app.status.clone().expect("a message");
    assert!(status.text.starts_with("2/2 line 3:"), "{}", status.text);
    assert!(
        status.text.contains("Fix: declare it `local`"),
        "{}",
        status.text
    );
    console.act(Action::Key(KeyEvent::new(
        KeyCode::F(4),
        KeyModifiers::SHIFT,
    )));
    assert_eq!(console.app.editor.cursor(), (0, 15));

    // Registering with an error asks first; no sends nothing.
    console.key(KeyCode::F(9));
    assert!(matches!(console.app.overlay, Some(Overlay::Confirm { .. })));
    assert!(
        !console
            .sent
            .iter()
            .any(|(_, r)| matches!(r, Request::PutModule { .. }))
    );
    console.key(KeyCode::Char('n'));
    assert!(
        !console
            .sent
            .iter()
            .any(|(_, r)| matches!(r, Request::PutModule { .. }))
    );
    console.key(KeyCode::F(9));
    console.key(KeyCode::Char('y'));
    assert!(
        console
            .sent
            .iter()
            .any(|(_, r)| matches!(r, Request::PutModule { .. }))
    );

    // Fixed: the error goes at the next lint, and F9 registers at once.
    for _ in 0..100 {
        if console.app.editor.contents() == asudf::tui::app::SAMPLE {
            break;
        }
        console.ctrl('z');
    }
    lint_at(&mut console, Duration::from_secs(10));
    assert_eq!(
        asudf::tui::diagnostics::errors(&console.app.editor.problems),
        0,
        "{:?}\n{}",
        console.app.editor.problems,
        console.app.editor.contents()
    );
}

#[test]
fn f9_does_not_ask_about_lint_errors_of_an_older_text() {
    let mut console = Console::connected();
    lint_at(&mut console, Duration::from_secs(1));
    console.key(KeyCode::End);
    console.type_text("(");
    lint_at(&mut console, Duration::from_secs(3));
    assert_eq!(
        asudf::tui::diagnostics::errors(&console.app.editor.problems),
        1
    );
    // Fixed, and F9 before the next lint: the error is no longer the text's.
    console.key(KeyCode::Backspace);
    console.key(KeyCode::F(9));
    assert!(console.app.overlay.is_none(), "{:?}", console.app.status);
    assert!(console.sent.iter().any(
        |(_, r)| matches!(r, Request::PutModule { source, .. } if source == asudf::tui::app::SAMPLE)
    ));
}

/// The form's function missing from the module is about the call, not the
/// module: F9 registers without asking, the finding still shown; an error
/// of the module's own still asks, and the question names it.
#[test]
fn f9_asks_about_the_modules_own_lint_errors_not_the_forms_missing_function() {
    let registered = |console: &Console| {
        console
            .sent
            .iter()
            .any(|(_, r)| matches!(r, Request::PutModule { .. }))
    };
    let mut console = Console::connected();
    console.set(Field::Function, "nosuch");
    lint_at(&mut console, Duration::from_secs(1));
    let problems = &console.app.editor.problems;
    assert!(
        problems.len() == 1 && problems[0].message.contains("has no function 'nosuch'"),
        "{problems:?}"
    );
    // The status line counts as F9 does: no error of the module's own.
    assert_eq!(asudf::tui::diagnostics::errors(problems), 0);
    console.key(KeyCode::F(9));
    assert!(console.app.overlay.is_none(), "{:?}", console.app.status);
    assert!(registered(&console));
    assert_eq!(console.app.editor.problems.len(), 1, "still shown");

    let mut console = Console::connected();
    console.key(KeyCode::End);
    console.type_text("(");
    console.set(Field::Function, "nosuch");
    lint_at(&mut console, Duration::from_secs(1));
    assert_eq!(
        asudf::tui::diagnostics::errors(&console.app.editor.problems),
        1
    );
    console.key(KeyCode::F(9));
    let Some(Overlay::Confirm { question, .. }) = &console.app.overlay else {
        panic!("a syntax error asks: {:?}", console.app.status);
    };
    assert!(
        question.contains("has 1 lint error (line ") && !question.contains("nosuch"),
        "{question}"
    );
    assert!(!registered(&console));
}

#[test]
fn f7_saves_the_calls_as_a_test_file_marked_ones_when_any() {
    use asudf::testing::format::{self, RecordExpect};
    let mut console = Console::connected();
    console.key(KeyCode::F(7));
    assert!(console.app.overlay.is_none(), "nothing to save yet");
    console.key(KeyCode::F(5));
    console.answer(is_apply, Ok(applied(Value::Int(5), None, (5, 1))));
    console.set_field(5, "'count', 3");
    console.key(KeyCode::F(5));
    console.answer(is_apply, Ok(applied(Value::Int(8), Some((5, 1)), (8, 2))));

    let saved = |console: &mut Console| {
        console.key(KeyCode::F(7));
        assert!(matches!(console.app.overlay, Some(Overlay::Prompt { .. })));
        console.key(KeyCode::Enter);
        let Some(Effect::SaveFile { path, text, .. }) = console.effects.pop() else {
            panic!("Enter saves the file");
        };
        assert_eq!(path, std::path::PathBuf::from("session.udftest.toml"));
        format::parse(&path, &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    };
    let all = saved(&mut console);
    assert_eq!(all.steps.len(), 2);
    assert_eq!(
        all.steps[1].action.describe(),
        "counter.increment('count', 3) @ 'k1'"
    );
    assert_eq!(all.steps[1].expect.value, Some(Value::Int(8)));
    assert!(matches!(
        &all.steps[1].expect.record,
        Some(RecordExpect::Present { bins, .. }) if bins.as_deref() == Some(&[("count".to_string(), Value::Int(8))][..])
    ));
    // The buffer has no file: the module goes in as its source.
    assert!(all.modules[0].source.contains("function increment"));

    // Space in the results pane marks one call: only it is saved.
    console.alt('4');
    console.key(KeyCode::Char(' '));
    assert!(console.screen().contains("▸2 "), "the mark shows");
    let marked = saved(&mut console);
    assert_eq!(marked.steps.len(), 1);
    assert_eq!(marked.steps[0].expect.value, Some(Value::Int(8)));
    // The record it started from is written first.
    assert_eq!(marked.records.len(), 1);
    assert_eq!(
        marked.records[0].bins,
        vec![("count".to_string(), Value::Int(5))]
    );
}

/// What the run loop waits for: the modules refresh when idle, the recovery
/// copy after an edit, the next animation frame while a call is in flight,
/// and nothing at all before the connection.
#[test]
fn the_next_wake_is_the_first_timer_due() {
    use asudf::tui::app::{RECOVERY_DELAY, REFRESH_EVERY, TICK};
    use asudf::tui::diagnostics::LINT_DELAY;
    let mut console = Console::new(120, 40);
    asudf::tui::highlight::preload();
    console.tick(Duration::ZERO);
    assert!(!console.app.animating());
    assert_eq!(
        console.app.next_wake(),
        None,
        "not connected, nothing moves"
    );

    let mut console = Console::connected();
    console.tick(Duration::ZERO);
    // Connecting tells the library mode: the buffer is linted again.
    let lint_at = console.app.next_wake().expect("a lint after connecting");
    assert!(lint_at <= console.start + LINT_DELAY);
    console.act(Action::Tick(lint_at));
    assert_eq!(
        console.app.next_wake(),
        None,
        "the listing's answer wakes it"
    );
    console.modules_listed(&[]);
    let now = console.app.now;
    // The refresh counts from when the listing was asked for, at start.
    assert_eq!(console.app.next_wake(), Some(console.start + REFRESH_EVERY));

    console.key(KeyCode::Char('x'));
    assert_eq!(
        console.app.next_wake(),
        Some(now + LINT_DELAY),
        "the lint once typing stops"
    );
    console.act(Action::Tick(now + LINT_DELAY));
    assert_eq!(console.app.next_wake(), Some(now + RECOVERY_DELAY));

    console.key(KeyCode::F(5));
    assert!(console.app.animating(), "a call in flight moves");
    assert_eq!(console.app.next_wake(), Some(console.app.now + TICK));
}

/// Typing in the editor redraws only what typing changes (debug builds
/// check each such frame against a whole one, so a pane that typing does
/// change but the partial frame left out fails here); anything else redraws
/// the whole screen.
#[test]
fn typing_redraws_the_editor_part_and_other_actions_the_whole_screen() {
    use asudf::tui::app::Damage;
    asudf::tui::highlight::preload();
    let mut console = Console::connected();
    console.screen();
    assert_eq!(console.app.focus, Pane::Editor);
    // The first edit marks the title [+]: the editor's part of the screen.
    console.type_text("x");
    assert_eq!(console.app.damage(), Damage::Typing);
    console.screen();
    // Then a key changes its row alone.
    console.type_text("y");
    assert_eq!(console.app.damage(), Damage::Line(0));
    console.type_text("z");
    let screen = console.screen();
    assert!(screen.contains("xyz"), "{screen}");
    // Two rows, or a new line, are the editor's part again.
    console.key(KeyCode::Down);
    console.type_text("w");
    assert_eq!(console.app.damage(), Damage::Typing);
    console.screen();
    console.key(KeyCode::Enter);
    assert_eq!(console.app.damage(), Damage::Typing);
    console.screen();
    console.type_text("-");
    assert!(matches!(console.app.damage(), Damage::Line(_)));
    console.screen();
    // Opening a comment changes how the lines after it look: the keys show
    // first, then their line parsed again redraws the editor's part.
    console.type_text("-[[");
    assert!(matches!(console.app.damage(), Damage::Line(_)));
    assert!(console.app.settle());
    assert_eq!(console.app.damage(), Damage::Typing);
    console.screen();
    // Leaving the editor changes the focus marks of two panes.
    console.key(KeyCode::F(6));
    assert_eq!(console.app.focus, Pane::Apply);
    assert_eq!(console.app.damage(), Damage::All);
    console.screen();
    assert_eq!(console.app.damage(), Damage::None, "drawn");
}

/// A connected console, highlighting loaded, the cursor on a new empty
/// first line of the sample.
fn on_a_new_first_line() -> Console {
    asudf::tui::highlight::preload();
    let mut console = Console::connected();
    console.key(KeyCode::Enter);
    console.key(KeyCode::Up);
    console
}

/// A keystroke is drawn before its line is parsed again, with the colours
/// of the token it extends; the line's own colours follow in a second frame
/// only where they differ, and end up as a fresh highlighting draws them.
#[test]
fn a_keystroke_shows_before_its_line_is_highlighted_again() {
    use asudf::tui::app::Damage;
    use asudf::tui::screen::Canvas;
    let mut console = on_a_new_first_line();
    console.screen();
    for c in "local x = en".chars() {
        console.type_text(&c.to_string());
        console.screen();
    }
    // Typing on in a name: the guess was right, nothing to draw again.
    console.type_text("x");
    assert_eq!(console.app.damage(), Damage::Line(0));
    assert!(!console.app.settle(), "the name's colour already shows");
    console.screen();
    console.key(KeyCode::Backspace);
    console.screen();
    // `end` becomes a keyword: its row is drawn again once parsed.
    console.type_text("d");
    assert_eq!(console.app.damage(), Damage::Line(0));
    assert!(console.app.settle());
    assert_eq!(console.app.damage(), Damage::Line(0));
    let screen = console.screen();
    assert!(screen.contains("local x = end"), "{screen}");
    // What shows is what highlighting the buffer from scratch shows.
    let app = &mut console.app;
    app.editor.highlighter.invalidate_from(0);
    app.editor.refresh_highlight();
    let mut fresh = ratatui::buffer::Buffer::empty(console.terminal.area());
    ui::draw(app, &mut Canvas::new(&mut fresh));
    assert_eq!(console.terminal.shown(), &fresh);
}

/// A lint's answer redraws the screen only when the findings changed: a
/// clean module linted again after each pause in typing stays as drawn.
#[test]
fn a_lint_with_the_same_findings_draws_nothing() {
    use asudf::tui::app::Damage;
    let mut console = Console::connected();
    let lint_answer = |console: &mut Console, at: Duration| {
        console.tick(at);
        let request = console
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Lint(request) => Some(request.clone()),
                _ => None,
            })
            .expect("a lint is due");
        console.effects.clear();
        console.screen();
        console.act(asudf::tui::diagnostics::run(request));
        let damage = console.app.damage();
        let before = console.frames().len();
        console.screen();
        let frames = console.frames().len() - before;
        assert_eq!(frames, usize::from(damage != Damage::None), "{damage:?}");
        damage
    };
    assert_eq!(
        lint_answer(&mut console, Duration::from_secs(1)),
        Damage::None
    );
    assert!(
        console.app.editor.problems.is_empty(),
        "the sample is clean"
    );
    // A comment line keeps it clean; a syntax error is a new finding.
    console.type_text("-- note");
    console.key(KeyCode::Enter);
    assert_eq!(
        lint_answer(&mut console, Duration::from_secs(3)),
        Damage::None
    );
    console.type_text("x = = 1");
    console.key(KeyCode::Enter);
    assert_eq!(
        lint_answer(&mut console, Duration::from_secs(5)),
        Damage::All
    );
    assert!(!console.app.editor.problems.is_empty());
}

/// A frame the terminal already shows goes out as nothing: no cell, no
/// colour reset, no cursor move, no flush. One that moves only the cursor
/// goes out.
#[test]
fn a_frame_that_changes_nothing_is_not_written() {
    let mut console = Console::connected();
    console.screen();
    let before = console.frames().len();
    let app = &console.app;
    console.terminal.draw(|frame| ui::draw(app, frame)).unwrap();
    assert_eq!(console.frames().len(), before, "the same frame again");

    let cursor = console.cursor().expect("the editor shows the cursor");
    let moved = ratatui::layout::Position::new(cursor.x + 1, cursor.y);
    console
        .terminal
        .draw(|frame| {
            ui::draw(app, frame);
            frame.set_cursor_position(moved);
        })
        .unwrap();
    assert_eq!(console.frames().len(), before + 1, "the cursor moved");
    assert_eq!(console.cursor(), Some(moved));
}

/// The styles of the cells where `text` first shows in `frame`.
fn styles_at(frame: &ratatui::buffer::Buffer, text: &str) -> Vec<ratatui::style::Style> {
    let wanted: Vec<String> = text.chars().map(String::from).collect();
    for row in frame.content.chunks(frame.area.width as usize) {
        let symbols: Vec<&str> = row.iter().map(|c| c.symbol()).collect();
        if let Some(at) = symbols.windows(wanted.len()).position(|w| w == wanted) {
            return row[at..at + wanted.len()]
                .iter()
                .map(|c| c.style())
                .collect();
        }
    }
    panic!("{text:?} is not on the screen");
}

/// The typed key goes out to the terminal in the first frame, before its
/// line is parsed again, in the colour of the token it extends; what
/// parsing changes goes out in a second frame.
#[test]
fn the_typed_key_goes_out_before_its_line_is_parsed_again() {
    let mut console = on_a_new_first_line();
    console.type_text("local x = en");
    console.screen();
    let before = console.frames().len();

    console.type_text("d");
    console.screen();
    let frames = &console.frames()[before..];
    assert_eq!(frames.len(), 2, "the key's frame, then the parsed line's");
    // First `end` all in the colour `en` had; then in the keyword's.
    let first = styles_at(&frames[0], "local x = end");
    assert_eq!(first[10..], [first[10]; 3], "d takes the colour of en");
    let parsed = styles_at(&frames[1], "local x = end");
    assert_eq!(parsed[10..], [parsed[10]; 3]);
    assert_ne!(parsed[10], first[10], "parsed again, `end` is a keyword");
}

/// A jump to the end of a long module highlights what it shows over short
/// updates that follow each other at once (a key typed meanwhile waits for
/// one of them, not for the whole file) and draw only when they reach the
/// lines shown; then the loop rests.
#[test]
fn a_jump_into_a_long_module_highlights_in_short_updates_back_to_back() {
    asudf::tui::highlight::preload();
    let mut console = Console::new(120, 40);
    let text: String = (0..6000)
        .map(|i| format!("local v{i} = {{ n = {i}, s = \"line {i}\" }} -- note {i}\n"))
        .collect();
    let path = std::path::PathBuf::from("long.lua");
    console.act(Action::FileLoaded {
        path,
        result: Ok(text),
    });
    console.screen();
    assert!(console.app.editor.highlight_done(), "the top shows at once");
    console.act(Action::Key(KeyEvent::new(
        KeyCode::End,
        KeyModifiers::CONTROL,
    )));
    assert!(
        !console.app.editor.highlight_done(),
        "one update does not parse 6,000 lines"
    );
    console.screen();
    let (mut updates, mut frames) = (1, 0);
    while !console.app.editor.highlight_done() {
        assert_eq!(
            console.app.next_wake(),
            Some(console.app.now),
            "the next update comes at once"
        );
        console.act(Action::Tick(console.app.now));
        updates += 1;
        assert!(updates < 100, "highlighting never caught up");
        // Only an update that reaches the lines shown draws (debug builds
        // check each frame, and each frame left out, against a whole one).
        let before = console.frames().len();
        console.screen();
        frames += console.frames().len() - before;
    }
    assert!(updates > 5, "{updates} updates");
    assert!(frames <= 2, "{frames} frames for {updates} updates");
    // Ctrl-End is at the end of the last line.
    let screen = console.screen();
    assert!(screen.contains("-- note 5999"), "{screen}");
    assert!(!console.app.animating());
    assert!(
        console
            .app
            .next_wake()
            .is_none_or(|at| at > console.app.now),
        "then only timers"
    );
}

/// While a call is in flight its elapsed time moves with every action, so
/// an action that changes nothing else (a tick, a lint that finds what is
/// shown) still draws; without one, such an action draws nothing.
#[test]
fn an_action_that_changes_nothing_draws_only_while_a_call_is_in_flight() {
    use asudf::tui::app::Damage;
    asudf::tui::highlight::preload();
    let mut console = Console::connected();
    console.modules_listed(&[]);
    console.screen();
    let drawn = |console: &mut Console| {
        let before = console.frames().len();
        console.screen();
        console.frames().len() - before
    };
    let now = console.app.now + Duration::from_millis(1);
    console.act(Action::Tick(now));
    assert_eq!(console.app.damage(), Damage::None, "an idle tick");
    assert_eq!(drawn(&mut console), 0);
    console.key(KeyCode::F(5));
    console.screen();
    assert!(console.app.results.in_flight().is_some());
    console.act(Action::Tick(now + Duration::from_millis(100)));
    assert_eq!(console.app.damage(), Damage::All, "the spinner moves");
    // Debug builds check the frame against a whole one.
    assert_eq!(drawn(&mut console), 1);
}

#[test]
fn ctrl_home_and_ctrl_end_go_to_the_start_and_the_end_of_the_module() {
    let mut console = Console::new(120, 40);
    let (last, end) = (9, "end".len());
    let from_the_middle = |console: &mut Console, modifiers: KeyModifiers, code: KeyCode| {
        console.app.editor.goto(3, 6);
        assert_eq!(console.app.editor.cursor(), (2, 5));
        console.act(Action::Key(KeyEvent::new(code, modifiers)));
        console.app.editor.cursor()
    };
    let ctrl = KeyModifiers::CONTROL;
    assert_eq!(from_the_middle(&mut console, ctrl, KeyCode::Home), (0, 0));
    assert_eq!(
        from_the_middle(&mut console, ctrl, KeyCode::End),
        (last, end)
    );
    let alt = KeyModifiers::ALT;
    assert_eq!(
        from_the_middle(&mut console, alt, KeyCode::Char('<')),
        (0, 0)
    );
    assert_eq!(
        from_the_middle(&mut console, alt, KeyCode::Char('>')),
        (last, end)
    );
}

/// The editor's saves asked for so far.
fn saves(console: &Console) -> Vec<(std::path::PathBuf, String)> {
    console
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveFile { path, text, .. } => Some((path.clone(), text.clone())),
            _ => None,
        })
        .collect()
}

/// The question on screen, if one is asked.
fn question(console: &Console) -> Option<String> {
    match &console.app.overlay {
        Some(Overlay::Confirm { question, .. }) => Some(question.clone()),
        _ => None,
    }
}

#[test]
fn save_as_asks_before_writing_over_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("counter.lua");
    std::fs::write(&theirs, "-- theirs\n").unwrap();
    let mut console = Console::connected();
    console.type_text("-- mine ");
    console.ctrl('s');
    console.ctrl('u');
    console.type_text(theirs.to_str().unwrap());
    console.key(KeyCode::Enter);
    console.perform_save();
    let expected = format!("{} exists: overwrite? (y/n)", theirs.display());
    assert_eq!(question(&console).as_deref(), Some(expected.as_str()));
    let read = || std::fs::read_to_string(&theirs).unwrap();
    assert_eq!(read(), "-- theirs\n", "nothing written before a yes");
    // No: nothing written, the buffer and its name as they were.
    console.key(KeyCode::Char('n'));
    assert!(saves(&console).is_empty());
    assert_eq!(read(), "-- theirs\n");
    assert_eq!(console.app.editor.path, None);
    assert_eq!(console.app.editor.module, "counter.lua");
    assert!(console.app.editor.contents().starts_with("-- mine"));
    assert!(console.app.editor.dirty());
    let not_saved = format!("not saved to {}", theirs.display());
    assert_eq!(console.status(), not_saved);
    // Yes writes it, and the file is the buffer's from then on.
    console.ctrl('s');
    console.ctrl('u');
    console.type_text(theirs.to_str().unwrap());
    console.key(KeyCode::Enter);
    console.perform_save();
    console.key(KeyCode::Char('y'));
    let written = saves(&console);
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, theirs);
    console.perform_save();
    assert!(read().starts_with("-- mine"));
    assert_eq!(console.app.editor.path.as_ref(), Some(&theirs));
    assert!(!console.app.editor.dirty());
    console.type_text("x");
    console.ctrl('s');
    console.perform_save();
    assert_eq!(
        question(&console),
        None,
        "its own file saves without asking"
    );
    assert_eq!(read(), console.app.editor.contents());
}

/// Removes a file when dropped (a test's file outside a temporary folder).
struct Removed(std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_module_whose_file_appeared_after_it_was_opened_asks_before_saving_over_it() {
    // A module opened from the server is saved next to the console, in a
    // file of its name that did not exist when it was opened.
    let name = format!("asudf-test-appeared-{}.lua", std::process::id());
    let mut console = Console::connected();
    console.modules_listed(&[(&name, "h")]);
    console.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: name.clone(),
            source: "function hello(rec)\nend\n".into(),
        }),
    );
    console.alt('1');
    console.key(KeyCode::Enter);
    let file = std::env::current_dir().unwrap().join(&name);
    assert_eq!(console.app.editor.path.as_ref(), Some(&file));

    let _removed = Removed(file.clone());
    std::fs::write(&file, "-- someone else's\n").unwrap();
    console.type_text("-- mine ");
    console.ctrl('s');
    console.perform_save();
    let expected = format!("{} exists: overwrite? (y/n)", file.display());
    assert_eq!(question(&console).as_deref(), Some(expected.as_str()));
    console.key(KeyCode::Char('n'));
    assert!(saves(&console).is_empty());
    assert!(console.app.editor.contents().starts_with("-- mine"));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "-- someone else's\n"
    );
}

#[test]
fn a_save_asks_when_the_file_changed_on_disk_since_it_was_opened() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work.lua");
    std::fs::write(&work, "local a = 1\n").unwrap();
    let mut console = Console::connected();
    console.open_file(work.to_str().unwrap(), "local a = 1\n");
    // Written from outside, then a key typed and Ctrl-S.
    std::fs::write(&work, "local a = 1\n-- external\n").unwrap();
    console.type_text("b");
    console.ctrl('s');
    console.perform_save();
    let expected = format!(
        "{} changed on disk since it was opened: overwrite? (y/n)",
        work.display()
    );
    assert_eq!(question(&console).as_deref(), Some(expected.as_str()));
    console.key(KeyCode::Char('n'));
    assert!(saves(&console).is_empty(), "no writes nothing");
    let read = || std::fs::read_to_string(&work).unwrap();
    assert_eq!(read(), "local a = 1\n-- external\n");
    assert_eq!(console.app.editor.contents(), "blocal a = 1\n");
    assert!(console.app.editor.dirty());

    // Yes writes it; what it wrote is what the file holds from then on.
    console.ctrl('s');
    console.perform_save();
    console.key(KeyCode::Char('y'));
    console.perform_save();
    assert_eq!(read(), "blocal a = 1\n");
    console.type_text("c");
    console.ctrl('s');
    console.perform_save();
    assert_eq!(question(&console), None, "unchanged since the save");
    assert_eq!(read(), "bclocal a = 1\n");
    assert!(!console.app.editor.dirty());
}

/// The guard is checked when the driver writes, not when the key is
/// pressed: a file changed in between is asked about, not written over.
#[test]
fn a_file_changed_after_ctrl_s_is_asked_about_not_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work.lua");
    std::fs::write(&work, "local a = 1\n").unwrap();
    let mut console = Console::connected();
    console.open_file(work.to_str().unwrap(), "local a = 1\n");
    console.type_text("b");
    console.ctrl('s');
    // Unchanged at the key; written from outside before the driver writes.
    std::fs::write(&work, "-- external\n").unwrap();
    console.perform_save();
    let expected = format!(
        "{} changed on disk since it was opened: overwrite? (y/n)",
        work.display()
    );
    assert_eq!(question(&console).as_deref(), Some(expected.as_str()));
    assert_eq!(std::fs::read_to_string(&work).unwrap(), "-- external\n");
    assert!(console.app.editor.dirty());
}

/// A module opened from the server where a file of its name is already
/// there has no file yet: Ctrl-S asks where to save it.
#[test]
fn a_module_whose_file_is_there_when_opened_asks_where_to_save() {
    let name = format!("asudf-test-there-{}.lua", std::process::id());
    let file = std::env::current_dir().unwrap().join(&name);
    let _removed = Removed(file.clone());
    std::fs::write(&file, "-- someone else's\n").unwrap();
    let mut console = Console::connected();
    console.modules_listed(&[(&name, "h")]);
    console.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: name.clone(),
            source: "function hello(rec)\nend\n".into(),
        }),
    );
    console.alt('1');
    console.key(KeyCode::Enter);
    assert_eq!(console.app.editor.module, name);
    assert_eq!(console.app.editor.path, None);
    console.ctrl('s');
    assert!(matches!(
        console.app.overlay,
        Some(Overlay::Prompt {
            kind: PromptKind::SaveAs,
            ..
        })
    ));
}

/// Ctrl-C and yes to quitting with unsaved edits: the recovery copy the
/// console writes.
fn quit_keeping_recovery(console: &mut Console) -> Recovered {
    console.ctrl('c');
    console.key(KeyCode::Char('y'));
    let copy = console.effects.iter().find_map(|e| match e {
        Effect::WriteRecovery(copy) => Some(copy.clone()),
        _ => None,
    });
    copy.unwrap_or_else(|| panic!("a recovery copy: {:?}", console.effects))
}

/// A console started on `path` holding `text`, offered the recovery copy
/// in `copy_file` as a start reads it.
fn start_offering(copy_file: &std::path::Path, text: &str, path: &std::path::Path) -> Console {
    let mut options = StartOptions::sample("sandbox");
    (options.text, options.path) = (text.to_string(), Some(path.to_path_buf()));
    options.recovered = asudf::tui::recovery::read_copy(copy_file);
    Console::starting(120, 40, options)
}

#[test]
fn a_recovered_buffer_asks_before_saving_over_a_file_changed_since_its_edits_began() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work.lua");
    std::fs::write(&work, "local a = 1\n").unwrap();
    // Edited, and quit keeping the recovery copy.
    let mut console = Console::connected();
    console.open_file(work.to_str().unwrap(), "local a = 1\n");
    console.type_text("b");
    let copy = quit_keeping_recovery(&mut console);
    let copy_file = dir.path().join("recovery.json");
    std::fs::write(&copy_file, asudf::tui::recovery::copy_json(&copy)).unwrap();

    // The next start offers the copy; a yes, then Ctrl-S.
    let start = |disk: &str| {
        std::fs::write(&work, disk).unwrap();
        let mut console = start_offering(&copy_file, disk, &work);
        console.key(KeyCode::Char('y'));
        assert_eq!(console.app.editor.contents(), "blocal a = 1\n");
        console.ctrl('s');
        console
    };
    let mut unchanged = start("local a = 1\n");
    unchanged.perform_save();
    assert_eq!(question(&unchanged), None);
    assert_eq!(std::fs::read_to_string(&work).unwrap(), "blocal a = 1\n");

    let mut changed = start("local a = 1\n-- external\n");
    changed.perform_save();
    let expected = format!(
        "{} changed on disk since it was opened: overwrite? (y/n)",
        work.display()
    );
    assert_eq!(question(&changed).as_deref(), Some(expected.as_str()));
    assert_eq!(
        std::fs::read_to_string(&work).unwrap(),
        "local a = 1\n-- external\n"
    );
}

/// A buffer never saved to a file, recovered by a console opened on another
/// file, keeps its own name (it took that file's, and Ctrl-S offered to
/// save over it), and the offer names it.
#[test]
fn a_recovered_buffer_with_no_file_keeps_its_own_name_not_the_opened_files() {
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.lua");
    std::fs::write(&wide, "-- wide\n").unwrap();
    // The sample, never saved, edited, and its console ended.
    let mut console = Console::connected();
    console.type_text("-- mine ");
    let copy = quit_keeping_recovery(&mut console);
    let new_copy = asudf::tui::recovery::copy_json(&copy);
    // A copy from a version that kept no module name.
    let old_copy = r#"{"path":null,"text":"-- old\n"}"#.to_string();

    for (json, name) in [(new_copy, "counter.lua"), (old_copy, "recovered.lua")] {
        let copy_file = dir.path().join("copy.json");
        std::fs::write(&copy_file, json).unwrap();
        let mut console = start_offering(&copy_file, "-- wide\n", &wide);
        let asked = question(&console).unwrap_or_default();
        assert!(
            asked.contains(&format!("the buffer {name} (never saved to a file)")),
            "{asked}"
        );
        console.key(KeyCode::Char('y'));
        assert_eq!(console.app.editor.module, name);
        assert_eq!(console.app.editor.path, None);
        let screen = console.screen();
        assert!(screen.contains(&format!("{name} (not saved)")), "{screen}");
        assert!(!screen.contains("wide.lua"), "{screen}");
        console.ctrl('s');
        let Some(Overlay::Prompt { kind, input }) = &console.app.overlay else {
            panic!("Ctrl-S asks where: {:?}", console.app.overlay)
        };
        assert_eq!((*kind, input.text.as_str()), (PromptKind::SaveAs, name));
    }
    assert_eq!(std::fs::read_to_string(&wide).unwrap(), "-- wide\n");
}

/// A save the OS refuses says why in terms of what the user typed: a file
/// where a folder should be is named, and a directory is refused at once
/// (no question whose yes could only fail).
#[test]
fn a_save_into_a_file_or_onto_a_directory_says_what_is_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let echo = dir.path().join("echo.lua");
    std::fs::write(&echo, "-- echo\n").unwrap();
    let mut console = Console::connected();
    console.type_text("-- mine ");
    let inside = echo.join("x.lua");
    for (path, error) in [
        (&inside, format!("{} is not a directory", echo.display())),
        (
            &dir.path().to_path_buf(),
            format!("{} is a directory", dir.path().display()),
        ),
    ] {
        console.ctrl('s');
        console.ctrl('u');
        console.type_text(path.to_str().unwrap());
        console.key(KeyCode::Enter);
        console.perform_save();
        assert_eq!(question(&console), None, "nothing to say yes to");
        assert_eq!(
            console.status(),
            format!("cannot save {}: {error}", path.display())
        );
        assert!(console.app.editor.dirty());
    }
    assert_eq!(std::fs::read_to_string(&echo).unwrap(), "-- echo\n");
}

/// A yes writes over the file as it was when the question was asked: one
/// changed again meanwhile is asked about again, not written over.
#[test]
fn a_yes_writes_over_only_the_version_it_was_asked_about() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work.lua");
    let other = dir.path().join("other.lua");
    std::fs::write(&work, "local a = 1\n").unwrap();
    std::fs::write(&other, "-- other\n").unwrap();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).unwrap();
    let mut console = Console::connected();
    console.open_file(work.to_str().unwrap(), "local a = 1\n");
    console.type_text("b");
    std::fs::write(&work, "-- changed\n").unwrap();
    console.ctrl('s');
    console.perform_save();
    let changed = |path: &std::path::Path, since: &str| {
        Some(format!(
            "{} changed on disk since {since}: overwrite? (y/n)",
            path.display()
        ))
    };
    assert_eq!(question(&console), changed(&work, "it was opened"));
    // Changed again while the question is open.
    std::fs::write(&work, "-- changed again\n").unwrap();
    console.key(KeyCode::Char('y'));
    console.perform_save();
    assert_eq!(question(&console), changed(&work, "it was opened"));
    assert_eq!(read(&work), "-- changed again\n");
    // Unchanged since this question: the yes writes.
    console.key(KeyCode::Char('y'));
    console.perform_save();
    assert_eq!(question(&console), None);
    assert_eq!(read(&work), "blocal a = 1\n");

    // Save as over a file it does not know, changed after its question.
    let mut console = Console::connected();
    console.type_text("-- mine ");
    console.ctrl('s');
    console.ctrl('u');
    console.type_text(other.to_str().unwrap());
    console.key(KeyCode::Enter);
    console.perform_save();
    let exists = format!("{} exists: overwrite? (y/n)", other.display());
    assert_eq!(question(&console), Some(exists));
    std::fs::write(&other, "-- other, changed\n").unwrap();
    console.key(KeyCode::Char('y'));
    console.perform_save();
    assert_eq!(question(&console), changed(&other, "you were asked"));
    assert_eq!(read(&other), "-- other, changed\n");
    console.key(KeyCode::Char('y'));
    console.perform_save();
    assert!(read(&other).starts_with("-- mine"));
    assert_eq!(console.app.editor.path.as_ref(), Some(&other));
}

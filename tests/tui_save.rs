//! F7 saves the session as a test file: one step per finished run of every
//! kind, its answer as the expectation, read back by the scenario parser.
//! The client task's answers are given by the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aerospike::Value;
use asudf::client::query::parse_jobs;
use asudf::client::{BatchRow, Failure, FailureKind, Outcome, RecordView, Request, StreamItem};
use asudf::testing::format::{self, Action as StepAction, RowExpect, Scenario};
use asudf::tui::Action;
use asudf::tui::app::{Effect, Overlay};
use asudf::tui::panes::apply::{Field, FormKind};
use asudf::tui::save::Saving;
use crossterm::event::{KeyCode, KeyModifiers};

mod common;
use common::console::Console;

/// F7, Enter: the file's path and text.
fn save(console: &mut Console) -> (PathBuf, String) {
    console.key(KeyCode::F(7));
    assert!(
        matches!(console.app.overlay, Some(Overlay::Prompt { .. })),
        "F7 asks for a file name"
    );
    console.key(KeyCode::Enter);
    let Some(Effect::SaveFile { path, text, .. }) = console.effects.pop() else {
        panic!("Enter saves the file");
    };
    (path, text)
}

fn streamed(count: u64) -> Result<Outcome, Failure> {
    Ok(Outcome::Streamed {
        count,
        elapsed: Duration::from_millis(3),
    })
}

fn server_error(code: i32, message: &str) -> Failure {
    Failure {
        kind: FailureKind::Server,
        code,
        message: message.into(),
        location: None,
        logs: vec![],
    }
}

fn record(amount: i64) -> StreamItem {
    StreamItem::Record {
        key: None,
        digest: [amount as u8; 20],
        view: RecordView {
            bins: vec![("amount".into(), Value::Int(amount))],
            generation: 1,
            ttl: None,
        },
    }
}

fn parse(path: &std::path::Path, text: &str) -> Scenario {
    format::parse(path, text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// One run of each kind, answered; then a query left in flight and one cancelled.
fn session() -> Console {
    let mut c = Console::connected();
    // A record apply (the form's sample call).
    c.key(KeyCode::F(5));
    c.answer_newest(
        |r| matches!(r, Request::Apply(_)),
        Ok(Outcome::Applied {
            result: Value::Int(1),
            logs: vec![],
            before: None,
            after: Some(RecordView {
                bins: vec![("count".into(), Value::Int(1))],
                generation: 1,
                ttl: None,
            }),
            call: Duration::from_micros(70),
            server_run: None,
        }),
    );

    c.kind(FormKind::Aggregate);
    c.set(Field::Set, "sales");
    c.set(Field::Where, "amount BETWEEN 10 AND 50");
    c.set(Field::Module, "sum");
    c.set(Field::Function, "total");
    c.set(Field::Args, "");
    c.key(KeyCode::F(5));
    let is_aggregate = |r: &Request| matches!(r, Request::Aggregate(_));
    c.item(is_aggregate, StreamItem::Value(Value::Int(12_300)));
    c.answer_newest(is_aggregate, streamed(1));

    c.kind(FormKind::Background);
    c.set(Field::Where, "");
    c.set(Field::Module, "stamp");
    c.set(Field::Function, "mark");
    c.set(Field::Args, "'checked'");
    c.key(KeyCode::F(5));
    job_ends(
        &mut c,
        7,
        "trid=7:ns=test:set=sales:status=done(ok):job-progress=100.00:recs-filtered-bins=2:recs-succeeded=998:recs-failed=0:job-type=background-udf",
    );

    c.kind(FormKind::Query);
    c.set(Field::Where, "amount = 7");
    c.set(Field::Bins, "amount");
    c.set(Field::MaxRecords, "");
    c.key(KeyCode::F(5));
    let is_query = |r: &Request| matches!(r, Request::Query(_));
    c.item(is_query, record(7));
    c.item(is_query, record(7));
    c.answer_newest(is_query, streamed(2));

    c.kind(FormKind::Batch);
    c.set(Field::Set, "demo");
    c.set(Field::Keys, "'a', 'missing'");
    c.set(Field::Module, "bump");
    c.set(Field::Function, "bump");
    c.set(Field::Args, "10");
    c.key(KeyCode::F(5));
    c.answer_newest(
        |r| matches!(r, Request::BatchApply(_)),
        Ok(Outcome::BatchApplied(vec![
            BatchRow {
                key: Value::from("a"),
                result: Ok(Value::Int(15)),
            },
            BatchRow {
                key: Value::from("missing"),
                result: Err(server_error(100, "bump.lua:2: no such record")),
            },
        ])),
    );

    // Two queries that give nothing to expect: one cancelled, one still running.
    c.kind(FormKind::Query);
    c.key(KeyCode::F(5));
    c.answer_newest(is_query, Err(Failure::cancelled()));
    c.key(KeyCode::F(5));
    c
}

#[test]
fn f7_saves_a_step_for_every_finished_run_of_every_kind() {
    let mut c = session();
    let (path, text) = save(&mut c);
    let s = parse(&path, &text);
    let described: Vec<String> = s.steps.iter().map(|s| s.action.describe()).collect();
    assert_eq!(
        described,
        [
            "counter.increment('count', 5) @ 'k1'",
            "aggregate sum.total() on test.sales where amount BETWEEN 10 AND 50",
            "execute stamp.mark('checked') on test.sales",
            "query test.sales where amount = 7",
            "bump.bump(10) @ 'a', 'missing'",
        ],
        "{text}"
    );
    assert_eq!(s.steps[0].expect.value, Some(Value::Int(1)));
    assert_eq!(s.steps[1].expect.values, Some(vec![Value::Int(12_300)]));
    let job = s.steps[2].expect.job.clone().expect("the job's counts");
    assert_eq!(
        (
            job.succeeded,
            job.failed,
            job.filtered,
            job.status.as_deref()
        ),
        (Some(998), Some(0), Some(2), Some("done(ok)"))
    );
    let StepAction::Query { bins, .. } = &s.steps[3].action else {
        panic!("a query step")
    };
    assert_eq!(bins.as_deref(), Some(&["amount".to_string()][..]));
    let amount_7 = Value::HashMap([(Value::from("amount"), Value::Int(7))].into());
    assert_eq!(
        s.steps[3].expect.values,
        Some(vec![amount_7.clone(), amount_7])
    );
    let rows = s.steps[4].expect.rows.clone().expect("a row per key");
    assert_eq!(rows[0], RowExpect::Value(Value::Int(15)));
    let RowExpect::Error(e) = &rows[1] else {
        panic!("the missing key's error")
    };
    assert_eq!(e.code, Some(100));
    // The modules the runs call: the buffer's by its source; the others are
    // not known to the console here, so the file names only the one it has.
    assert!(s.modules.iter().any(|m| m.name == "counter.lua"));

    // The two runs without an answer are counted in the status.
    c.act(Action::FileSaved {
        path: path.clone(),
        saving: Saving::TestFile,
        result: Ok(()),
    });
    // Named by number and reason, short; the file's header says why.
    assert!(
        c.status()
            .ends_with("(left out: #7 in flight; #6 cancelled)"),
        "{}",
        c.status()
    );
    assert!(
        text.contains(
            "# Runs of the console left out of this file:\n\
             #   #7 in flight: still running when saved\n\
             #   #6 cancelled: cancelled or aborted: no answer to expect\n"
        ),
        "{text}"
    );

    // Marked runs only: the aggregation and the batch.
    c.with(KeyModifiers::ALT, '4');
    for number in [2, 5] {
        c.app.results.selected = number - 1;
        c.key(KeyCode::Char(' '));
    }
    let (path, text) = save(&mut c);
    let s = parse(&path, &text);
    let described: Vec<String> = s.steps.iter().map(|s| s.action.describe()).collect();
    assert_eq!(
        described,
        [
            "aggregate sum.total() on test.sales where amount BETWEEN 10 AND 50",
            "bump.bump(10) @ 'a', 'missing'",
        ]
    );
    c.act(Action::FileSaved {
        path,
        saving: Saving::TestFile,
        result: Ok(()),
    });
    assert!(!c.status().contains("left out"), "{}", c.status());
}

fn applied(n: i64) -> Result<Outcome, Failure> {
    Ok(Outcome::Applied {
        result: Value::Int(n),
        logs: vec![],
        before: None,
        after: None,
        call: Duration::from_micros(70),
        server_run: None,
    })
}

/// A run-N series is not saved but counted as left out; so is a call made
/// before the console registered its module again, whose answer the
/// module now in the file need not give.
#[test]
fn f7_counts_series_and_calls_on_an_earlier_registration_as_left_out() {
    let mut c = Console::connected();
    let is_apply = |r: &Request| matches!(r, Request::Apply(_));
    c.key(KeyCode::F(5));
    c.answer_newest(is_apply, applied(5));
    c.set(Field::Times, "2");
    c.key(KeyCode::F(5));
    // A series is one request, answered as its last run.
    c.answer_newest(|r| matches!(r, Request::ApplySeries { .. }), applied(15));
    assert!(c.app.results.in_flight().is_none());

    c.key(KeyCode::F(9));
    c.answer_newest(
        |r| matches!(r, Request::PutModule { .. }),
        Ok(Outcome::Registered {
            name: "counter.lua".into(),
            propagation: Duration::from_millis(1),
        }),
    );
    c.set(Field::Times, "1");
    c.key(KeyCode::F(5));
    c.answer_newest(is_apply, applied(20));

    let (path, text) = save(&mut c);
    let s = parse(&path, &text);
    assert_eq!(
        s.steps.len(),
        1,
        "only the call after the registration: {text}"
    );
    assert_eq!(s.steps[0].expect.value, Some(Value::Int(20)));
    c.act(Action::FileSaved {
        path,
        saving: Saving::TestFile,
        result: Ok(()),
    });
    assert!(
        c.status()
            .ends_with("(left out: #2 run ×N; #1 older module)"),
        "{}",
        c.status()
    );
    assert!(
        text.contains("#   #2 run ×N: a run times N series"),
        "{text}"
    );
    assert!(
        text.contains("#   #1 older module: made on a version of the module registered before"),
        "{text}"
    );
}

/// An apply on 'k1' read before and after it: `count` and the generation.
fn applied_to(count: (i64, u32), after: (i64, u32)) -> Result<Outcome, Failure> {
    let view = |(n, generation): (i64, u32)| RecordView {
        bins: vec![("count".into(), Value::Int(n))],
        generation,
        ttl: None,
    };
    Ok(Outcome::Applied {
        result: Value::Int(after.0),
        logs: vec![],
        before: Some(view(count)),
        after: Some(view(after)),
        call: Duration::from_micros(70),
        server_run: None,
    })
}

/// A left-out run (a series) between two saved calls on the same record
/// drops the later call only if it changed the record: after a read-only
/// one the record is as the earlier step left it.
#[test]
fn f7_keeps_a_step_after_a_left_out_call_only_if_that_call_changed_nothing() {
    for (series_wrote, steps) in [(false, 2), (true, 1)] {
        let mut c = Console::connected();
        let is_apply = |r: &Request| matches!(r, Request::Apply(_));
        c.key(KeyCode::F(5));
        c.answer_newest(is_apply, applied_to((1, 1), (2, 2)));
        c.set(Field::Times, "2");
        c.key(KeyCode::F(5));
        let (first, last) = if series_wrote {
            (((2, 2), (3, 3)), ((3, 3), (4, 4)))
        } else {
            (((2, 2), (2, 2)), ((2, 2), (2, 2)))
        };
        // One answer: the record before its first run → after its last.
        let is_series = |r: &Request| matches!(r, Request::ApplySeries { .. });
        c.answer_newest(is_series, applied_to(first.0, last.1));
        c.set(Field::Times, "1");
        c.key(KeyCode::F(5));
        let now = last.1;
        c.answer_newest(is_apply, applied_to(now, (now.0 + 1, now.1 + 1)));

        let (path, text) = save(&mut c);
        assert_eq!(parse(&path, &text).steps.len(), steps, "{text}");
        c.act(Action::FileSaved {
            path,
            saving: Saving::TestFile,
            result: Ok(()),
        });
        let status = c.status();
        let left_out = if series_wrote {
            "(left out: #2 run ×N; #3 record changed)"
        } else {
            "(left out: #2 run ×N)"
        };
        assert!(status.ends_with(left_out), "{status}");
    }
}

/// A module opened from the server has a file name before its file exists:
/// the test file carries its source, not a path to nothing.
#[test]
fn f7_names_a_module_by_its_file_only_when_the_file_holds_it() {
    let name = format!("asudf-test-unsaved-{}.lua", std::process::id());
    let source = "function hello(rec)\n  return 1\nend\n";
    let mut c = Console::connected();
    c.modules_listed(&[(&name, "h")]);
    c.answer(
        |r| matches!(r, Request::GetModule { .. }),
        Ok(Outcome::Module {
            name: name.clone(),
            source: source.into(),
        }),
    );
    c.with(KeyModifiers::ALT, '1');
    c.key(KeyCode::Enter);
    let file = c.app.editor.path.clone().expect("a file name");
    assert!(!file.exists(), "{}", file.display());
    c.set(Field::Module, name.trim_end_matches(".lua"));
    c.set(Field::Function, "hello");
    c.set(Field::Args, "");
    c.key(KeyCode::F(5));
    c.answer_newest(|r| matches!(r, Request::Apply(_)), applied(1));

    let (path, text) = save(&mut c);
    let s = parse(&path, &text);
    let module = s
        .modules
        .iter()
        .find(|m| m.name == name)
        .expect("the module");
    assert_eq!(module.source, source, "{text}");
}

#[test]
fn only_unfinished_runs_say_so_instead_of_saving() {
    let mut c = Console::connected();
    c.kind(FormKind::Query);
    c.set(Field::Set, "sales");
    c.key(KeyCode::F(5));
    c.key(KeyCode::F(7));
    assert!(c.app.overlay.is_none(), "nothing to save");
    assert!(c.status().contains("1 in flight"), "{}", c.status());
    // A failed run is saved as the error it expects.
    c.answer_newest(
        |r| matches!(r, Request::Query(_)),
        Err(server_error(201, "index not found")),
    );
    let (path, text) = save(&mut c);
    let s = parse(&path, &text);
    let error = s.steps[0]
        .expect
        .error
        .clone()
        .expect("an error expectation");
    assert_eq!(error.code, Some(201));
    assert_eq!(
        error.message,
        Some(format::MessageMatch::Exact("index not found".into()))
    );
}

#[test]
fn an_aborted_background_job_is_left_out() {
    let mut c = Console::connected();
    c.kind(FormKind::Background);
    c.set(Field::Set, "sales");
    c.set(Field::Module, "stamp");
    c.set(Field::Function, "mark");
    c.key(KeyCode::F(5));
    // Aborted from elsewhere (the jobs list, another client): done all the same.
    job_ends(
        &mut c,
        7,
        "trid=7:status=done(user-aborted):job-progress=40.00:recs-succeeded=400",
    );
    assert!(c.app.results.in_flight().is_none());
    c.key(KeyCode::F(7));
    assert!(c.app.overlay.is_none(), "nothing to save");
    assert!(
        c.status().ends_with("(left out: #1 cancelled)"),
        "{}",
        c.status()
    );
}

/// Answers a background job's start with `id`, then its status with `info`
/// (the server's `query-show` text).
fn job_ends(c: &mut Console, id: u64, info: &str) {
    c.answer_newest(
        |r| matches!(r, Request::Execute(_)),
        Ok(Outcome::JobStarted { id }),
    );
    c.answer_newest(
        |r| matches!(r, Request::Jobs { id: Some(i) } if *i == id),
        Ok(Outcome::Jobs(parse_jobs(info))),
    );
}

/// Types `path` into the open save prompt and presses Enter.
fn save_to(c: &mut Console, path: &std::path::Path) {
    assert!(
        matches!(c.app.overlay, Some(Overlay::Prompt { .. })),
        "a file name is asked"
    );
    c.ctrl('u');
    c.type_text(path.to_str().unwrap());
    c.key(KeyCode::Enter);
}

fn saved_to(c: &Console) -> Vec<PathBuf> {
    c.effects
        .iter()
        .filter_map(|e| match e {
            Effect::SaveFile { path, .. } => Some(path.clone()),
            _ => None,
        })
        .collect()
}

/// The question a save asks before writing over `path`, if any.
fn question(c: &Console) -> Option<String> {
    match &c.app.overlay {
        Some(Overlay::Confirm { question, .. }) => Some(question.clone()),
        _ => None,
    }
}

/// A finished query, a file in a fresh folder, and the question a save
/// asks before writing over it.
fn finished_run_and_a_file() -> (Console, tempfile::TempDir, PathBuf, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("kept.toml");
    std::fs::write(&existing, "mine").unwrap();
    let mut c = Console::connected();
    c.kind(FormKind::Query);
    c.set(Field::Set, "sales");
    c.key(KeyCode::F(5));
    c.answer_newest(|r| matches!(r, Request::Query(_)), streamed(0));
    let asked = Some(format!("{} exists: overwrite? (y/n)", existing.display()));
    (c, dir, existing, asked)
}

/// A save started by `start` to `existing`: asked `asked`, no writes
/// nothing; started again, yes writes it.
fn no_then_yes(
    c: &mut Console,
    start: impl Fn(&mut Console),
    existing: &std::path::Path,
    asked: &Option<String>,
) {
    start(c);
    save_to(c, existing);
    c.perform_save();
    assert_eq!(question(c), *asked);
    c.key(KeyCode::Char('n'));
    assert!(saved_to(c).is_empty(), "n writes nothing");
    assert_eq!(std::fs::read_to_string(existing).unwrap(), "mine");
    start(c);
    save_to(c, existing);
    c.perform_save();
    c.key(KeyCode::Char('y'));
    assert_eq!(saved_to(c), vec![existing.to_path_buf()]);
    c.perform_save();
}

#[test]
fn f7_asks_before_writing_over_a_file() {
    let (mut c, _dir, existing, asked) = finished_run_and_a_file();
    no_then_yes(&mut c, |c| c.key(KeyCode::F(7)), &existing, &asked);
    let text = std::fs::read_to_string(&existing).unwrap();
    assert!(!parse(&existing, &text).steps.is_empty(), "{text}");
}

#[test]
fn saving_results_asks_before_writing_over_a_file() {
    let (mut c, dir, existing, asked) = finished_run_and_a_file();
    c.alt('4');
    no_then_yes(&mut c, |c| c.type_text("s"), &existing, &asked);
    assert!(std::fs::read_to_string(&existing).unwrap().starts_with('['));
    // A file that is not there is written without a question.
    let fresh = dir.path().join("fresh.json");
    c.type_text("s");
    save_to(&mut c, &fresh);
    c.perform_save();
    assert_eq!(question(&c), None);
    assert!(fresh.exists());
}

/// The guard is checked when the driver writes, not when Enter is pressed:
/// a file created in between is asked about, not written over.
#[test]
fn a_results_file_created_after_enter_is_asked_about_not_written_over() {
    let (mut c, dir, _, _) = finished_run_and_a_file();
    let late = dir.path().join("late.json");
    c.alt('4');
    c.type_text("s");
    save_to(&mut c, &late);
    std::fs::write(&late, "theirs").unwrap();
    c.perform_save();
    let asked = format!("{} exists: overwrite? (y/n)", late.display());
    assert_eq!(question(&c), Some(asked));
    assert_eq!(std::fs::read_to_string(&late).unwrap(), "theirs");
}

/// A leading `~` in a path prompt is the home directory, as in a shell:
/// `~/x.lua` is not a folder named `~` in the current one. (Nothing is
/// written: the saves are only asked for.)
#[test]
fn a_leading_tilde_in_a_path_prompt_is_the_home_directory() {
    let home = dirs::home_dir().expect("a home directory");
    let (mut c, ..) = finished_run_and_a_file();
    c.key(KeyCode::F(7));
    save_to(&mut c, Path::new("~/calls.toml"));
    c.alt('4');
    c.type_text("s");
    save_to(&mut c, Path::new("~/runs.json"));
    c.alt('2');
    c.ctrl('s');
    save_to(&mut c, Path::new("~/mine.lua"));
    let expected = ["calls.toml", "runs.json", "mine.lua"].map(|f| home.join(f));
    assert_eq!(saved_to(&c), expected);
    c.ctrl('o');
    save_to(&mut c, Path::new("~/theirs.lua"));
    assert_eq!(
        c.effects.last(),
        Some(&Effect::LoadFile(home.join("theirs.lua")))
    );
}

/// Ctrl-S on `path` opened in the editor (holding `text`), one letter typed.
fn edit_and_save(path: &Path, text: &str) -> Console {
    let mut c = Console::connected();
    c.open_file(path.to_str().unwrap(), text);
    c.type_text("x");
    c.ctrl('s');
    c.perform_save();
    c
}

/// A save through a symlink writes the file it points to and keeps the
/// link; the buffer keeps the name it was opened by.
#[test]
fn ctrl_s_through_a_symlink_writes_its_target() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("real")).unwrap();
    let target = dir.path().join("real/target.lua");
    std::fs::write(&target, "return 1\n").unwrap();
    let link = dir.path().join("link.lua");
    std::os::unix::fs::symlink("real/target.lua", &link).unwrap();
    let c = edit_and_save(&link, "return 1\n");
    assert_eq!(c.status(), format!("saved {}", link.display()));
    assert!(
        link.symlink_metadata().unwrap().is_symlink(),
        "the link stays"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "xreturn 1\n");
    assert_eq!(c.app.editor.path.as_deref(), Some(link.as_path()));
    let left: Vec<_> = std::fs::read_dir(dir.path().join("real"))
        .unwrap()
        .collect();
    assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    let mut beside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(beside, ["link.lua", "real"], "none beside the link either");
}

/// A save keeps the file's permission bits; a file without write
/// permission for its owner is refused, nothing written. (As root too,
/// who could write it: the test runs as either.)
#[test]
fn ctrl_s_keeps_the_files_mode_and_refuses_a_read_only_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let private = dir.path().join("priv.lua");
    std::fs::write(&private, "return 1\n").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    edit_and_save(&private, "return 1\n");
    assert_eq!(std::fs::read_to_string(&private).unwrap(), "xreturn 1\n");
    assert_eq!(mode(&private), 0o600);

    let read_only = dir.path().join("ro.lua");
    std::fs::write(&read_only, "return 1\n").unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o444)).unwrap();
    let c = edit_and_save(&read_only, "return 1\n");
    let path = read_only.display();
    assert_eq!(
        c.status(),
        format!("cannot save {path}: {path} is read-only")
    );
    assert_eq!(std::fs::read_to_string(&read_only).unwrap(), "return 1\n");
    assert_eq!(mode(&read_only), 0o444);
    assert!(c.app.editor.dirty(), "the edit is still unsaved");
}

/// F7 onto a file that cannot be written says which and why, at once
/// (before, after a yes, it said only "No such file or directory": the
/// temporary file's, in /proc).
#[test]
fn f7_onto_a_file_that_cannot_be_written_names_it_and_why() {
    let (mut c, ..) = finished_run_and_a_file();
    c.key(KeyCode::F(7));
    save_to(&mut c, Path::new("/proc/version"));
    c.perform_save();
    assert_eq!(question(&c), None, "no yes could write it");
    assert_eq!(
        c.status(),
        "cannot save /proc/version: /proc/version is read-only"
    );
}

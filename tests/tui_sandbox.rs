//! Whole console flows against an in-process sandbox, through the real
//! client task and wire protocol: keys in, screens out.

use std::path::PathBuf;
use std::time::Duration;

use aerospike::Value;
use asudf::client::{self, ConnectionState, Outcome, Target};
use asudf::sandbox::server::{self, ServerOptions};
use asudf::sandbox::{Sandbox, SandboxConfig};
use asudf::tui::app::{App, Pane, StartOptions};
use asudf::tui::panes::apply::Field;
use asudf::tui::panes::results::CallState;
use asudf::tui::screen::Screen;
use asudf::tui::{Action, Driver};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;

mod common;
use common::live::Live;

impl Live {
    async fn sandbox(config: SandboxConfig) -> Live {
        Live::start(Target::in_memory(config), 120, 40).await
    }

    /// Opens `source` in the editor as the file `name`.
    async fn open(&mut self, name: &str, source: &str) {
        self.act(Action::FileLoaded {
            path: PathBuf::from("/nonexistent").join(name),
            result: Ok(source.to_string()),
        })
        .await;
    }

    async fn register(&mut self) {
        self.key(KeyCode::F(9)).await;
        self.wait("registered or refused", |app| {
            app.status.as_ref().is_some_and(|s| !s.text.ends_with('…'))
        })
        .await;
    }

    async fn run_apply(&mut self) {
        let before = self.app.results.entries.len();
        self.key(KeyCode::F(5)).await;
        self.wait("the call's outcome", |app| {
            app.results.entries.len() > before
                && app.results.entries.last().is_some_and(|e| !e.in_flight())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_apply_twice_with_the_record_view() {
    let mut live = Live::sandbox(SandboxConfig::default()).await;
    assert_eq!(live.app.focus, Pane::Editor);
    live.register().await;
    live.wait("counter.lua listed with its source", |app| {
        app.modules
            .get("counter")
            .is_some_and(|m| !m.functions.is_empty())
    })
    .await;
    let screen = live.screen();
    assert!(screen.contains("counter.lua =buffer"), "{screen}");
    assert!(screen.contains("increment(rec, bin_nam"), "{screen}");

    live.run_apply().await;
    let screen = live.screen();
    assert!(
        screen.contains("#1 counter.increment('count', 5) @ 'k1' ✓ T"),
        "{screen}"
    );
    assert!(screen.contains("= 5"), "{screen}");
    assert!(screen.contains("+ count: 5"), "{screen}");

    live.set_field(5, "'count', 3").await;
    live.run_apply().await;
    let screen = live.screen();
    assert!(screen.contains("= 8"), "{screen}");
    assert!(screen.contains("record gen 1 → 2"), "{screen}");
    assert!(screen.contains("~ count: 5 → 8"), "{screen}");
    insta::assert_snapshot!("sandbox_apply_twice", screen);
}

/// A run-N series shows what all its runs did to the record: before the
/// first, after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_shows_the_record_before_its_first_run() {
    let mut live = Live::sandbox(SandboxConfig::default()).await;
    live.register().await;
    live.run_apply().await;
    live.set(Field::Args, "'count', 2").await;
    live.set(Field::Times, "3").await;
    let entry = live.run().await;
    assert_eq!(entry.series.as_ref().map(|s| s.done()), Some(3));
    let screen = live.screen();
    assert!(screen.contains("~ count: 5 → 11"), "{screen}");
    assert!(screen.contains("record gen 1 → 4"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_error_marks_its_line() {
    let mut live = Live::sandbox(SandboxConfig::default()).await;
    live.open(
        "broken.lua",
        "function f(rec)\n  return 1\nend\nfunction g(rec\n  return 2\nend\n",
    )
    .await;
    live.register().await;
    let status = live.app.status.clone().unwrap();
    assert!(status.error, "{}", status.text);
    let marks = live.app.editor.marks.clone();
    assert_eq!(marks.len(), 1, "{}", live.screen());
    assert!((4..=5).contains(&marks[0].line), "{marks:?}");
    let screen = live.screen();
    assert!(
        screen.contains(&format!("line {}: ", marks[0].line)),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_error_marks_its_line() {
    let mut live = Live::sandbox(SandboxConfig::default()).await;
    live.open(
        "boom.lua",
        "function boom(rec)\n  local x = nil\n  return x + 1\nend\n",
    )
    .await;
    live.register().await;
    live.wait("boom.lua listed with its source", |app| {
        app.modules
            .get("boom")
            .is_some_and(|m| !m.functions.is_empty())
    })
    .await;
    live.set_field(3, "boom").await;
    live.set_field(4, "boom").await;
    live.set_field(5, "").await;
    live.run_apply().await;
    let entry = live.app.results.entries.last().unwrap();
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the call fails: {:?}", entry.state)
    };
    assert_eq!(failure.code, 100);
    assert_eq!(live.app.editor.marks[0].line, 3);
    let screen = live.screen();
    assert!(screen.contains("at boom.lua line 3"), "{screen}");
    insta::assert_snapshot!("sandbox_runtime_error", screen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udf_over_the_time_limit_fails_with_a_timeout() {
    let config = SandboxConfig {
        max_udf_ms: Some(100),
        ..SandboxConfig::default()
    };
    let mut live = Live::sandbox(config).await;
    live.open("spin.lua", "function spin(rec)\n  while true do end\nend\n")
        .await;
    live.register().await;
    live.set_field(3, "spin").await;
    live.set_field(4, "spin").await;
    live.set_field(5, "").await;
    live.set_field(6, "2000").await;
    live.run_apply().await;
    let entry = live.app.results.entries.last().unwrap();
    let CallState::Done {
        outcome: Err(failure),
        ..
    } = &entry.state
    else {
        panic!("the call fails: {:?}", entry.state)
    };
    assert!(
        failure.message.to_lowercase().contains("timeout") || failure.code == 9,
        "{failure:?}"
    );
    // The console stayed usable: typing still edits.
    live.with(KeyModifiers::ALT, '2').await;
    live.type_text("--").await;
    assert!(live.app.editor.contents().starts_with("--function spin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connection_shows_and_comes_back() {
    let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
    let mut server = server::start(sandbox, ServerOptions::default())
        .await
        .unwrap();
    let addr = server.addr();
    let target = Target::Cluster {
        hosts: vec![aerospike::Host::new(&addr.ip().to_string(), addr.port())],
        policy: aerospike::ClientPolicy::default(),
    };
    let mut live = Live::start(target, 120, 40).await;
    server.shutdown().await;
    live.wait("the loss", |app| {
        matches!(app.connection, ConnectionState::Lost { .. })
    })
    .await;
    assert!(live.screen().contains("disconnected"));
    // Calls fail at once while it is down.
    live.key(KeyCode::F(5)).await;
    let screen = live.screen();
    assert!(screen.contains("not connected"), "{screen}");

    server.restart().await.unwrap();
    live.wait("the way back", |app| app.connected()).await;
    let screen = live.screen();
    assert!(screen.contains(" ● sandbox 127.0.0.1:"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_new_module_points_the_form_at_it() {
    let mut live = Live::sandbox(SandboxConfig::default()).await;
    live.open(
        "greet.lua",
        "local function helper() end\nfunction hello(rec)\n  return 'hi'\nend\n",
    )
    .await;
    live.register().await;
    // The form called counter.increment, which is not registered here.
    assert_eq!(live.app.apply.value(Field::Module), "greet");
    assert_eq!(live.app.apply.value(Field::Function), "hello");
    assert_eq!(live.app.apply.value(Field::Args), "");
    live.run_apply().await;
    let entry = live.app.results.entries.last().unwrap();
    let CallState::Done {
        outcome: Ok(Outcome::Applied { result, .. }),
        ..
    } = &entry.state
    else {
        panic!("the call succeeds: {:?}", entry.state)
    };
    assert_eq!(result, &Value::from("hi"));
}

/// A key waiting beside a client event is read first: the loop looks at
/// the terminal before the client's events, so typing never waits behind
/// them. Each of 20 steps has both ready; each handles its key (picked at
/// random, half the steps would take only the event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_key_goes_before_a_waiting_client_event() {
    use asudf::tui::RunLoop;
    use crossterm::event::Event as TermEvent;

    let target = Target::in_memory(SandboxConfig::default());
    let app = App::new(StartOptions::sample(&target.label()));
    let (handle, _client_events) = client::spawn(target);
    let (client_event, events) = tokio::sync::mpsc::unbounded_channel();
    let (keys, input) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let terminal = Screen::new(TestBackend::new(120, 40)).unwrap();
    let mut console = RunLoop::new(app, terminal, input, events, Driver::new(handle, None));
    let typed =
        |console: &RunLoop<TestBackend, _>| console.app.editor.contents().matches('x').count();
    let before = typed(&console);
    for step in 1..=20 {
        client_event
            .send(client::Event::Connection(ConnectionState::Connecting {
                target: "sandbox".into(),
            }))
            .unwrap();
        keys.unbounded_send(Ok(TermEvent::Key(KeyEvent::new(
            KeyCode::Char('x'),
            KeyModifiers::NONE,
        ))))
        .unwrap();
        assert!(console.step().await.unwrap());
        assert_eq!(
            typed(&console) - before,
            step,
            "step {step} handled its key"
        );
    }
}

/// After each frame the loop offers the terminal's reader where a typed
/// character shows; what the reader writes by it is taken into the screen
/// the loop diffs against (debug builds check each frame against a whole
/// one), and the key's frame leaves the row as the edit does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_character_shows_by_the_offered_plan_before_its_frame() {
    use asudf::tui::RunLoop;
    use asudf::tui::echo::Echoes;
    use crossterm::event::Event as TermEvent;

    let target = Target::in_memory(SandboxConfig::default());
    let mut app = App::new(StartOptions::sample(&target.label()));
    app.update(Action::Resize(120, 40));
    let (handle, events) = client::spawn(target);
    let (keys, input) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let terminal = Screen::new(TestBackend::new(120, 40)).unwrap();
    let echoes = std::sync::Arc::new(Echoes::default());
    let mut console = RunLoop::new(app, terminal, input, events, Driver::new(handle, None))
        .with_echoes(echoes.clone());
    console.draw().unwrap();
    for typed in ['Q', 'z'] {
        let at = console
            .terminal
            .cursor()
            .expect("the editor's cursor shows");
        let (row, col) = console.app.editor.cursor();
        let mut written = Vec::new();
        assert!(
            echoes.write(typed as u8, || Some((120, 40)), &mut written),
            "a plan is on offer"
        );
        assert!(written.contains(&(typed as u8)));
        keys.unbounded_send(Ok(TermEvent::Key(KeyEvent::new(
            KeyCode::Char(typed),
            KeyModifiers::NONE,
        ))))
        .unwrap();
        assert!(console.step().await.unwrap());
        assert_eq!(
            console.terminal.shown()[(at.x, at.y)].symbol(),
            typed.to_string()
        );
        assert_eq!(
            console.app.editor.lines()[row].chars().nth(col),
            Some(typed)
        );
    }
    assert_eq!(console.echoed, 2);
    // Not offered where typing does not go to the editor.
    keys.unbounded_send(Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::F(1),
        KeyModifiers::NONE,
    ))))
    .unwrap();
    assert!(console.step().await.unwrap());
    assert!(
        !echoes.write(b'x', || Some((120, 40)), &mut Vec::new()),
        "help is open"
    );
}

/// The real run loop, idle: after start-up settles (connected, modules
/// listed, the buffer highlighted) two seconds pass with no wake-up and no
/// draw; a key then wakes it once and draws once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_console_neither_wakes_nor_draws() {
    use asudf::tui::RunLoop;
    use crossterm::event::Event as TermEvent;

    asudf::tui::highlight::preload();
    let target = Target::in_memory(SandboxConfig::default());
    let app = App::new(StartOptions::sample(&target.label()));
    let (handle, events) = client::spawn(target);
    let (keys, input) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let terminal = Screen::new(TestBackend::new(120, 40)).unwrap();
    let mut console = RunLoop::new(app, terminal, input, events, Driver::new(handle, None));
    let settled = |app: &App| {
        app.connected()
            && app.modules.loaded_once
            && !app.animating()
            && app.pending_requests() == 0
            && !app.diagnostics.stale
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        while !settled(&console.app) {
            assert!(console.step().await.unwrap());
        }
    })
    .await
    .expect("start-up settles");
    assert!(console.draws > 0, "start-up drew");

    let (wakes, draws) = (console.wakes, console.draws);
    let idle = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            console.step().await.unwrap();
        }
    })
    .await;
    assert!(idle.is_err(), "the loop kept waiting");
    assert_eq!(console.wakes - wakes, 0, "wake-ups while idle");
    assert_eq!(console.draws - draws, 0, "draws while idle");

    keys.unbounded_send(Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::Char('x'),
        KeyModifiers::NONE,
    ))))
    .unwrap();
    assert!(console.step().await.unwrap());
    assert_eq!((console.wakes - wakes, console.draws - draws), (1, 1));
    assert!(console.app.editor.dirty(), "the key reached the editor");
}

/// A save waits on the disk off the UI loop: while its file cannot be read
/// (a FIFO nobody writes into), keys are still handled; once the file
/// answers, the save's question comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_waiting_on_the_disk_holds_up_no_key() {
    use asudf::tui::RunLoop;
    use crossterm::event::Event as TermEvent;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    /// Writes into the FIFO when dropped, so a read of it always ends. A
    /// writer cannot open it before the read has (ENXIO): it tries again
    /// until then, for up to 10 s.
    struct Unblock(PathBuf);
    impl Drop for Unblock {
        fn drop(&mut self) {
            use std::os::unix::fs::OpenOptionsExt;
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                let opened = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&self.0);
                if let Ok(mut fifo) = opened {
                    let _ = std::io::Write::write_all(&mut fifo, b"theirs\n");
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.lua");
    std::fs::write(&path, "return 1\n").unwrap();
    let target = Target::in_memory(SandboxConfig::default());
    let mut options = StartOptions::sample(&target.label());
    options.text = "return 1\n".into();
    options.path = Some(path.clone());
    let app = App::new(options);
    let (handle, events) = client::spawn(target);
    let (keys, input) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let terminal = Screen::new(TestBackend::new(120, 40)).unwrap();
    let (answers, answered) = tokio::sync::mpsc::unbounded_channel();
    let mut driver = Driver::new(handle, None);
    driver.answers = Some(answers);
    let mut console = RunLoop::new(app, terminal, input, events, driver).with_answers(answered);

    // The file becomes a FIFO: the save's check reads it, and waits.
    std::fs::remove_file(&path).unwrap();
    let fifo = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let unblock = Unblock(path.clone());
    let key = |code, modifiers| Ok(TermEvent::Key(KeyEvent::new(code, modifiers)));
    keys.unbounded_send(key(KeyCode::Char('s'), KeyModifiers::CONTROL))
        .unwrap();
    keys.unbounded_send(key(KeyCode::Char('x'), KeyModifiers::NONE))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !console.app.editor.contents().contains('x') {
            assert!(console.step().await.unwrap());
        }
    })
    .await
    .expect("the key after Ctrl-S is handled while the save waits");
    assert!(console.app.overlay.is_none(), "no answer yet");

    drop(unblock);
    tokio::time::timeout(Duration::from_secs(10), async {
        while console.app.overlay.is_none() {
            assert!(console.step().await.unwrap());
        }
    })
    .await
    .expect("the save's answer comes");
    let shown = format!("{:?}", console.app.overlay);
    assert!(
        shown.contains("changed on disk since it was opened"),
        "{shown}"
    );
}

/// Not a check, a measure (`--ignored --nocapture`, `SERIES_N` runs, 2000
/// by default): the wall time of a run-N series through the real run loop
/// (drawing as it does), beside the same number of bare applies one after
/// another through the client task (what `asudf bench -c 1` does), on the
/// same sandbox server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measure, not a check"]
async fn series_wall_time_against_bench() {
    use asudf::client::{ApplyCall, RecordKey, Request};
    use asudf::tui::RunLoop;
    use common::live::OnServer;
    use crossterm::event::Event as TermEvent;
    use std::sync::Arc;
    use std::time::Instant;

    let n: u32 = std::env::var("SERIES_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut server = OnServer::start(120, 40, async |_| {}).await;
    server.register().await;
    server.run_apply().await;
    server.set(Field::Times, &n.to_string()).await;
    let OnServer { live, setup, .. } = &mut server;
    let Live {
        app,
        driver,
        events,
        terminal,
    } = std::mem::replace(live, placeholder().await);
    let (keys, input) = futures::channel::mpsc::unbounded::<std::io::Result<TermEvent>>();
    let mut console = RunLoop::new(app, terminal, input, events, driver);
    console.draw().unwrap();
    let (draws, wakes) = (console.draws, console.wakes);
    let started = Instant::now();
    keys.unbounded_send(Ok(TermEvent::Key(KeyEvent::new(
        KeyCode::F(5),
        KeyModifiers::NONE,
    ))))
    .unwrap();
    assert!(console.step().await.unwrap());
    while console.app.results.entries.last().unwrap().in_flight() {
        assert!(console.step().await.unwrap());
    }
    let series = started.elapsed();
    let entry = console.app.results.entries.last().unwrap();
    assert_eq!(entry.series.as_ref().unwrap().done(), n);
    let (draws, wakes) = (console.draws - draws, console.wakes - wakes);

    let call = Arc::new(ApplyCall {
        key: RecordKey {
            ns: "test".into(),
            set: Some("demo".into()),
            key: Value::from("k1"),
        },
        module: "counter".into(),
        function: "increment".into(),
        args: vec![Value::from("count"), Value::Int(1)],
        timeout_ms: None,
        send_key: false,
        with_record: false,
        with_logs: false,
    });
    let started = Instant::now();
    for _ in 0..n {
        let (outcome, _) = setup.handle.call(Request::Apply(call.clone())).await;
        outcome.unwrap();
    }
    let bench = started.elapsed();
    println!(
        "series of {n}: {series:?} ({draws} draws, {wakes} wakes); bench: {bench:?}; ratio {:.2}",
        series.as_secs_f64() / bench.as_secs_f64()
    );
}

/// A console to leave in place of one moved out.
async fn placeholder() -> Live {
    Live::sandbox(SandboxConfig::default()).await
}

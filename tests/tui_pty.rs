//! The console binary in a real pseudo-terminal (tmux): start, look at the
//! screen, type, open help, quit, and check the terminal was restored; then
//! start again and get the unsaved buffer back.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::tmux::{Tmux, console_program};

#[test]
fn console_runs_in_a_terminal_and_restores_it() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    let command = format!("{}; echo EXIT=$?", program.display());

    tmux.literal(&command);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("2 Editor");
    assert!(tmux.alternate_screen());
    assert!(
        screen.contains("function increment(rec, bin_name, amount)"),
        "{screen}"
    );
    assert!(
        screen.contains("3 Apply") && screen.contains("4 Results"),
        "{screen}"
    );
    assert!(screen.contains("F5 run"), "the hint bar: {screen}");

    // Help from the keymap, closed with Esc.
    tmux.keys(&["F1"]);
    tmux.wait_for("the form's kind");
    tmux.keys(&["Escape"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.screen().contains("q closes this help") {
        assert!(Instant::now() < deadline, "help closes");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Register the sample (F9) and run the form's default call twice.
    tmux.wait_for("● sandbox");
    tmux.keys(&["F9"]);
    tmux.wait_for("registered counter.lua");
    tmux.wait_for("counter.lua =buffer");
    tmux.keys(&["F5"]);
    tmux.wait_for("= 5");
    // Alt-3 to the form (on the args field), retype them, run with Ctrl-J.
    tmux.keys(&["M-3", "C-u"]);
    tmux.literal("'count', 3");
    tmux.keys(&["C-j"]);
    let screen = tmux.wait_for("= 8");
    assert!(screen.contains("~ count: 5 → 8"), "{screen}");
    assert!(screen.contains("record gen 1 → 2"), "{screen}");
    // Alt-Enter runs it too.
    tmux.keys(&["M-Enter"]);
    let screen = tmux.wait_for("= 11");
    assert!(screen.contains("~ count: 8 → 11"), "{screen}");

    // Printable keys, `q` included, type into the editor.
    tmux.keys(&["M-2"]);
    tmux.literal("-- quick ");
    let screen = tmux.wait_for("-- quick function increment");
    assert!(screen.contains("[+]"), "{screen}");
    assert!(screen.contains("counter.lua ≠buffer"), "{screen}");

    // Quitting with unsaved changes asks first.
    tmux.keys(&["C-c"]);
    tmux.wait_for("Quit anyway?");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("EXIT=0");
    assert!(!tmux.alternate_screen(), "the alternate screen is left");
    assert!(!screen.contains("2 Editor"), "{screen}");
    assert!(screen.contains("READY$"), "{screen}");
    // The terminal is back in cooked mode: a shell command echoes and runs.
    tmux.literal("echo cooked-$((1+1))");
    tmux.keys(&["Enter"]);
    tmux.wait_for("cooked-2");

    // The unsaved buffer was kept and is offered on the next start, which
    // also reads a user keymap and respects NO_COLOR.
    let copies = std::fs::read_dir(dir.path().join("data/asudf/recovery")).unwrap();
    let copies = copies
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"));
    assert_eq!(copies.count(), 1, "the session's own copy");
    std::fs::create_dir_all(dir.path().join("config/asudf")).unwrap();
    std::fs::write(
        dir.path().join("config/asudf/keymap.toml"),
        "run = ['F8', 'F5']\n",
    )
    .unwrap();
    tmux.literal(&format!("NO_COLOR=1 {command}"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("Recover them?");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("-- quick function increment");
    // The last apply form came back too.
    assert!(screen.contains("args 'count', 3"), "{screen}");
    assert!(screen.contains("F8 run"), "the user keymap: {screen}");
    let styled = tmux.run(&["capture-pane", "-p", "-e", "-t", "t"]);
    assert!(
        !styled.contains("38;2;") && !styled.contains("38;5;"),
        "no colours: {styled}"
    );
    tmux.keys(&["F8"]);
    tmux.wait_for("= 14");
    // Narrow terminal: the panes stack and keep working.
    tmux.run(&["resize-window", "-t", "t", "-x", "80", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    let screen = tmux.wait_for("1 Modules");
    let editor_row = screen.lines().position(|l| l.contains("2 Editor")).unwrap();
    let modules_row = screen
        .lines()
        .position(|l| l.contains("1 Modules"))
        .unwrap();
    assert!(editor_row > modules_row, "stacked: {screen}");
    tmux.keys(&["C-c"]);
    tmux.wait_for("Quit anyway?");
    tmux.keys(&["y"]);
    tmux.wait_for("EXIT=0");
    assert!(!tmux.alternate_screen());
}

#[test]
fn calls_saved_from_the_console_pass_as_a_test_file() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/counter.lua"),
        work.join("counter.lua"),
    )
    .unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    tmux.literal(&format!(
        "cd {} && {} counter.lua; echo EXIT=$?",
        work.display(),
        program.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("● sandbox");
    tmux.keys(&["F9"]);
    tmux.wait_for("registered counter.lua");
    tmux.keys(&["F5"]);
    tmux.wait_for("= 5");
    tmux.keys(&["M-3", "C-u"]);
    tmux.literal("'count', 3");
    tmux.keys(&["C-j"]);
    tmux.wait_for("= 8");
    // F7 offers a file name; Enter saves the two calls there.
    tmux.keys(&["F7"]);
    tmux.wait_for("session.udftest.toml");
    tmux.keys(&["Enter"]);
    tmux.wait_for("saved session.udftest.toml");
    tmux.keys(&["C-c"]);
    tmux.wait_for("EXIT=0");

    let saved = std::fs::read_to_string(work.join("session.udftest.toml")).unwrap();
    assert!(
        saved.contains("counter = \"counter.lua\""),
        "by its file: {saved}"
    );
    tmux.literal(&format!(
        "{} test session.udftest.toml; echo TEST=$?",
        program.display()
    ));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("\nTEST=");
    assert!(screen.contains("2 passed, 0 failed"), "{screen}");
    assert!(screen.contains("TEST=0"), "{screen}");
}

#[test]
fn a_local_function_the_form_calls_is_flagged_before_registering() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    tmux.literal(&format!("{} --memory; echo EXIT=$?", program.display()));
    tmux.keys(&["Enter"]);
    tmux.wait_for("function increment(rec, bin_name, amount)");
    tmux.wait_for("● sandbox");
    // The form calls counter.increment; make it local.
    tmux.literal("local ");
    let screen = tmux.wait_for("'increment' is local");
    assert!(screen.contains("E 1 local function increment"), "{screen}");
    assert!(screen.contains("error 1:16:"), "{screen}");
    // F9 asks before registering a module with errors.
    tmux.keys(&["F9"]);
    tmux.wait_for("Register anyway?");
    tmux.keys(&["n"]);
    let screen = tmux.screen();
    assert!(!screen.contains("registered counter.lua"), "{screen}");
    tmux.keys(&["C-c"]);
    tmux.wait_for("Quit anyway?");
    tmux.keys(&["y"]);
    tmux.wait_for("EXIT=0");
}

/// A paste without bracketed paste (tmux's paste-buffer without -p, or a
/// terminal that does not bracket) arrives as keys, several KiB at once:
/// every one is read when it arrives, not when the next key comes.
#[test]
fn a_long_unbracketed_paste_arrives_whole() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    let file = dir.path().join("pasted.lua");
    tmux.literal(&format!(
        "{} --memory {}",
        program.display(),
        file.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("2 Editor");
    // 50 lines of 60 bytes and a last one: about 3 KiB, three of
    // crossterm's 1 KiB reads.
    let mut text: String = (1..=50)
        .map(|n| format!("-- line {n:02} {}\n", "x".repeat(50)))
        .collect();
    text.push_str("-- end of paste");
    tmux.run(&["set-buffer", "--", &text]);
    tmux.run(&["paste-buffer", "-t", "t"]);
    let screen = tmux.wait_for("-- end of paste");
    assert!(screen.contains("-- line 50 xxxx"), "{screen}");
}

/// A console whose terminal goes away while it ignores SIGHUP (started
/// under `nohup` or `trap '' HUP`) ends, rather than running on unseen.
#[test]
fn a_console_ends_when_its_terminal_hangs_up() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    tmux.literal(&format!(
        "echo $$ > {}; trap '' HUP; exec {} --memory",
        pid_file.display(),
        program.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("2 Editor");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let alive = || Path::new(&format!("/proc/{}", pid.trim())).exists();
    assert!(alive());
    drop(tmux); // kills its server: the console's terminal hangs up
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() {
        assert!(Instant::now() < deadline, "the console still runs");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// 24-bit colours go only to a terminal that says it shows them
/// (`COLORTERM=truecolor`); elsewhere the syntax's colours are the nearest
/// of the 256 (indexes 16 and up, which only they use).
#[test]
fn colours_keep_to_what_the_terminal_says_it_shows() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    let palette = regex::Regex::new(r"\x1b\[(?:[0-9;]*;)?38;5;(\d+)").unwrap();
    let from_the_palette = |styled: &str| {
        palette
            .captures_iter(styled)
            .any(|c| c[1].parse::<u8>().is_ok_and(|n| n >= 16))
    };
    for (colorterm, true_color) in [("", false), ("truecolor", true)] {
        tmux.literal(&format!(
            "COLORTERM={colorterm} {} --memory; echo EXIT=$?",
            program.display()
        ));
        tmux.keys(&["Enter"]);
        tmux.wait_for("2 Editor");
        // The sample is highlighted once the syntax has loaded.
        let deadline = Instant::now() + Duration::from_secs(30);
        let styled = loop {
            let styled = tmux.run(&["capture-pane", "-p", "-e", "-t", "t"]);
            if styled.contains("38;2;") || from_the_palette(&styled) {
                break styled;
            }
            assert!(Instant::now() < deadline, "highlighted: {styled}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(styled.contains("38;2;"), true_color, "{styled}");
        assert_eq!(from_the_palette(&styled), !true_color, "{styled}");
        tmux.keys(&["C-c"]);
        tmux.wait_for("EXIT=0");
        tmux.run(&["clear-history", "-t", "t"]);
        tmux.keys(&["C-l"]);
    }
}

/// SIGTERM ends the console as quitting does: the recovery copy written
/// at once (the typed text, well before its 2 s pause), the terminal put
/// back (alternate screen left, mouse reporting off, cursor shown, cooked
/// mode), and the shell's code for the signal (128 + 15).
#[test]
fn sigterm_keeps_the_last_edits_and_restores_the_terminal() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    tmux.literal(&format!(
        "sh -c 'echo $$ > {}; exec {} --memory {}'; echo EXIT=$?",
        pid_file.display(),
        program.display(),
        dir.path().join("work.lua").display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("2 Editor");
    tmux.literal("-- typed before the signal");
    tmux.wait_for("-- typed before the signal");
    let flag = |name: &str| tmux.run(&["display-message", "-p", "-t", "t", name]);
    assert_eq!(flag("#{mouse_any_flag}").trim(), "1", "mouse reporting on");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());

    // At a line's start: not the command line's `echo EXIT=$?`.
    let screen = tmux.wait_for("\nEXIT=");
    assert!(screen.contains("\nEXIT=143"), "{screen}");
    assert!(!tmux.alternate_screen(), "the alternate screen is left");
    assert_eq!(flag("#{mouse_any_flag}").trim(), "0", "mouse reporting off");
    assert_eq!(flag("#{cursor_flag}").trim(), "1", "the cursor shown");
    tmux.literal("echo cooked-$((1+1))");
    tmux.keys(&["Enter"]);
    tmux.wait_for("cooked-2");

    let copies: Vec<String> = std::fs::read_dir(dir.path().join("data/asudf/recovery"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].contains("-- typed before the signal"),
        "{copies:?}"
    );
}

/// Characters typed one at a time in the editor are shown by the terminal's
/// reader ahead of their frames (the session's log counts them), and the
/// screen they leave, colours and all, is the one a whole redraw gives.
#[test]
fn typed_characters_show_ahead_of_their_frames_and_leave_the_screen_whole() {
    let program = console_program();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typed.lua");
    std::fs::write(&file, "local total = rec['amount'] or 0\nreturn total\n").unwrap();
    let tmux = Tmux::start(120, 40, dir.path());
    tmux.wait_for("READY$");
    tmux.literal(&format!(
        "ASUDF_LOG=info {} --memory {}; echo EXIT=$?",
        program.display(),
        file.display()
    ));
    tmux.keys(&["Enter"]);
    tmux.wait_for("2 Editor");
    let styled = || tmux.run(&["capture-pane", "-p", "-e", "-t", "t"]);
    // The screen as it stays (highlighted, connected, modules listed).
    let settled = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = styled();
        loop {
            std::thread::sleep(Duration::from_millis(400));
            let now = styled();
            if now == last && now.contains("38;") {
                return now;
            }
            assert!(Instant::now() < deadline, "settles: {now}");
            last = now;
        }
    };
    settled();
    for _ in 0.."local ".len() {
        tmux.keys(&["Right"]);
    }
    for c in ["a", "b", "c", "_", "1"] {
        tmux.literal(c);
        std::thread::sleep(Duration::from_millis(60));
    }
    tmux.wait_for("local abc_1total = rec['amount'] or 0");
    let typed = settled();
    // A new size draws the screen whole.
    tmux.run(&["resize-window", "-t", "t", "-x", "100", "-y", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert_eq!(typed, settled());
    tmux.keys(&["C-c"]);
    tmux.wait_for("Quit anyway?");
    tmux.keys(&["y"]);
    tmux.wait_for("EXIT=0");
    let log = std::fs::read_to_string(dir.path().join(".local/state/asudf/asudf.log")).unwrap();
    let echoed: u32 = regex::Regex::new(r"console closed.* echoed=(\d+)")
        .unwrap()
        .captures(&log)
        .unwrap_or_else(|| panic!("the closing line: {log}"))[1]
        .parse()
        .unwrap();
    assert!(echoed >= 3, "of 5 typed keys, {echoed} shown ahead: {log}");
}

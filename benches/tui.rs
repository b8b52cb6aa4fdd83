//! Console budgets (DESIGN §6): time to the first frame, and the frame after
//! a keystroke with a 10,000-line module open, highlighting on vs off (the
//! baseline in the same run). Also prints the resident memory with that buffer.

use std::hint::black_box;
use std::time::Instant;

use asudf::tui::app::{App, StartOptions};
use asudf::tui::{Action, highlight, ui};
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;

fn udf10k() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/udf10k.lua");
    std::fs::read_to_string(path).expect("shared/bench/udf10k.lua")
}

fn key(code: KeyCode) -> Action {
    Action::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn first_frame(c: &mut Criterion) {
    c.bench_function("first frame (sample buffer)", |b| {
        b.iter(|| {
            let mut app = App::new(StartOptions::sample("sandbox"));
            app.update(Action::Resize(WIDTH, HEIGHT));
            let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
            terminal.draw(|f| ui::draw(&app, f)).unwrap();
            black_box(terminal);
        })
    });
}

/// An app with `text` in the buffer, cursor on line `line`, highlighted.
fn app_with(text: String, line: u32, highlighting: bool) -> App {
    let mut options = StartOptions::sample("sandbox");
    options.text = text;
    let mut app = App::new(options);
    app.editor.highlight_on = highlighting;
    app.update(Action::Resize(WIDTH, HEIGHT));
    app.editor.goto_line(line);
    settle(&mut app);
    app
}

fn big_app(highlighting: bool) -> App {
    app_with(udf10k(), 5_000, highlighting)
}

/// Ticks until the visible lines are highlighted.
fn settle(app: &mut App) {
    app.update(Action::Tick(Instant::now()));
    while !app.editor.highlight_done() {
        app.update(Action::Tick(Instant::now()));
    }
}

/// One keystroke and the frame after it: type a character, then delete it,
/// so the buffer stays the same size.
fn bench_keys(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut app: App,
) {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|f| ui::draw(&app, f)).unwrap();
    let mut typed = false;
    group.bench_function(name, |b| {
        b.iter(|| {
            app.update(key(if typed {
                KeyCode::Backspace
            } else {
                KeyCode::Char('x')
            }));
            typed = !typed;
            terminal.draw(|f| ui::draw(&app, f)).unwrap();
        })
    });
}

/// The budget (DESIGN §6): a keystroke on the 10,000-line module costs at
/// most 1.5 times one on a 10-line buffer, highlighting on in both.
fn keystroke_frame(c: &mut Criterion) {
    highlight::preload();
    let mut group = c.benchmark_group("keystroke to frame");
    let ten: String = udf10k()
        .lines()
        .take(10)
        .map(|l| format!("{l}\n"))
        .collect();
    bench_keys(
        &mut group,
        "10-line buffer (baseline)",
        app_with(ten, 5, true),
    );
    bench_keys(&mut group, "udf10k.lua, line 5000", big_app(true));
    bench_keys(
        &mut group,
        "udf10k.lua, line 5000, highlighting off",
        big_app(false),
    );
    group.finish();
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs first, so the syntax definitions are not loaded yet when it starts.
fn memory(_: &mut Criterion) {
    let start = rss_kib().unwrap_or(0);
    highlight::preload();
    let assets = rss_kib().unwrap_or(0);
    let mut app = big_app(true);
    // The last screen needs every line's parse state: the worst case.
    app.editor.goto_line(10_000);
    settle(&mut app);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|f| ui::draw(&app, f)).unwrap();
    let after = rss_kib().unwrap_or(0);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "memory: RSS {:.1} MiB with udf10k.lua open and highlighted to the end: {:.1} MiB for the syntax and themes, {:.1} MiB for the buffer and its highlight cache",
        mib(after),
        mib(assets.saturating_sub(start)),
        mib(after.saturating_sub(assets)),
    );
    black_box(app);
}

criterion_group!(benches, memory, first_frame, keystroke_frame);
criterion_main!(benches);

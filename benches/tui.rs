//! Console budgets (DESIGN §6): time to the first frame, and the frame after
//! a keystroke with a 10,000-line module open, highlighting on vs off (the
//! baseline in the same run), and diagnostics on vs off (issue 12: ≤ 1.1×).
//! Also prints the resident memory with that buffer.

use std::hint::black_box;
use std::time::Instant;

use asudf::tui::app::Effect;
use asudf::tui::app::{App, StartOptions};
use asudf::tui::{Action, diagnostics, highlight, ui};
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

/// An app with the 10k-line buffer, cursor in the middle, highlighted.
fn big_app(highlighting: bool) -> App {
    big_app_linted(highlighting, false)
}

/// The same, with diagnostics off, or on and the buffer's findings shown.
fn big_app_linted(highlighting: bool, lint: bool) -> App {
    let mut options = StartOptions::sample("sandbox");
    options.text = udf10k();
    let now = options.now;
    let mut app = App::new(options);
    app.diagnostics.on = lint;
    if lint {
        // What the driver does off the UI thread once typing stops.
        for effect in app.update(Action::Tick(now + std::time::Duration::from_secs(1))) {
            if let Effect::Lint(request) = effect {
                app.update(diagnostics::run(request));
            }
        }
        assert!(!app.editor.problems.is_empty(), "udf10k.lua has findings");
    }
    app.editor.highlight_on = highlighting;
    app.update(Action::Resize(WIDTH, HEIGHT));
    app.editor.goto_line(5_000);
    settle(&mut app);
    app
}

/// Ticks until the visible lines are highlighted.
fn settle(app: &mut App) {
    app.update(Action::Tick(Instant::now()));
    while !app.editor.highlight_done() {
        app.update(Action::Tick(Instant::now()));
    }
}

fn keystroke_frame(c: &mut Criterion) {
    highlight::preload();
    let mut group = c.benchmark_group("keystroke to frame, udf10k.lua");
    for (name, on) in [
        ("highlighting off (baseline)", false),
        ("highlighting on", true),
    ] {
        let mut app = big_app(on);
        let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
        terminal.draw(|f| ui::draw(&app, f)).unwrap();
        let mut typed = false;
        group.bench_function(name, |b| {
            b.iter(|| {
                // Type a character, then delete it: the buffer stays the same size.
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
    group.finish();

    // Diagnostics on (findings in the gutter, every keystroke re-arming the
    // debounced lint) vs off, highlighting on in both. The cursor sits on a
    // line with a finding (udf10k.lua's are near the top) so the view draws
    // them.
    let mut group = c.benchmark_group("keystroke to frame, udf10k.lua, diagnostics");
    for (name, on) in [
        ("diagnostics off (baseline)", false),
        ("diagnostics on", true),
    ] {
        let mut app = big_app_linted(true, on);
        let line = 5;
        app.editor.goto_line(line);
        settle(&mut app);
        if on {
            let shown = app.editor.problems.iter().filter(|d| {
                let row = d.line as usize;
                row > app.editor.scroll_row && row <= app.editor.scroll_row + app.editor.view_rows
            });
            assert!(shown.count() > 0, "a finding is on screen");
        }
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
    group.finish();
}

/// The same two cases alternated keystroke by keystroke, so a busy machine
/// slows both alike; prints the ratio of the medians.
fn diagnostics_interleaved(_: &mut Criterion) {
    highlight::preload();
    let mut cases: Vec<(App, Terminal<TestBackend>, Vec<f64>)> = [false, true]
        .into_iter()
        .map(|on| {
            let mut app = big_app_linted(true, on);
            app.editor.goto_line(5);
            settle(&mut app);
            let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
            terminal.draw(|f| ui::draw(&app, f)).unwrap();
            (app, terminal, Vec::new())
        })
        .collect();
    for i in 0..2_000 {
        for (app, terminal, times) in cases.iter_mut() {
            let start = Instant::now();
            app.update(key(if i % 2 == 1 {
                KeyCode::Backspace
            } else {
                KeyCode::Char('x')
            }));
            terminal.draw(|f| ui::draw(app, f)).unwrap();
            times.push(start.elapsed().as_secs_f64());
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let off = median(&mut cases[0].2);
    let on = median(&mut cases[1].2);
    println!(
        "keystroke to frame, udf10k.lua, interleaved: diagnostics off {:.3} ms, on {:.3} ms: ratio {:.3}",
        off * 1e3,
        on * 1e3,
        on / off
    );
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn memory(_: &mut Criterion) {
    highlight::preload();
    let before = rss_kib().unwrap_or(0);
    let mut app = big_app(true);
    // The last screen needs every line's parse state: the worst case.
    app.editor.goto_line(10_000);
    settle(&mut app);
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    terminal.draw(|f| ui::draw(&app, f)).unwrap();
    let after = rss_kib().unwrap_or(0);
    println!(
        "memory: RSS {:.1} MiB with udf10k.lua open and highlighted to the end ({:.1} MiB for the buffer and its highlight cache; {} lines cached)",
        after as f64 / 1024.0,
        after.saturating_sub(before) as f64 / 1024.0,
        app.editor.highlighter.highlighted_lines()
    );
    black_box(app);
}

criterion_group!(
    benches,
    first_frame,
    keystroke_frame,
    diagnostics_interleaved,
    memory
);
criterion_main!(benches);

//! Console budgets (DESIGN §6): time to the first frame, and the frame after
//! a keystroke with a 10,000-line module open, highlighting on vs off (the
//! baseline in the same run), and diagnostics on vs off (issue 12: ≤ 1.1×).
//! Also prints the resident memory with that buffer.

use std::hint::black_box;
use std::time::Instant;

use asudf::tui::app::Effect;
use asudf::tui::app::{App, StartOptions};
use asudf::tui::screen::Screen as Terminal;
use asudf::tui::{Action, diagnostics, highlight, ui};
use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
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

/// An app with `text` in the buffer, cursor on line `line`, highlighted;
/// with `lint`, diagnostics on and the buffer's findings shown.
fn app_with(text: String, line: u32, highlighting: bool, lint: bool) -> App {
    let mut options = StartOptions::sample("sandbox");
    options.text = text;
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
    app.editor.goto_line(line);
    settle(&mut app);
    app
}

/// The 10k-line buffer, cursor in the middle.
fn big_app(highlighting: bool) -> App {
    big_app_linted(highlighting, false)
}

fn big_app_linted(highlighting: bool, lint: bool) -> App {
    app_with(udf10k(), 5_000, highlighting, lint)
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
            ui::draw_on(&mut app, &mut terminal).unwrap();
        })
    });
}

/// The first ten lines of udf10k.lua.
fn ten_lines() -> String {
    udf10k()
        .lines()
        .take(10)
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The budget (DESIGN §6): a keystroke on the 10,000-line module costs at
/// most 1.5 times one on a 10-line buffer, highlighting on in both.
fn keystroke_frame(c: &mut Criterion) {
    highlight::preload();
    let mut group = c.benchmark_group("keystroke to frame");
    bench_keys(
        &mut group,
        "10-line buffer (baseline)",
        app_with(ten_lines(), 5, true, false),
    );
    bench_keys(&mut group, "udf10k.lua, line 5000", big_app(true));
    bench_keys(
        &mut group,
        "udf10k.lua, line 5000, highlighting off",
        big_app(false),
    );
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
                ui::draw_on(&mut app, &mut terminal).unwrap();
            })
        });
    }
    group.finish();
}

/// Cases alternated keystroke by keystroke (type a character, delete it),
/// so a busy machine slows them alike; the medians of each, in seconds.
fn interleaved(apps: Vec<App>, keys: usize) -> Vec<f64> {
    let mut cases: Vec<(App, Terminal<TestBackend>, Vec<f64>)> = apps
        .into_iter()
        .map(|app| {
            let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
            terminal.draw(|f| ui::draw(&app, f)).unwrap();
            (app, terminal, Vec::new())
        })
        .collect();
    for i in 0..keys {
        for (app, terminal, times) in cases.iter_mut() {
            let start = Instant::now();
            app.update(key(if i % 2 == 1 {
                KeyCode::Backspace
            } else {
                KeyCode::Char('x')
            }));
            ui::draw_on(app, terminal).unwrap();
            times.push(start.elapsed().as_secs_f64());
        }
    }
    cases
        .into_iter()
        .map(|(_, _, mut times)| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        })
        .collect()
}

/// The keystroke budget's pair alternated: udf10k.lua (cursor on line
/// 5000) against the 10-line buffer; prints the ratio of the medians.
fn keystroke_interleaved(_: &mut Criterion) {
    highlight::preload();
    let medians = interleaved(
        vec![app_with(ten_lines(), 5, true, false), big_app(true)],
        4_000,
    );
    let (ten, big) = (medians[0], medians[1]);
    println!(
        "keystroke to frame, interleaved: 10-line buffer {:.3} ms, udf10k.lua {:.3} ms: ratio {:.3}",
        ten * 1e3,
        big * 1e3,
        big / ten
    );
}

/// Diagnostics off and on alternated; prints the ratio of the medians.
fn diagnostics_interleaved(_: &mut Criterion) {
    highlight::preload();
    let apps = [false, true]
        .into_iter()
        .map(|on| {
            let mut app = big_app_linted(true, on);
            app.editor.goto_line(5);
            settle(&mut app);
            app
        })
        .collect();
    let medians = interleaved(apps, 2_000);
    let (off, on) = (medians[0], medians[1]);
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

criterion_group!(
    benches,
    frame_parts,
    memory,
    first_frame,
    keystroke_frame,
    keystroke_interleaved,
    diagnostics_interleaved
);
criterion_main!(benches);

/// Where a frame's time goes at 160x45 on udf10k.lua, line 1: each pane
/// drawn alone (each including the terminal's diff), and an empty frame.
fn frame_parts(_: &mut Criterion) {
    use asudf::tui::app::Pane;
    highlight::preload();
    let (w, h) = (160, 45);
    let mut app = app_with(udf10k(), 1, true, false);
    app.update(Action::Resize(w, h));
    settle(&mut app);
    let areas = ui::layout_for(ratatui::layout::Rect::new(0, 0, w, h), app.focus);
    let theme = app.theme;
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut time = |name: &str, f: &dyn Fn(&App, &mut asudf::tui::screen::Canvas)| {
        let n = 2000;
        let start = Instant::now();
        for _ in 0..n {
            terminal.draw(|fr| f(&app, fr)).unwrap();
        }
        println!(
            "{name}: {:.1} µs",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    };
    time("empty frame", &|_, _| {});
    time("whole frame", &|a, f| ui::draw(a, f));
    time("editor", &|a, f| {
        a.editor
            .draw(f, areas.editor, theme, a.focus == Pane::Editor, None)
    });
    time("modules", &|a, f| {
        a.modules
            .draw(f, areas.modules, theme, false, &a.editor.module, None)
    });
    time("apply", &|a, f| {
        a.apply.draw(f, areas.apply, theme, false);
    });
    time("results", &|a, f| {
        a.results
            .draw(f, areas.results, theme, false, a.now, a.time_format, a.spin)
    });
}

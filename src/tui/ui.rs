//! Layout and drawing: `draw(&App, &mut Canvas)` reads state and never does I/O.

use crate::tui::screen::{Canvas, Screen};
use ratatui::backend::Backend;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use unicode_width::UnicodeWidthStr;

use crate::client::ConnectionState;
use crate::tui::app::{App, Damage, Overlay, PANES, Pane, StatusMessage};
use crate::tui::keymap::Scope;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub status: Rect,
    pub modules: Rect,
    pub editor: Rect,
    pub apply: Rect,
    pub results: Rect,
    pub hints: Rect,
}

/// Below this width the panes stack.
pub const NARROW: u16 = 100;
const APPLY_ROWS: u16 = 13;
/// Rows the stacked panes (in [`PANES`]' order) want; the editor takes
/// more when there are.
const STACKED_ROWS: [u16; 4] = [5, 6, APPLY_ROWS, 8];

pub fn layout(area: Rect) -> Areas {
    let [status, body, hints] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    if area.width >= NARROW {
        let [modules, editor, right] = Layout::horizontal([
            Constraint::Length(24),
            Constraint::Min(30),
            Constraint::Length((area.width * 3 / 8).clamp(40, 70)),
        ])
        .areas(body);
        let [apply, results] =
            Layout::vertical([Constraint::Length(APPLY_ROWS), Constraint::Min(0)]).areas(right);
        Areas {
            status,
            modules,
            editor,
            apply,
            results,
            hints,
        }
    } else {
        let [m, e, a, r] = STACKED_ROWS;
        let [modules, editor, apply, results] = Layout::vertical([
            Constraint::Length(m),
            Constraint::Min(e),
            Constraint::Length(a),
            Constraint::Length(r),
        ])
        .areas(body);
        Areas {
            status,
            modules,
            editor,
            apply,
            results,
            hints,
        }
    }
}

/// Rows the stacked panes (in [`PANES`]' order) take when unfocused in a
/// short terminal: the modules pane one row, the editor four lines, the
/// form two fields, the results the last call's first lines.
const SHORT_ROWS: [u16; 4] = [3, 6, 4, 5];
/// Rows the focused pane keeps in a short terminal before the others get
/// any: four lines of text inside its borders.
const FOCUSED_ROWS: u16 = 6;

/// The layout as drawn: [`layout`], except in a narrow terminal. There the
/// focused results pane takes the whole body (a query's records or a stage
/// view do not fit in the few rows it has there), and when the body is
/// shorter than the stacked panes want (80×24), the focused pane takes the
/// rows the others can spare.
pub fn layout_for(area: Rect, focus: Pane) -> Areas {
    let mut areas = layout(area);
    if area.width >= NARROW {
        return areas;
    }
    let body = areas.modules.union(areas.results);
    if focus == Pane::Results {
        let none = Rect::new(body.x, body.y, 0, 0);
        areas.modules = none;
        areas.editor = none;
        areas.apply = none;
        areas.results = body;
    } else if body.height < STACKED_ROWS.iter().sum() {
        let rows = short_rows(body.height, PANES.iter().position(|&p| p == focus).unwrap());
        let [modules, editor, apply, results] =
            Layout::vertical(rows.map(Constraint::Length)).areas(body);
        (areas.modules, areas.editor, areas.apply, areas.results) =
            (modules, editor, apply, results);
    }
    areas
}

/// Splits `height` rows among the stacked panes, the `focused`th first: it
/// keeps [`FOCUSED_ROWS`] (all there are, when fewer), each other pane
/// then gets its title line and, in order, its [`SHORT_ROWS`] while they
/// fit (a pane of two rows would be borders only), and the focused pane
/// takes what is left.
fn short_rows(height: u16, focused: usize) -> [u16; 4] {
    let mut rows = [0; 4];
    rows[focused] = FOCUSED_ROWS.min(height);
    let mut spare = height - rows[focused];
    for i in (0..4).filter(|&i| i != focused) {
        if spare > 0 {
            rows[i] = 1;
            spare -= 1;
        }
    }
    for i in (0..4).filter(|&i| i != focused) {
        let more = SHORT_ROWS[i] - 1;
        if rows[i] == 1 && more <= spare {
            rows[i] += more;
            spare -= more;
        }
    }
    rows[focused] += spare;
    rows
}

/// Draws what changed since the last frame, then finishes what that frame
/// was drawn ahead of (the typed line's colours, [`App::settle`]) and draws
/// again if that changed anything: a keystroke reaches the terminal before
/// its line is parsed again. True when a frame went out.
pub fn draw_on<B: Backend>(app: &mut App, screen: &mut Screen<B>) -> Result<bool, B::Error> {
    let drawn = draw_damage(app, screen)?;
    if app.settle() {
        draw_damage(app, screen)?;
    }
    Ok(drawn)
}

/// Draws the frame `app.take_damage()` calls for: none when nothing
/// changed, the whole screen, or, after typing in the editor, only the
/// parts typing changes (the editor and the modules pane's badge, or of the
/// editor only the typed row), the rest kept as shown. Debug builds check
/// the result, a frame left out too, against a whole frame. True when a
/// frame went out.
fn draw_damage<B: Backend>(app: &mut App, screen: &mut Screen<B>) -> Result<bool, B::Error> {
    let damage = app.take_damage();
    let app = &*app;
    let typing = matches!(damage, Damage::Line(_) | Damage::Typing)
        && !app.animating()
        && app.overlay.is_none();
    match damage {
        Damage::None => {}
        _ if !typing => screen.draw(|frame| draw(app, frame))?,
        _ => {
            // One row of the editor's text, or its whole pane and the badge.
            let areas = layout_for(screen.area(), app.focus);
            let only_row = match damage {
                Damage::Line(row) => app.editor.row_area(areas.editor, row).map(|at| (row, at)),
                _ => None,
            };
            let (editor, modules) = match only_row {
                Some((_, at)) => (at, None),
                None => (areas.editor, Some(areas.modules)),
            };
            let regions: Vec<Rect> = std::iter::once(editor).chain(modules).collect();
            screen.draw_regions(&regions, |frame| {
                for &region in &regions {
                    frame.fill(region, app.theme.base());
                }
                if let Some(area) = modules {
                    draw_modules(app, frame, area);
                }
                draw_editor(app, frame, areas.editor, only_row.map(|(row, _)| row));
            })?;
        }
    }
    #[cfg(debug_assertions)]
    {
        let mut whole = ratatui::buffer::Buffer::empty(screen.area());
        draw(app, &mut Canvas::new(&mut whole));
        screen.colors().apply(&mut whole.content);
        if let Some(i) =
            (0..whole.content.len()).find(|&i| whole.content[i] != screen.shown().content[i])
        {
            let (x, y) = whole.pos_of(i);
            panic!(
                "a {damage:?} frame differs from a whole one at column {x}, row {y}:\n{}\n---\n{}",
                screen_text(screen.shown()),
                screen_text(&whole)
            );
        }
    }
    Ok(damage != Damage::None)
}

/// Draws the whole frame.
pub fn draw(app: &App, frame: &mut Canvas) {
    let theme = app.theme;
    let area = frame.area();
    frame.fill(area, theme.base());
    let areas = layout_for(area, app.focus);
    draw_modules(app, frame, areas.modules);
    draw_editor(app, frame, areas.editor, None);
    let hidden = app.apply.draw(
        frame,
        areas.apply,
        theme,
        app.focus == Pane::Apply && app.overlay.is_none(),
    );
    // A form too short for its message: the status line says it instead.
    let form_error = hidden.map(|text| StatusMessage { text, error: true });
    draw_status(
        app,
        frame,
        areas.status,
        form_error.as_ref().or(app.status.as_ref()),
    );
    app.results.draw(
        frame,
        areas.results,
        theme,
        app.focus == Pane::Results,
        app.now,
        app.time_format,
        app.spin,
    );
    draw_hints(app, frame, areas.hints);
    draw_overlay(app, frame);
}

fn draw_modules(app: &App, frame: &mut Canvas, area: Rect) {
    let theme = app.theme;
    if app.indexes.shown {
        app.indexes
            .draw(frame, area, theme, app.focus == Pane::Modules);
    } else {
        app.modules.draw(
            frame,
            area,
            theme,
            app.focus == Pane::Modules,
            &app.editor.module,
            app.buffer_badge(),
        );
    }
}

fn draw_editor(app: &App, frame: &mut Canvas, area: Rect, only_row: Option<usize>) {
    app.editor.draw(
        frame,
        area,
        app.theme,
        app.focus == Pane::Editor && app.overlay.is_none(),
        only_row,
    );
}

fn draw_overlay(app: &App, frame: &mut Canvas) {
    let theme = app.theme;
    match &app.overlay {
        Some(Overlay::Help { scroll }) => draw_help(app, frame, *scroll),
        Some(Overlay::Confirm { question, .. }) => {
            let text = vec![
                Line::raw(question.clone()),
                Line::raw(""),
                Line::styled("y / Enter: yes    n / Esc: no", theme.key()),
            ];
            popup(frame, " Confirm ", text, 60, theme);
        }
        Some(Overlay::Prompt { kind, input }) => {
            let text = vec![
                Line::raw(input.text.clone()),
                Line::styled("Enter: ok    Esc: cancel", theme.dim()),
            ];
            let rect = popup(
                frame,
                &format!(" {} ", Overlay::prompt_label(*kind)),
                text,
                60,
                theme,
            );
            frame.set_cursor_position((rect.x + 1 + input.cursor as u16, rect.y + 1));
        }
        Some(Overlay::Samples { selected }) => {
            crate::tui::panes::samples::draw(frame, *selected, &app.keymap, theme)
        }
        Some(Overlay::Jobs) => {
            crate::tui::panes::jobs::draw(frame, &app.jobs, app.status.as_ref(), &app.keymap, theme)
        }
        None => {}
    }
}

fn draw_status(app: &App, frame: &mut Canvas, area: Rect, status: Option<&StatusMessage>) {
    let theme = app.theme;
    // The connection's forms, longest first: where a message does not fit
    // beside it, its details give way, then its name (the dot stays), as
    // the message is news and the connection is not.
    let (dot, forms) = match &app.connection {
        ConnectionState::Connecting { target } => ("○", vec![format!("connecting to {target}…")]),
        ConnectionState::Connected(info) => {
            let name = match (&info.sandbox, &info.cluster_name) {
                (Some(_), _) if info.target.starts_with("sandbox") => info.target.clone(),
                (Some(_), _) => format!("sandbox {}", info.target),
                (None, Some(name)) if !name.is_empty() => format!("cluster {name} {}", info.target),
                _ => format!("cluster {}", info.target),
            };
            let nodes = info.nodes.len();
            let whole = format!(
                "{name} · {} · build {}",
                crate::text::plural(nodes, "node", "nodes"),
                info.build
            );
            ("●", vec![whole, name, String::new()])
        }
        ConnectionState::Lost { reason } => ("✗", vec![format!("disconnected: {reason}")]),
    };
    let dot_style = match app.connection {
        ConnectionState::Connected(_) => theme.ok(),
        ConnectionState::Lost { .. } => theme.error(),
        ConnectionState::Connecting { .. } => theme.warn(),
    };
    let room = (area.width as usize).saturating_sub(" asudf ● ".width());
    let message_width = status.map_or(0, |m| "  │ ".width() + m.text.width());
    let fits = |form: &&String| form.width() + message_width <= room;
    let state = forms
        .iter()
        .find(fits)
        .or(forms.last())
        .cloned()
        .unwrap_or_default();
    let mut spans = vec![
        Span::styled(" asudf ", theme.key()),
        Span::styled(dot, dot_style),
        Span::raw(format!(" {state}")),
    ];
    if let Some(message) = status {
        spans.push(Span::raw("  │ "));
        spans.push(Span::styled(
            message.text.clone(),
            if message.error {
                theme.error()
            } else {
                theme.accent()
            },
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(theme.bar()), area);
}

fn draw_hints(app: &App, frame: &mut Canvas, area: Rect) {
    let theme = app.theme;
    let mut spans = Vec::new();
    let mut used = 0;
    for (key, text) in app.keymap.hints(app.scope()) {
        // Whole hints only: one that does not fit is left out, not cut.
        let width = key.chars().count() + text.chars().count() + 1;
        if used + width > area.width as usize {
            break;
        }
        used += width + 2;
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::raw(format!(" {text}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn help_lines(app: &App) -> Vec<Line<'static>> {
    let theme = app.theme;
    let mut lines = vec![
        Line::raw("Record UDFs: write the module, register it (F9), fill the form, run (F5)."),
        Line::raw(format!(
            "{}: the form's kind (record, aggregate, background, query, batch).",
            app.keymap
                .key_for(crate::tui::keymap::Command::Kind)
                .map_or("unbound".to_string(), |k| k.to_string())
        )),
        Line::raw("Printable keys type into the editor and the form; Tab indents in the editor."),
        Line::raw(
            "Change keys in keymap.toml in the asudf config directory (command = \"Ctrl-X\").",
        ),
        Line::styled(
            "Esc, F1 or q closes this help; Up/Down, PageUp/PageDown, Home/End scroll.",
            theme.dim(),
        ),
        Line::raw(""),
    ];
    let mut last: Option<Scope> = None;
    for (scope, keys, text) in app.keymap.help_rows() {
        if last != Some(scope) {
            if last.is_some() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(scope.title(), theme.accent()));
            last = Some(scope);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {keys:<34} "), theme.key()),
            Span::raw(text),
        ]));
    }
    lines
}

/// The help overlay's box on a screen of `area` and its text, wrapped.
fn help_box(app: &App, area: Rect) -> (Rect, Paragraph<'static>) {
    let lines = help_lines(app);
    let rect = centered(
        area,
        76.min(area.width),
        (lines.len() as u16 + 2).min(area.height),
    );
    let text = Paragraph::new(lines).wrap(Wrap { trim: false });
    (rect, text)
}

/// How far the help scrolls on a screen of `area` (until its last line
/// shows at the bottom of the box), and the rows of a page.
pub fn help_scroll(app: &App, area: Rect) -> (u16, u16) {
    let (rect, text) = help_box(app, area);
    let rows = text.line_count(rect.width.saturating_sub(2));
    let page = rect.height.saturating_sub(2);
    (rows.saturating_sub(page as usize) as u16, page.max(1))
}

fn draw_help(app: &App, frame: &mut Canvas, scroll: u16) {
    let area = frame.area();
    let (rect, text) = help_box(app, area);
    let scroll = scroll.min(help_scroll(app, area).0);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        text.scroll((scroll, 0))
            .style(app.theme.base())
            .block(Block::default().borders(Borders::ALL).title(" Help ")),
        rect,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    Rect {
        x: area.x + area.width.saturating_sub(width) / 2,
        y: area.y + area.height.saturating_sub(height) / 2,
        width: width.min(area.width),
        height: height.min(area.height),
    }
}

fn popup(
    frame: &mut Canvas,
    title: &str,
    text: Vec<Line<'static>>,
    width: u16,
    theme: crate::tui::theme::Theme,
) -> Rect {
    let area = frame.area();
    let inner_width = width.min(area.width).saturating_sub(2).max(1) as usize;
    let rows: usize = text
        .iter()
        .map(|l| l.width().div_ceil(inner_width).max(1))
        .sum();
    let rect = centered(area, width.min(area.width), rows as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .style(theme.base())
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(theme.border(true))
                    .title(title.to_string()),
            ),
        rect,
    );
    rect
}

/// A drawn screen as plain text, one line per row, trailing blanks cut: for
/// snapshots and assertions on what a person would read.
pub fn screen_text(buffer: &ratatui::buffer::Buffer) -> String {
    let mut out = String::new();
    for y in 0..buffer.area.height {
        // A non-breaking space shows as a space.
        let line: String = (0..buffer.area.width)
            .map(|x| match buffer[(x, y)].symbol() {
                "\u{a0}" => " ",
                symbol => symbol,
            })
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

//! The Lua editor: our own editing buffer (`buffer`: editing, undo/redo,
//! search) drawn by the console itself, so a keystroke costs the edited line
//! and the visible lines only: highlighting covers visible lines from the
//! per-line cache, with line numbers and error marks.

pub mod buffer;

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::tui::echo::Echo;
use crate::tui::screen::Canvas;
use crossterm::event::KeyEvent;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use crate::lint::{Diagnostic, Severity};
use crate::tui::highlight::LineHighlighter;
use crate::tui::theme::Theme;
use buffer::{Buffer, Change, Move, Op, byte_at, char_width, col_at_width, display_width};

/// Lines highlighted per update at most (35–50 µs each, so under 10 ms):
/// a jump to the end of a big file fills in over updates that follow each
/// other at once, and a key typed meanwhile waits for one of them at most.
const HIGHLIGHT_BUDGET: usize = 200;

/// A marked line (1-based) with the message that marked it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub line: u32,
    pub message: String,
}

pub struct Editor {
    /// The text, cursor and history; read through `lines()` and `cursor()`.
    text: Buffer,
    /// Where Ctrl-S writes; `None` until the buffer has a file.
    pub path: Option<PathBuf>,
    /// What the file at `path` held when the buffer was loaded from it or
    /// last saved to it ([`fingerprint`]); `None` when the buffer only
    /// names it (a module opened from the server), and a file there is
    /// someone else's.
    pub on_disk: Option<String>,
    /// The module name the buffer registers as (`counter.lua`).
    pub module: String,
    /// The version of the text (`Buffer::version`) the file holds; `None`
    /// when no version does (a recovered buffer).
    saved_version: Option<u64>,
    /// Counts changes to the text (loads and edits), so what is derived from
    /// it is worked out again only when it changed.
    pub edits: u64,
    pub scroll_row: usize,
    pub scroll_col: usize,
    /// Rows and columns of text the last layout gave the editor.
    pub view_rows: usize,
    pub view_cols: usize,
    pub highlighter: LineHighlighter,
    pub highlight_on: bool,
    pub marks: Vec<Mark>,
    /// The linter's findings for the buffer, sorted by position.
    pub problems: Vec<Diagnostic>,
}

/// The module name a file registers as: its file name.
pub fn module_name_for(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "module.lua".into());
    if name.ends_with(".lua") {
        name
    } else {
        format!("{name}.lua")
    }
}

/// A file's contents as a SHA-1 (hex): tells whether something else wrote
/// the file since the buffer read or wrote it, timestamps aside, and stays
/// the same from one session to the next (the recovery copy keeps it).
pub fn fingerprint(contents: &[u8]) -> String {
    use sha1::{Digest as _, Sha1};
    hex::encode(Sha1::digest(contents))
}

impl Editor {
    pub fn new(text: &str, path: Option<PathBuf>, module: String, dark: bool) -> Editor {
        let on_disk = path.as_ref().map(|_| fingerprint(text.as_bytes()));
        let text = Buffer::new(text);
        Editor {
            saved_version: Some(text.version()),
            text,
            on_disk,
            path,
            module,
            edits: 0,
            scroll_row: 0,
            scroll_col: 0,
            view_rows: 20,
            view_cols: 60,
            highlighter: LineHighlighter::new(dark),
            highlight_on: true,
            marks: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Replaces the buffer (open a file or a module's source).
    pub fn load(&mut self, text: &str, path: Option<PathBuf>, module: String) {
        self.text = Buffer::new(text);
        self.on_disk = path.as_ref().map(|_| fingerprint(text.as_bytes()));
        self.path = path;
        self.module = module;
        self.saved_version = Some(self.text.version());
        self.edits += 1;
        self.scroll_row = 0;
        self.scroll_col = 0;
        self.marks.clear();
        self.highlighter.invalidate_from(0);
    }

    pub fn lines(&self) -> &[String] {
        self.text.lines()
    }

    /// The text differs from what its file holds.
    pub fn dirty(&self) -> bool {
        self.saved_version != Some(self.text.version())
    }

    /// The text as it is now, for a save: [`mark_saved`](Self::mark_saved)
    /// with this when the file is written.
    pub fn checkpoint(&mut self) -> u64 {
        self.text.checkpoint()
    }

    /// The file now holds `version` of the text.
    pub fn mark_saved(&mut self, version: u64) {
        self.saved_version = Some(version);
    }

    /// No file holds the text (a recovered buffer).
    pub fn mark_unsaved(&mut self) {
        self.saved_version = None;
    }

    /// The buffer as a file: lines joined, ending with a newline.
    pub fn contents(&self) -> String {
        let mut out = self.text.lines().join("\n");
        out.push('\n');
        out
    }

    /// Feeds a key to the buffer; true when the text changed.
    pub fn input(&mut self, key: KeyEvent) -> bool {
        let Some(op) = buffer::op_for(&key) else {
            return false;
        };
        // A page key moves the view by a page as well as the cursor.
        let page = self.view_rows.max(1) as isize;
        match op {
            Op::Move(Move::PageDown, _) => self.scroll_by(page),
            Op::Move(Move::PageUp, _) => self.scroll_by(-page),
            _ => {}
        }
        let change = self.text.apply(op, page as usize);
        self.after(change)
    }

    /// Bracketed paste: the text at the cursor, one undo step.
    pub fn paste(&mut self, text: &str) -> bool {
        let change = self.text.paste(text);
        self.after(change)
    }

    pub fn undo(&mut self) -> bool {
        let change = self.text.undo();
        self.after(change)
    }

    pub fn redo(&mut self) -> bool {
        let change = self.text.redo();
        self.after(change)
    }

    /// After an edit: the highlighter redoes the one line it changed, or
    /// everything from its first row when lines came or went.
    fn after(&mut self, change: Option<Change>) -> bool {
        if let Some(change) = change {
            if change.lines_moved {
                self.highlighter.invalidate_from(change.row);
            } else {
                let line = &self.text.lines()[change.row];
                let (row, col) = self.cursor();
                let cursor = if row == change.row {
                    byte_at(line, col)
                } else {
                    line.len()
                };
                self.highlighter
                    .line_changed(change.row, cursor, line.len());
            }
            self.edits += 1;
            self.marks.clear();
        }
        self.follow_cursor();
        change.is_some()
    }

    /// Searches forward for `pattern`; false when it is not a valid regex or not found.
    pub fn search(&mut self, pattern: &str) -> Result<bool, String> {
        self.text
            .set_search(pattern)
            .map_err(|e| pattern_error(pattern, e))?;
        let found = self.text.search_forward(true);
        self.follow_cursor();
        Ok(found)
    }

    pub fn search_next(&mut self) -> bool {
        let found = self.text.search_forward(false);
        self.follow_cursor();
        found
    }

    /// Moves the cursor to a 1-based line and shows it.
    pub fn goto_line(&mut self, line: u32) {
        self.goto(line, 1);
    }

    /// The cursor: 0-based row and character column.
    pub fn cursor(&self) -> (usize, usize) {
        let at = self.text.cursor();
        (at.row, at.col)
    }

    /// The selected range (0-based rows and character columns), if any.
    pub fn selection(&self) -> Option<((usize, usize), (usize, usize))> {
        let (start, end) = self.text.selection()?;
        Some(((start.row, start.col), (end.row, end.col)))
    }

    /// Moves the cursor to a 1-based line and character column and shows it.
    pub fn goto(&mut self, line: u32, col: u32) {
        let row = line.max(1) as usize - 1;
        let col = col.max(1) as usize - 1;
        self.text.jump(row, col);
        self.follow_cursor();
    }

    /// Moves the cursor to a screen cell inside the text area (mouse click).
    pub fn click(&mut self, row: usize, col: usize) {
        let line = (self.scroll_row + row).min(self.lines().len().saturating_sub(1));
        let index = col_at_width(&self.lines()[line], self.scroll_col + col);
        self.text.jump(line, index);
        self.follow_cursor();
    }

    pub fn scroll_by(&mut self, rows: isize) {
        let max = self.lines().len().saturating_sub(1);
        self.scroll_row = (self.scroll_row as isize + rows).clamp(0, max as isize) as usize;
    }

    /// Scrolls so the cursor is on screen.
    pub fn follow_cursor(&mut self) {
        let (row, col) = self.cursor();
        let rows = self.view_rows.max(1);
        if row < self.scroll_row {
            self.scroll_row = row;
        } else if row >= self.scroll_row + rows {
            self.scroll_row = row + 1 - rows;
        }
        let line = &self.lines()[row];
        let x = display_width(line, col);
        // Columns the cursor's character shows in: a wide one's two (a tab
        // shows a space where the cursor is; past the end, one column).
        let w = match line.chars().nth(col) {
            Some(c) if c != '\t' => char_width(c, x),
            _ => 1,
        };
        let end = x + w;
        let cols = self.view_cols.max(1);
        // Where a line is cut, the edge column shows a mark instead of the
        // text: keep the cursor's character off it, when there is room.
        let room = cols >= w + 2;
        let left = usize::from(room);
        let right = usize::from(room && display_width(line, usize::MAX) > end);
        if x < self.scroll_col + left {
            self.scroll_col = x.saturating_sub(left);
        } else if end + right > self.scroll_col + cols {
            self.scroll_col = (end + right - cols).min(x);
        }
    }

    /// Highlights what the next frame shows (and the lines before it that
    /// the parse state depends on).
    pub fn refresh_highlight(&mut self) {
        if self.highlight_on && !self.highlight_done() {
            let (lines, view) = (self.text.lines(), self.view_lines());
            self.highlighter
                .ensure(lines, view.start, view.end, HIGHLIGHT_BUDGET);
        }
    }

    /// The buffer rows the pane shows (some may be past the end).
    fn view_lines(&self) -> std::ops::Range<usize> {
        self.scroll_row..self.scroll_row + self.view_rows
    }

    /// Highlights the line an edit changed, which a frame showed with its
    /// old colours moved (see [`LineHighlighter::line_changed`]); gives the
    /// lines that now look different.
    pub fn settle_highlight(&mut self) -> Option<std::ops::RangeInclusive<usize>> {
        if !self.highlight_on {
            return None;
        }
        let (lines, view) = (self.text.lines(), self.view_lines());
        self.highlighter
            .settle(lines, view.start, view.end, HIGHLIGHT_BUDGET)
    }

    /// Every visible line is highlighted (or highlighting is off).
    pub fn highlight_done(&self) -> bool {
        let view = self.view_lines();
        let upto = view.end.min(self.lines().len());
        !self.highlight_on || self.highlighter.covers(view.start.min(upto), upto)
    }

    /// Highlighting is behind the view and can go on now (the syntax is
    /// loaded), an update at a time.
    pub fn highlight_behind(&self) -> bool {
        !self.highlight_done() && crate::tui::highlight::loaded()
    }

    pub fn gutter_width(&self) -> usize {
        digits(self.lines().len()) + 2
    }

    /// Text rows in the pane's inner area (one row less when a mark's or
    /// the linter's message shows).
    pub fn text_rows(&self, inner_height: u16) -> usize {
        (inner_height as usize).saturating_sub(usize::from(self.shows_message()))
    }

    /// The pane's last row shows a mark's or the linter's message.
    pub fn shows_message(&self) -> bool {
        !self.marks.is_empty() || !self.problems.is_empty()
    }

    /// What an edit leaves alone when it changes only the cursor's line on
    /// screen: the view, the line count, the cursor's row, the title, and no
    /// selection or search marks on other lines.
    pub fn view_key(&self) -> impl PartialEq + use<> {
        (
            (
                self.scroll_row,
                self.scroll_col,
                self.view_rows,
                self.view_cols,
            ),
            (self.lines().len(), self.cursor().0, self.dirty()),
            self.text.selection().is_some() || self.text.search_pattern().is_some(),
        )
    }

    /// Where buffer row `row`'s text is on screen, if it is shown.
    pub fn row_area(&self, area: Rect, row: usize) -> Option<Rect> {
        let inner = Block::default().borders(Borders::ALL).inner(area);
        let screen_row = row.checked_sub(self.scroll_row)?;
        (screen_row < self.text_rows(inner.height))
            .then(|| Rect::new(inner.x, inner.y + screen_row as u16, inner.width, 1))
    }

    /// Where a character typed now shows ahead of its frame ([`Echo`]):
    /// inserted at the cursor, on a row of single-column text that keeps
    /// the cursor in view (no scroll, no selection replaced).
    pub fn echo(&self, area: Rect) -> Option<Echo> {
        if self.text.selection().is_some() {
            return None;
        }
        let (row, col) = self.cursor();
        let at = self.row_area(area, row)?;
        let line = &self.lines()[row];
        // Then a column per byte.
        if !line.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return None;
        }
        let gutter = self.gutter_width();
        let text_cols = (at.width as usize).checked_sub(gutter)?;
        let x = col.checked_sub(self.scroll_col)?;
        // Not over a mark where the line is cut on the left or right.
        let cut = line.len() > self.scroll_col + text_cols;
        let room = text_cols - usize::from(cut);
        if (self.scroll_col > 0 && x == 0) || x + 2 >= room {
            return None;
        }
        Some(Echo {
            at: Position::new(at.x + (gutter + x) as u16, at.y),
            end: at.x + (gutter + room) as u16,
            row,
        })
    }

    /// Draws the pane; with `only_row`, just that buffer row's text (the
    /// rest of the pane as it was).
    pub fn draw(
        &self,
        frame: &mut Canvas,
        area: Rect,
        theme: Theme,
        focused: bool,
        only_row: Option<usize>,
    ) {
        let name = match &self.path {
            Some(path) => path.display().to_string(),
            None => format!("{} (not saved)", self.module),
        };
        let title = format!(
            " 2 Editor: {name}{} ",
            if self.dirty() { " [+]" } else { "" }
        );
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(title);
        let inner = block.inner(area);
        if only_row.is_none() {
            frame.render_widget(block, area);
        }
        if inner.height == 0 || inner.width == 0 {
            return;
        }
        let text_rows = self.text_rows(inner.height);
        let gutter = self.gutter_width();
        let text_cols = (inner.width as usize).saturating_sub(gutter);
        let (cursor_row, cursor_col) = self.cursor();
        let lines = self.lines();
        let search = self.text.search_pattern();
        let selection = self.text.selection();
        let buf = frame.buffer_mut();
        let mut cells: Vec<(char, Style)> = Vec::with_capacity(text_cols);
        for screen_row in 0..text_rows {
            let row = self.scroll_row + screen_row;
            if only_row.is_some_and(|only| only != row) {
                continue;
            }
            let y = inner.y + screen_row as u16;
            if row >= lines.len() {
                buf.set_stringn(inner.x, y, "~", inner.width as usize, theme.dim());
                continue;
            }
            let marked = self.marks.iter().any(|m| m.line as usize == row + 1);
            let problem = self.problem_on(row + 1);
            let severity_style = |d: &Diagnostic| match d.severity {
                Severity::Error => theme.error(),
                Severity::Warning => theme.warn(),
            };
            let number_style = if marked {
                theme.error()
            } else if let Some(d) = problem {
                severity_style(d)
            } else if row == cursor_row {
                theme.accent()
            } else {
                theme.dim()
            };
            // A marked line's style lies under all of its text.
            let row_style = if marked {
                theme.error_line()
            } else {
                Style::default()
            };
            // Letters, not only colours, so NO_COLOR still tells them apart.
            let sign = match (marked, problem.map(|d| d.severity)) {
                (true, _) => "●",
                (false, Some(Severity::Error)) => "E",
                (false, Some(Severity::Warning)) => "W",
                (false, None) => " ",
            };
            let number = format!("{sign}{:>width$} ", row + 1, width = gutter - 2);
            let (mut x, _) = buf.set_stringn(
                inner.x,
                y,
                number,
                inner.width as usize,
                row_style.patch(number_style),
            );
            let line = &lines[row];
            let base: &[(Style, Range<usize>)] =
                match (self.highlight_on, self.highlighter.line(row)) {
                    (true, Some(cached)) if theme.colored() => cached,
                    _ => &[],
                };
            let mut overlays: Vec<(Style, Range<usize>)> = Vec::new();
            if let Some(re) = search {
                // The current match is the one the cursor is on the start of.
                let at = (row == cursor_row).then(|| byte_at(line, cursor_col));
                for m in re.find_iter(line) {
                    let style = if at == Some(m.start()) {
                        theme.current_match()
                    } else {
                        theme.selected()
                    };
                    overlays.push((style, m.range()));
                }
            }
            // Reversed, so the selection shows without colours too.
            if let Some((start, end)) = selection
                && (start.row..=end.row).contains(&row)
            {
                let from = if row == start.row {
                    byte_at(line, start.col)
                } else {
                    0
                };
                let to = if row == end.row {
                    byte_at(line, end.col)
                } else {
                    line.len()
                };
                overlays.push((Style::new().add_modifier(Modifier::REVERSED), from..to));
            }
            let styles = LineStyles {
                base,
                overlays: &overlays,
            };
            visible_cells(
                &mut cells,
                line,
                styles,
                self.scroll_col,
                text_cols,
                theme.accent(),
            );
            let used = cells.len();
            // Straight into the buffer: a keystroke redraws every visible
            // line, and building spans for a paragraph cost more than this.
            for &(c, style) in &cells {
                let cell = &mut buf[(x, y)];
                if c == WIDE_REST {
                    cell.reset();
                } else if unicode_width::UnicodeWidthChar::width(c) == Some(0) {
                    // A combining mark has a column of its own here; alone
                    // in its cell, the terminal would join it to the cell
                    // before and draw the rest of the row a column short.
                    // On a dotted circle, the usual way to show one apart.
                    let symbol: String = ['\u{25CC}', c].into_iter().collect();
                    cell.set_symbol(&symbol).set_style(row_style.patch(style));
                } else {
                    cell.set_char(c).set_style(row_style.patch(style));
                }
                x += 1;
            }
            // The finding's message after the line's text, where it fits.
            if let Some(d) = problem
                && !marked
                && used + 4 < text_cols
            {
                let room = text_cols - used - 2;
                let message: String = d.message.chars().take(room).collect();
                buf.set_stringn(x + 2, y, message, room, severity_style(d));
            }
        }
        let message_y = inner.y + text_rows as u16;
        if message_y < inner.bottom() && only_row.is_none() {
            let message = if let Some(mark) = self.marks.first() {
                Some(Line::from(Span::styled(
                    format!("line {}: {}", mark.line, mark.message),
                    theme.error(),
                )))
            } else if !self.problems.is_empty() {
                Some(self.problem_line(cursor_row + 1, theme))
            } else {
                None
            };
            if let Some(message) = message {
                buf.set_line(inner.x, message_y, &message, inner.width);
            }
        }
        if focused && cursor_row >= self.scroll_row && cursor_row < self.scroll_row + text_rows {
            let x = display_width(&lines[cursor_row], cursor_col).saturating_sub(self.scroll_col);
            if x < text_cols {
                frame.set_cursor_position(Position::new(
                    inner.x + (gutter + x) as u16,
                    inner.y + (cursor_row - self.scroll_row) as u16,
                ));
            }
        }
    }
}

impl Editor {
    /// The most severe finding on a 1-based line.
    fn problem_on(&self, line: usize) -> Option<&Diagnostic> {
        let from = self.problems.partition_point(|d| (d.line as usize) < line);
        self.problems[from..]
            .iter()
            .take_while(|d| d.line as usize == line)
            .min_by_key(|d| d.severity)
    }

    /// The message row: the finding on the cursor's line, or the counts.
    fn problem_line(&self, cursor_line: usize, theme: Theme) -> Line<'static> {
        if let Some(d) = self.problem_on(cursor_line) {
            let style = match d.severity {
                Severity::Error => theme.error(),
                Severity::Warning => theme.warn(),
            };
            return Line::from(Span::styled(
                format!(
                    "{} {}:{}: {} [{}]",
                    d.severity.as_str(),
                    d.line,
                    d.col,
                    d.message,
                    d.rule
                ),
                style,
            ));
        }
        // The module's own errors, as F9 counts them; the form's function
        // missing from the module is named apart: F5 meets it, F9 does not.
        let errors = crate::tui::diagnostics::errors(&self.problems);
        let warnings = self
            .problems
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count();
        let form = self.problems.iter().any(|d| d.is_missing_function());
        let style = if errors > 0 || form {
            theme.error()
        } else {
            theme.warn()
        };
        let mut text = format!(
            "lint: {}, {}",
            crate::text::plural(errors, "error", "errors"),
            crate::text::plural(warnings, "warning", "warnings")
        );
        if form {
            text.push_str("; the form's function is not in the module");
        }
        Line::from(Span::styled(text, style))
    }
}

fn digits(n: usize) -> usize {
    n.max(1).ilog10() as usize + 1
}

/// The second column of a wide character (never shown: control characters
/// are replaced).
const WIDE_REST: char = '\0';

/// Marks where a line goes on past the pane's left or right edge.
const CUT_LEFT: char = '‹';
const CUT_RIGHT: char = '›';

/// A line's styles by byte range: the highlighter's (in order, not
/// overlapping), then search matches and the selection over them (later
/// ones win).
#[derive(Clone, Copy, Default)]
struct LineStyles<'a> {
    base: &'a [(Style, Range<usize>)],
    overlays: &'a [(Style, Range<usize>)],
}

/// The cells of `line` between columns `skip` and `skip + cols`, styled by
/// `styles`, tabs expanded and control characters shown as `�`; where the
/// line goes on past an edge, the edge column shows a mark in `mark` style
/// instead. Written into `cells`, one per column.
fn visible_cells(
    cells: &mut Vec<(char, Style)>,
    line: &str,
    styles: LineStyles,
    skip: usize,
    cols: usize,
    mark: Style,
) {
    cells.clear();
    let mut width = 0;
    let mut cut_right = false;
    // The base range at or after the current byte: one pass over the line.
    let mut next = 0;
    for (byte, c) in line.char_indices() {
        if width >= skip + cols {
            cut_right = true;
            break;
        }
        let w = char_width(c, width);
        let start = width;
        width += w;
        if width <= skip {
            continue;
        }
        while styles.base.get(next).is_some_and(|(_, r)| r.end <= byte) {
            next += 1;
        }
        let style = styles
            .overlays
            .iter()
            .rev()
            .chain(styles.base.get(next))
            .find(|(_, r)| r.contains(&byte))
            .map(|(s, _)| *s)
            .unwrap_or_default();
        let shown = match c {
            '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        };
        let visible = width.min(skip + cols) - start.max(skip);
        for column in 0..visible {
            // A tab is spaces; a wide character's second column is its rest.
            let cell = if column == 0 || c == '\t' {
                shown
            } else {
                WIDE_REST
            };
            cells.push((cell, style));
        }
        cut_right |= width > skip + cols;
    }
    if cols > 0 {
        if cut_right && let Some(last) = cells.len().checked_sub(1) {
            // A wide character's first column would cover a mark on its
            // rest: a space instead.
            if cells[last].0 == WIDE_REST {
                cells[last - 1].0 = ' ';
            }
            cells[last] = (CUT_RIGHT, mark);
        }
        if skip > 0 && !line.is_empty() {
            match cells.first_mut() {
                Some(first) => *first = (CUT_LEFT, mark),
                None => cells.push((CUT_LEFT, mark)),
            }
            // The rest of a wide character the mark took the place of.
            if let Some(rest) = cells.get_mut(1).filter(|(c, _)| *c == WIDE_REST) {
                rest.0 = ' ';
            }
        }
    }
}

/// A pattern the regex crate refused, on one line with the column of the
/// problem: its own message draws the pattern and a caret over lines.
fn pattern_error(pattern: &str, e: regex::Error) -> String {
    let syntax =
        |at: usize, what: &dyn std::fmt::Display| format!("bad pattern at column {at}: {what}");
    match regex_syntax::Parser::new().parse(pattern) {
        Err(regex_syntax::Error::Parse(e)) => syntax(e.span().start.column, e.kind()),
        Err(regex_syntax::Error::Translate(e)) => syntax(e.span().start.column, e.kind()),
        // Too big to compile, not a mistake in the text.
        _ => format!("bad pattern: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::screen::Screen;
    use crate::tui::theme::ThemeKind;
    use crossterm::event::{KeyCode, KeyModifiers};

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    /// `editor` drawn whole, focused, on a screen of `size`: its cells and
    /// where the cursor shows.
    fn drawn(
        editor: &Editor,
        (width, height): (u16, u16),
        theme: ThemeKind,
    ) -> (ratatui::buffer::Buffer, Option<Position>) {
        let mut screen = Screen::new(ratatui::backend::TestBackend::new(width, height)).unwrap();
        let mut cursor = None;
        screen
            .draw(|c| {
                editor.draw(c, c.area(), Theme::new(theme), true, None);
                cursor = c.cursor();
            })
            .unwrap();
        (screen.backend().buffer().clone(), cursor)
    }

    #[test]
    fn typing_marks_dirty_and_undo_restores() {
        let mut editor = Editor::new("a\nb\n", None, "m.lua".into(), true);
        assert_eq!(editor.contents(), "a\nb\n");
        editor.input(key(KeyCode::Char('x')));
        assert!(editor.dirty());
        assert_eq!(editor.contents(), "xa\nb\n");
        editor.undo();
        assert_eq!(editor.contents(), "a\nb\n");
        editor.redo();
        assert_eq!(editor.contents(), "xa\nb\n");
    }

    #[test]
    fn a_bad_search_pattern_says_its_column_on_one_line() {
        let mut editor = Editor::new("a\n", None, "m.lua".into(), true);
        assert_eq!(
            editor.search("(["),
            Err("bad pattern at column 2: unclosed character class".to_string())
        );
        assert_eq!(
            editor.search("aé)"),
            Err("bad pattern at column 3: unopened group".to_string())
        );
        assert_eq!(editor.search("a"), Ok(true));
    }

    #[test]
    fn cursor_stays_visible_and_tabs_expand() {
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let mut editor = Editor::new(&text, None, "m.lua".into(), true);
        editor.view_rows = 10;
        editor.goto_line(50);
        assert!(editor.scroll_row <= 49 && 49 < editor.scroll_row + 10);
        assert_eq!(display_width("\tab", 1), 4);
        let spans = runs("\tab", LineStyles::default(), 0, 10, Style::default());
        assert_eq!(spans[0].0, "    ab");
    }

    /// The visible cells of a line as runs of one style.
    fn runs(
        line: &str,
        styles: LineStyles,
        skip: usize,
        cols: usize,
        mark: Style,
    ) -> Vec<(String, Style)> {
        let mut cells = Vec::new();
        visible_cells(&mut cells, line, styles, skip, cols, mark);
        let mut runs: Vec<(String, Style)> = Vec::new();
        for (c, style) in cells {
            match runs.last_mut() {
                Some((text, last)) if *last == style => text.push(c),
                _ => runs.push((c.to_string(), style)),
            }
        }
        runs
    }

    fn shown(line: &str, skip: usize, cols: usize) -> String {
        let mark = Style::default().fg(ratatui::style::Color::Yellow);
        let spans = runs(line, LineStyles::default(), skip, cols, mark);
        for (text, style) in &spans {
            let marks = text.contains([CUT_LEFT, CUT_RIGHT]);
            assert_eq!(marks, *style == mark, "{text:?}");
        }
        spans.iter().map(|(text, _)| text.as_str()).collect()
    }

    #[test]
    fn matches_and_the_selection_show_over_the_highlighting() {
        use ratatui::style::Color;
        let style = |c: Color| Style::default().fg(c);
        let base = [(style(Color::Red), 0..2), (style(Color::Green), 2..7)];
        let overlays = [(style(Color::Blue), 3..4)];
        let styles = LineStyles {
            base: &base,
            overlays: &overlays,
        };
        let spans = runs("abcdéf", styles, 1, 10, style(Color::Yellow));
        let got: Vec<(&str, Option<Color>)> = spans
            .iter()
            .map(|(text, style)| (text.as_str(), style.fg))
            .collect();
        assert_eq!(
            got,
            [
                ("‹", Some(Color::Yellow)),
                ("c", Some(Color::Green)),
                ("d", Some(Color::Blue)),
                ("éf", Some(Color::Green)),
            ]
        );
    }

    #[test]
    fn wide_characters_take_two_columns_and_control_characters_show_as_replacements() {
        let mut editor = Editor::new("a漢b\x1bc\n", None, "m.lua".into(), true);
        editor.highlight_on = false;
        editor.goto(1, 3);
        let (buffer, cursor) = drawn(&editor, (20, 4), ThemeKind::Dark);
        let row: String = (0..20).map(|x| buffer[(x, 1)].symbol()).collect();
        assert!(row.contains("a漢 b\u{FFFD}c"), "{row:?}");
        // After `a漢`: the cursor sits past both columns of the wide one.
        let a = row.chars().position(|c| c == 'a').unwrap() as u16;
        assert_eq!(cursor.map(|p| p.x), Some(a + 3));
    }

    #[test]
    fn a_combining_mark_shows_in_its_own_column_on_a_dotted_circle() {
        let mut editor = Editor::new("e\u{301}!x\n", None, "m.lua".into(), true);
        editor.highlight_on = false;
        let (buffer, _) = drawn(&editor, (20, 4), ThemeKind::Dark);
        let row: Vec<&str> = (0..20).map(|x| buffer[(x, 1)].symbol()).collect();
        let e = row.iter().position(|s| *s == "e").unwrap();
        // Every cell one column wide, so the border stays in the last one.
        assert_eq!(row[e..e + 3], ["e", "\u{25CC}\u{301}", "!"], "{row:?}");
        assert_eq!(row[19], "│", "{row:?}");
    }

    #[test]
    fn a_line_cut_at_an_edge_is_marked_there() {
        assert_eq!(shown("abcdef", 0, 6), "abcdef", "fits: no mark");
        assert_eq!(shown("abcdefgh", 0, 6), "abcde›");
        assert_eq!(shown("abcdefgh", 2, 6), "‹defgh");
        assert_eq!(shown("abcdefghijk", 2, 6), "‹defg›");
        assert_eq!(shown("abc", 5, 6), "‹", "all of it left of the pane");
        assert_eq!(shown("", 5, 6), "");
        // A tab across the edge is cut, and marked.
        assert_eq!(shown("ab\tx", 0, 3), "ab›");
        assert_eq!(shown("\tab", 2, 10), "‹ ab");
        // Wide characters filling the pane to its edge: the mark shows in
        // place of the last one's second column, its first a space.
        let rest = WIDE_REST.to_string();
        assert_eq!(shown("a漢字x", 0, 5), format!("a漢{rest} ›"));
        assert_eq!(shown("a漢字", 0, 5), format!("a漢{rest}字{rest}"), "fits");
        assert_eq!(shown("漢字x", 2, 4), "‹ x");
        assert_eq!(shown("a漢字x", 1, 4), "‹  ›", "cut on both sides");
    }

    #[test]
    fn the_cursor_never_sits_on_a_cut_mark() {
        // Letters with a wide character now and then, on one long line.
        let line: String = (0..300u32)
            .map(|i| match i % 7 {
                3 => '漢',
                _ => char::from(b'a' + (i % 26) as u8),
            })
            .collect();
        let mut editor = Editor::new(&line, None, "m.lua".into(), true);
        editor.highlight_on = false;
        // 20 columns less the borders and the gutter (`1 `, a space).
        editor.view_cols = 15;
        // The cell under the cursor shows the cursor's character.
        let check = |editor: &Editor| {
            let (buffer, cursor) = drawn(editor, (20, 4), ThemeKind::Dark);
            let at = cursor.expect("the cursor shows");
            let col = editor.cursor().1;
            let want = line.chars().nth(col).map_or(" ".into(), String::from);
            let cell = buffer[(at.x, at.y)].symbol().to_string();
            assert_eq!(cell, want, "cursor at column {col}");
        };
        for _ in 0..300 {
            editor.input(key(KeyCode::Right));
            check(&editor);
        }
        for _ in 0..300 {
            editor.input(key(KeyCode::Left));
            check(&editor);
        }
    }

    /// Where the editor says a typed character shows is where the frame
    /// after the key shows it: at the cursor, the text after it moved a
    /// column right, the cursor after it. Tried at every column of short
    /// and cut lines, scrolled or not.
    #[test]
    fn a_typed_character_shows_where_its_echo_says() {
        let (width, height) = (24, 5);
        let long = "local total_amount = rec['amount'] or 0";
        let mut echoed = 0;
        for text in ["", "x = 1", long] {
            for col in 0..=text.len() {
                let mut editor = Editor::new(text, None, "m.lua".into(), true);
                editor.view_rows = 3;
                editor.view_cols = width as usize - 2 - editor.gutter_width();
                editor.goto(1, col as u32 + 1);
                let (before, cursor) = drawn(&editor, (width, height), ThemeKind::Dark);
                let Some(echo) = editor.echo(Rect::new(0, 0, width, height)) else {
                    continue;
                };
                echoed += 1;
                assert_eq!(cursor, Some(echo.at), "{text:?} at {col}");
                editor.input(key(KeyCode::Char('Z')));
                let (after, cursor) = drawn(&editor, (width, height), ThemeKind::Dark);
                let cells = |b: &ratatui::buffer::Buffer, from: u16, to: u16| -> String {
                    (from..to).map(|x| b[(x, echo.at.y)].symbol()).collect()
                };
                let moved = cells(&before, echo.at.x, echo.end - 1);
                assert_eq!(
                    cells(&after, echo.at.x, echo.end),
                    format!("Z{moved}"),
                    "{text:?} at {col}"
                );
                assert_eq!(cursor, Some(Position::new(echo.at.x + 1, echo.at.y)));
            }
        }
        assert!(echoed > 20, "most places echo: {echoed}");
    }

    #[test]
    fn no_echo_over_a_selection_or_on_a_line_of_wide_text_or_tabs() {
        let echo = |text: &str, select: bool| {
            let mut editor = Editor::new(text, None, "m.lua".into(), true);
            editor.view_cols = 24;
            if select {
                editor.input(KeyEvent::new(KeyCode::Right, KeyModifiers::SHIFT));
            }
            editor.echo(Rect::new(0, 0, 30, 5))
        };
        assert!(echo("abc", false).is_some());
        assert_eq!(echo("abc", true), None);
        assert_eq!(echo("a漢", false), None);
        assert_eq!(echo("a\tb", false), None);
        assert_eq!(echo("a\u{1}b", false), None);
    }

    #[test]
    fn page_keys_move_the_view_and_the_cursor_by_a_page() {
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let mut editor = Editor::new(&text, None, "m.lua".into(), true);
        editor.view_rows = 10;
        editor.goto(3, 4);
        assert!(!editor.input(key(KeyCode::PageDown)));
        assert_eq!(editor.cursor(), (12, 3));
        assert_eq!(editor.scroll_row, 10);
        editor.input(key(KeyCode::PageUp));
        assert_eq!(editor.cursor(), (2, 3));
        assert_eq!(editor.scroll_row, 0);
        assert!(!editor.dirty(), "moves do not touch the text");
    }

    #[test]
    fn paste_is_one_step_and_marks_dirty() {
        let mut editor = Editor::new("ab\n", None, "m.lua".into(), true);
        editor.goto(1, 2);
        assert!(editor.paste("x\r\ny"));
        assert_eq!(editor.contents(), "ax\nyb\n");
        assert_eq!(editor.cursor(), (1, 1));
        assert!(editor.dirty());
        assert!(editor.undo());
        assert_eq!(editor.contents(), "ab\n");
        assert_eq!(editor.cursor(), (0, 1));
        assert!(!editor.undo(), "nothing more to undo");
    }

    #[test]
    fn the_selection_is_drawn_reversed() {
        use crossterm::event::KeyModifiers as M;
        let mut editor = Editor::new("abcdef\n", None, "m.lua".into(), true);
        editor.highlight_on = false;
        editor.goto(1, 2);
        editor.input(KeyEvent::new(KeyCode::Right, M::SHIFT));
        editor.input(KeyEvent::new(KeyCode::Right, M::SHIFT));
        assert_eq!(editor.selection(), Some(((0, 1), (0, 3))));
        let (buffer, _) = drawn(&editor, (30, 5), ThemeKind::Dark);
        let row: Vec<(String, bool)> = (1..29)
            .map(|x| {
                let cell = &buffer[(x, 1)];
                let reversed = cell.modifier.contains(Modifier::REVERSED);
                (cell.symbol().to_string(), reversed)
            })
            .filter(|(_, reversed)| *reversed)
            .collect();
        assert_eq!(row, [("b".to_string(), true), ("c".to_string(), true)]);
    }

    #[test]
    fn without_colours_the_current_match_is_bold_and_the_others_only_reversed() {
        let mut editor = Editor::new("ab ab\nab\n", None, "m.lua".into(), true);
        editor.highlight_on = false;
        // Each matched cell of the two rows: its symbol, and whether it is
        // reversed and bold.
        let matched = |editor: &Editor| {
            let (buffer, _) = drawn(editor, (20, 5), ThemeKind::Plain);
            let mut cells = vec![];
            for y in 1..3 {
                for x in 1..19 {
                    let cell = &buffer[(x, y)];
                    if cell.modifier.contains(Modifier::REVERSED) {
                        let bold = cell.modifier.contains(Modifier::BOLD);
                        cells.push((cell.symbol().to_string(), bold));
                    }
                }
            }
            cells
        };
        let cells = |bold: [bool; 3]| -> Vec<(String, bool)> {
            bold.iter()
                .flat_map(|&b| [("a".to_string(), b), ("b".to_string(), b)])
                .collect()
        };
        assert_eq!(editor.search("ab"), Ok(true));
        assert_eq!(matched(&editor), cells([true, false, false]));
        editor.search_next();
        assert_eq!(matched(&editor), cells([false, true, false]));
        editor.search_next();
        assert_eq!(matched(&editor), cells([false, false, true]));
    }

    #[test]
    fn module_name_comes_from_the_file_name() {
        assert_eq!(module_name_for(Path::new("/x/counter.lua")), "counter.lua");
        assert_eq!(module_name_for(Path::new("tools")), "tools.lua");
    }
}

//! The editor's text: lines, a cursor, a selection, undo/redo, a yank buffer
//! and regex search. Every operation costs in proportion to the lines it
//! touches, never to the buffer's length.
//!
//! The store is a `Vec<String>`, one string per line: the highlighter, the
//! linter and the modules badge read it as `&[String]` for free, an edit
//! inside a line touches that line only, and a line that comes or goes
//! moves the other lines' string headers (pointers), not their text.

use std::collections::VecDeque;
use std::sync::LazyLock;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use regex::Regex;

use crate::tui::keymap::Chord;

/// Tab stops every this many display columns.
pub const TAB_WIDTH: usize = 4;
/// Undo steps kept; older ones are dropped.
const HISTORY: usize = 500;

/// A place in the text: 0-based row and character (not byte) column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub row: usize,
    pub col: usize,
}

impl Pos {
    pub fn new(row: usize, col: usize) -> Pos {
        Pos { row, col }
    }
}

/// What an edit touched, for the highlighter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The first row whose text changed.
    pub row: usize,
    /// Lines came or went: every row from `row` on may differ.
    pub lines_moved: bool,
}

/// A cursor move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Left,
    Right,
    Up,
    Down,
    Home,
    End,
    Top,
    Bottom,
    WordForward,
    WordBack,
    ParagraphForward,
    ParagraphBack,
    PageUp,
    PageDown,
}

/// What a key asks of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Char(char),
    Newline,
    Tab,
    Backspace,
    Delete,
    DeleteWordBack,
    DeleteWordForward,
    Cut,
    Copy,
    Yank,
    /// A move; `true` extends the selection (Shift).
    Move(Move, bool),
}

/// The editing keys (the usual ones and emacs's), with what the help says
/// of them: `op_for` looks keys up here, so the help lists what they do.
/// Shift with a move selects; keys the console's keymap binds never get
/// here (undo and redo are the keymap's).
pub const KEYS: &[(&[&str], Op, &str)] = &[
    (&["Enter", "Ctrl-M"], Op::Newline, "new line"),
    (&["Tab"], Op::Tab, "indent"),
    (
        &["Backspace", "Ctrl-H"],
        Op::Backspace,
        "delete before the cursor",
    ),
    (&["Delete", "Ctrl-D"], Op::Delete, "delete at the cursor"),
    (
        &["Ctrl-W", "Alt-Backspace", "Alt-H"],
        Op::DeleteWordBack,
        "delete the word before the cursor (Alt-Y pastes it)",
    ),
    (
        &["Alt-D", "Alt-Delete"],
        Op::DeleteWordForward,
        "delete the word after the cursor (Alt-Y pastes it)",
    ),
    (&["Ctrl-X"], Op::Cut, "cut the selection"),
    (&["Alt-W"], Op::Copy, "copy the selection"),
    (
        &["Alt-Y"],
        Op::Yank,
        "paste what was cut, copied or deleted by word (words deleted one after another, together)",
    ),
    (&["Up", "Ctrl-P"], Op::Move(Move::Up, false), "line up"),
    (
        &["Down", "Ctrl-N"],
        Op::Move(Move::Down, false),
        "line down",
    ),
    (
        &["Left", "Ctrl-B"],
        Op::Move(Move::Left, false),
        "character left",
    ),
    (
        &["Right", "Ctrl-F"],
        Op::Move(Move::Right, false),
        "character right",
    ),
    (
        &["Ctrl-Left", "Alt-B"],
        Op::Move(Move::WordBack, false),
        "word back",
    ),
    (
        &["Ctrl-Right", "Alt-F"],
        Op::Move(Move::WordForward, false),
        "word forward",
    ),
    (
        &["Home", "Ctrl-A", "Ctrl-Alt-Left", "Ctrl-Alt-B"],
        Op::Move(Move::Home, false),
        "start of the line",
    ),
    (
        &["End", "Ctrl-E", "Ctrl-Alt-Right", "Ctrl-Alt-F"],
        Op::Move(Move::End, false),
        "end of the line",
    ),
    (
        &["Ctrl-Up", "Alt-[", "Alt-P"],
        Op::Move(Move::ParagraphBack, false),
        "paragraph back",
    ),
    (
        &["Ctrl-Down", "Alt-]", "Alt-N"],
        Op::Move(Move::ParagraphForward, false),
        "paragraph forward",
    ),
    (
        &["PageUp", "Alt-V"],
        Op::Move(Move::PageUp, false),
        "page up",
    ),
    (
        &["PageDown", "Ctrl-V"],
        Op::Move(Move::PageDown, false),
        "page down",
    ),
    (
        &["Ctrl-Home", "Alt-<", "Ctrl-Alt-Up", "Ctrl-Alt-P"],
        Op::Move(Move::Top, false),
        "top of the buffer",
    ),
    (
        &["Ctrl-End", "Alt->", "Ctrl-Alt-Down", "Ctrl-Alt-N"],
        Op::Move(Move::Bottom, false),
        "bottom of the buffer",
    ),
];

/// A key as `KEYS` is looked up: Shift apart (with a move it selects; on
/// another key, Shift-Enter say, the plain key), a letter with a modifier
/// in lower case, Shift-Tab as Tab. Every other modifier counts: a chord
/// the table lacks (Alt-Home, Ctrl-PageDown, Super-C) is no editing key.
pub fn table_chord(code: KeyCode, mods: KeyModifiers) -> Chord {
    let mods = mods - KeyModifiers::SHIFT;
    let code = match code {
        KeyCode::Char(c) if !mods.is_empty() => KeyCode::Char(c.to_ascii_lowercase()),
        KeyCode::BackTab => KeyCode::Tab,
        code => code,
    };
    Chord { code, mods }
}

/// `KEYS` parsed once, for the lookup on every key.
static TABLE: LazyLock<Vec<(Chord, Op)>> = LazyLock::new(|| {
    let mut table = Vec::new();
    for (names, op, _) in KEYS {
        for name in *names {
            let chord = Chord::parse(name).expect("editing keys parse");
            table.push((table_chord(chord.code, chord.mods), *op));
        }
    }
    table
});

/// The editing operation of a key, from `KEYS`; a character typed with no
/// modifier but Shift is itself.
pub fn op_for(key: &KeyEvent) -> Option<Op> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let chord = table_chord(key.code, key.modifiers);
    let shift = match key.code {
        KeyCode::Char(c) if chord.mods.is_empty() => return Some(Op::Char(c)),
        // With Ctrl or Alt, a letter may come upper case when Shift is
        // held; Shift on a symbol ('<') is part of typing it.
        KeyCode::Char(c) => {
            c.is_ascii_alphabetic()
                && (key.modifiers.contains(KeyModifiers::SHIFT) || c.is_ascii_uppercase())
        }
        _ => key.modifiers.contains(KeyModifiers::SHIFT),
    };
    let (_, op) = TABLE.iter().find(|(c, _)| *c == chord)?;
    Some(match *op {
        Op::Move(m, _) => Op::Move(m, shift),
        op => op,
    })
}

/// One undo step: at `at`, `removed` was replaced by `inserted`; the
/// cursor was at `before` and went to `after`.
#[derive(Debug, Clone)]
struct Step {
    at: Pos,
    removed: String,
    inserted: String,
    before: Pos,
    after: Pos,
    /// Names the text as this step leaves it (see [`Buffer::version`]).
    id: u64,
}

impl Step {
    fn change(&self) -> Change {
        Change {
            row: self.at.row,
            lines_moved: self.removed.contains('\n') || self.inserted.contains('\n'),
        }
    }
}

/// `step` is the next character of the run `last` typed: right after it,
/// on the same word (a space after a word starts a new step, so undo goes
/// word by word).
fn continues(last: &Step, step: &Step) -> bool {
    let space = |s: &str| s.starts_with(char::is_whitespace);
    last.removed.is_empty()
        && step.removed.is_empty()
        && last.after == step.at
        && (!space(&step.inserted) || last.inserted.ends_with(char::is_whitespace))
}

#[derive(Debug, Default)]
struct History {
    steps: VecDeque<Step>,
    /// Steps applied (the rest were undone and can be redone).
    done: usize,
    /// The last step is a run of typed characters that the next one joins.
    typing: bool,
    /// The id of the text before the first step kept.
    base: u64,
    /// The id the next state of the text gets; ids are never reused.
    next_id: u64,
}

impl History {
    fn record(&mut self, mut step: Step, typing: bool) {
        self.steps.truncate(self.done);
        self.next_id += 1;
        if typing
            && self.typing
            && let Some(last) = self.steps.back_mut()
            && continues(last, &step)
        {
            last.inserted.push_str(&step.inserted);
            last.after = step.after;
            last.id = self.next_id;
            return;
        }
        step.id = self.next_id;
        self.steps.push_back(step);
        if self.steps.len() > HISTORY
            && let Some(first) = self.steps.pop_front()
        {
            self.base = first.id;
        }
        self.done = self.steps.len();
        self.typing = typing;
    }

    fn version(&self) -> u64 {
        match self.done.checked_sub(1) {
            Some(last) => self.steps[last].id,
            None => self.base,
        }
    }
}

pub struct Buffer {
    lines: Vec<String>,
    cursor: Pos,
    /// Where the selection started; it runs to the cursor.
    anchor: Option<Pos>,
    /// The display column Up and Down aim for across shorter lines.
    goal: Option<usize>,
    history: History,
    /// The last cut, copied or word-deleted text.
    yank: String,
    /// The text's version and the cursor right after a word deletion: a
    /// word deletion made from there (no other key between) joins it in
    /// `yank`, as emacs kills do, so a yank brings all of them back.
    kill_end: Option<(u64, Pos)>,
    search: Option<Regex>,
}

impl Buffer {
    /// A buffer holding `text`, cursor at the start. A final newline does
    /// not make an extra empty line (the editor writes one back on save).
    pub fn new(text: &str) -> Buffer {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        Buffer {
            lines,
            cursor: Pos::default(),
            anchor: None,
            goal: None,
            history: History::default(),
            yank: String::new(),
            kill_end: None,
            search: None,
        }
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn cursor(&self) -> Pos {
        self.cursor
    }

    /// The selected range, start before end; `None` when nothing is selected.
    pub fn selection(&self) -> Option<(Pos, Pos)> {
        let anchor = self.anchor?;
        match anchor.cmp(&self.cursor) {
            std::cmp::Ordering::Less => Some((anchor, self.cursor)),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some((self.cursor, anchor)),
        }
    }

    pub fn yank_text(&self) -> &str {
        &self.yank
    }

    /// Does what a key asked; `page` is the rows PageUp/PageDown move.
    /// Returns what changed, if the text did.
    pub fn apply(&mut self, op: Op, page: usize) -> Option<Change> {
        // Any other key between two word deletions keeps them apart (a
        // move away and back leaves the version and the cursor as they were).
        if !matches!(op, Op::DeleteWordBack | Op::DeleteWordForward) {
            self.kill_end = None;
        }
        match op {
            Op::Char(c) => self.type_char(c),
            Op::Newline => self.insert("\n", false),
            Op::Tab => self.tab(),
            Op::Backspace => self.backspace(),
            Op::Delete => self.delete(),
            Op::DeleteWordBack => self.delete_word_back(),
            Op::DeleteWordForward => self.delete_word_forward(),
            Op::Cut => self.cut(),
            Op::Copy => {
                self.copy();
                None
            }
            Op::Yank => {
                let text = self.yank.clone();
                self.insert(&text, false)
            }
            Op::Move(m, select) => {
                self.move_cursor(m, select, page);
                None
            }
        }
    }

    pub fn type_char(&mut self, c: char) -> Option<Change> {
        if c == '\n' || c == '\r' {
            return self.insert("\n", false);
        }
        self.insert(c.encode_utf8(&mut [0; 4]), true)
    }

    /// Pasted text at the cursor (over the selection) as one undo step;
    /// CRLF and lone CR become line breaks.
    pub fn paste(&mut self, text: &str) -> Option<Change> {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        self.insert(&text, false)
    }

    /// Spaces to the next tab stop.
    pub fn tab(&mut self) -> Option<Change> {
        let (start, _) = self.selection().unwrap_or((self.cursor, self.cursor));
        let width = display_width(&self.lines[start.row], start.col);
        let spaces = " ".repeat(TAB_WIDTH - width % TAB_WIDTH);
        self.insert(&spaces, false)
    }

    /// The selection, else the character before the cursor, else the line
    /// break before it.
    pub fn backspace(&mut self) -> Option<Change> {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", false);
        }
        let Pos { row, col } = self.cursor;
        let start = if col > 0 {
            Pos::new(row, col - 1)
        } else if row > 0 {
            Pos::new(row - 1, self.line_len(row - 1))
        } else {
            return None;
        };
        self.replace(start, self.cursor, "", false)
    }

    /// The selection, else the character after the cursor, else the line
    /// break after it.
    pub fn delete(&mut self) -> Option<Change> {
        if let Some((start, end)) = self.selection() {
            return self.replace(start, end, "", false);
        }
        let end = self.after(self.cursor)?;
        self.replace(self.cursor, end, "", false)
    }

    /// The word before the cursor (into the yank buffer), else the line
    /// break before it.
    pub fn delete_word_back(&mut self) -> Option<Change> {
        if self.selection().is_some() {
            return self.backspace();
        }
        let Pos { row, col } = self.cursor;
        if col == 0 {
            return self.backspace();
        }
        let start = word_start_before(&self.lines[row], col).unwrap_or(0);
        self.kill(Pos::new(row, start), self.cursor, false)
    }

    /// The word after the cursor (into the yank buffer), else the rest of
    /// the line, else the line break after it.
    pub fn delete_word_forward(&mut self) -> Option<Change> {
        if self.selection().is_some() {
            return self.delete();
        }
        let Pos { row, col } = self.cursor;
        let len = self.line_len(row);
        if col == len {
            return self.delete();
        }
        let end = Pos::new(row, word_end_after(&self.lines[row], col).unwrap_or(len));
        self.kill(self.cursor, end, true)
    }

    /// Deletes `start..end` into the yank buffer: after another word
    /// deletion, joined to it (behind it going `forward`, else before it).
    fn kill(&mut self, start: Pos, end: Pos, forward: bool) -> Option<Change> {
        let text = self.text_between(start, end);
        if self.kill_end == Some((self.version(), self.cursor)) {
            if forward {
                self.yank.push_str(&text);
            } else {
                self.yank.insert_str(0, &text);
            }
        } else {
            self.yank = text;
        }
        let change = self.replace(start, end, "", false);
        self.kill_end = Some((self.version(), self.cursor));
        change
    }

    /// The selection into the yank buffer, and out of the text.
    pub fn cut(&mut self) -> Option<Change> {
        let (start, end) = self.selection()?;
        self.yank = self.text_between(start, end);
        self.replace(start, end, "", false)
    }

    /// The selection into the yank buffer; the selection ends.
    pub fn copy(&mut self) {
        if let Some((start, end)) = self.selection() {
            self.yank = self.text_between(start, end);
        }
        self.anchor = None;
    }

    /// Names the text as it is now: undo and redo bring a version back,
    /// and an edit makes one never seen before. A save remembers it, so
    /// undoing back to what was saved leaves nothing unsaved.
    pub fn version(&self) -> u64 {
        self.history.version()
    }

    /// [`version`](Self::version), with the run being typed ended: the
    /// next key starts a step of its own, so undo can come back here.
    pub fn checkpoint(&mut self) -> u64 {
        self.history.typing = false;
        self.history.version()
    }

    pub fn undo(&mut self) -> Option<Change> {
        // Redo could bring back the version a word deletion left.
        self.kill_end = None;
        let history = &mut self.history;
        history.typing = false;
        let step = history.steps.get(history.done.checked_sub(1)?)?;
        history.done -= 1;
        let end = end_of(step.at, &step.inserted);
        splice(&mut self.lines, step.at, end, &step.removed);
        self.cursor = step.before;
        self.anchor = None;
        self.goal = None;
        Some(step.change())
    }

    pub fn redo(&mut self) -> Option<Change> {
        let history = &mut self.history;
        history.typing = false;
        let step = history.steps.get(history.done)?;
        history.done += 1;
        let end = end_of(step.at, &step.removed);
        splice(&mut self.lines, step.at, end, &step.inserted);
        self.cursor = step.after;
        self.anchor = None;
        self.goal = None;
        Some(step.change())
    }

    /// Puts the cursor at `row`, `col` (clamped to the text); the
    /// selection ends.
    pub fn jump(&mut self, row: usize, col: usize) {
        let row = row.min(self.lines.len() - 1);
        self.set_cursor(Pos::new(row, col.min(self.line_len(row))), false);
        self.goal = None;
        self.kill_end = None;
    }

    pub fn move_cursor(&mut self, m: Move, select: bool, page: usize) {
        let Pos { row, col } = self.cursor;
        let last = self.lines.len() - 1;
        let line = &self.lines[row];
        let keep_col = |r: usize| Pos::new(r, col.min(self.line_len(r)));
        let target = match m {
            Move::Left => self.before(self.cursor).unwrap_or(self.cursor),
            Move::Right => self.after(self.cursor).unwrap_or(self.cursor),
            Move::Up => return self.vertical(row.saturating_sub(1), select),
            Move::Down => return self.vertical((row + 1).min(last), select),
            Move::PageUp => return self.vertical(row.saturating_sub(page.max(1)), select),
            Move::PageDown => return self.vertical((row + page.max(1)).min(last), select),
            Move::Home => Pos::new(row, 0),
            Move::End => Pos::new(row, self.line_len(row)),
            Move::Top => Pos::new(0, 0),
            Move::Bottom => Pos::new(last, self.line_len(last)),
            Move::WordForward => match word_start_after(line, col) {
                Some(c) => Pos::new(row, c),
                None if row < last => Pos::new(row + 1, 0),
                None => Pos::new(row, self.line_len(row)),
            },
            Move::WordBack => match word_start_before(line, col) {
                Some(c) => Pos::new(row, c),
                None if row > 0 => Pos::new(row - 1, self.line_len(row - 1)),
                None => Pos::new(row, 0),
            },
            // A paragraph starts at a non-empty line after an empty one.
            Move::ParagraphForward => {
                let starts =
                    |r: &usize| self.lines[*r - 1].is_empty() && !self.lines[*r].is_empty();
                keep_col((row + 1..=last).find(starts).unwrap_or(last))
            }
            Move::ParagraphBack if row == 0 => self.cursor,
            Move::ParagraphBack => {
                let starts =
                    |r: &usize| self.lines[*r - 1].is_empty() && !self.lines[*r].is_empty();
                keep_col((1..row).rev().find(starts).unwrap_or(0))
            }
        };
        self.goal = None;
        self.set_cursor(target, select);
    }

    /// Makes `pattern` the search (empty: none).
    pub fn set_search(&mut self, pattern: &str) -> Result<(), regex::Error> {
        self.search = match pattern {
            "" => None,
            _ => Some(Regex::new(pattern)?),
        };
        Ok(())
    }

    pub fn search_pattern(&self) -> Option<&Regex> {
        self.search.as_ref()
    }

    /// Moves the cursor to the next match of the search, at the cursor or
    /// (`here` false) after it, wrapping past the end; false when none.
    pub fn search_forward(&mut self, here: bool) -> bool {
        let Some(re) = &self.search else {
            return false;
        };
        let Pos { row, col } = self.cursor;
        let line = &self.lines[row];
        let at = byte_at(line, col);
        let from = if here {
            Some(at)
        } else {
            line[at..].chars().next().map(|c| at + c.len_utf8())
        };
        let on_row = |r: usize, from: usize| {
            let line = &self.lines[r];
            re.find_at(line, from)
                .map(|m| Pos::new(r, line[..m.start()].chars().count()))
        };
        let found = from
            .and_then(|from| on_row(row, from))
            .or_else(|| (row + 1..self.lines.len()).find_map(|r| on_row(r, 0)))
            .or_else(|| (0..row).find_map(|r| on_row(r, 0)))
            .or_else(|| on_row(row, 0).filter(|p| p.col <= col));
        match found {
            Some(pos) => {
                self.goal = None;
                self.set_cursor(pos, false);
                true
            }
            None => false,
        }
    }

    fn line_len(&self, row: usize) -> usize {
        self.lines[row].chars().count()
    }

    /// The position one character before `pos` (the line break counts).
    fn before(&self, pos: Pos) -> Option<Pos> {
        if pos.col > 0 {
            Some(Pos::new(pos.row, pos.col - 1))
        } else if pos.row > 0 {
            Some(Pos::new(pos.row - 1, self.line_len(pos.row - 1)))
        } else {
            None
        }
    }

    /// The position one character after `pos` (the line break counts).
    fn after(&self, pos: Pos) -> Option<Pos> {
        if pos.col < self.line_len(pos.row) {
            Some(Pos::new(pos.row, pos.col + 1))
        } else if pos.row + 1 < self.lines.len() {
            Some(Pos::new(pos.row + 1, 0))
        } else {
            None
        }
    }

    fn set_cursor(&mut self, pos: Pos, select: bool) {
        if select {
            self.anchor.get_or_insert(self.cursor);
        } else {
            self.anchor = None;
        }
        self.cursor = pos;
        self.history.typing = false;
    }

    /// To `row`, at the display column the vertical moves aim for.
    fn vertical(&mut self, row: usize, select: bool) {
        let goal = self
            .goal
            .unwrap_or_else(|| display_width(&self.lines[self.cursor.row], self.cursor.col));
        let col = col_at_width(&self.lines[row], goal);
        self.set_cursor(Pos::new(row, col), select);
        self.goal = Some(goal);
    }

    fn text_between(&self, start: Pos, end: Pos) -> String {
        let first = &self.lines[start.row];
        let from = byte_at(first, start.col);
        if start.row == end.row {
            return first[from..byte_at(first, end.col)].to_string();
        }
        let mut text = first[from..].to_string();
        for line in &self.lines[start.row + 1..end.row] {
            text.push('\n');
            text.push_str(line);
        }
        let last = &self.lines[end.row];
        text.push('\n');
        text.push_str(&last[..byte_at(last, end.col)]);
        text
    }

    /// `text` over the selection, or at the cursor.
    fn insert(&mut self, text: &str, typing: bool) -> Option<Change> {
        match self.selection() {
            Some((start, end)) => self.replace(start, end, text, false),
            None => self.replace(self.cursor, self.cursor, text, typing),
        }
    }

    /// Replaces `start..end` with `text` as one undo step (or as more of
    /// the run being typed), the cursor after it.
    fn replace(&mut self, start: Pos, end: Pos, text: &str, typing: bool) -> Option<Change> {
        if start == end && text.is_empty() {
            return None;
        }
        let before = self.cursor;
        let removed = splice(&mut self.lines, start, end, text);
        let after = end_of(start, text);
        self.cursor = after;
        self.anchor = None;
        self.goal = None;
        let step = Step {
            at: start,
            removed,
            inserted: text.to_string(),
            before,
            after,
            id: 0,
        };
        let change = step.change();
        self.history.record(step, typing);
        Some(change)
    }
}

/// Replaces the text from `start` to `end` (in order) with `text`; returns
/// the text it replaced.
fn splice(lines: &mut Vec<String>, start: Pos, end: Pos, text: &str) -> String {
    let from = byte_at(&lines[start.row], start.col);
    if start.row == end.row && !text.contains('\n') {
        let line = &mut lines[start.row];
        let to = byte_at(line, end.col);
        let removed = line[from..to].to_string();
        line.replace_range(from..to, text);
        return removed;
    }
    let last = &lines[end.row];
    let to = byte_at(last, end.col);
    let tail = last[to..].to_string();
    let mut removed = String::new();
    if start.row == end.row {
        removed.push_str(&lines[start.row][from..to]);
    } else {
        removed.push_str(&lines[start.row][from..]);
        for line in &lines[start.row + 1..=end.row] {
            removed.push('\n');
            removed.push_str(line);
        }
        removed.truncate(removed.len() - tail.len());
    }
    let mut pieces = text.split('\n');
    let first = &mut lines[start.row];
    first.truncate(from);
    first.push_str(pieces.next().unwrap_or(""));
    let mut new: Vec<String> = pieces.map(str::to_string).collect();
    match new.last_mut() {
        Some(last) => last.push_str(&tail),
        None => lines[start.row].push_str(&tail),
    }
    lines.splice(start.row + 1..=end.row, new);
    removed
}

/// Where the cursor ends after `text` is inserted at `at`.
fn end_of(at: Pos, text: &str) -> Pos {
    match text.rfind('\n') {
        None => Pos::new(at.row, at.col + text.chars().count()),
        Some(i) => Pos::new(
            at.row + text.matches('\n').count(),
            text[i + 1..].chars().count(),
        ),
    }
}

/// The byte offset of character `col` (the line's length past the end).
pub fn byte_at(line: &str, col: usize) -> usize {
    line.char_indices().nth(col).map_or(line.len(), |(i, _)| i)
}

/// Columns a character takes at display column `at` (tabs to the next stop).
pub fn char_width(c: char, at: usize) -> usize {
    if c == '\t' {
        TAB_WIDTH - at % TAB_WIDTH
    } else {
        // Wide characters take two columns; combining ones are shown apart.
        unicode_width::UnicodeWidthChar::width(c)
            .unwrap_or(1)
            .max(1)
    }
}

/// Display columns of the first `chars` characters of `line`.
pub fn display_width(line: &str, chars: usize) -> usize {
    line.chars()
        .take(chars)
        .fold(0, |width, c| width + char_width(c, width))
}

/// The character column whose cell covers display column `width` (the
/// line's end when it is shorter).
pub fn col_at_width(line: &str, width: usize) -> usize {
    let mut at = 0;
    for (index, c) in line.chars().enumerate() {
        at += char_width(c, at);
        if at > width {
            return index;
        }
    }
    line.chars().count()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Space,
    Punct,
    Word,
}

/// Words are runs of one kind: letters, digits and `_` (and any other
/// character), or ASCII punctuation.
fn kind(c: char) -> Kind {
    if c.is_whitespace() {
        Kind::Space
    } else if c != '_' && c.is_ascii_punctuation() {
        Kind::Punct
    } else {
        Kind::Word
    }
}

/// The column where the next word after the one at `col` starts.
fn word_start_after(line: &str, col: usize) -> Option<usize> {
    let mut chars = line.chars().skip(col);
    let mut prev = kind(chars.next()?);
    for (i, c) in chars.enumerate() {
        let k = kind(c);
        if k != Kind::Space && k != prev {
            return Some(col + 1 + i);
        }
        prev = k;
    }
    None
}

/// The column just past the word at or after `col` (spaces skipped first).
fn word_end_after(line: &str, col: usize) -> Option<usize> {
    let mut chars = line.chars().skip(col);
    let mut prev = kind(chars.next()?);
    for (i, c) in chars.enumerate() {
        let k = kind(c);
        if prev != Kind::Space && k != prev {
            return Some(col + 1 + i);
        }
        prev = k;
    }
    None
}

/// The column where the word before `col` starts (spaces skipped first).
fn word_start_before(line: &str, col: usize) -> Option<usize> {
    let before: Vec<Kind> = line.chars().take(col).map(kind).collect();
    let mut i = before.len();
    while i > 0 && before[i - 1] == Kind::Space {
        i -= 1;
    }
    let k = *before.get(i.checked_sub(1)?)?;
    while i > 0 && before[i - 1] == k {
        i -= 1;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(buffer: &Buffer) -> String {
        buffer.lines().join("\n")
    }

    fn at(buffer: &Buffer) -> (usize, usize) {
        (buffer.cursor().row, buffer.cursor().col)
    }

    fn typed(buffer: &mut Buffer, s: &str) {
        for c in s.chars() {
            buffer.type_char(c);
        }
    }

    fn key(code: KeyCode, mods: KeyModifiers) -> Option<Op> {
        op_for(&KeyEvent::new(code, mods))
    }

    #[test]
    fn lines_split_and_join() {
        let mut b = Buffer::new("abc\ndef\n");
        assert_eq!(b.lines(), ["abc", "def"]);
        b.jump(0, 1);
        let change = b.apply(Op::Newline, 10).unwrap();
        assert_eq!(b.lines(), ["a", "bc", "def"]);
        assert_eq!(
            change,
            Change {
                row: 0,
                lines_moved: true
            }
        );
        assert_eq!(at(&b), (1, 0));
        // Backspace at a line's start joins it to the line before.
        b.backspace();
        assert_eq!(b.lines(), ["abc", "def"]);
        assert_eq!(at(&b), (0, 1));
        // Delete at a line's end joins the next line.
        b.jump(0, 3);
        assert_eq!(
            b.delete(),
            Some(Change {
                row: 0,
                lines_moved: true
            })
        );
        assert_eq!(b.lines(), ["abcdef"]);
        assert_eq!(
            b.delete(),
            Some(Change {
                row: 0,
                lines_moved: false
            })
        );
        assert_eq!(b.lines(), ["abcef"]);
        // Nothing before the start, nothing after the end.
        b.jump(0, 0);
        assert_eq!(b.backspace(), None);
        b.jump(0, 5);
        assert_eq!(b.delete(), None);
        assert_eq!(Buffer::new("").lines(), [""]);
    }

    #[test]
    fn multi_byte_characters_count_as_one_column() {
        let mut b = Buffer::new("héllo wörld 🐱x");
        b.jump(0, 2);
        typed(&mut b, "ß");
        assert_eq!(text(&b), "héßllo wörld 🐱x");
        assert_eq!(at(&b), (0, 3));
        b.jump(0, 14);
        b.backspace();
        assert_eq!(text(&b), "héßllo wörld x");
        b.apply(Op::Move(Move::Left, false), 1);
        b.apply(Op::Move(Move::Left, false), 1);
        b.delete();
        assert_eq!(text(&b), "héßllo wörl x");
        b.jump(0, 1);
        b.apply(Op::Newline, 1);
        assert_eq!(b.lines(), ["h", "éßllo wörl x"]);
        b.undo();
        b.undo();
        b.undo();
        b.undo();
        assert_eq!(text(&b), "héllo wörld 🐱x");
    }

    #[test]
    fn tab_goes_to_the_next_stop_and_tabs_take_width() {
        let mut b = Buffer::new("q?x");
        b.jump(0, 2);
        b.tab();
        assert_eq!(text(&b), "q?  x");
        b.tab();
        assert_eq!(text(&b), "q?      x");
        // A hard tab in the text counts to its stop.
        let mut b = Buffer::new("\tab\nabcdefgh");
        b.jump(0, 1);
        b.tab();
        assert_eq!(b.lines()[0], "\t    ab");
        assert_eq!(display_width("\tab", 1), 4);
        assert_eq!(display_width("a\tb", 2), 4);
        // Down keeps the display column: after the tab is column 8.
        b.jump(0, 5);
        b.apply(Op::Move(Move::Down, false), 1);
        assert_eq!(at(&b), (1, 8));
        b.apply(Op::Move(Move::Up, false), 1);
        assert_eq!(at(&b), (0, 5));
        assert_eq!(col_at_width("\tab", 2), 0, "inside the tab");
        assert_eq!(col_at_width("\tab", 4), 1);
        assert_eq!(col_at_width("ab", 9), 2);
    }

    #[test]
    fn vertical_moves_remember_the_column_across_short_lines() {
        let mut b = Buffer::new("abcdef\nab\nabcdef");
        b.jump(0, 5);
        b.apply(Op::Move(Move::Down, false), 1);
        assert_eq!(at(&b), (1, 2));
        b.apply(Op::Move(Move::Down, false), 1);
        assert_eq!(at(&b), (2, 5));
        b.apply(Op::Move(Move::Down, false), 1);
        assert_eq!(at(&b), (2, 5), "no line below");
        b.apply(Op::Move(Move::PageUp, false), 10);
        assert_eq!(at(&b), (0, 5));
        b.apply(Op::Move(Move::PageDown, false), 2);
        assert_eq!(at(&b), (2, 5));
        b.apply(Op::Move(Move::Home, false), 1);
        b.apply(Op::Move(Move::Left, false), 1);
        assert_eq!(at(&b), (1, 2), "left from a line's start goes up");
        b.apply(Op::Move(Move::Right, false), 1);
        assert_eq!(at(&b), (2, 0));
    }

    #[test]
    fn word_moves_and_deletes() {
        let line = "local x = foo_bar(a, 'b')  ";
        let mut b = Buffer::new(&format!("{line}\nnext"));
        let mut stops = vec![];
        for _ in 0..12 {
            b.apply(Op::Move(Move::WordForward, false), 1);
            stops.push(at(&b));
        }
        assert_eq!(
            stops,
            [
                (0, 6),
                (0, 8),
                (0, 10),
                (0, 17),
                (0, 18),
                (0, 19),
                (0, 21),
                (0, 22),
                (0, 23),
                (1, 0),
                (1, 4),
                (1, 4)
            ]
        );
        let mut stops = vec![];
        for _ in 0..4 {
            b.apply(Op::Move(Move::WordBack, false), 1);
            stops.push(at(&b));
        }
        assert_eq!(stops, [(1, 0), (0, 27), (0, 23), (0, 22)]);

        let mut b = Buffer::new("aaa bbb.ccc  \nz");
        b.jump(0, 11);
        b.delete_word_back();
        assert_eq!(text(&b), "aaa bbb.  \nz");
        assert_eq!(b.yank_text(), "ccc");
        b.delete_word_back();
        assert_eq!(text(&b), "aaa bbb  \nz");
        b.delete_word_back();
        assert_eq!(text(&b), "aaa   \nz");
        b.jump(0, 0);
        b.delete_word_forward();
        assert_eq!(text(&b), "   \nz");
        b.delete_word_forward();
        assert_eq!(text(&b), "\nz", "trailing spaces: to the line's end");
        b.delete_word_forward();
        assert_eq!(text(&b), "z", "at the end: the line break");
        b.jump(0, 1);
        b.apply(Op::Yank, 1);
        assert_eq!(
            text(&b),
            "zaaa   ",
            "the yank buffer holds the two words deleted one after the other"
        );
    }

    #[test]
    fn word_deletions_one_after_another_yank_back_together() {
        let mut b = Buffer::new("-- end of modulexxxx");
        b.jump(0, 20);
        b.apply(Op::DeleteWordBack, 1);
        b.apply(Op::DeleteWordBack, 1);
        assert_eq!(text(&b), "-- end ");
        assert_eq!(
            b.yank_text(),
            "of modulexxxx",
            "a backward kill goes in front"
        );
        b.apply(Op::Yank, 1);
        assert_eq!(text(&b), "-- end of modulexxxx");

        // Forward kills go behind; a backward one still in front.
        let mut b = Buffer::new("a bb cc dd");
        b.jump(0, 4);
        b.apply(Op::DeleteWordForward, 1);
        b.apply(Op::DeleteWordForward, 1);
        b.apply(Op::DeleteWordBack, 1);
        assert_eq!(text(&b), "a ");
        assert_eq!(b.yank_text(), "bb cc dd");

        // Any other key between starts a new kill, even a move away and back.
        let mut b = Buffer::new("aa bb cc");
        b.jump(0, 8);
        b.apply(Op::DeleteWordBack, 1);
        b.apply(Op::Move(Move::Left, false), 1);
        b.apply(Op::Move(Move::Right, false), 1);
        b.apply(Op::DeleteWordBack, 1);
        assert_eq!(b.yank_text(), "bb ");
        // So does an undo, though redo brings back the text and cursor.
        b.undo();
        b.redo();
        b.apply(Op::DeleteWordBack, 1);
        assert_eq!(b.yank_text(), "aa ");
    }

    #[test]
    fn paragraph_and_buffer_moves() {
        let mut b = Buffer::new("a1\na2\n\nb1\nb2\n\n\nc1");
        b.jump(0, 1);
        b.apply(Op::Move(Move::ParagraphForward, false), 1);
        assert_eq!(at(&b), (3, 1));
        b.apply(Op::Move(Move::ParagraphForward, false), 1);
        assert_eq!(at(&b), (7, 1));
        b.apply(Op::Move(Move::ParagraphForward, false), 1);
        assert_eq!(at(&b), (7, 1));
        b.apply(Op::Move(Move::ParagraphBack, false), 1);
        assert_eq!(at(&b), (3, 1));
        b.apply(Op::Move(Move::ParagraphBack, false), 1);
        assert_eq!(at(&b), (0, 1));
    }

    #[test]
    fn top_and_bottom_go_to_the_start_and_the_end_of_the_text() {
        let mut b = Buffer::new("first\nsecond\nend");
        b.jump(1, 4);
        b.apply(Op::Move(Move::Bottom, false), 1);
        assert_eq!(at(&b), (2, 3), "the end of the last line");
        b.jump(1, 4);
        b.apply(Op::Move(Move::Top, false), 1);
        assert_eq!(at(&b), (0, 0), "line 1, column 0");
    }

    #[test]
    fn undo_and_redo_restore_text_and_cursor() {
        let mut b = Buffer::new("one\ntwo");
        b.jump(1, 3);
        typed(&mut b, "ab cd");
        assert_eq!(text(&b), "one\ntwoab cd");
        b.jump(0, 1);
        b.apply(Op::Newline, 1);
        b.jump(2, 0);
        b.backspace();
        assert_eq!(text(&b), "o\nnetwoab cd");
        assert_eq!(at(&b), (1, 2));

        let mut seen = vec![];
        while b.undo().is_some() {
            seen.push((text(&b), at(&b)));
        }
        assert_eq!(
            seen,
            [
                ("o\nne\ntwoab cd".to_string(), (2, 0)),
                ("one\ntwoab cd".to_string(), (0, 1)),
                // A run of typed characters undoes word by word.
                ("one\ntwoab".to_string(), (1, 5)),
                ("one\ntwo".to_string(), (1, 3)),
            ]
        );
        let mut seen = vec![];
        while b.redo().is_some() {
            seen.push((text(&b), at(&b)));
        }
        assert_eq!(
            seen,
            [
                ("one\ntwoab".to_string(), (1, 5)),
                ("one\ntwoab cd".to_string(), (1, 8)),
                ("o\nne\ntwoab cd".to_string(), (1, 0)),
                ("o\nnetwoab cd".to_string(), (1, 2)),
            ]
        );
        // A new edit after undos drops what could be redone.
        b.undo();
        typed(&mut b, "!");
        assert!(b.redo().is_none());
        assert_eq!(text(&b), "o\nne\n!twoab cd");
    }

    #[test]
    fn undo_and_redo_bring_a_version_back_and_an_edit_makes_a_new_one() {
        let mut b = Buffer::new("x");
        let start = b.version();
        typed(&mut b, "ab");
        let typed_ab = b.version();
        assert_ne!(typed_ab, start);
        b.undo();
        assert_eq!(b.version(), start);
        b.redo();
        assert_eq!(b.version(), typed_ab);
        // The same text made again by a new edit is a version not seen
        // before: the history cannot tell that it is the same.
        b.undo();
        typed(&mut b, "ab");
        assert_ne!(b.version(), typed_ab);
        assert_ne!(b.version(), start);
    }

    #[test]
    fn a_checkpoint_ends_the_typed_run_so_undo_comes_back_to_it() {
        let mut b = Buffer::new("");
        typed(&mut b, "ab");
        let saved = b.checkpoint();
        typed(&mut b, "cd");
        b.undo();
        assert_eq!(text(&b), "ab");
        assert_eq!(b.version(), saved);
        // Without the checkpoint the run would have grown and undo would
        // have gone past "ab".
        let mut b = Buffer::new("");
        typed(&mut b, "ab");
        let seen = b.version();
        typed(&mut b, "cd");
        b.undo();
        assert_eq!(text(&b), "");
        assert_ne!(b.version(), seen);
    }

    #[test]
    fn the_oldest_version_kept_is_reached_by_undoing_everything() {
        let mut b = Buffer::new("");
        let mut versions = vec![b.version()];
        for _ in 0..HISTORY + 3 {
            b.apply(Op::Newline, 1);
            versions.push(b.version());
        }
        while b.undo().is_some() {}
        // Three steps fell out of the history: the text is as after them.
        assert_eq!(b.version(), versions[3]);
    }

    #[test]
    fn a_move_ends_the_typed_run() {
        let mut b = Buffer::new("");
        typed(&mut b, "ab");
        b.apply(Op::Move(Move::Left, false), 1);
        b.apply(Op::Move(Move::Right, false), 1);
        typed(&mut b, "cd");
        b.undo();
        assert_eq!(text(&b), "ab");
        b.undo();
        assert_eq!(text(&b), "");
    }

    #[test]
    fn history_keeps_the_last_steps() {
        let mut b = Buffer::new("");
        for _ in 0..HISTORY + 20 {
            b.apply(Op::Newline, 1);
        }
        let mut undone = 0;
        while b.undo().is_some() {
            undone += 1;
        }
        assert_eq!(undone, HISTORY);
        assert_eq!(b.lines().len(), 21);
    }

    #[test]
    fn pasted_crlf_text_splits_into_lines_as_one_step() {
        let mut b = Buffer::new("<>");
        b.jump(0, 1);
        let change = b.paste("a\r\nb\rc\nd").unwrap();
        assert_eq!(
            change,
            Change {
                row: 0,
                lines_moved: true
            }
        );
        assert_eq!(b.lines(), ["<a", "b", "c", "d>"]);
        assert_eq!(at(&b), (3, 1));
        b.undo();
        assert_eq!(b.lines(), ["<>"]);
        assert_eq!(at(&b), (0, 1));
        assert_eq!(b.paste(""), None);
    }

    #[test]
    fn selection_cut_copy_and_replace() {
        let mut b = Buffer::new("abc\ndef\nghi");
        b.jump(0, 1);
        b.apply(Op::Move(Move::Down, true), 1);
        b.apply(Op::Move(Move::Right, true), 1);
        assert_eq!(b.selection(), Some((Pos::new(0, 1), Pos::new(1, 2))));
        b.apply(Op::Copy, 1);
        assert_eq!(b.yank_text(), "bc\nde");
        assert_eq!(b.selection(), None, "copy ends the selection");

        // Selecting backwards and typing replaces the selection.
        b.jump(2, 2);
        b.apply(Op::Move(Move::WordBack, true), 1);
        b.apply(Op::Move(Move::Up, true), 1);
        assert_eq!(b.selection(), Some((Pos::new(1, 0), Pos::new(2, 2))));
        b.type_char('X');
        assert_eq!(b.lines(), ["abc", "Xi"]);
        b.undo();
        assert_eq!(b.lines(), ["abc", "def", "ghi"]);

        b.jump(0, 0);
        b.apply(Op::Move(Move::End, true), 1);
        b.apply(Op::Cut, 1);
        assert_eq!(b.lines(), ["", "def", "ghi"]);
        b.jump(2, 3);
        b.apply(Op::Yank, 1);
        assert_eq!(b.lines(), ["", "def", "ghiabc"]);
        // Backspace deletes a selection; a plain move ends one.
        b.apply(Op::Move(Move::Home, true), 1);
        b.apply(Op::Move(Move::Left, false), 1);
        assert_eq!(b.selection(), None);
        b.apply(Op::Move(Move::Up, true), 1);
        b.backspace();
        assert_eq!(b.lines(), ["", "ghiabc"]);
    }

    #[test]
    fn search_finds_after_the_cursor_and_wraps_around() {
        let mut b = Buffer::new("x foo\nbar\nfoo foo\nbaz");
        assert!(b.set_search("(").is_err(), "a bad pattern says so");
        b.set_search("fo+").unwrap();
        assert!(b.search_forward(true));
        assert_eq!(at(&b), (0, 2));
        assert!(b.search_forward(true), "a match at the cursor counts");
        assert_eq!(at(&b), (0, 2));
        let mut stops = vec![];
        for _ in 0..4 {
            assert!(b.search_forward(false));
            stops.push(at(&b));
        }
        assert_eq!(stops, [(2, 0), (2, 4), (0, 2), (2, 0)]);
        // The only match is the one under the cursor: found again.
        b.set_search("bar").unwrap();
        b.jump(1, 0);
        assert!(b.search_forward(false));
        assert_eq!(at(&b), (1, 0));
        b.set_search("nothing").unwrap();
        assert!(!b.search_forward(true));
        b.set_search("").unwrap();
        assert!(b.search_pattern().is_none());
        assert!(!b.search_forward(true));
        // Non-ASCII before a match: the column counts characters.
        let mut b = Buffer::new("ééfoo");
        b.set_search("foo").unwrap();
        assert!(b.search_forward(false));
        assert_eq!(at(&b), (0, 2));
    }

    #[test]
    fn keys_map_to_the_editing_operations() {
        let none = KeyModifiers::NONE;
        let ctrl = KeyModifiers::CONTROL;
        let alt = KeyModifiers::ALT;
        let shift = KeyModifiers::SHIFT;
        assert_eq!(key(KeyCode::Char('a'), none), Some(Op::Char('a')));
        assert_eq!(key(KeyCode::Char('A'), shift), Some(Op::Char('A')));
        assert_eq!(key(KeyCode::Enter, none), Some(Op::Newline));
        assert_eq!(key(KeyCode::Char('m'), ctrl), Some(Op::Newline));
        assert_eq!(key(KeyCode::BackTab, shift), Some(Op::Tab));
        assert_eq!(key(KeyCode::Char('h'), ctrl), Some(Op::Backspace));
        assert_eq!(key(KeyCode::Char('w'), ctrl), Some(Op::DeleteWordBack));
        assert_eq!(key(KeyCode::Backspace, alt), Some(Op::DeleteWordBack));
        assert_eq!(key(KeyCode::Char('d'), alt), Some(Op::DeleteWordForward));
        // Undo is the keymap's (Ctrl-Z); Ctrl-U was ratatui-textarea's.
        assert_eq!(key(KeyCode::Char('u'), ctrl), None);
        assert_eq!(key(KeyCode::Char('z'), ctrl), None);
        assert_eq!(key(KeyCode::Char('y'), alt), Some(Op::Yank));
        assert_eq!(
            key(KeyCode::End, ctrl | shift),
            Some(Op::Move(Move::Bottom, true))
        );
        assert_eq!(
            key(KeyCode::Char('['), alt),
            Some(Op::Move(Move::ParagraphBack, false))
        );
        assert_eq!(key(KeyCode::Char('x'), ctrl), Some(Op::Cut));
        assert_eq!(
            key(KeyCode::Right, shift),
            Some(Op::Move(Move::Right, true))
        );
        assert_eq!(
            key(KeyCode::Left, ctrl | shift),
            Some(Op::Move(Move::WordBack, true))
        );
        assert_eq!(
            key(KeyCode::Char('F'), alt | shift),
            Some(Op::Move(Move::WordForward, true))
        );
        assert_eq!(
            key(KeyCode::Char('a'), ctrl),
            Some(Op::Move(Move::Home, false))
        );
        assert_eq!(key(KeyCode::Home, ctrl), Some(Op::Move(Move::Top, false)));
        assert_eq!(key(KeyCode::End, none), Some(Op::Move(Move::End, false)));
        assert_eq!(
            key(KeyCode::Char('>'), alt),
            Some(Op::Move(Move::Bottom, false))
        );
        assert_eq!(
            key(KeyCode::Down, ctrl),
            Some(Op::Move(Move::ParagraphForward, false))
        );
        assert_eq!(
            key(KeyCode::Char('v'), ctrl),
            Some(Op::Move(Move::PageDown, false))
        );
        assert_eq!(key(KeyCode::F(2), none), None);
        assert_eq!(key(KeyCode::Esc, none), None);
        let mut release = KeyEvent::new(KeyCode::Char('a'), none);
        release.kind = KeyEventKind::Release;
        assert_eq!(op_for(&release), None);
    }

    /// Terminals reporting every modifier (kitty's keyboard protocol) send
    /// chords the table lacks. One whose only extra modifier is Shift is
    /// the plain key (a move selects); any other modifier makes it no
    /// editing key, and never a typed character.
    #[test]
    fn a_chord_the_table_lacks_is_the_plain_key_only_with_shift() {
        use KeyCode::*;
        let (ctrl, alt, shift) = (
            KeyModifiers::CONTROL,
            KeyModifiers::ALT,
            KeyModifiers::SHIFT,
        );
        for (code, op) in [
            (Enter, Op::Newline),
            (Backspace, Op::Backspace),
            (Delete, Op::Delete),
            (Home, Op::Move(Move::Home, true)),
            (PageDown, Op::Move(Move::PageDown, true)),
            (Up, Op::Move(Move::Up, true)),
        ] {
            assert_eq!(key(code, shift), Some(op), "Shift-{code:?}");
        }
        assert_eq!(key(BackTab, shift), Some(Op::Tab));
        // Shift added to a bound chord: the same key, selecting.
        assert_eq!(key(Home, ctrl | shift), Some(Op::Move(Move::Top, true)));
        for (code, mods) in [
            (Enter, ctrl),
            (Enter, ctrl | shift),
            (Home, alt),
            (End, alt),
            (PageDown, ctrl),
            (PageUp, ctrl),
            (PageUp, alt | shift),
            (Backspace, ctrl),
            (Delete, ctrl),
            (Tab, ctrl),
            (Char('q'), ctrl),
            (Char('c'), ctrl | alt),
            (Char('c'), KeyModifiers::SUPER),
            (Char('C'), KeyModifiers::SUPER | shift),
            (Char('x'), KeyModifiers::META),
            (Char('x'), KeyModifiers::HYPER),
            (Home, KeyModifiers::SUPER),
            (Enter, KeyModifiers::SUPER | shift),
        ] {
            assert_eq!(key(code, mods), None, "{mods:?}-{code:?}");
        }
    }

    /// An operation, or (None) an undo between them.
    fn any_op() -> impl Strategy<Value = Option<Op>> {
        let moves = prop_oneof![
            Just(Move::Left),
            Just(Move::Right),
            Just(Move::Up),
            Just(Move::Down),
            Just(Move::Home),
            Just(Move::End),
            Just(Move::WordForward),
            Just(Move::WordBack),
            Just(Move::ParagraphBack),
            Just(Move::PageDown),
        ];
        prop_oneof![
            4 => prop::sample::select(vec!['a', 'é', ' ', '\t', '🐱', '(', '_'])
                .prop_map(|c| Some(Op::Char(c))),
            1 => Just(Some(Op::Newline)),
            1 => Just(Some(Op::Tab)),
            2 => Just(Some(Op::Backspace)),
            2 => Just(Some(Op::Delete)),
            1 => Just(Some(Op::DeleteWordBack)),
            1 => Just(Some(Op::DeleteWordForward)),
            1 => Just(Some(Op::Cut)),
            1 => Just(Some(Op::Copy)),
            1 => Just(Some(Op::Yank)),
            1 => Just(None::<Op>),
            3 => (moves, any::<bool>()).prop_map(|(m, select)| Some(Op::Move(m, select))),
        ]
    }

    proptest! {
        #[test]
        fn undoing_every_edit_gives_back_the_original(
            original in "[a-c é\t\n]{0,40}",
            ops in prop::collection::vec(any_op(), 0..120),
            pastes in prop::collection::vec("[xy\r\n]{0,6}", 0..4),
        ) {
            let mut b = Buffer::new(&original);
            let start = b.lines().to_vec();
            let mut edits = 0;
            for (i, op) in ops.iter().enumerate() {
                if i % 30 == 29 && let Some(p) = pastes.get(i / 30) {
                    edits += usize::from(b.paste(p).is_some());
                }
                let change = match op {
                    Some(op) => b.apply(*op, 3),
                    None => b.undo(),
                };
                edits += usize::from(change.is_some());
                let cursor = b.cursor();
                prop_assert!(cursor.row < b.lines().len());
                prop_assert!(cursor.col <= b.lines()[cursor.row].chars().count());
            }
            // What an undo in the sequence took back comes back first.
            while b.redo().is_some() {
                edits += 1;
            }
            let after = b.lines().to_vec();
            for _ in 0..edits {
                b.undo();
            }
            prop_assert_eq!(b.lines(), &start[..]);
            prop_assert!(b.undo().is_none());
            // And redoing all of it comes back to where the edits left it.
            while b.redo().is_some() {}
            prop_assert_eq!(b.lines(), &after[..]);
        }
    }
}

//! The apply form: where the call goes and what it sends, checked as you
//! type. Its kind says what runs: a record UDF on one key, a stream UDF
//! (aggregation), a background job, a query for records, or a batch apply.

use crate::tui::screen::Canvas;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};
use std::cell::{Cell, RefCell};
use unicode_width::UnicodeWidthChar;

use crate::cli;
use crate::tui::panes::cut;

use aerospike::Value;

use crate::client::{
    AggregateCall, ApplyCall, BatchApplyCall, ExecuteCall, QueryCall, RecordKey, Request, Scope,
};
use crate::text::plural;
use crate::tui::literal::{self, LiteralError};
use crate::tui::theme::Theme;
use crate::where_clause;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Namespace,
    Set,
    Key,
    Module,
    Function,
    Args,
    Timeout,
    Times,
    /// Batch: the keys, one comma-separated list of literals.
    Keys,
    /// Aggregate, background, query: the `where` clause (empty = all records).
    Where,
    /// Background: records per second (empty = the server's default).
    Rps,
    /// Query: the bins to read (empty = all).
    Bins,
    /// Query: stop after this many records (empty = all).
    MaxRecords,
}

/// Every field of every kind: the form keeps one input per field, so
/// switching the kind back and forth loses nothing.
pub const ALL_FIELDS: [Field; 13] = [
    Field::Namespace,
    Field::Set,
    Field::Key,
    Field::Module,
    Field::Function,
    Field::Args,
    Field::Timeout,
    Field::Times,
    Field::Keys,
    Field::Where,
    Field::Rps,
    Field::Bins,
    Field::MaxRecords,
];

impl Field {
    pub fn label(self) -> &'static str {
        match self {
            Field::Namespace => "namespace",
            Field::Set => "set",
            Field::Key => "key",
            Field::Module => "module",
            Field::Function => "function",
            Field::Args => "args",
            Field::Timeout => "timeout ms",
            Field::Times => "run times",
            Field::Keys => "keys",
            Field::Where => "where",
            Field::Rps => "rps",
            Field::Bins => "bins",
            Field::MaxRecords => "max recs",
        }
    }

    fn default_text(self) -> &'static str {
        match self {
            Field::Namespace => "test",
            Field::Set => "demo",
            Field::Key => "'k1'",
            Field::Module => "counter",
            Field::Function => "increment",
            Field::Args => "'count', 5",
            Field::Timeout => "",
            Field::Times => "1",
            Field::Keys => "'k1', 'k2', 'k3'",
            Field::Where => "",
            Field::Rps => "",
            Field::Bins => "",
            Field::MaxRecords => "1000",
        }
    }

    fn index(self) -> usize {
        ALL_FIELDS.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// What the form runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormKind {
    /// A record UDF on one key.
    #[default]
    Record,
    /// A stream UDF over a query's records.
    Aggregate,
    /// A record UDF the server runs over a query's records, as a job.
    Background,
    /// The records themselves.
    Query,
    /// A record UDF on many keys in one batch request.
    Batch,
}

pub const KINDS: [FormKind; 5] = [
    FormKind::Record,
    FormKind::Aggregate,
    FormKind::Background,
    FormKind::Query,
    FormKind::Batch,
];

impl FormKind {
    pub fn name(self) -> &'static str {
        match self {
            FormKind::Record => "record",
            FormKind::Aggregate => "aggregate",
            FormKind::Background => "background",
            FormKind::Query => "query",
            FormKind::Batch => "batch",
        }
    }

    /// The fields this kind shows, in order.
    pub fn fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            FormKind::Record => &[Namespace, Set, Key, Module, Function, Args, Timeout, Times],
            FormKind::Aggregate => &[Namespace, Set, Where, Module, Function, Args],
            FormKind::Background => &[Namespace, Set, Where, Module, Function, Args, Rps],
            FormKind::Query => &[Namespace, Set, Where, Bins, MaxRecords],
            FormKind::Batch => &[Namespace, Set, Keys, Module, Function, Args],
        }
    }

    /// The kind after this one, round the list.
    pub fn next(self) -> FormKind {
        let at = KINDS.iter().position(|k| *k == self).unwrap_or(0);
        KINDS[(at + 1) % KINDS.len()]
    }
}

/// A one-line text input with a cursor (in characters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    pub text: String,
    pub cursor: usize,
}

impl LineInput {
    pub fn new(text: &str) -> LineInput {
        LineInput {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map(|(i, _)| i)
            .unwrap_or(self.text.len())
    }

    /// Edits with a key; true when the key was an editing key.
    pub fn input(&mut self, key: &KeyEvent) -> bool {
        let len = self.text.chars().count();
        match key.code {
            // Typed only with no modifier but Shift, as in the editor: a
            // Super or Meta chord is no character.
            KeyCode::Char(c) if key.modifiers.difference(KeyModifiers::SHIFT).is_empty() => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.text.clear();
                self.cursor = 0;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let at = self.byte_at(self.cursor - 1);
                self.text.remove(at);
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < len => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => return false,
        }
        true
    }

    /// Inserts `text` at the cursor, control characters (a pasted line's
    /// end) left out; once, not char by char, so a long paste is linear.
    pub fn insert_str(&mut self, text: &str) {
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        let at = self.byte_at(self.cursor);
        self.text.insert_str(at, &text);
        self.cursor += text.chars().count();
    }

    /// Pastes `text` (a value literal's) at the cursor. One line cannot hold
    /// control characters, and none is lost: inside a quoted string each
    /// becomes its escape (`\t`, `\n`…), so the string stays exact;
    /// outside, a line break becomes `line_break` (", " where each line is
    /// a value) and the rest a space. A final line break is dropped.
    pub fn paste(&mut self, text: &str, line_break: &str) {
        let at = self.byte_at(self.cursor);
        let mut quotes = crate::value::Quotes::default();
        self.text[..at].chars().for_each(|c| quotes.step(c));
        let mut pasted = String::with_capacity(text.len());
        let mut chars = text.trim_end_matches(['\r', '\n']).chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                _ if !c.is_control() => pasted.push(c),
                _ if quotes.inside() => pasted.push_str(&match c {
                    '\n' => "\\n".to_string(),
                    '\r' => "\\r".to_string(),
                    '\t' => "\\t".to_string(),
                    _ => format!("\\u{{{:x}}}", c as u32),
                }),
                '\r' | '\n' => {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    // A line already ending its value with a comma.
                    let comma = pasted.trim_end().ends_with(',')
                        || (pasted.is_empty() && self.text[..at].trim_end().ends_with(','));
                    pasted.push_str(if comma { " " } else { line_break });
                }
                _ => pasted.push(' '),
            }
            quotes.step(c);
        }
        self.text.insert_str(at, &pasted);
        self.cursor += pasted.chars().count();
    }
}

/// What a picker offers: module names, or functions with their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Picker {
    pub field: Field,
    /// (value to fill in, what to show)
    pub items: Vec<(String, String)>,
    pub selected: usize,
}

/// The saved content of a form, for the history (kept between sessions).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormSnapshot {
    pub values: Vec<String>,
    pub with_record: bool,
    /// Older histories have none: they were record forms.
    #[serde(default)]
    pub kind: FormKind,
}

#[derive(Debug, Clone)]
pub struct ApplyForm {
    /// One input per field of [`ALL_FIELDS`].
    pub inputs: Vec<LineInput>,
    pub kind: FormKind,
    /// The focused field, an index into `kind.fields()`.
    pub focus: usize,
    pub with_record: bool,
    pub picker: Option<Picker>,
    pub history: Vec<FormSnapshot>,
    /// Position while walking the history (`None` = the live form).
    pub history_pos: Option<usize>,
    /// Each field's last check with the text it was made for, one per
    /// field of [`ALL_FIELDS`]: every frame draws the form's problems, and
    /// a long key list costs a parse, so a field is checked again only when
    /// its text changed.
    checks: RefCell<Vec<Option<CheckedText>>>,
    /// How many times a field's text was checked rather than answered from
    /// `checks` (what tests read to see that drawing does not re-check).
    checks_made: Cell<usize>,
}

#[derive(Debug, Clone)]
struct CheckedText {
    text: String,
    error: Option<FieldError>,
}

impl Default for ApplyForm {
    fn default() -> Self {
        ApplyForm {
            inputs: ALL_FIELDS
                .iter()
                .map(|f| LineInput::new(f.default_text()))
                .collect(),
            kind: FormKind::Record,
            focus: 5,
            with_record: true,
            picker: None,
            history: Vec::new(),
            history_pos: None,
            checks: RefCell::new(vec![None; ALL_FIELDS.len()]),
            checks_made: Cell::new(0),
        }
    }
}

/// A problem with a field, shown under the form.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: Field,
    pub column: Option<usize>,
    pub message: String,
}

impl FieldError {
    /// The field's label, as the form shows it.
    pub fn field_name(&self) -> &'static str {
        self.field.label()
    }
}

/// Parses the batch keys: literals separated by commas, each an integer,
/// a string or bytes; errors give the column in the field's text.
pub fn parse_keys(text: &str) -> Result<Vec<Value>, LiteralError> {
    let keys = literal::parse_separated(text, "a key", "keys")?;
    keys.into_iter()
        .map(|(column, key)| match key {
            Value::Int(_) | Value::String(_) | Value::Blob(_) => Ok(key),
            _ => Err(LiteralError {
                column,
                message: format!(
                    "a key is an integer, a string or bytes, not {}",
                    crate::value::type_name(&key)
                ),
            }),
        })
        .collect()
}

/// The display columns `chars` take (a wide character takes two).
fn cells(chars: impl Iterator<Item = char>) -> usize {
    chars.map(|c| c.width().unwrap_or(0)).sum()
}

/// The display column of an error's caret: `column` counts characters
/// (from 1), as the message does; one past the text points at its end.
fn caret_cell(text: &str, column: usize) -> usize {
    let before = column.saturating_sub(1);
    let len = text.chars().count();
    cells(text.chars().take(before)) + before.saturating_sub(len)
}

/// The display column a field of `end` cells shows from, `width` cells
/// wide: from its start while the cursor fits, else far enough on that the
/// cursor shows at the right edge; an error's caret shows too when the two
/// fit together. The edge cells are left for the `‹` `›` marks of
/// [`visible_cells`], so neither the cursor nor the caret sits on one: the
/// last cell only at the text's end, where no `›` goes.
fn field_scroll(cursor: usize, caret: Option<usize>, end: usize, width: usize) -> usize {
    let last = match caret {
        Some(caret) if caret.abs_diff(cursor) + 2 < width => caret.max(cursor),
        _ => cursor,
    };
    let right = if last >= end { 1 } else { 2 };
    (last + right).saturating_sub(width.max(2))
}

/// What a field shows of `text`: `width` cells from display column `from`,
/// with `‹` in the first cell when text is cut off on the left and `›` in
/// the last when it goes on past the right, as the editor marks its lines.
/// A wide character cut by an edge shows as blanks.
fn visible_cells(text: &str, from: usize, width: usize) -> String {
    // One entry a cell: a character, or "" for a wide one's second cell.
    let mut shown: Vec<String> = Vec::new();
    let mut column = 0;
    let mut more = false;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        let end = column + w;
        if end > from + width {
            more = true;
            break;
        }
        if column >= from && w == 0 {
            // A combining mark joins the character before it.
            if let Some(last) = shown.last_mut() {
                last.push(c);
            }
        } else if column >= from {
            shown.push(c.to_string());
            shown.extend(std::iter::repeat_n(String::new(), w - 1));
        } else if end > from {
            shown.extend(std::iter::repeat_n(" ".to_string(), end - from));
        }
        column = end;
    }
    if more {
        shown.resize(width, " ".to_string());
        mark(&mut shown, width.saturating_sub(1), "›");
    }
    if from > 0 {
        if shown.is_empty() {
            shown.push(String::new());
        }
        mark(&mut shown, 0, "‹");
    }
    shown.concat()
}

/// Puts `mark` in cell `at`, blanking the other cell of a wide character
/// it lands on.
fn mark(cells: &mut [String], at: usize, mark: &str) {
    if cells.get(at).is_some_and(|c| c.is_empty()) && at > 0 {
        cells[at - 1] = " ".to_string();
    }
    if cells.get(at + 1).is_some_and(|c| c.is_empty()) {
        cells[at + 1] = " ".to_string();
    }
    if let Some(cell) = cells.get_mut(at) {
        *cell = mark.to_string();
    }
}

/// The query's bin names (`a, b`): `None` = every bin.
fn bin_names(text: &str) -> Result<Option<Vec<String>>, (usize, String)> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut names = Vec::new();
    let mut column = 1;
    for part in text.split(',') {
        let name = part.trim();
        if name.is_empty() {
            return Err((column, "expected a bin name".into()));
        }
        names.push(name.to_string());
        column += part.chars().count() + 1;
    }
    Ok(Some(names))
}

impl ApplyForm {
    pub fn value(&self, field: Field) -> &str {
        &self.inputs[field.index()].text
    }

    pub fn set(&mut self, field: Field, text: &str) {
        self.inputs[field.index()] = LineInput::new(text);
    }

    pub fn focused_field(&self) -> Field {
        let fields = self.kind.fields();
        fields[self.focus.min(fields.len() - 1)]
    }

    /// The focused field's input.
    pub fn focused_input(&mut self) -> &mut LineInput {
        let at = self.focused_field().index();
        &mut self.inputs[at]
    }

    pub fn move_focus(&mut self, delta: isize) {
        let n = self.kind.fields().len() as isize;
        self.focus = ((self.focus as isize + delta).rem_euclid(n)) as usize;
    }

    /// Focuses `field` when this kind shows it.
    pub fn focus_field(&mut self, field: Field) {
        if let Some(at) = self.kind.fields().iter().position(|f| *f == field) {
            self.focus = at;
        }
    }

    /// Switches the kind, keeping the focus on the same field when the new
    /// kind has it.
    pub fn set_kind(&mut self, kind: FormKind) {
        let field = self.focused_field();
        self.kind = kind;
        self.focus = 0;
        self.focus_field(field);
    }

    pub fn input(&mut self, key: &KeyEvent) -> bool {
        self.history_pos = None;
        self.focused_input().input(key)
    }

    /// What is wrong with one field's text, if anything: checked once per
    /// text, so drawing and running agree and neither parses it again.
    fn check_field(&self, field: Field) -> Option<FieldError> {
        let text = self.value(field);
        let mut checks = self.checks.borrow_mut();
        let slot = &mut checks[field.index()];
        if let Some(checked) = slot.as_ref().filter(|c| c.text == text) {
            return checked.error.clone();
        }
        self.checks_made.set(self.checks_made.get() + 1);
        let error = self.check_text(field);
        *slot = Some(CheckedText {
            text: text.to_string(),
            error: error.clone(),
        });
        error
    }

    /// How many times a field's text was checked, not taken from the cache.
    pub fn checks_made(&self) -> usize {
        self.checks_made.get()
    }

    fn check_text(&self, field: Field) -> Option<FieldError> {
        let bad = |column, message: String| {
            Some(FieldError {
                field,
                column,
                message,
            })
        };
        let from_literal = |e: LiteralError| bad(Some(e.column), e.message);
        let text = self.value(field).trim();
        match field {
            Field::Namespace if text.is_empty() => bad(None, "a namespace is needed".into()),
            Field::Namespace => cli::namespace_problem(text).and_then(|e| bad(None, e)),
            Field::Set if !text.is_empty() => cli::set_problem(text).and_then(|e| bad(None, e)),
            Field::Key => literal::parse_value(self.value(field))
                .err()
                .and_then(from_literal),
            Field::Keys => parse_keys(self.value(field)).err().and_then(from_literal),
            Field::Where if !text.is_empty() => where_clause::parse(self.value(field))
                .err()
                .and_then(|e| bad(Some(e.column), e.message)),
            Field::Module if text.is_empty() => bad(None, "a module is needed".into()),
            Field::Function if text.is_empty() => bad(None, "a function is needed".into()),
            Field::Args => literal::parse_args(self.value(field))
                .err()
                .and_then(from_literal),
            Field::Timeout if !text.is_empty() && text.parse::<u32>().is_err() => bad(
                None,
                format!(
                    "'{text}' is not a number of milliseconds \
                     (or leave it empty for the server's default)"
                ),
            ),
            Field::Times => match text.parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => None,
                _ => bad(None, format!("'{text}' is not a count from 1 to 100000")),
            },
            Field::Rps if !text.is_empty() && text.parse::<u32>().is_err() => bad(
                None,
                format!(
                    "'{text}' is not a number of records per second \
                     (or leave it empty for the server's default)"
                ),
            ),
            Field::Bins => bin_names(self.value(field))
                .err()
                .and_then(|(column, message)| bad(Some(column), message)),
            Field::MaxRecords if !text.is_empty() => cli::parse_max_records(text)
                .err()
                .and_then(|e| bad(None, format!("{e} (or leave it empty for all)"))),
            _ => None,
        }
    }

    /// The first problem in the form, checked field by field.
    pub fn check(&self) -> Option<FieldError> {
        self.kind.fields().iter().find_map(|f| self.check_field(*f))
    }

    fn first_error(&self, kind: FormKind) -> Result<(), FieldError> {
        match kind.fields().iter().find_map(|f| self.check_field(*f)) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn set_name(&self) -> Option<String> {
        let set = self.value(Field::Set).trim();
        (!set.is_empty()).then(|| set.to_string())
    }

    fn module(&self) -> String {
        let module = self.value(Field::Module).trim();
        module.strip_suffix(".lua").unwrap_or(module).to_string()
    }

    fn function(&self) -> String {
        self.value(Field::Function).trim().to_string()
    }

    fn args(&self) -> Vec<Value> {
        literal::parse_args(self.value(Field::Args)).unwrap_or_default()
    }

    /// The record UDF call the record fields describe, or their first
    /// problem (whatever the kind).
    pub fn call(&self) -> Result<(ApplyCall, u32), FieldError> {
        self.first_error(FormKind::Record)?;
        let timeout = self.value(Field::Timeout).trim();
        let call = ApplyCall {
            key: RecordKey {
                ns: self.value(Field::Namespace).trim().to_string(),
                set: self.set_name(),
                key: literal::parse_value(self.value(Field::Key)).unwrap_or(Value::Nil),
            },
            module: self.module(),
            function: self.function(),
            args: self.args(),
            timeout_ms: timeout.parse().ok(),
            send_key: true,
            with_record: self.with_record,
            // Only the sandbox has the log lines; the client skips this elsewhere.
            with_logs: true,
        };
        let times = self.value(Field::Times).trim().parse().unwrap_or(1);
        Ok((call, times))
    }

    /// Fills the form with a sample's call: where it goes, the module,
    /// function and arguments (in the literal syntax).
    pub fn fill_from_sample(&mut self, sample: &crate::samples::Sample) {
        let literal = |word: &str| {
            crate::value::parse_arg(word).map_or_else(|_| word.to_string(), |v| literal::print(&v))
        };
        if let Ok(target) = sample.target() {
            self.set(Field::Namespace, &target.namespace);
            self.set(Field::Set, target.set.as_deref().unwrap_or(""));
        }
        if let Some(key) = sample.key {
            self.set(Field::Key, &literal(key));
        }
        self.set(Field::Module, sample.module_name());
        self.set(Field::Function, sample.function);
        let args: Vec<String> = sample.args.iter().map(|a| literal(a)).collect();
        self.set(Field::Args, &args.join(", "));
        self.set_kind(match sample.kind {
            crate::samples::SampleKind::Record => FormKind::Record,
            crate::samples::SampleKind::Aggregate => FormKind::Aggregate,
            crate::samples::SampleKind::Background => FormKind::Background,
        });
        self.set(Field::Where, sample.where_clause.unwrap_or(""));
        self.history_pos = None;
    }

    /// The records a query-path kind reads.
    fn scope(&self) -> Scope {
        let clause = self.value(Field::Where);
        Scope {
            ns: self.value(Field::Namespace).trim().to_string(),
            set: self.set_name(),
            where_clause: (!clause.trim().is_empty())
                .then(|| where_clause::parse(clause).ok())
                .flatten(),
        }
    }

    /// The request the form's kind describes, or its first problem. A
    /// record apply is `Request::Apply` (run it through [`call`](Self::call)
    /// for the run count); an aggregation reads the module's source back
    /// from the server unless the caller fills it in.
    pub fn request(&self) -> Result<Request, FieldError> {
        self.first_error(self.kind)?;
        Ok(match self.kind {
            FormKind::Record => Request::Apply(self.call()?.0.into()),
            FormKind::Aggregate => Request::Aggregate(Box::new(AggregateCall {
                scope: self.scope(),
                module: self.module(),
                function: self.function(),
                args: self.args(),
                source: None,
                timeout_ms: None,
            })),
            FormKind::Background => Request::Execute(Box::new(ExecuteCall {
                scope: self.scope(),
                module: self.module(),
                function: self.function(),
                args: self.args(),
                records_per_second: self.value(Field::Rps).trim().parse().ok(),
            })),
            FormKind::Query => Request::Query(Box::new(QueryCall {
                scope: self.scope(),
                bins: bin_names(self.value(Field::Bins)).ok().flatten(),
                max_records: cli::parse_max_records(self.value(Field::MaxRecords).trim()).ok(),
            })),
            FormKind::Batch => {
                let ns = self.value(Field::Namespace).trim().to_string();
                let set = self.set_name();
                let keys = parse_keys(self.value(Field::Keys)).unwrap_or_default();
                Request::BatchApply(Box::new(BatchApplyCall {
                    keys: keys
                        .into_iter()
                        .map(|key| RecordKey {
                            ns: ns.clone(),
                            set: set.clone(),
                            key,
                        })
                        .collect(),
                    module: self.module(),
                    function: self.function(),
                    args: self.args(),
                    send_key: true,
                }))
            }
        })
    }

    /// How a run of the form is named in the results.
    pub fn label(&self) -> String {
        let target = match self.set_name() {
            Some(set) => format!("{}.{set}", self.value(Field::Namespace).trim()),
            None => self.value(Field::Namespace).trim().to_string(),
        };
        let clause = self.value(Field::Where).trim();
        let filter = if clause.is_empty() {
            String::new()
        } else {
            format!(" where {clause}")
        };
        let call = format!(
            "{}.{}({})",
            self.module(),
            self.function(),
            self.value(Field::Args).trim()
        );
        match self.kind {
            FormKind::Record => format!("{call} @ {}", self.value(Field::Key).trim()),
            FormKind::Aggregate => format!("aggregate {call} on {target}{filter}"),
            FormKind::Background => format!("background {call} on {target}{filter}"),
            FormKind::Query => format!("query {target}{filter}"),
            FormKind::Batch => {
                let n = parse_keys(self.value(Field::Keys)).map_or(0, |k| k.len());
                format!("batch {call} on {target}, {}", plural(n, "key", "keys"))
            }
        }
    }

    pub fn snapshot(&self) -> FormSnapshot {
        FormSnapshot {
            values: self.inputs.iter().map(|i| i.text.clone()).collect(),
            with_record: self.with_record,
            kind: self.kind,
        }
    }

    /// Remembers the form as the most recent one (no duplicates).
    pub fn remember(&mut self) {
        let snapshot = self.snapshot();
        self.history.retain(|s| *s != snapshot);
        self.history.push(snapshot);
        if self.history.len() > 50 {
            self.history.remove(0);
        }
        self.history_pos = None;
    }

    /// Loads a saved history; the most recent form fills the form. Forms
    /// saved before the kinds existed hold the record fields only: the
    /// other fields get their defaults.
    pub fn restore(&mut self, history: Vec<FormSnapshot>) {
        let usable: Vec<FormSnapshot> = history
            .into_iter()
            .filter(|s| {
                (FormKind::Record.fields().len()..=ALL_FIELDS.len()).contains(&s.values.len())
            })
            .map(|mut s| {
                for field in &ALL_FIELDS[s.values.len()..] {
                    s.values.push(field.default_text().to_string());
                }
                s
            })
            .collect();
        self.history = usable;
        if !self.history.is_empty() {
            self.recall(-1);
            self.history_pos = None;
        }
    }

    /// Steps through recent forms: -1 older, +1 newer.
    pub fn recall(&mut self, delta: isize) {
        if self.history.is_empty() {
            return;
        }
        let last = self.history.len() as isize - 1;
        let pos = match self.history_pos {
            None if delta < 0 => last,
            None => return,
            Some(p) => (p as isize + delta).clamp(0, last),
        } as usize;
        self.history_pos = Some(pos);
        let snapshot = self.history[pos].clone();
        for (input, value) in self.inputs.iter_mut().zip(&snapshot.values) {
            *input = LineInput::new(value);
        }
        self.with_record = snapshot.with_record;
        self.set_kind(snapshot.kind);
    }

    /// Draws the form; returns the focused field's error message when the
    /// pane is too short to show it, for the caller to show elsewhere.
    pub fn draw(
        &self,
        frame: &mut Canvas,
        area: Rect,
        theme: Theme,
        focused: bool,
    ) -> Option<String> {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(format!(" 3 Apply · {} ", self.kind.name()));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let label_width = 11;
        let error = self.check();
        let mut lines: Vec<Line> = Vec::new();
        let fields = self.kind.fields();
        // The last row the focused field takes: its own, or the caret under
        // it that points at an error.
        let mut focus_end = self.focus;
        // Where the cursor and the error's caret go, in display columns of
        // the focused field's text, and the column it shows from: a field
        // wider than the pane scrolls to keep them in view.
        let focused_input = &self.inputs[self.focused_field().index()];
        let cursor_cell = cells(focused_input.text.chars().take(focused_input.cursor));
        let caret_cell = error
            .as_ref()
            .filter(|e| e.field == self.focused_field())
            .and_then(|e| e.column)
            .map(|column| caret_cell(&focused_input.text, column));
        // A field with an error keeps room for its ✗ at the pane's edge.
        let text_width = |field: Field| {
            let marked = error.as_ref().is_some_and(|e| e.field == field);
            (inner.width as usize).saturating_sub(label_width + if marked { 2 } else { 0 })
        };
        let shown_from = field_scroll(
            cursor_cell,
            caret_cell,
            cells(focused_input.text.chars()),
            text_width(self.focused_field()),
        );
        for (i, field) in fields.iter().enumerate() {
            let label_style = if focused && i == self.focus {
                theme.key()
            } else {
                theme.dim()
            };
            let from = if i == self.focus { shown_from } else { 0 };
            let mut spans = vec![
                Span::styled(
                    format!("{:>w$} ", field.label(), w = label_width - 1),
                    label_style,
                ),
                Span::raw(visible_cells(self.value(*field), from, text_width(*field))),
            ];
            if error.as_ref().is_some_and(|e| e.field == *field) {
                spans.push(Span::styled(" ✗", theme.error()));
            }
            if matches!(field, Field::Module | Field::Function) && focused && i == self.focus {
                spans.push(Span::styled("  ⏎ pick", theme.dim()));
            }
            lines.push(Line::from(spans));
        }
        if self.kind == FormKind::Record {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{:>w$} ", "record", w = label_width - 1),
                    theme.dim(),
                ),
                Span::raw(if self.with_record {
                    "[x] before/after"
                } else {
                    "[ ] before/after"
                }),
            ]));
        }
        let mut message = None;
        if let Some(e) = &error {
            let text = match e.column {
                Some(column) => format!("{}: column {column}: {}", e.field.label(), e.message),
                None => format!("{}: {}", e.field.label(), e.message),
            };
            let field_row = fields.iter().position(|f| *f == e.field).unwrap_or(0);
            if let Some(caret) = caret_cell.filter(|caret| *caret >= shown_from)
                && field_row < lines.len()
                && self.focus == field_row
            {
                focus_end += 1;
                lines.insert(
                    field_row + 1,
                    Line::styled(
                        format!("{}^", " ".repeat(label_width + caret - shown_from)),
                        theme.error(),
                    ),
                );
            }
            lines.push(Line::styled(
                cut(&text, inner.width as usize),
                theme.error(),
            ));
            message = Some((text, e.field == self.focused_field()));
        }
        // In a pane shorter than the form, the field being edited stays in
        // view; unfocused, the form shows from its top.
        let scroll = if focused {
            (focus_end + 1)
                .saturating_sub(inner.height as usize)
                .min(self.focus) as u16
        } else {
            0
        };
        // The message is the last line; it may be below the pane's rows.
        let message_row = lines.len().saturating_sub(1);
        let hidden = message_row >= scroll as usize + inner.height as usize;
        frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
        if focused && self.picker.is_none() {
            let x = inner.x + (label_width + cursor_cell - shown_from) as u16;
            let y = inner.y + self.focus as u16 - scroll;
            if x < inner.right() && y < inner.bottom() {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
        if let Some(picker) = &self.picker {
            let row = (fields.iter().position(|f| *f == picker.field).unwrap_or(0) as u16)
                .saturating_sub(scroll);
            let height = (picker.items.len() as u16 + 2).clamp(3, 10);
            let popup = Rect {
                x: inner.x + label_width as u16,
                y: (inner.y + row + 1).min(frame.area().bottom().saturating_sub(height)),
                width: inner.width.saturating_sub(label_width as u16).max(10),
                height,
            }
            .intersection(frame.area());
            frame.render_widget(Clear, popup);
            let items: Vec<ListItem> = if picker.items.is_empty() {
                vec![ListItem::new("(nothing registered)")]
            } else {
                picker
                    .items
                    .iter()
                    .map(|(_, shown)| ListItem::new(shown.clone()))
                    .collect()
            };
            let list = List::new(items)
                .block(Block::default().borders(Borders::ALL).title(" pick "))
                .highlight_style(theme.selected());
            let mut state = ListState::default().with_selected(Some(picker.selected));
            frame.render_stateful_widget(list, popup, &mut state);
        }
        message
            .filter(|(_, on_focus)| focused && *on_focus && hidden)
            .map(|(text, _)| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_types_a_character_only_with_no_modifier_but_shift() {
        let mut field = LineInput::new("");
        let typed = |field: &mut LineInput, c, modifiers| {
            field.input(&KeyEvent::new(KeyCode::Char(c), modifiers));
        };
        typed(&mut field, 'a', KeyModifiers::NONE);
        typed(&mut field, 'B', KeyModifiers::SHIFT);
        for modifiers in [
            KeyModifiers::SUPER,
            KeyModifiers::META,
            KeyModifiers::HYPER,
            KeyModifiers::ALT,
            KeyModifiers::SUPER | KeyModifiers::SHIFT,
        ] {
            typed(&mut field, 'c', modifiers);
        }
        assert_eq!(field.text, "aB");
    }

    #[test]
    fn a_field_cut_at_an_edge_is_marked_there() {
        assert_eq!(visible_cells("abcdef", 0, 6), "abcdef", "fits: no mark");
        assert_eq!(visible_cells("abcdefgh", 0, 6), "abcde›");
        assert_eq!(visible_cells("abcdefgh", 2, 6), "‹defgh");
        assert_eq!(visible_cells("abcdefghijk", 2, 6), "‹defg›");
        assert_eq!(visible_cells("a漢字x", 0, 5), "a漢 ›");
        assert_eq!(visible_cells("漢字x", 2, 4), "‹ x");
        assert_eq!(visible_cells("a漢字x", 1, 4), "‹  ›");
        // The cursor (at the text's end, or inside it) stays off the marks.
        assert_eq!(field_scroll(4, None, 9, 6), 0);
        assert_eq!(field_scroll(5, None, 9, 6), 1);
        assert_eq!(field_scroll(8, Some(5), 9, 6), 4);
        // At the text's end no `›` shows: the cursor may take the last cell.
        assert_eq!(field_scroll(9, None, 9, 6), 4);
    }

    #[test]
    fn a_paste_keeps_its_control_characters_as_escapes_in_strings_and_spaces_outside() {
        let mut keys = LineInput::default();
        keys.paste("1\n2\r\n'a\tb'\n", ", ");
        assert_eq!(keys.text, "1, 2, 'a\\tb'");
        keys.paste("\n3,\n4", ", ");
        assert_eq!(keys.text, "1, 2, 'a\\tb', 3, 4");
        let mut args = LineInput::new("'x', ");
        args.paste("{\"a\":\t1,\n \"b\": \"two\nlines\"}", " ");
        assert_eq!(args.text, "'x', {\"a\": 1,  \"b\": \"two\\nlines\"}");
        assert_eq!(args.cursor, args.text.chars().count());
        // The cursor inside a string: what is pasted is in it.
        let mut inside = LineInput::new("'ab'");
        inside.cursor = 2;
        inside.paste("\t'\\", " ");
        assert_eq!(inside.text, "'a\\t'\\b'");
    }

    #[test]
    fn a_paste_goes_in_at_the_cursor_without_its_line_ends() {
        let mut input = LineInput::new("'é', 5");
        input.cursor = 4;
        input.insert_str("'ü',\r\n 'b',");
        assert_eq!(input.text, "'é','ü', 'b', 5");
        assert_eq!(input.cursor, 13, "after what was pasted, in chars");
    }

    #[test]
    fn builds_the_call_or_says_which_field_is_wrong() {
        let mut form = ApplyForm::default();
        let (call, times) = form.call().unwrap();
        assert_eq!(call.module, "counter");
        assert_eq!(call.args.len(), 2);
        assert_eq!(call.key.set.as_deref(), Some("demo"));
        assert_eq!(times, 1);
        form.set(Field::Args, "'count', 5 x");
        let error = form.call().unwrap_err();
        assert_eq!(error.field, Field::Args);
        assert_eq!(error.column, Some(12));
        form.set(Field::Args, "");
        form.set(Field::Timeout, "soon");
        assert_eq!(form.call().unwrap_err().field, Field::Timeout);
    }

    #[test]
    fn a_bad_number_field_says_what_was_typed_and_what_it_takes() {
        let mut form = ApplyForm::default();
        for text in ["abc", "-5"] {
            form.set(Field::Timeout, text);
            let error = form.check_field(Field::Timeout).expect("an error");
            assert_eq!(
                error.message,
                format!(
                    "'{text}' is not a number of milliseconds \
                     (or leave it empty for the server's default)"
                )
            );
        }
        form.set(Field::Timeout, "");
        assert_eq!(form.check_field(Field::Timeout), None);
        form.set(Field::Rps, "fast");
        let error = form.check_field(Field::Rps).expect("an error");
        assert!(
            error
                .message
                .starts_with("'fast' is not a number of records per second"),
            "{}",
            error.message
        );
    }

    #[test]
    fn keys_parse_with_the_column_of_a_problem() {
        assert_eq!(
            parse_keys(" 'a', 7 , x'0a'").unwrap(),
            vec![Value::from("a"), Value::Int(7), Value::Blob(vec![10])]
        );
        let column = |text| parse_keys(text).unwrap_err().column;
        assert_eq!(column("'a', [1]"), 6);
        assert_eq!(column("'a' 'b'"), 5);
        assert_eq!(column("'a', "), 6);
        assert_eq!(column(""), 1);
        assert_eq!(column("'a', 'b"), 6);
        assert_eq!(
            bin_names(" a , b").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert_eq!(bin_names("").unwrap(), None);
        assert_eq!(bin_names("a,,b").unwrap_err().0, 3);
    }

    #[test]
    fn namespace_and_set_are_checked_as_the_command_line_checks_them() {
        let mut form = ApplyForm::default();
        form.set(Field::Namespace, "'ключ', '日本'");
        let error = form.check().unwrap();
        assert_eq!(error.field, Field::Namespace);
        assert!(error.message.contains("contains ','"), "{error:?}");
        form.set(Field::Namespace, "test.x");
        let error = form.check().unwrap();
        assert_eq!(error.field, Field::Namespace);
        assert!(
            error
                .message
                .contains("a namespace name takes no spaces or '.'"),
            "{error:?}"
        );
        form.set(Field::Namespace, "test");
        // Clients name sets: one with a space may exist, so only what the
        // info commands cannot carry is refused.
        form.set(Field::Set, "my set");
        assert_eq!(form.check(), None);
        form.set(Field::Set, "a:b");
        let error = form.check().unwrap();
        assert_eq!(error.field, Field::Set);
        assert!(error.message.contains("contains ':'"), "{error:?}");
        form.set(Field::Set, &"s".repeat(64));
        assert!(
            form.check()
                .unwrap()
                .message
                .contains("longer than 63 bytes")
        );
        form.set(Field::Set, "");
        assert_eq!(form.check(), None, "no set: the whole namespace");
    }

    #[test]
    fn each_kind_checks_only_its_own_fields() {
        let mut form = ApplyForm::default();
        form.set(Field::Key, "[1");
        form.set_kind(FormKind::Query);
        assert_eq!(form.check(), None, "the record key is not a query's field");
        form.set(Field::MaxRecords, "0");
        let error = form.check().unwrap();
        assert_eq!(error.field, Field::MaxRecords);
        assert_eq!(
            error.message,
            "'0' is not a count of records (or leave it empty for all)"
        );
        form.set(Field::MaxRecords, "");
        form.set(Field::Where, "n BETWEEN 1");
        let error = form.request().unwrap_err();
        assert_eq!((error.field, error.column), (Field::Where, Some(12)));
        form.set_kind(FormKind::Background);
        form.set(Field::Where, "");
        form.set(Field::Rps, "fast");
        assert_eq!(form.check().unwrap().field, Field::Rps);
        // The record apply is still checked as a record apply.
        assert_eq!(form.call().unwrap_err().field, Field::Key);
    }

    #[test]
    fn switching_kinds_keeps_the_focused_field_when_it_can() {
        let mut form = ApplyForm::default();
        form.focus_field(Field::Function);
        form.set_kind(FormKind::Aggregate);
        assert_eq!(form.focused_field(), Field::Function);
        form.set_kind(FormKind::Query);
        assert_eq!(form.focused_field(), Field::Namespace);
        assert_eq!(FormKind::Batch.next(), FormKind::Record);
    }

    #[test]
    fn forms_saved_before_the_kinds_come_back_as_record_forms() {
        let old = r#"[{"values":["test","demo","'k9'","counter","increment","","","1"],"with_record":true}]"#;
        let mut form = ApplyForm::default();
        form.restore(serde_json::from_str(old).unwrap());
        assert_eq!(form.kind, FormKind::Record);
        assert_eq!(form.value(Field::Key), "'k9'");
        assert_eq!(form.value(Field::MaxRecords), "1000");
    }

    #[test]
    fn history_recalls_recent_forms() {
        let mut form = ApplyForm::default();
        form.remember();
        form.set(Field::Args, "'count', 3");
        form.remember();
        form.set(Field::Args, "typing");
        form.recall(-1);
        assert_eq!(form.value(Field::Args), "'count', 3");
        form.recall(-1);
        assert_eq!(form.value(Field::Args), "'count', 5");
        form.recall(1);
        assert_eq!(form.value(Field::Args), "'count', 3");

        // A saved history comes back with the latest form filled in.
        let json = serde_json::to_string(&form.history).unwrap();
        let mut next = ApplyForm::default();
        next.restore(serde_json::from_str(&json).unwrap());
        assert_eq!(next.history.len(), 2);
        assert_eq!(next.value(Field::Args), "'count', 3");
    }
}

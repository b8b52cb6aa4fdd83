//! The apply form: where the call goes and what it sends, checked as you type.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};

use crate::client::{ApplyCall, RecordKey};
use crate::tui::literal::{self, LiteralError};
use crate::tui::theme::Theme;

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
}

pub const FIELDS: [Field; 8] = [
    Field::Namespace,
    Field::Set,
    Field::Key,
    Field::Module,
    Field::Function,
    Field::Args,
    Field::Timeout,
    Field::Times,
];

impl Field {
    fn label(self) -> &'static str {
        match self {
            Field::Namespace => "namespace",
            Field::Set => "set",
            Field::Key => "key",
            Field::Module => "module",
            Field::Function => "function",
            Field::Args => "args",
            Field::Timeout => "timeout ms",
            Field::Times => "run times",
        }
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
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
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

    pub fn insert_str(&mut self, text: &str) {
        for c in text.chars().filter(|c| !c.is_control()) {
            let at = self.byte_at(self.cursor);
            self.text.insert(at, c);
            self.cursor += 1;
        }
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
}

#[derive(Debug, Clone)]
pub struct ApplyForm {
    pub inputs: Vec<LineInput>,
    pub focus: usize,
    pub with_record: bool,
    pub picker: Option<Picker>,
    pub history: Vec<FormSnapshot>,
    /// Position while walking the history (`None` = the live form).
    pub history_pos: Option<usize>,
}

impl Default for ApplyForm {
    fn default() -> Self {
        let defaults = [
            "test",
            "demo",
            "'k1'",
            "counter",
            "increment",
            "'count', 5",
            "",
            "1",
        ];
        ApplyForm {
            inputs: defaults.iter().map(|d| LineInput::new(d)).collect(),
            focus: 5,
            with_record: true,
            picker: None,
            history: Vec::new(),
            history_pos: None,
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

impl ApplyForm {
    pub fn value(&self, field: Field) -> &str {
        &self.inputs[FIELDS.iter().position(|f| *f == field).unwrap_or(0)].text
    }

    pub fn set(&mut self, field: Field, text: &str) {
        let index = FIELDS.iter().position(|f| *f == field).unwrap_or(0);
        self.inputs[index] = LineInput::new(text);
    }

    pub fn focused_field(&self) -> Field {
        FIELDS[self.focus]
    }

    pub fn move_focus(&mut self, delta: isize) {
        let n = FIELDS.len() as isize;
        self.focus = ((self.focus as isize + delta).rem_euclid(n)) as usize;
    }

    pub fn input(&mut self, key: &KeyEvent) -> bool {
        self.history_pos = None;
        self.inputs[self.focus].input(key)
    }

    /// The first problem in the form, checked field by field.
    pub fn check(&self) -> Option<FieldError> {
        let bad = |field, column, message: String| {
            Some(FieldError {
                field,
                column,
                message,
            })
        };
        let from_literal = |field, e: LiteralError| bad(field, Some(e.column), e.message);
        if self.value(Field::Namespace).trim().is_empty() {
            return bad(Field::Namespace, None, "a namespace is needed".into());
        }
        if let Err(e) = literal::parse_value(self.value(Field::Key)) {
            return from_literal(Field::Key, e);
        }
        if self.value(Field::Module).trim().is_empty() {
            return bad(Field::Module, None, "a module is needed".into());
        }
        if self.value(Field::Function).trim().is_empty() {
            return bad(Field::Function, None, "a function is needed".into());
        }
        if let Err(e) = literal::parse_args(self.value(Field::Args)) {
            return from_literal(Field::Args, e);
        }
        let timeout = self.value(Field::Timeout).trim();
        if !timeout.is_empty() && timeout.parse::<u32>().is_err() {
            return bad(
                Field::Timeout,
                None,
                "milliseconds, or empty for the server's".into(),
            );
        }
        match self.value(Field::Times).trim().parse::<u32>() {
            Ok(n) if (1..=100_000).contains(&n) => None,
            _ => bad(Field::Times, None, "a count from 1 to 100000".into()),
        }
    }

    /// The call the form describes, or its first problem.
    pub fn call(&self) -> Result<(ApplyCall, u32), FieldError> {
        if let Some(error) = self.check() {
            return Err(error);
        }
        let set = self.value(Field::Set).trim();
        let module = self.value(Field::Module).trim();
        let module = module.strip_suffix(".lua").unwrap_or(module);
        let timeout = self.value(Field::Timeout).trim();
        let call = ApplyCall {
            key: RecordKey {
                ns: self.value(Field::Namespace).trim().to_string(),
                set: (!set.is_empty()).then(|| set.to_string()),
                key: literal::parse_value(self.value(Field::Key)).unwrap_or(aerospike::Value::Nil),
            },
            module: module.to_string(),
            function: self.value(Field::Function).trim().to_string(),
            args: literal::parse_args(self.value(Field::Args)).unwrap_or_default(),
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
        // kind and where: `sample.kind` and `sample.where_clause` go here.
        self.history_pos = None;
    }

    pub fn snapshot(&self) -> FormSnapshot {
        FormSnapshot {
            values: self.inputs.iter().map(|i| i.text.clone()).collect(),
            with_record: self.with_record,
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

    /// Steps through recent forms: -1 older, +1 newer.
    /// Loads a saved history; the most recent form fills the form.
    pub fn restore(&mut self, history: Vec<FormSnapshot>) {
        let usable: Vec<FormSnapshot> = history
            .into_iter()
            .filter(|s| s.values.len() == FIELDS.len())
            .collect();
        self.history = usable;
        if !self.history.is_empty() {
            self.recall(-1);
            self.history_pos = None;
        }
    }

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
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, theme: Theme, focused: bool) {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(" 3 Apply ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let label_width = 11;
        let error = self.check();
        let mut lines: Vec<Line> = Vec::new();
        for (i, field) in FIELDS.iter().enumerate() {
            let label_style = if focused && i == self.focus {
                theme.key()
            } else {
                theme.dim()
            };
            let mut spans = vec![
                Span::styled(
                    format!("{:>w$} ", field.label(), w = label_width - 1),
                    label_style,
                ),
                Span::raw(self.inputs[i].text.clone()),
            ];
            if error.as_ref().is_some_and(|e| e.field == *field) {
                spans.push(Span::styled(" ✗", theme.error()));
            }
            if matches!(field, Field::Module | Field::Function) && focused && i == self.focus {
                spans.push(Span::styled("  ⏎ pick", theme.dim()));
            }
            lines.push(Line::from(spans));
        }
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
        if let Some(e) = &error {
            let text = match e.column {
                Some(column) => format!("{}: column {column}: {}", e.field.label(), e.message),
                None => format!("{}: {}", e.field.label(), e.message),
            };
            if let Some(column) = e.column {
                let field_row = FIELDS.iter().position(|f| *f == e.field).unwrap_or(0);
                if field_row + 1 < lines.len() && self.focus == field_row {
                    lines.insert(
                        field_row + 1,
                        Line::styled(
                            format!("{}^", " ".repeat(label_width + column - 1)),
                            theme.error(),
                        ),
                    );
                }
            }
            lines.push(Line::styled(text, theme.error()));
        }
        frame.render_widget(Paragraph::new(lines), inner);
        if focused && self.picker.is_none() {
            let input = &self.inputs[self.focus];
            let x = inner.x + label_width as u16 + input.cursor as u16;
            let y = inner.y + self.focus as u16;
            if x < inner.right() && y < inner.bottom() {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
        if let Some(picker) = &self.picker {
            let row = FIELDS.iter().position(|f| *f == picker.field).unwrap_or(0) as u16;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! The one keymap table: it dispatches keys, and the help overlay and the
//! key-hint bar are generated from it. A user file (TOML) overrides the keys
//! of any command:
//!
//! ```toml
//! run = ["F5", "Ctrl-J"]
//! register = "Ctrl-R"
//! ```

use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere, text widgets included (keys that never type a character).
    Global,
    /// Only when the focused pane is not a text widget (`q`, `?`).
    OutsideText,
    Modules,
    Editor,
    Apply,
    Results,
    /// The modules pane showing the indexes list.
    Indexes,
    /// The samples list overlay.
    Samples,
    /// The jobs list overlay.
    Jobs,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::OutsideText => "Outside text",
            Scope::Modules => "Modules",
            Scope::Editor => "Editor",
            Scope::Apply => "Apply form",
            Scope::Results => "Results",
            Scope::Indexes => "Indexes (in the modules pane)",
            Scope::Samples => "Samples list",
            Scope::Jobs => "Jobs list",
        }
    }
}

macro_rules! commands {
    ($($name:ident = $id:literal, $text:literal;)*) => {
        /// Everything a key can ask for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Command { $($name),* }

        impl Command {
            /// The name used in the user keymap file.
            pub fn id(self) -> &'static str {
                match self { $(Command::$name => $id),* }
            }
            pub fn describe(self) -> &'static str {
                match self { $(Command::$name => $text),* }
            }
            /// The first word of the description, for the hint bar.
            pub fn short(self) -> &'static str {
                self.describe().split(' ').next().unwrap_or("")
            }
            pub fn from_id(id: &str) -> Option<Command> {
                match id { $($id => Some(Command::$name),)* _ => None }
            }
        }
    };
}

commands! {
    Quit = "quit", "quit (asks if unsaved)";
    Help = "help", "help";
    NextPane = "next-pane", "next pane";
    PrevPane = "prev-pane", "previous pane";
    FocusModules = "focus-modules", "modules pane";
    FocusEditor = "focus-editor", "editor";
    FocusApply = "focus-apply", "apply form";
    FocusResults = "focus-results", "results";
    Run = "run", "run the apply";
    Cancel = "cancel", "cancel the call in flight, abort a running job";
    Save = "save", "save the buffer";
    Register = "register", "register the buffer";
    Open = "open", "open a file";
    Search = "search", "search";
    SearchNext = "search-next", "next match";
    Undo = "undo", "undo";
    Redo = "redo", "redo";
    Refresh = "refresh", "refresh modules";
    OpenModule = "open-module", "open in editor";
    DeleteModule = "delete-module", "remove module";
    Up = "up", "up";
    Down = "down", "down";
    Complete = "complete", "complete a name, else next field";
    NextField = "next-field", "next field";
    PrevField = "prev-field", "previous field";
    Pick = "pick", "pick module/function";
    ToggleRecord = "toggle-record", "record view on/off";
    HistoryPrev = "history-prev", "recall the previous form";
    HistoryNext = "history-next", "next form";
    Expand = "expand", "fold/expand result";
    CopyResult = "copy-result", "copy result (JSON)";
    SaveResults = "save-results", "save results (JSON)";
    SaveTest = "save-test", "test file from the calls (marked, else all)";
    MarkResult = "mark-result", "mark a call for the test file";
    ClearResults = "clear-results", "clear results";
    Theme = "theme", "dark/light theme";
    NextProblem = "next-problem", "next lint problem";
    PrevProblem = "prev-problem", "previous lint problem";
    ToggleIndexes = "toggle-indexes", "indexes/modules list";
    CreateIndex = "create-index", "create an index";
    DropIndex = "drop-index", "drop the index";
    Samples = "samples", "samples list";
    LoadSample = "load-sample", "load the sample (module, records, index)";
    Jobs = "jobs", "jobs list";
    AbortJob = "abort-job", "abort the running job";
    Kind = "kind", "kind of run (record … batch)";
    RowsDown = "rows-down", "scroll the selected result's rows down";
    RowsUp = "rows-up", "scroll the selected result's rows up";
}

/// The last function key terminals send (xterm's Shift-F12 is F24).
const MAX_F: u8 = 24;

/// A key with its modifiers, as written in the keymap ("Ctrl-S", "F5", "Alt-Enter").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Chord {
    pub fn from_event(key: &KeyEvent) -> Chord {
        let mut mods =
            key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let mut code = key.code;
        // Shift is part of the character itself ('?', 'Q'); BackTab is Shift-Tab.
        if let KeyCode::Char(c) = code {
            mods.remove(KeyModifiers::SHIFT);
            if mods.contains(KeyModifiers::CONTROL) {
                code = KeyCode::Char(c.to_ascii_lowercase());
            }
        }
        if code == KeyCode::BackTab {
            mods.insert(KeyModifiers::SHIFT);
            code = KeyCode::Tab;
        }
        Chord { code, mods }
    }

    pub fn parse(text: &str) -> Result<Chord, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = text.trim();
        loop {
            let lower = rest.to_ascii_lowercase();
            let (prefix, m) = if lower.starts_with("ctrl-") {
                (5, KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") {
                (4, KeyModifiers::ALT)
            } else if lower.starts_with("shift-") {
                (6, KeyModifiers::SHIFT)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[prefix..];
        }
        if rest.is_empty() {
            return Err(if text.trim().is_empty() {
                "an empty key name".to_string()
            } else {
                format!("incomplete key '{text}': no key after the modifiers")
            });
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" => KeyCode::Insert,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "space" => KeyCode::Char(' '),
            f if f.len() > 1
                && f.starts_with('f')
                && f[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                match f[1..].parse::<u8>() {
                    Ok(n) if (1..=MAX_F).contains(&n) => KeyCode::F(n),
                    _ => {
                        return Err(format!(
                            "no such key '{text}': function keys go from F1 to F{MAX_F}"
                        ));
                    }
                }
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    }),
                    _ => return Err(format!("unknown key '{text}'")),
                }
            }
        };
        Ok(Chord { code, mods })
    }

    /// A key that types a character into a text widget.
    pub fn is_printable(&self) -> bool {
        matches!(self.code, KeyCode::Char(_))
            && !self
                .mods
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    }
}

impl fmt::Display for Chord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("Ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("Alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("Shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.mods.contains(KeyModifiers::CONTROL) => {
                write!(f, "{}", c.to_ascii_uppercase())
            }
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "F{n}"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub chord: Chord,
    pub command: Command,
    pub scope: Scope,
    /// Shown in the key-hint bar (the first key of a command only).
    pub hint: bool,
}

#[derive(Debug, Clone)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

/// The default table: (keys, command, scope, in the hint bar).
const DEFAULTS: &[(&[&str], Command, Scope, bool)] = &[
    (&["F1"], Command::Help, Scope::Global, true),
    (&["Ctrl-C"], Command::Quit, Scope::Global, true),
    (&["F6"], Command::NextPane, Scope::Global, true),
    (&["Shift-F6"], Command::PrevPane, Scope::Global, false),
    (&["Alt-1"], Command::FocusModules, Scope::Global, false),
    (&["Alt-2"], Command::FocusEditor, Scope::Global, false),
    (&["Alt-3"], Command::FocusApply, Scope::Global, false),
    (&["Alt-4"], Command::FocusResults, Scope::Global, false),
    (
        &["F5", "Ctrl-J", "Alt-Enter", "Ctrl-Enter"],
        Command::Run,
        Scope::Global,
        true,
    ),
    (&["F8"], Command::Kind, Scope::Global, true),
    (&["Ctrl-K"], Command::Cancel, Scope::Global, true),
    (&["Ctrl-S"], Command::Save, Scope::Global, true),
    (&["F9", "Ctrl-R"], Command::Register, Scope::Global, true),
    (&["Ctrl-O"], Command::Open, Scope::Global, false),
    (&["Ctrl-T"], Command::ToggleRecord, Scope::Global, false),
    (&["F7"], Command::SaveTest, Scope::Global, true),
    (&["?"], Command::Help, Scope::OutsideText, false),
    (&["q"], Command::Quit, Scope::OutsideText, false),
    (&["Ctrl-F"], Command::Search, Scope::Editor, true),
    (&["F3", "Ctrl-G"], Command::SearchNext, Scope::Editor, false),
    (&["Ctrl-Z"], Command::Undo, Scope::Editor, false),
    (&["Ctrl-Y"], Command::Redo, Scope::Editor, false),
    (&["Up", "k"], Command::Up, Scope::Modules, false),
    (&["Down", "j"], Command::Down, Scope::Modules, false),
    (&["Enter"], Command::OpenModule, Scope::Modules, true),
    (
        &["Delete", "d"],
        Command::DeleteModule,
        Scope::Modules,
        true,
    ),
    (&["r"], Command::Refresh, Scope::Modules, true),
    (&["Tab"], Command::Complete, Scope::Apply, true),
    (&["Down"], Command::NextField, Scope::Apply, false),
    (
        &["Shift-Tab", "Up"],
        Command::PrevField,
        Scope::Apply,
        false,
    ),
    (&["Enter"], Command::Pick, Scope::Apply, true),
    (
        &["Alt-Up", "Ctrl-P"],
        Command::HistoryPrev,
        Scope::Apply,
        true,
    ),
    (
        &["Alt-Down", "Ctrl-N"],
        Command::HistoryNext,
        Scope::Apply,
        false,
    ),
    (&["Up", "k"], Command::Up, Scope::Results, false),
    (&["Down", "j"], Command::Down, Scope::Results, false),
    (&["Enter"], Command::Expand, Scope::Results, true),
    (&["c"], Command::CopyResult, Scope::Results, true),
    (&["s"], Command::SaveResults, Scope::Results, true),
    (&["x"], Command::ClearResults, Scope::Results, false),
    (&["Space", "m"], Command::MarkResult, Scope::Results, false),
    (&["t"], Command::Theme, Scope::OutsideText, false),
    (&["F4"], Command::NextProblem, Scope::Global, false),
    (&["Shift-F4"], Command::PrevProblem, Scope::Global, false),
    (&["F2"], Command::Samples, Scope::Global, true),
    (&["F12"], Command::Jobs, Scope::Global, true),
    (&["i"], Command::ToggleIndexes, Scope::Modules, true),
    (&["i"], Command::ToggleIndexes, Scope::Indexes, true),
    (&["Up", "k"], Command::Up, Scope::Indexes, false),
    (&["Down", "j"], Command::Down, Scope::Indexes, false),
    (&["n"], Command::CreateIndex, Scope::Indexes, true),
    (&["Delete", "d"], Command::DropIndex, Scope::Indexes, true),
    (&["r"], Command::Refresh, Scope::Indexes, true),
    (&["Up", "k"], Command::Up, Scope::Samples, false),
    (&["Down", "j"], Command::Down, Scope::Samples, false),
    (&["Enter"], Command::LoadSample, Scope::Samples, true),
    (&["Up", "k"], Command::Up, Scope::Jobs, false),
    (&["Down", "j"], Command::Down, Scope::Jobs, false),
    (&["a", "Delete"], Command::AbortJob, Scope::Jobs, true),
    (&["r"], Command::Refresh, Scope::Jobs, true),
    (&["PageDown"], Command::RowsDown, Scope::Results, false),
    (&["PageUp"], Command::RowsUp, Scope::Results, false),
];

impl Default for Keymap {
    fn default() -> Keymap {
        let mut bindings = Vec::new();
        for (keys, command, scope, hint) in DEFAULTS {
            for (i, key) in keys.iter().enumerate() {
                bindings.push(Binding {
                    chord: Chord::parse(key).expect("default keys parse"),
                    command: *command,
                    scope: *scope,
                    hint: *hint && i == 0,
                });
            }
        }
        Keymap { bindings }
    }
}

/// Why a keymap file is not used: where (1-based line and column, in
/// characters) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl FileError {
    /// The error at byte `offset` of `text`.
    fn at(text: &str, offset: usize, message: String) -> FileError {
        let at = crate::testing::format::Pos::at(text, offset);
        FileError {
            line: at.line,
            column: at.column,
            message,
        }
    }
}

impl Keymap {
    /// The keymap of a user file, else the default one with why the file
    /// was not used (its path, line and column); no file is no error.
    pub fn load(path: &std::path::Path) -> (Keymap, Option<String>) {
        let Ok(text) = std::fs::read_to_string(path) else {
            return (Keymap::default(), None);
        };
        match Keymap::with_overrides(&text) {
            Ok(map) => (map, None),
            Err(e) => (
                Keymap::default(),
                Some(format!("{}:{e}; default keys used", path.display())),
            ),
        }
    }

    /// The defaults with the keys of the commands named in `toml_text`
    /// replaced. Any mistake in the file is an error (the caller then uses
    /// the defaults), so a key never silently does nothing.
    pub fn with_overrides(toml_text: &str) -> Result<Keymap, FileError> {
        use toml::de::{DeTable, DeValue};
        let error = |offset: usize, message: String| FileError::at(toml_text, offset, message);
        let table = DeTable::parse(toml_text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            error(offset, e.message().to_string())
        })?;
        // In the file's order, so the first mistake is the one named.
        let mut entries: Vec<_> = table.into_inner().into_iter().collect();
        entries.sort_by_key(|(id, _)| id.span().start);
        let mut keymap = Keymap::default();
        let mut user: Vec<Binding> = Vec::new();
        for (id, value) in entries {
            let (id, id_at) = (id.get_ref().as_ref(), id.span().start);
            let command = Command::from_id(id)
                .ok_or_else(|| error(id_at, format!("unknown command '{id}'")))?;
            let names = match value.get_ref() {
                DeValue::String(_) => vec![&value],
                DeValue::Array(items) => items.iter().collect(),
                _ => {
                    let message = format!("'{id}' takes a key or a list of keys");
                    return Err(error(value.span().start, message));
                }
            };
            let mut keys = Vec::new();
            for name in names {
                let DeValue::String(text) = name.get_ref() else {
                    let message = format!("'{id}' takes key names (strings)");
                    return Err(error(name.span().start, message));
                };
                let chord = Chord::parse(text).map_err(|e| error(name.span().start, e))?;
                keys.push((chord, name.span().start));
            }
            if keys.is_empty() {
                let message = format!("'{id}' has no keys left: give it at least one");
                return Err(error(value.span().start, message));
            }
            let old: Vec<Binding> = keymap
                .bindings
                .iter()
                .filter(|b| b.command == command)
                .cloned()
                .collect();
            let scopes: Vec<(Scope, bool)> = {
                let mut s: Vec<(Scope, bool)> = Vec::new();
                for b in &old {
                    if !s.iter().any(|(scope, _)| *scope == b.scope) {
                        s.push((b.scope, old.iter().any(|o| o.scope == b.scope && o.hint)));
                    }
                }
                s
            };
            keymap.bindings.retain(|b| b.command != command);
            for (scope, hint) in scopes {
                for (i, &(chord, at)) in keys.iter().enumerate() {
                    // Where both could be pressed, one key would do only
                    // the first command found.
                    let meet = |other: Scope| {
                        other == scope || other == Scope::Global || scope == Scope::Global
                    };
                    if let Some(other) = user
                        .iter()
                        .find(|u| u.chord == chord && u.command != command && meet(u.scope))
                    {
                        let other = other.command.id();
                        let message = format!("{chord} is given to both '{other}' and '{id}'");
                        return Err(error(at, message));
                    }
                    user.push(Binding {
                        chord,
                        command,
                        scope,
                        hint: hint && i == 0,
                    });
                }
            }
        }
        // A key the user gives a command is taken from the default that had it.
        keymap.bindings.retain(|b| {
            !user
                .iter()
                .any(|u| u.scope == b.scope && u.chord == b.chord)
        });
        keymap.bindings.extend(user);
        // A command's new keys take its old place in the table (hints, help).
        let defaults = Keymap::default().bindings;
        let rank = |b: &Binding| {
            defaults
                .iter()
                .position(|d| d.command == b.command && d.scope == b.scope)
        };
        keymap.bindings.sort_by_key(rank);
        Ok(keymap)
    }

    /// The command for `key` in a pane; printable keys in a text widget are
    /// never commands.
    pub fn lookup(&self, key: &KeyEvent, pane: Scope, in_text: bool) -> Option<Command> {
        let chord = Chord::from_event(key);
        if in_text && chord.is_printable() {
            return None;
        }
        let find = |scope: Scope| {
            self.bindings
                .iter()
                .find(|b| b.scope == scope && b.chord == chord)
                .map(|b| b.command)
        };
        find(Scope::Global).or_else(|| find(pane)).or_else(|| {
            if in_text {
                None
            } else {
                find(Scope::OutsideText)
            }
        })
    }

    /// The command for `key` in an overlay's own scope only: global keys
    /// do not reach past an open list.
    pub fn lookup_only(&self, key: &KeyEvent, scope: Scope) -> Option<Command> {
        let chord = Chord::from_event(key);
        self.bindings
            .iter()
            .find(|b| b.scope == scope && b.chord == chord)
            .map(|b| b.command)
    }

    /// The first key of a command, for messages ("press F5 to run").
    pub fn key_for(&self, command: Command) -> Option<Chord> {
        self.bindings
            .iter()
            .find(|b| b.command == command)
            .map(|b| b.chord)
    }

    /// Hints for the bar: the pane's own first, then the global ones.
    pub fn hints(&self, pane: Scope) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for scope in [pane, Scope::Global] {
            for b in self.bindings.iter().filter(|b| b.scope == scope && b.hint) {
                out.push((b.chord.to_string(), b.command.short()));
            }
        }
        out
    }

    /// Rows for the help overlay: scope, keys joined, description.
    pub fn help_rows(&self) -> Vec<(Scope, String, &'static str)> {
        let mut rows: Vec<(Scope, String, &'static str)> = Vec::new();
        let scopes = [
            Scope::Global,
            Scope::OutsideText,
            Scope::Modules,
            Scope::Editor,
            Scope::Apply,
            Scope::Results,
            Scope::Indexes,
            Scope::Samples,
            Scope::Jobs,
        ];
        for scope in scopes {
            let mut seen: Vec<Command> = Vec::new();
            for b in self.bindings.iter().filter(|b| b.scope == scope) {
                if seen.contains(&b.command) {
                    continue;
                }
                seen.push(b.command);
                let keys: Vec<String> = self
                    .bindings
                    .iter()
                    .filter(|o| o.scope == scope && o.command == b.command)
                    .map(|o| o.chord.to_string())
                    .collect();
                let text = match (b.command, scope) {
                    (Command::Refresh, Scope::Jobs) => "refresh the jobs list",
                    (Command::Refresh, Scope::Indexes) => "refresh indexes and modules",
                    (command, _) => command.describe(),
                };
                rows.push((scope, keys.join(" "), text));
            }
            if scope == Scope::Editor {
                rows.extend(self.editing_rows());
            }
        }
        rows
    }

    /// The editor's own keys, from its table, less those this keymap
    /// takes first (they never reach the editor).
    fn editing_rows(&self) -> Vec<(Scope, String, &'static str)> {
        use crate::tui::panes::editor::buffer::{KEYS, table_chord};
        let taken = |name: &str| {
            let chord = Chord::parse(name).expect("editing keys parse");
            let chord = table_chord(chord.code, chord.mods);
            self.bindings.iter().any(|b| {
                matches!(b.scope, Scope::Global | Scope::Editor)
                    && table_chord(b.chord.code, b.chord.mods) == chord
            })
        };
        let mut rows = Vec::new();
        for (names, _, text) in KEYS {
            let free: Vec<&str> = names.iter().copied().filter(|n| !taken(n)).collect();
            if !free.is_empty() {
                rows.push((Scope::Editor, free.join(" "), *text));
            }
        }
        rows.push((Scope::Editor, "Shift with a move".to_string(), "select"));
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn printable_keys_go_to_text_widgets() {
        let map = Keymap::default();
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(map.lookup(&q, Scope::Editor, true), None);
        assert_eq!(map.lookup(&q, Scope::Modules, false), Some(Command::Quit));
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            map.lookup(&ctrl_c, Scope::Editor, true),
            Some(Command::Quit)
        );
        let shifted = key(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(
            map.lookup(&shifted, Scope::Results, false),
            Some(Command::Help)
        );
        let back_tab = key(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(
            map.lookup(&back_tab, Scope::Apply, true),
            Some(Command::PrevField)
        );
    }

    #[test]
    fn user_file_overrides_keys() {
        let map = Keymap::with_overrides("run = ['F8']\nregister = 'Ctrl-E'").unwrap();
        let f8 = key(KeyCode::F(8), KeyModifiers::NONE);
        let f5 = key(KeyCode::F(5), KeyModifiers::NONE);
        assert_eq!(map.lookup(&f8, Scope::Editor, true), Some(Command::Run));
        assert_eq!(map.lookup(&f5, Scope::Editor, true), None);
        assert!(
            map.hints(Scope::Editor)
                .contains(&("F8".to_string(), "run"))
        );
        assert!(map.help_rows().iter().any(|(_, keys, _)| keys == "Ctrl-E"));
        assert!(
            Keymap::with_overrides("fly = 'F2'")
                .unwrap_err()
                .message
                .contains("fly")
        );
        assert!(Keymap::with_overrides("run = 'Hyper-X'").is_err());
    }

    #[test]
    fn a_mistake_in_the_file_names_its_line_and_column() {
        let error = |text: &str| Keymap::with_overrides(text).unwrap_err().to_string();
        assert_eq!(
            error("save = 'Ctrl-S'\nrun = [\"F10\""),
            "2:13: unclosed array, expected `]`"
        );
        assert_eq!(
            error("run = []"),
            "1:7: 'run' has no keys left: give it at least one"
        );
        assert_eq!(
            error("run = \"F99\""),
            "1:7: no such key 'F99': function keys go from F1 to F24"
        );
        assert_eq!(
            error("run = ['F5', 'Ctrl-Shift-']"),
            "1:14: incomplete key 'Ctrl-Shift-': no key after the modifiers"
        );
        assert_eq!(
            error("run = \"F10\"\nsave = \"F10\""),
            "2:8: F10 is given to both 'run' and 'save'"
        );
        assert_eq!(error("\n  fly = 'F2'"), "2:3: unknown command 'fly'");
        // Keys that meet only in different panes are fine.
        assert!(Keymap::with_overrides("expand = 'F10'\nsearch = 'F10'").is_ok());
    }

    #[test]
    fn a_file_with_a_mistake_is_named_and_the_default_keys_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keymap.toml");
        std::fs::write(&path, "run = [\"F10\"\nsave = 'F2'\n").unwrap();
        let (map, error) = Keymap::load(&path);
        assert_eq!(
            error.unwrap(),
            format!(
                "{}:2:1: missing comma between array elements, expected `,`; default keys used",
                path.display()
            )
        );
        assert_eq!(
            map.key_for(Command::Run),
            Keymap::default().key_for(Command::Run)
        );
        let (_, error) = Keymap::load(&dir.path().join("absent.toml"));
        assert_eq!(error, None);
    }

    #[test]
    fn a_key_the_user_gives_a_command_leaves_its_default_one() {
        let map = Keymap::with_overrides("run = 'F2'").unwrap();
        let f2 = key(KeyCode::F(2), KeyModifiers::NONE);
        assert_eq!(map.lookup(&f2, Scope::Editor, true), Some(Command::Run));
        assert_eq!(map.key_for(Command::Samples), None);
    }

    #[test]
    fn an_open_list_sees_only_its_own_keys() {
        let map = Keymap::default();
        let a = key(KeyCode::Char('a'), KeyModifiers::NONE);
        let f5 = key(KeyCode::F(5), KeyModifiers::NONE);
        assert_eq!(map.lookup_only(&a, Scope::Jobs), Some(Command::AbortJob));
        assert_eq!(map.lookup_only(&f5, Scope::Jobs), None);
        assert_eq!(map.lookup(&f5, Scope::Jobs, false), Some(Command::Run));
        let i = key(KeyCode::Char('i'), KeyModifiers::NONE);
        assert_eq!(
            map.lookup(&i, Scope::Indexes, false),
            Some(Command::ToggleIndexes)
        );
        assert!(map.help_rows().iter().any(|(s, _, _)| *s == Scope::Samples));
    }

    #[test]
    fn help_lists_the_editing_keys_the_keymap_leaves_to_the_editor() {
        let rows = Keymap::default().help_rows();
        let editor = |keys: &str| {
            rows.iter()
                .find(|(s, k, _)| *s == Scope::Editor && k.split(' ').any(|k| k == keys))
                .map(|(_, k, text)| (k.clone(), *text))
        };
        assert_eq!(editor("Ctrl-X").unwrap().1, "cut the selection");
        assert!(editor("Alt-W").is_some() && editor("Alt-Y").is_some());
        assert!(editor("Ctrl-W").is_some() && editor("Alt-Backspace").is_some());
        assert!(editor("Alt-D").is_some() && editor("Ctrl-Home").is_some());
        assert!(editor("Ctrl-Up").is_some() && editor("Alt-F").is_some());
        assert!(editor("Ctrl-Z").is_some() && editor("Ctrl-Y").is_some());
        // Ctrl-F searches (the keymap's), so it is not listed as a move.
        assert_eq!(editor("Right").unwrap().0, "Right");
        assert_eq!(editor("Ctrl-F").unwrap().1, "search");
        assert!(editor("Ctrl-U").is_none());
        // A key the user file takes leaves the editing list too.
        let map = Keymap::with_overrides("save = 'Ctrl-X'").unwrap();
        assert!(
            !map.help_rows()
                .iter()
                .any(|(_, _, text)| *text == "cut the selection")
        );
    }

    #[test]
    fn chords_print_as_parsed() {
        for text in ["Ctrl-S", "F5", "Alt-Enter", "Shift-F6", "q", "Alt-1"] {
            assert_eq!(Chord::parse(text).unwrap().to_string(), text);
        }
    }
}

//! The one keymap table: it dispatches keys, and the help overlay and the
//! key-hint bar are generated from it. A user file (TOML) overrides the keys
//! of any command:
//!
//! ```toml
//! run = ["F5", "Ctrl-J"]
//! register = "Ctrl-R"
//! ```

use std::collections::HashMap;
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
            f if f.starts_with('f') && f.len() > 1 && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(0))
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

impl Keymap {
    /// The defaults with the keys of the commands named in `toml_text` replaced.
    pub fn with_overrides(toml_text: &str) -> Result<Keymap, String> {
        let table: HashMap<String, toml::Value> =
            toml::from_str(toml_text).map_err(|e| format!("keymap: {}", e.message()))?;
        let mut keymap = Keymap::default();
        let mut user: Vec<Binding> = Vec::new();
        for (id, keys) in table {
            let command =
                Command::from_id(&id).ok_or_else(|| format!("keymap: unknown command '{id}'"))?;
            let keys: Vec<String> = match keys {
                toml::Value::String(s) => vec![s],
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("keymap: '{id}' takes key names"))?,
                _ => return Err(format!("keymap: '{id}' takes a key or a list of keys")),
            };
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
                for (i, key) in keys.iter().enumerate() {
                    let chord = Chord::parse(key).map_err(|e| format!("keymap: {e}"))?;
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
        }
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
                .contains("fly")
        );
        assert!(Keymap::with_overrides("run = 'Hyper-X'").is_err());
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
    fn chords_print_as_parsed() {
        for text in ["Ctrl-S", "F5", "Alt-Enter", "Shift-F6", "q", "Alt-1"] {
            assert_eq!(Chord::parse(text).unwrap().to_string(), text);
        }
    }
}

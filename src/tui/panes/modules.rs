//! The modules pane: registered modules, their global functions, and how
//! each compares with the editor buffer.

use crate::tui::screen::Canvas;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::tui::panes::cut;
use crate::tui::theme::Theme;

/// A global function a module defines, with its parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub params: Vec<String>,
}

impl Function {
    pub fn signature(&self) -> String {
        format!("{}({})", self.name, self.params.join(", "))
    }
}

/// The global functions in Lua source: `function name(params)` and
/// `name = function(params)` at the start of a line, skipping `local` ones,
/// methods (`a.b`, `a:b`) and long comments.
pub fn global_functions(source: &str) -> Vec<Function> {
    let mut out = Vec::new();
    let mut in_long_comment = false;
    for raw in source.lines() {
        let line = raw.trim_start();
        if in_long_comment {
            if line.contains("]]") {
                in_long_comment = false;
            }
            continue;
        }
        if line.starts_with("--[[") || line.starts_with("--[=") {
            in_long_comment = !line.contains("]]");
            continue;
        }
        // Only top-level definitions: not indented.
        if raw.len() != line.len() {
            continue;
        }
        let (name, rest) = if let Some(rest) = line.strip_prefix("function ") {
            let rest = rest.trim_start();
            match rest.find('(') {
                Some(open) => (rest[..open].trim(), &rest[open..]),
                None => continue,
            }
        } else if let Some(eq) = line.find('=') {
            let (lhs, rhs) = (line[..eq].trim(), line[eq + 1..].trim_start());
            match rhs.strip_prefix("function") {
                Some(rest) if rest.trim_start().starts_with('(') => (lhs, rest.trim_start()),
                _ => continue,
            }
        } else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(close) = rest.find(')') else {
            continue;
        };
        let params = rest[1..close]
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        out.push(Function {
            name: name.to_string(),
            params,
        });
    }
    out
}

/// The registered file name for a module named with or without `.lua`.
pub fn module_file_name(name: &str) -> String {
    if name.ends_with(".lua") {
        name.to_string()
    } else {
        format!("{name}.lua")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    /// The registered source equals the editor buffer.
    Same,
    Differs,
    /// The source has not been fetched yet.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleEntry {
    pub name: String,
    pub hash: String,
    pub source: Option<String>,
    pub functions: Vec<Function>,
}

#[derive(Debug, Default)]
pub struct Modules {
    pub entries: Vec<ModuleEntry>,
    pub selected: usize,
    pub scroll: usize,
    /// A list request is in flight.
    pub loading: bool,
    pub loaded_once: bool,
    /// Counts changes to the list and its sources (see [`Editor::edits`]).
    ///
    /// [`Editor::edits`]: crate::tui::panes::editor::Editor::edits
    pub changes: u64,
}

impl Modules {
    /// Replaces the list, keeping sources whose hash did not change.
    pub fn set_list(&mut self, list: Vec<(String, String)>) {
        let mut entries: Vec<ModuleEntry> = list
            .into_iter()
            .map(|(name, hash)| {
                let kept = self
                    .entries
                    .iter()
                    .find(|e| e.name == name && e.hash == hash && e.source.is_some());
                match kept {
                    Some(e) => e.clone(),
                    None => ModuleEntry {
                        name,
                        hash,
                        source: None,
                        functions: Vec::new(),
                    },
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        self.entries = entries;
        self.changes += 1;
        self.selected = self.selected.min(self.entries.len().saturating_sub(1));
        self.loading = false;
        self.loaded_once = true;
    }

    pub fn set_source(&mut self, name: &str, source: String) {
        self.changes += 1;
        if let Some(entry) = self.entries.iter_mut().find(|e| e.name == name) {
            entry.functions = global_functions(&source);
            entry.source = Some(source);
        }
    }

    pub fn get(&self, name: &str) -> Option<&ModuleEntry> {
        let wanted = module_file_name(name);
        self.entries.iter().find(|e| e.name == wanted)
    }

    pub fn selected_entry(&self) -> Option<&ModuleEntry> {
        self.entries.get(self.selected)
    }

    /// How a module compares with the editor buffer (`None`: another module).
    pub fn badge(entry: &ModuleEntry, buffer_module: &str, buffer: &[String]) -> Option<Badge> {
        if entry.name != buffer_module {
            return None;
        }
        // Line by line, trailing blank lines aside, without copying either.
        fn trimmed<S: AsRef<str>>(lines: &[S]) -> &[S] {
            let mut n = lines.len();
            while n > 0 && lines[n - 1].as_ref().trim().is_empty() {
                n -= 1;
            }
            &lines[..n]
        }
        Some(match &entry.source {
            None => Badge::Unknown,
            Some(source) => {
                let registered: Vec<&str> = source.lines().collect();
                let (a, b) = (trimmed(&registered), trimmed(buffer));
                if a.len() == b.len() && a.iter().zip(b).all(|(r, l)| r == l) {
                    Badge::Same
                } else {
                    Badge::Differs
                }
            }
        })
    }

    pub fn move_selection(&mut self, delta: isize) {
        if self.entries.is_empty() {
            return;
        }
        let max = self.entries.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }

    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        &self,
        frame: &mut Canvas,
        area: Rect,
        theme: Theme,
        focused: bool,
        buffer_module: &str,
        buffer_badge: Option<Badge>,
    ) {
        let title = if self.loading {
            " 1 Modules … ".to_string()
        } else {
            format!(" 1 Modules ({}) ", self.entries.len())
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let mut lines: Vec<Line> = Vec::new();
        let mut selected_line = 0;
        for (i, entry) in self.entries.iter().enumerate() {
            if i == self.selected {
                selected_line = lines.len();
            }
            let mut spans = vec![Span::styled(
                cut(&entry.name, inner.width as usize),
                if i == self.selected && focused {
                    theme.selected()
                } else {
                    theme.accent()
                },
            )];
            let badge = (entry.name == buffer_module)
                .then_some(buffer_badge)
                .flatten();
            match badge {
                Some(Badge::Same) => spans.push(Span::styled(" =buffer", theme.ok())),
                Some(Badge::Differs) => spans.push(Span::styled(" ≠buffer", theme.warn())),
                _ => {}
            }
            lines.push(Line::from(spans));
            for f in &entry.functions {
                let signature = format!("  {}", f.signature());
                lines.push(Line::from(cut(&signature, inner.width as usize)));
            }
        }
        if !self.entries.iter().any(|e| e.name == buffer_module) {
            if !lines.is_empty() {
                lines.push(Line::from(""));
            }
            lines.push(Line::styled(buffer_module.to_string(), theme.dim()));
            lines.push(Line::styled("  not registered", theme.warn()));
        }
        if self.entries.is_empty() && self.loaded_once {
            lines.insert(0, Line::styled("(none registered)", theme.dim()));
        }
        let rows = inner.height as usize;
        let scroll = if selected_line >= self.scroll + rows.max(1) {
            selected_line + 1 - rows.max(1)
        } else {
            self.scroll.min(selected_line)
        };
        frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_global_functions_with_parameters() {
        let source = "local function helper(x) end\n\
                      function increment(rec, bin_name, amount)\n\
                        local function inner() end\n\
                      end\n\
                      --[[\nfunction commented(a)\n]]\n\
                      reset = function(rec)\nend\n\
                      function M.method(a) end\n\
                      function noargs() return 1 end\n";
        let names: Vec<String> = global_functions(source)
            .iter()
            .map(Function::signature)
            .collect();
        assert_eq!(
            names,
            vec!["increment(rec, bin_name, amount)", "reset(rec)", "noargs()"]
        );
    }

    #[test]
    fn badge_compares_with_the_buffer() {
        let mut modules = Modules::default();
        modules.set_list(vec![("counter.lua".into(), "h1".into())]);
        let entry = modules.entries[0].clone();
        let x = vec!["x".to_string(), String::new()];
        let y = vec!["y".to_string()];
        assert_eq!(
            Modules::badge(&entry, "counter.lua", &x),
            Some(Badge::Unknown)
        );
        assert_eq!(Modules::badge(&entry, "other.lua", &x), None);
        modules.set_source("counter.lua", "x\n".into());
        let entry = &modules.entries[0];
        assert_eq!(Modules::badge(entry, "counter.lua", &x), Some(Badge::Same));
        assert_eq!(
            Modules::badge(entry, "counter.lua", &y),
            Some(Badge::Differs)
        );
    }
}

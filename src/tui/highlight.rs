//! Lua syntax highlighting with syntect that keeps each line's parse state,
//! so an edit re-highlights from the edited line on, and only up to the last
//! visible line.

use std::ops::Range;
use std::sync::OnceLock;

use ratatui::style::{Color, Modifier, Style};
use syntect::highlighting::{
    FontStyle, HighlightState, Highlighter, RangedHighlightIterator, Theme, ThemeSet,
};
use syntect::parsing::{ParseState, ScopeStack, SyntaxSet};

struct Assets {
    syntaxes: SyntaxSet,
    dark: Theme,
    light: Theme,
}

static ASSETS: OnceLock<Assets> = OnceLock::new();

fn load() -> Assets {
    let syntaxes = SyntaxSet::load_defaults_nonewlines();
    let mut themes = ThemeSet::load_defaults().themes;
    let dark = themes.remove("base16-ocean.dark").unwrap_or_default();
    let light = themes.remove("InspiredGitHub").unwrap_or_default();
    Assets {
        syntaxes,
        dark,
        light,
    }
}

/// Loads the syntax definitions in the background (they take tens of
/// milliseconds), so the first frame does not wait for them.
pub fn preload_in_background() {
    std::thread::spawn(|| {
        ASSETS.get_or_init(load);
    });
}

/// Loads them now (tests and benches).
pub fn preload() {
    ASSETS.get_or_init(load);
}

fn assets() -> Option<&'static Assets> {
    ASSETS.get()
}

pub type Spans = Vec<(Style, Range<usize>)>;

/// Per-line highlight cache of one buffer.
pub struct LineHighlighter {
    dark: bool,
    /// `states[i]`: the parser and highlighter state at the start of line i.
    states: Vec<(ParseState, HighlightState)>,
    /// Styled byte ranges of the lines highlighted so far (`spans.len()` lines).
    spans: Vec<Spans>,
}

impl LineHighlighter {
    pub fn new(dark: bool) -> LineHighlighter {
        LineHighlighter {
            dark,
            states: Vec::new(),
            spans: Vec::new(),
        }
    }

    pub fn set_dark(&mut self, dark: bool) {
        if self.dark != dark {
            self.dark = dark;
            self.invalidate_from(0);
        }
    }

    /// Forgets line `line` and everything after it.
    pub fn invalidate_from(&mut self, line: usize) {
        self.spans.truncate(line);
        self.states.truncate(line + 1);
    }

    /// Lines already highlighted (for tests and benches).
    pub fn highlighted_lines(&self) -> usize {
        self.spans.len()
    }

    /// Highlights lines up to (not including) `upto` that are not cached.
    /// Does nothing until the syntax definitions are loaded.
    pub fn ensure(&mut self, lines: &[String], upto: usize) {
        let Some(assets) = assets() else { return };
        let Some(syntax) = assets.syntaxes.find_syntax_by_extension("lua") else {
            return;
        };
        let theme = if self.dark {
            &assets.dark
        } else {
            &assets.light
        };
        let highlighter = Highlighter::new(theme);
        if self.states.is_empty() {
            self.states.push((
                ParseState::new(syntax),
                HighlightState::new(&highlighter, ScopeStack::new()),
            ));
        }
        let upto = upto.min(lines.len());
        while self.spans.len() < upto {
            let index = self.spans.len();
            let (mut parse, mut highlight) = self.states[index].clone();
            let line = &lines[index];
            let ops = parse.parse_line(line, &assets.syntaxes).unwrap_or_default();
            let spans: Spans =
                RangedHighlightIterator::new(&mut highlight, &ops, line, &highlighter)
                    .map(|(style, _, range)| (convert(style), range))
                    .collect();
            self.spans.push(spans);
            self.states.push((parse, highlight));
        }
    }

    pub fn line(&self, index: usize) -> Option<&Spans> {
        self.spans.get(index)
    }
}

fn convert(style: syntect::highlighting::Style) -> Style {
    let c = style.foreground;
    let mut out = Style::default().fg(Color::Rgb(c.r, c.g, c.b));
    if style.font_style.contains(FontStyle::BOLD) {
        out = out.add_modifier(Modifier::BOLD);
    }
    if style.font_style.contains(FontStyle::ITALIC) {
        out = out.add_modifier(Modifier::ITALIC);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn highlights_only_what_is_asked_and_resumes_after_an_edit() {
        preload();
        let mut buffer = lines("-- a comment\nlocal x = 'str'\nfunction f(a)\n  return a\nend");
        let mut h = LineHighlighter::new(true);
        h.ensure(&buffer, 2);
        assert_eq!(h.highlighted_lines(), 2);
        let comment = h.line(0).unwrap()[0].0;
        let spans = h.line(1).unwrap();
        assert!(
            spans.len() > 2,
            "keyword, name and string get their own spans"
        );
        assert_ne!(spans[0].0, comment);

        // Opening a block comment on line 1 changes how line 2 looks.
        h.ensure(&buffer, 5);
        let before = h.line(2).unwrap().clone();
        buffer[1] = "--[[ open".into();
        h.invalidate_from(1);
        assert_eq!(h.highlighted_lines(), 1);
        h.ensure(&buffer, 3);
        assert_eq!(h.highlighted_lines(), 3);
        assert_ne!(h.line(2).unwrap(), &before);
    }
}

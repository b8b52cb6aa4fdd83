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

/// Lua's syntax definition alone and the two themes the console uses, cut
/// out of syntect's default sets (the whole default set costs megabytes of
/// memory for one language). `assets_are_the_defaults_cut_down` checks them
/// and writes them anew with `ASUDF_WRITE_ASSETS=1`.
const LUA_SYNTAX: &[u8] = include_bytes!("../../assets/lua.packdump");
const THEMES: &[u8] = include_bytes!("../../assets/themes.themedump");
const DARK: &str = "base16-ocean.dark";
const LIGHT: &str = "InspiredGitHub";

fn load() -> Assets {
    let syntaxes: SyntaxSet = syntect::dumps::from_binary(LUA_SYNTAX);
    let mut themes = syntect::dumps::from_binary::<ThemeSet>(THEMES).themes;
    let dark = themes.remove(DARK).unwrap_or_default();
    let light = themes.remove(LIGHT).unwrap_or_default();
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

    /// Highlights lines up to (not including) `upto` that are not cached,
    /// at most `budget` of them, so a jump deep into a big file does not
    /// stall a frame (the rest follows on the next updates). Does nothing
    /// until the syntax definitions are loaded.
    pub fn ensure(&mut self, lines: &[String], upto: usize, budget: usize) {
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
        let upto = upto
            .min(lines.len())
            .min(self.spans.len().saturating_add(budget));
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
    use syntect::parsing::SyntaxSetBuilder;

    /// What the bundled assets are: syntect's defaults cut down to Lua and
    /// the two themes, as dumps.
    fn cut_down_defaults() -> (Vec<u8>, Vec<u8>) {
        // The default set's definitions are linked: their references name
        // other contexts by syntax index. Lua keeps its index, and the
        // syntaxes before it become empty stand-ins (none is referenced).
        let defaults = SyntaxSet::load_defaults_nonewlines().into_builder();
        let index = defaults
            .syntaxes()
            .iter()
            .position(|s| s.name == "Lua")
            .expect("syntect's defaults have Lua");
        let mut lua = SyntaxSetBuilder::new();
        for syntax in &defaults.syntaxes()[..index] {
            let mut stand_in = syntax.clone();
            stand_in.file_extensions.clear();
            stand_in.first_line_match = None;
            stand_in.hidden = true;
            stand_in.variables.clear();
            stand_in.contexts = [(
                "main".to_string(),
                syntect::parsing::syntax_definition::Context::new(false),
            )]
            .into_iter()
            .collect();
            lua.add(stand_in);
        }
        lua.add(defaults.syntaxes()[index].clone());
        let mut themes = ThemeSet::load_defaults();
        themes
            .themes
            .retain(|name, _| name == DARK || name == LIGHT);
        (
            syntect::dumps::dump_binary(&lua.build()),
            syntect::dumps::dump_binary(&themes),
        )
    }

    #[test]
    fn assets_are_the_defaults_cut_down() {
        let (syntax, themes) = cut_down_defaults();
        if std::env::var_os("ASUDF_WRITE_ASSETS").is_some() {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
            std::fs::write(format!("{dir}/lua.packdump"), &syntax).unwrap();
            std::fs::write(format!("{dir}/themes.themedump"), &themes).unwrap();
            return;
        }
        let bundled: ThemeSet = syntect::dumps::from_binary(THEMES);
        let fresh: ThemeSet = syntect::dumps::from_binary(&themes);
        assert_eq!(
            bundled.themes.keys().collect::<Vec<_>>(),
            [LIGHT, DARK],
            "the console's two themes"
        );
        assert_eq!(bundled.themes[DARK], fresh.themes[DARK]);
        assert_eq!(bundled.themes[LIGHT], fresh.themes[LIGHT]);

        // The bundled Lua syntax highlights a real module exactly as the
        // full default set does.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/udf10k.lua");
        let source =
            std::fs::read_to_string(path).unwrap_or_else(|_| crate::tui::app::SAMPLE.into());
        let full = SyntaxSet::load_defaults_nonewlines();
        let small: SyntaxSet = syntect::dumps::from_binary(LUA_SYNTAX);
        assert_eq!(small.syntaxes().iter().filter(|s| !s.hidden).count(), 1);
        let ops = |set: &SyntaxSet| {
            let mut state = ParseState::new(set.find_syntax_by_extension("lua").unwrap());
            source
                .lines()
                .take(2000)
                .map(|line| state.parse_line(line, set).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ops(&small), ops(&full));
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn highlights_only_what_is_asked_and_resumes_after_an_edit() {
        preload();
        let mut buffer = lines("-- a comment\nlocal x = 'str'\nfunction f(a)\n  return a\nend");
        let mut h = LineHighlighter::new(true);
        h.ensure(&buffer, 2, usize::MAX);
        assert_eq!(h.highlighted_lines(), 2);
        let comment = h.line(0).unwrap()[0].0;
        let spans = h.line(1).unwrap();
        assert!(
            spans.len() > 2,
            "keyword, name and string get their own spans"
        );
        assert_ne!(spans[0].0, comment);

        // Opening a block comment on line 1 changes how line 2 looks.
        h.ensure(&buffer, 5, usize::MAX);
        let before = h.line(2).unwrap().clone();
        buffer[1] = "--[[ open".into();
        h.invalidate_from(1);
        assert_eq!(h.highlighted_lines(), 1);
        h.ensure(&buffer, 3, 1);
        assert_eq!(
            h.highlighted_lines(),
            2,
            "one line per call with a budget of one"
        );
        h.ensure(&buffer, 3, 1);
        assert_eq!(h.highlighted_lines(), 3);
        assert_ne!(h.line(2).unwrap(), &before);
    }
}

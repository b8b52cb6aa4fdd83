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

/// The syntax definitions are loaded: highlighting can go on.
pub fn loaded() -> bool {
    assets().is_some()
}

pub type Spans = Vec<(Style, Range<usize>)>;

/// The parser and highlighter state between two lines.
type State = (ParseState, HighlightState);

/// Lines between two kept parse states: at most this many lines are parsed
/// again to show a line whose state is not kept.
const CHECKPOINT: usize = 16;

/// Highlighting of one buffer. The parse state is kept at every
/// [`CHECKPOINT`]-th line and styled spans only for the lines last asked for
/// (the screen), so memory stays small on a big file; an edit drops what
/// follows the edited line and highlighting resumes from there.
pub struct LineHighlighter {
    dark: bool,
    /// `checkpoints[k]`: the state at the start of line `k * CHECKPOINT`.
    checkpoints: Vec<State>,
    /// The first line of `window`.
    first: usize,
    /// Spans of lines `first..`, each with the state at its end.
    window: Vec<(Spans, State)>,
    /// A line edited in the window, highlighted again on the next update.
    pending: Option<Pending>,
    /// The lines whose spans were worked out since the last
    /// [`take_recomputed`](Self::take_recomputed).
    recomputed: Option<std::ops::RangeInclusive<usize>>,
}

/// An edited line not highlighted again yet, and what followed it: still
/// right if the line ends in the same state as before (the usual case:
/// typing does not open a comment).
struct Pending {
    line: usize,
    /// What the line shows until then: its old spans moved by the edit,
    /// so a keystroke shows before the line is parsed again ([`settle`]).
    ///
    /// [`settle`]: LineHighlighter::settle
    guess: Spans,
    old_end: State,
    tail: Vec<(Spans, State)>,
}

impl LineHighlighter {
    pub fn new(dark: bool) -> LineHighlighter {
        LineHighlighter {
            dark,
            checkpoints: Vec::new(),
            first: 0,
            window: Vec::new(),
            pending: None,
            recomputed: None,
        }
    }

    pub fn set_dark(&mut self, dark: bool) {
        if self.dark != dark {
            self.dark = dark;
            self.invalidate_from(0);
        }
    }

    /// Line `line` changed and no line came or went; it is now `new_len`
    /// bytes long, with the cursor at byte `cursor` after the edit. Until
    /// [`settle`](Self::settle) parses it again, the line shows its old
    /// spans moved by the edit; the lines after it are parsed again only if
    /// it then ends in another state.
    pub fn line_changed(&mut self, line: usize, cursor: usize, new_len: usize) {
        if let Some(pending) = self.pending.as_mut().filter(|p| p.line == line) {
            pending.guess = moved(&pending.guess, cursor, new_len);
            return;
        }
        self.drop_pending();
        if line < self.first || line >= self.first + self.window.len() {
            return self.invalidate_from(line);
        }
        let mut tail = self.window.split_off(line - self.first);
        let (old, old_end) = tail.remove(0);
        self.pending = Some(Pending {
            line,
            guess: moved(&old, cursor, new_len),
            old_end,
            tail,
        });
    }

    /// Parses the edited line again (see [`line_changed`](Self::line_changed))
    /// as [`ensure`](Self::ensure) does, and gives the lines that now look
    /// different from what was shown.
    pub fn settle(
        &mut self,
        lines: &[String],
        from: usize,
        upto: usize,
        budget: usize,
    ) -> Option<std::ops::RangeInclusive<usize>> {
        let (line, guess) = self.pending.as_ref().map(|p| (p.line, p.guess.clone()))?;
        self.ensure(lines, from, upto, budget);
        let recomputed = self.take_recomputed()?;
        let as_guessed = recomputed == (line..=line) && self.line(line) == Some(&guess);
        (!as_guessed).then_some(recomputed)
    }

    /// Gives up on a pending edit's tail: everything after it is redone.
    fn drop_pending(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.checkpoints.truncate(pending.line / CHECKPOINT + 1);
        }
    }

    /// Forgets what line `line` and the lines after it look like.
    pub fn invalidate_from(&mut self, line: usize) {
        self.drop_pending();
        // The state at the start of a line depends only on the lines before.
        self.checkpoints.truncate(line / CHECKPOINT + 1);
        if line < self.first {
            self.window.clear();
        } else {
            self.window.truncate(line - self.first);
        }
    }

    /// Lines `from..upto` (cut to the buffer) have their spans (an edited
    /// line its guess).
    pub fn covers(&self, from: usize, upto: usize) -> bool {
        let pending = self.pending.as_ref().map_or(0, |p| 1 + p.tail.len());
        from >= self.first && upto <= self.first + self.window.len() + pending
    }

    /// Parse states kept (for tests and benches).
    pub fn kept_states(&self) -> usize {
        self.checkpoints.len() + self.window.len()
    }

    /// Highlights lines `from..upto`, parsing at most `budget` lines, so a
    /// jump deep into a big file does not stall a frame (the rest follows on
    /// the next updates). Does nothing until the syntax definitions are loaded.
    pub fn ensure(&mut self, lines: &[String], from: usize, upto: usize, budget: usize) {
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
        if self.checkpoints.is_empty() {
            self.checkpoints.push((
                ParseState::new(syntax),
                HighlightState::new(&highlighter, ScopeStack::new()),
            ));
        }
        let upto = upto.min(lines.len());
        let from = from.min(upto);
        if from != self.first {
            self.drop_pending();
        }
        // Keep the window to the lines asked for; it must start at `from`.
        if from < self.first || from > self.first + self.window.len() {
            self.window.clear();
        } else {
            self.window.drain(..from - self.first);
        }
        self.first = from;
        let mut budget = budget;
        let step = |index: usize, state: &mut State, checkpoints: &mut Vec<State>| {
            let line = &lines[index];
            let ops = state
                .0
                .parse_line(line, &assets.syntaxes)
                .unwrap_or_default();
            let spans: Spans = RangedHighlightIterator::new(&mut state.1, &ops, line, &highlighter)
                .map(|(style, _, range)| (convert(style), range))
                .collect();
            if (index + 1).is_multiple_of(CHECKPOINT)
                && checkpoints.len() == (index + 1) / CHECKPOINT
            {
                checkpoints.push(state.clone());
            }
            spans
        };
        // The state at the start of `from + window.len()`.
        let mut next = self.first + self.window.len();
        let mut state = match self.window.last() {
            Some((_, end)) => end.clone(),
            None => {
                // From the nearest kept state, through the lines before `from`.
                let mut at = (self.checkpoints.len() - 1) * CHECKPOINT;
                if at > from {
                    at = from / CHECKPOINT * CHECKPOINT;
                }
                let mut state = self.checkpoints[at / CHECKPOINT].clone();
                while at < from {
                    if budget == 0 {
                        return;
                    }
                    budget -= 1;
                    step(at, &mut state, &mut self.checkpoints);
                    at += 1;
                }
                state
            }
        };
        while next < upto && budget > 0 {
            budget -= 1;
            self.recomputed = Some(match self.recomputed.take() {
                Some(r) => *r.start().min(&next)..=*r.end().max(&next),
                None => next..=next,
            });
            let spans = step(next, &mut state, &mut self.checkpoints);
            self.window.push((spans, state.clone()));
            next += 1;
            let Some(pending) = self.pending.take_if(|p| p.line + 1 == next) else {
                continue;
            };
            if pending.old_end == state {
                // The lines after it look as they did.
                self.window.extend(pending.tail);
                next = self.first + self.window.len();
                state = self.window.last().expect("just pushed").1.clone();
            } else {
                self.checkpoints.truncate(pending.line / CHECKPOINT + 1);
                if next.is_multiple_of(CHECKPOINT) && self.checkpoints.len() == next / CHECKPOINT {
                    self.checkpoints.push(state.clone());
                }
            }
        }
    }

    /// The lines whose spans changed since the last call (a frame draws
    /// them); `None` if none did.
    pub fn take_recomputed(&mut self) -> Option<std::ops::RangeInclusive<usize>> {
        self.recomputed.take()
    }

    pub fn line(&self, index: usize) -> Option<&Spans> {
        let at = index.checked_sub(self.first)?;
        match (self.window.get(at), &self.pending) {
            (Some((spans, _)), _) => Some(spans),
            (None, Some(pending)) => match at - self.window.len() {
                0 => Some(&pending.guess),
                after => pending.tail.get(after - 1).map(|(spans, _)| spans),
            },
            (None, None) => None,
        }
    }
}

/// `spans` of a line after an edit made it `new_len` bytes long and left
/// the cursor at byte `cursor`: after typing or a paste, the text put in
/// ends at the cursor; after a deletion, the text taken out began there.
/// Text put in takes the style of the span it follows (typing goes on
/// with the token it extends), spans after the edit move with it, and a
/// span that lost all its text goes. Only a guess for other edits.
fn moved(spans: &Spans, cursor: usize, new_len: usize) -> Spans {
    let old_len = spans.last().map_or(0, |(_, r)| r.end);
    // Where the edit began; text taken out lay within the old line.
    let at = cursor
        .saturating_sub(new_len.saturating_sub(old_len))
        .min(old_len.min(new_len));
    let map = |p: usize, end: bool| {
        if new_len >= old_len {
            let grown = new_len - old_len;
            // The span that ends at the edit takes the text (at the start
            // of the line, the first span).
            if p > at || (p == at && (end || at > 0)) {
                p + grown
            } else {
                p
            }
        } else {
            let cut = old_len - new_len;
            if p <= at {
                p
            } else {
                p.saturating_sub(cut).max(at)
            }
        }
    };
    spans
        .iter()
        .map(|(style, r)| (*style, map(r.start, false)..map(r.end, true)))
        .filter(|(_, r)| !r.is_empty())
        .collect()
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

    #[test]
    fn a_line_edit_redoes_the_lines_after_it_only_when_its_end_state_changes() {
        preload();
        let mut buffer: Vec<String> = (0..60)
            .map(|i| format!("local v{i} = 'x' -- {i}"))
            .collect();
        let mut h = LineHighlighter::new(true);
        h.ensure(&buffer, 10, 50, usize::MAX);
        let fresh = |buffer: &[String]| {
            let mut f = LineHighlighter::new(true);
            f.ensure(buffer, 0, 50, usize::MAX);
            (10..50)
                .map(|i| f.line(i).unwrap().clone())
                .collect::<Vec<_>>()
        };
        let screen = |h: &LineHighlighter| {
            (10..50)
                .map(|i| h.line(i).unwrap().clone())
                .collect::<Vec<_>>()
        };
        // Typing inside a line: one line parsed again.
        buffer[20].insert_str(6, "abc");
        h.line_changed(20, 9, buffer[20].len());
        h.ensure(&buffer, 10, 50, 1);
        assert!(h.covers(10, 50), "one line was enough");
        assert_eq!(screen(&h), fresh(&buffer));
        // Opening a long comment changes every line after it.
        buffer[30] = "--[[ open".into();
        h.line_changed(30, buffer[30].len(), buffer[30].len());
        h.ensure(&buffer, 10, 50, 1);
        assert!(!h.covers(10, 50));
        h.ensure(&buffer, 10, 50, usize::MAX);
        assert_eq!(screen(&h), fresh(&buffer));
        // Closing it again, and edits above the window and at its first line.
        buffer[30] = "-- closed".into();
        h.line_changed(30, buffer[30].len(), buffer[30].len());
        h.ensure(&buffer, 10, 50, usize::MAX);
        assert_eq!(screen(&h), fresh(&buffer));
        buffer[10] = "--[[".into();
        h.line_changed(10, buffer[10].len(), buffer[10].len());
        buffer[3] = "x = 1".into();
        h.line_changed(3, buffer[3].len(), buffer[3].len());
        h.ensure(&buffer, 10, 50, usize::MAX);
        assert_eq!(screen(&h), fresh(&buffer));
        // Scrolled away before the update: highlighted from scratch.
        buffer[10] = "y = 2".into();
        h.line_changed(10, buffer[10].len(), buffer[10].len());
        h.ensure(&buffer, 12, 50, usize::MAX);
        h.ensure(&buffer, 10, 50, usize::MAX);
        assert_eq!(screen(&h), fresh(&buffer));
    }

    #[test]
    fn an_edit_moves_the_spans_shown_until_the_line_is_parsed_again() {
        let s = |colour: u8, r: Range<usize>| (Style::new().fg(Color::Indexed(colour)), r);
        let spans = vec![s(1, 0..5), s(2, 5..6), s(3, 6..10)];
        // Typed at the end of the first span: it takes the text.
        let typed = vec![s(1, 0..6), s(2, 6..7), s(3, 7..11)];
        assert_eq!(moved(&spans, 6, 11), typed);
        // At the start of the line, the first span takes it.
        let pasted = vec![s(1, 0..7), s(2, 7..8), s(3, 8..12)];
        assert_eq!(moved(&spans, 2, 12), pasted);
        // Deleted: the span it was in shrinks, one left empty goes.
        assert_eq!(moved(&spans, 5, 9), vec![s(1, 0..5), s(3, 5..9)]);
        assert_eq!(
            moved(&spans, 3, 9),
            vec![s(1, 0..4), s(2, 4..5), s(3, 5..9)]
        );
        // A cursor elsewhere gives a wrong guess, but never a range past the line.
        assert!(moved(&spans, 40, 3).iter().all(|(_, r)| r.end <= 3));
        assert!(moved(&spans, 40, 30).iter().all(|(_, r)| r.end <= 30));
    }

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
    fn highlights_what_is_asked_and_resumes_after_an_edit() {
        preload();
        let mut buffer = lines("-- a comment\nlocal x = 'str'\nfunction f(a)\n  return a\nend");
        let mut h = LineHighlighter::new(true);
        h.ensure(&buffer, 0, 2, usize::MAX);
        assert!(h.covers(0, 2) && !h.covers(0, 3));
        let comment = h.line(0).unwrap()[0].0;
        let spans = h.line(1).unwrap();
        assert!(
            spans.len() > 2,
            "keyword, name and string get their own spans"
        );
        assert_ne!(spans[0].0, comment);

        // Opening a block comment on line 1 changes how line 2 looks.
        h.ensure(&buffer, 0, 5, usize::MAX);
        let before = h.line(2).unwrap().clone();
        buffer[1] = "--[[ open".into();
        h.invalidate_from(1);
        assert!(h.covers(0, 1) && !h.covers(0, 2));
        h.ensure(&buffer, 0, 3, 1);
        assert!(
            h.covers(0, 2) && !h.covers(0, 3),
            "one line per call with a budget of one"
        );
        h.ensure(&buffer, 0, 3, 1);
        assert!(h.covers(0, 3));
        assert_ne!(h.line(2).unwrap(), &before);
    }

    #[test]
    fn a_big_buffer_keeps_spans_for_the_screen_and_a_state_every_few_lines() {
        preload();
        let text: String = (0..1000)
            .map(|i| {
                if i % 100 == 50 {
                    "--[[\n".to_string()
                } else if i % 100 == 60 {
                    "]]\n".into()
                } else {
                    format!("local v{i} = 'x' -- {i}\n")
                }
            })
            .collect();
        let buffer = lines(&text);
        let whole = |from: usize, upto: usize| {
            let mut h = LineHighlighter::new(true);
            h.ensure(&buffer, 0, upto, usize::MAX);
            (from..upto)
                .map(|i| h.line(i).unwrap().clone())
                .collect::<Vec<_>>()
        };
        let mut h = LineHighlighter::new(true);
        // A jump to line 955 parses from the start, within the budget per call.
        let mut calls = 0;
        while !h.covers(955, 995) {
            h.ensure(&buffer, 955, 995, 300);
            calls += 1;
        }
        assert_eq!(calls, 4);
        assert!(
            h.kept_states() <= 1000 / CHECKPOINT + 1 + 40,
            "{}",
            h.kept_states()
        );
        let screen = |h: &LineHighlighter, from: usize| {
            (from..from + 40)
                .map(|i| h.line(i).unwrap().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(screen(&h, 955), whole(955, 995));
        // Scrolling back up resumes from a kept state, and an edit inside a
        // comment's span shows the same as highlighting from scratch.
        h.ensure(&buffer, 45, 85, usize::MAX);
        assert_eq!(screen(&h, 45), whole(45, 85));
        assert!(h.line(955).is_none(), "only the screen keeps spans");
        let mut edited = buffer.clone();
        edited[52] = "]] local z = 1".into();
        h.invalidate_from(52);
        h.ensure(&edited, 45, 85, usize::MAX);
        let mut fresh = LineHighlighter::new(true);
        fresh.ensure(&edited, 0, 85, usize::MAX);
        assert_eq!(
            screen(&h, 45),
            (45..85)
                .map(|i| fresh.line(i).unwrap().clone())
                .collect::<Vec<_>>()
        );
        assert_ne!(screen(&h, 45), whole(45, 85));
    }
}

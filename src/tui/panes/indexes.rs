//! The indexes list: the secondary indexes, shown in the modules pane's
//! place (a tab of it), created from a one-line prompt in the words of
//! `asudf index create` and dropped with a confirmation.

use crate::tui::screen::Canvas;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::cli::NsSet;
use crate::client::{IndexInfo, IndexSpec};
use crate::tui::panes::cut;
use crate::tui::theme::Theme;
use crate::where_clause::collection_of;

/// The words the create prompt takes.
pub const CREATE_SYNTAX: &str =
    "NS[.SET] BIN numeric|string|blob|geo2dsphere [list|mapkeys|mapvalues] [NAME]";

const KINDS: [&str; 4] = ["numeric", "string", "blob", "geo2dsphere"];

/// A create prompt that does not parse: where (1-based, in characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptError {
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// The words of `text` with the column each starts at.
fn words(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut column = 0;
    for (i, c) in text.char_indices() {
        column += 1;
        match (c.is_whitespace(), start) {
            (false, None) => start = Some((column, i)),
            (true, Some((col, at))) => {
                out.push((col, &text[at..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some((col, at)) = start {
        out.push((col, &text[at..]));
    }
    out
}

/// Parses the create prompt: `NS[.SET] BIN TYPE [COLLECTION] [NAME]`, the
/// name defaulting as `asudf index create` names it.
pub fn parse_create(text: &str) -> Result<IndexSpec, PromptError> {
    let words = words(text);
    let end = text.chars().count() + 1;
    let error = |column, message: String| PromptError { column, message };
    let word = |i: usize, what: &str| {
        words
            .get(i)
            .copied()
            .ok_or_else(|| error(end, format!("{what} is missing: write {CREATE_SYNTAX}")))
    };
    let (column, target) = word(0, "the namespace")?;
    let target = NsSet::parse(target).map_err(|e| error(column, e))?;
    let (_, bin) = word(1, "the bin")?;
    let (column, kind) = word(2, "the index type")?;
    let kind = kind.to_ascii_lowercase();
    if !KINDS.contains(&kind.as_str()) {
        return Err(error(
            column,
            format!("index type '{kind}': expected {}", KINDS.join(", ")),
        ));
    }
    let mut rest = words[3..].iter().copied().peekable();
    let collection_word = rest
        .next_if(|(_, w)| collection_of(w).is_some())
        .map(|(_, w)| w);
    let name = rest.next();
    // A second collection word is a mistake, not the index's name.
    if let (Some(first), Some((column, second))) = (collection_word, name)
        && collection_of(second).is_some()
    {
        return Err(error(
            column,
            format!("'{second}' after '{first}': only one of list, mapkeys, mapvalues"),
        ));
    }
    if let Some((column, extra)) = rest.next() {
        return Err(error(
            column,
            format!("'{extra}' is one word too many: write {CREATE_SYNTAX}"),
        ));
    }
    Ok(IndexSpec::new(
        target.namespace,
        target.set,
        bin,
        &kind,
        collection_word,
        name.map(|(_, w)| w),
    ))
}

#[derive(Debug, Default)]
pub struct Indexes {
    pub entries: Vec<IndexInfo>,
    pub selected: usize,
    /// A list request is in flight.
    pub loading: bool,
    pub loaded_once: bool,
    /// The modules pane shows this list instead of the modules.
    pub shown: bool,
}

impl Indexes {
    pub fn set_list(&mut self, mut list: Vec<IndexInfo>) {
        list.sort_by(|a, b| (&a.ns, &a.name).cmp(&(&b.ns, &b.name)));
        self.entries = list;
        self.selected = self.selected.min(self.entries.len().saturating_sub(1));
        self.loading = false;
        self.loaded_once = true;
    }

    pub fn selected_entry(&self) -> Option<&IndexInfo> {
        self.entries.get(self.selected)
    }

    pub fn move_selection(&mut self, delta: isize) {
        if self.entries.is_empty() {
            return;
        }
        let max = self.entries.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }

    pub fn draw(&self, frame: &mut Canvas, area: Rect, theme: Theme, focused: bool) {
        let title = if self.loading && !self.loaded_once {
            " 1 Indexes … ".to_string()
        } else {
            format!(" 1 Indexes ({}) ", self.entries.len())
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let wide = inner.width >= 60;
        let mut lines: Vec<Line> = Vec::new();
        let mut selected_line = 0;
        if self.entries.is_empty() && self.loaded_once {
            lines.push(Line::styled("(no indexes; n creates one)", theme.dim()));
        }
        for (i, ix) in self.entries.iter().enumerate() {
            if i == self.selected {
                selected_line = lines.len();
            }
            let name_style = if i == self.selected && focused {
                theme.selected()
            } else {
                theme.accent()
            };
            let place = match &ix.set {
                Some(set) => format!("{}.{set}", ix.ns),
                None => ix.ns.clone(),
            };
            let mut what = format!("{} {}", ix.bin, ix.kind.to_lowercase());
            if !ix.collection.is_empty() && ix.collection != "default" {
                what = format!("{what} {}", ix.collection.to_lowercase());
            }
            let state_style = if ix.state == "RW" {
                theme.ok()
            } else {
                theme.warn()
            };
            if wide {
                lines.push(Line::from(vec![
                    Span::styled(ix.name.clone(), name_style),
                    Span::raw(format!("  {place}  {what}  ")),
                    Span::styled(ix.state.clone(), state_style),
                ]));
            } else {
                lines.push(Line::from(vec![
                    Span::styled(ix.name.clone(), name_style),
                    Span::raw(" "),
                    Span::styled(ix.state.clone(), state_style),
                ]));
                let width = inner.width.saturating_sub(2) as usize;
                lines.push(Line::from(format!("  {}", cut(&place, width))));
                lines.push(Line::from(format!("  {}", cut(&what, width))));
            }
        }
        let rows = inner.height.max(1) as usize;
        // Keep the selected entry (all its lines) in view.
        let last = selected_line + if wide { 0 } else { 2 };
        let scroll = (last + 1).saturating_sub(rows);
        frame.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::where_clause::Collection;

    #[test]
    fn words_keep_their_columns() {
        assert_eq!(words("  a bc  d"), vec![(3, "a"), (5, "bc"), (9, "d")]);
        assert!(words("   ").is_empty());
    }

    #[test]
    fn create_prompt_takes_the_command_words() {
        let spec = parse_create("test.sales amount NUMERIC").unwrap();
        assert_eq!(spec.ns, "test");
        assert_eq!(spec.set.as_deref(), Some("sales"));
        assert_eq!(
            (spec.bin.as_str(), spec.kind.as_str()),
            ("amount", "numeric")
        );
        assert_eq!(spec.collection, Collection::Scalar);
        assert_eq!(spec.name, "test_sales_amount");

        let spec = parse_create("test tags string LIST").unwrap();
        assert_eq!(spec.set, None);
        assert_eq!(spec.collection, Collection::List);
        assert_eq!(spec.name, "test_tags_list");

        let spec = parse_create("test.p loc geo2dsphere mapvalues by_loc").unwrap();
        assert_eq!(spec.collection, Collection::MapValues);
        assert_eq!(spec.name, "by_loc");

        // A fourth word that is not a collection is the name.
        let spec = parse_create("test.p n numeric idx_n").unwrap();
        assert_eq!(
            (spec.collection, spec.name.as_str()),
            (Collection::Scalar, "idx_n")
        );
    }

    #[test]
    fn create_prompt_errors_name_the_column() {
        let e = parse_create("test.sales amount nmeric").unwrap_err();
        assert_eq!(e.column, 19);
        assert!(e.message.contains("'nmeric'"), "{e}");
        let e = parse_create("test.sales amount").unwrap_err();
        assert_eq!(e.column, 18);
        assert!(e.message.contains("index type is missing"), "{e}");
        let e = parse_create("").unwrap_err();
        assert_eq!(e.column, 1);
        let e = parse_create(".sales amount numeric").unwrap_err();
        assert_eq!(e.column, 1);
        assert!(e.message.contains("namespace is empty"), "{e}");
        let e = parse_create("test.s a numeric list n extra").unwrap_err();
        assert_eq!(e.column, 25);
        assert!(e.message.contains("'extra'"), "{e}");
        let e = parse_create("test.s a numeric n1 n2").unwrap_err();
        assert_eq!(e.column, 21);
        let e = parse_create("test.s count numeric list mapkeys").unwrap_err();
        assert_eq!(e.column, 27);
        assert!(
            e.message.contains("'mapkeys'") && e.message.contains("only one of list"),
            "{e}"
        );
    }
}

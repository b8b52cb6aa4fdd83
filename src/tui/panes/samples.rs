//! The samples list (an overlay) and the loading of a sample with one key:
//! register its module, write its records (a few in flight at a time,
//! through the one client task), create its index: the steps of
//! [`Sample`] that `asudf sample load` takes too.

use crate::tui::screen::Canvas;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::client::Request;
use crate::samples::{SAMPLES, Sample, WRITES_IN_FLIGHT};
use crate::tui::keymap::{Keymap, Scope};
use crate::tui::panes::cut;
use crate::tui::theme::Theme;

/// Where a sample load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Module,
    Records,
    Index,
    Done,
}

/// A sample being loaded.
#[derive(Debug, Clone)]
pub struct SampleLoad {
    pub sample: &'static Sample,
    /// Tells this load's answers from an earlier one's.
    pub seq: u64,
    pub stage: Stage,
    /// Record writes sent and answered.
    pub sent: u32,
    pub written: u32,
    /// The index created, once it is.
    pub index: Option<String>,
    /// The editor's edit count (`Editor::edits`) when the load started:
    /// the buffer its module may replace without asking.
    pub replaces: u64,
}

impl SampleLoad {
    /// A load and its first request (register the module).
    pub fn start(sample: &'static Sample, seq: u64, replaces: u64) -> (SampleLoad, Request) {
        let load = SampleLoad {
            sample,
            seq,
            stage: Stage::Module,
            sent: 0,
            written: 0,
            index: None,
            replaces,
        };
        (load, sample.put_module())
    }

    /// The module is registered: the first writes.
    pub fn registered(&mut self) -> Result<Vec<Request>, String> {
        self.stage = Stage::Records;
        let first = self.sample.records.min(WRITES_IN_FLIGHT);
        let writes = (0..first).map(|i| self.sample.write(i)).collect();
        self.sent = first;
        if first == 0 {
            return self.index_step();
        }
        writes
    }

    /// A record is written: the next write, the index once all are, or nothing.
    pub fn written(&mut self) -> Result<Vec<Request>, String> {
        self.written += 1;
        if self.sent < self.sample.records {
            self.sent += 1;
            return Ok(vec![self.sample.write(self.sent - 1)?]);
        }
        if self.written == self.sample.records {
            return self.index_step();
        }
        Ok(Vec::new())
    }

    fn index_step(&mut self) -> Result<Vec<Request>, String> {
        match self.sample.index_spec()? {
            Some(spec) => {
                self.stage = Stage::Index;
                Ok(vec![Request::CreateIndex(spec)])
            }
            None => {
                self.stage = Stage::Done;
                Ok(Vec::new())
            }
        }
    }

    pub fn indexed(&mut self, name: String) {
        self.index = Some(name);
        self.stage = Stage::Done;
    }

    /// What the status line says while it loads.
    pub fn progress(&self) -> String {
        let name = self.sample.name;
        match self.stage {
            Stage::Module => format!("sample {name}: registering {}…", self.sample.module),
            Stage::Records => format!(
                "sample {name}: writing records {}/{} to {}…",
                self.written, self.sample.records, self.sample.target
            ),
            Stage::Index => format!("sample {name}: creating its index…"),
            Stage::Done => self.outcome(),
        }
    }

    /// What the status line says once it is loaded.
    pub fn outcome(&self) -> String {
        let s = self.sample;
        let mut text = format!("sample {} loaded: {}", s.name, s.module);
        if s.records > 0 {
            text += &format!(", {} records in {}", s.records, s.target);
        }
        if let Some(index) = &self.index {
            text += &format!(", index {index}");
        }
        if let Some(clause) = s.where_clause {
            text += &format!("; try where {clause}");
        }
        text
    }
}

/// The keys of an overlay's own scope, from the keymap.
pub fn key_line(keymap: &Keymap, scope: Scope, theme: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    for b in keymap
        .bindings
        .iter()
        .filter(|b| b.scope == scope && b.hint)
    {
        spans.push(Span::styled(b.chord.to_string(), theme.key()));
        spans.push(Span::raw(format!(" {}  ", b.command.short())));
    }
    spans.push(Span::styled("Esc", theme.key()));
    spans.push(Span::raw(" close"));
    Line::from(spans)
}

/// A box in the middle of the screen, cleared.
pub fn overlay_box(frame: &mut Canvas, width: u16, height: u16, title: &str, theme: Theme) -> Rect {
    let area = frame.area();
    let (width, height) = (width.min(area.width), height.min(area.height));
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, rect);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(true))
        .title(title.to_string());
    let inner = block.inner(rect);
    frame.render_widget(block.style(theme.base()), rect);
    inner
}

/// The samples list: name, kind, description, and the selected one's call.
pub fn draw(frame: &mut Canvas, selected: usize, keymap: &Keymap, theme: Theme) {
    let width = frame.area().width.min(100);
    let height = SAMPLES.len() as u16 * 2 + 5;
    let inner = overlay_box(frame, width, height, " Samples ", theme);
    let text_width = inner.width.saturating_sub(4) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for (i, s) in SAMPLES.iter().enumerate() {
        let style = if i == selected {
            theme.selected()
        } else {
            theme.accent()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", s.name), style),
            Span::styled(format!(" {:<10} ", s.kind.as_str()), theme.dim()),
            Span::raw(s.target),
        ]));
        lines.push(Line::raw(format!("  {}", cut(s.description, text_width))));
    }
    lines.push(Line::raw(""));
    if let Some(s) = SAMPLES.get(selected) {
        lines.push(Line::styled(
            cut(&format!("as a command: {}", s.command()), text_width + 2),
            theme.dim(),
        ));
    }
    lines.push(key_line(keymap, Scope::Samples, theme));
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::find;

    #[test]
    fn a_load_keeps_a_window_of_writes_then_creates_the_index() {
        let sum = find("sum").unwrap();
        let (mut load, first) = SampleLoad::start(sum, 1, 0);
        assert_eq!(first, sum.put_module());
        let writes = load.registered().unwrap();
        assert_eq!(writes.len(), WRITES_IN_FLIGHT as usize);
        let mut more = 0;
        for _ in 0..sum.records - 1 {
            more += load.written().unwrap().len();
            assert_eq!(load.stage, Stage::Records);
        }
        assert_eq!(more as u32, sum.records - WRITES_IN_FLIGHT);
        let last = load.written().unwrap();
        assert!(matches!(&last[..], [Request::CreateIndex(spec)] if spec.bin == "amount"));
        assert_eq!(load.stage, Stage::Index);
        load.indexed("test_sales_amount".into());
        assert!(
            load.progress()
                .contains("1000 records in test.sales, index test_sales_amount")
        );
    }

    #[test]
    fn a_sample_without_records_is_done_once_registered() {
        let (mut load, _) = SampleLoad::start(find("counter").unwrap(), 1, 0);
        assert!(load.registered().unwrap().is_empty());
        assert_eq!(load.stage, Stage::Done);
    }
}

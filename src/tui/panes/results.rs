//! The results pane: every call at once as in flight, then its outcome.

use std::time::{Duration, Instant};

use crate::tui::screen::Canvas;
use aerospike::Value;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use hdrhistogram::Histogram;

use crate::client::{ApplyCall, Failure, Outcome, RecordView, Request};
use crate::tui::action::Tag;
use crate::tui::literal;
use crate::tui::panes::runs::{self, RunView};
use crate::tui::theme::Theme;

/// Formats durations on screen; tests fix it so snapshots do not vary.
pub type TimeFormat = fn(Duration) -> String;

pub fn real_time(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 10_000_000 {
        format!("{:.1}ms", micros as f64 / 1000.0)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

// A client answer is the big variant; there is one per request, moved a
// few times, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CallState {
    InFlight,
    Done {
        outcome: Result<Outcome, Failure>,
        round_trip: Duration,
    },
}

/// A "run N times" series of the same call: one request, whose runs the
/// client task reports as they are done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSeries {
    /// Runs asked for.
    pub total: u32,
    pub failed: u32,
    /// The answered runs' round trips.
    pub latencies: Latencies,
    /// Stopped (Ctrl-K) before all the runs asked for were done.
    pub cancelled: bool,
}

impl RunSeries {
    pub fn done(&self) -> u32 {
        self.latencies.count() as u32 + self.failed
    }
    /// What the entry's title says of the series: `×20000`, or once
    /// cancelled how many of them ran.
    pub fn title_mark(&self) -> String {
        if self.cancelled {
            format!("×{} of {}, cancelled", self.done(), self.total)
        } else {
            format!("×{}", self.total)
        }
    }
}

/// Round trips of a series, kept in a histogram (3 significant digits, as
/// `asudf bench`), so its percentiles cost the same after 100,000 runs as
/// after 10: a series redraws at each report of its runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Latencies {
    /// In nanoseconds.
    histogram: Histogram<u64>,
    /// The latest ones, for the sparkline (at most 2 × [`RECENT`]).
    recent: Vec<Duration>,
}

/// Round trips a sparkline can show (wider than any pane).
const RECENT: usize = 512;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            histogram: Histogram::new(3).expect("3 significant digits is valid"),
            recent: Vec::new(),
        }
    }
}

impl Latencies {
    pub fn record(&mut self, round_trip: Duration) {
        let nanos = u64::try_from(round_trip.as_nanos()).unwrap_or(u64::MAX);
        // Auto-resizing: a record fails only past u64, which nanos are not.
        let _ = self.histogram.record(nanos);
        if self.recent.len() == 2 * RECENT {
            self.recent.drain(..RECENT);
        }
        self.recent.push(round_trip);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The round trip at percentile `p` (0 the least, 100 the most).
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        let nanos = match p {
            _ if self.histogram.is_empty() => return None,
            0.0 => self.histogram.min(),
            100.0 => self.histogram.max(),
            _ => self.histogram.value_at_percentile(p),
        };
        Some(Duration::from_nanos(nanos))
    }

    /// The latest round trips, oldest first.
    pub fn recent(&self) -> &[Duration] {
        &self.recent
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallEntry {
    pub number: usize,
    /// The request in flight (the latest one of a run-N series).
    pub tag: Tag,
    pub label: String,
    pub started: Instant,
    pub state: CallState,
    pub expanded: bool,
    pub series: Option<RunSeries>,
    /// The call itself, to save it as a test step (a series's is not saved,
    /// but says which record it wrote).
    pub call: Option<std::sync::Arc<ApplyCall>>,
    /// Marked to go into the next test file.
    pub marked: bool,
    /// What a query-path run received (`None` for a record apply).
    pub run: Option<RunView>,
    /// The query-path run's request, to save it as a test step.
    pub request: Option<Request>,
    /// The failure's line is the registered module's, whose text is not
    /// the editor's: the line is not marked there.
    pub registered_differs: bool,
    /// The module the call ran (by file name) and how many times the
    /// console had registered it then.
    pub registration: Option<(String, u32)>,
}

/// How a finished call ended, for its mark: never a success where the
/// CLI would exit non-zero for the same call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Ok,
    /// Some keys of a batch failed (the CLI exits 4), not all.
    Partial,
    Failed,
}

impl CallEntry {
    /// How the call ended (`None` while in flight).
    pub fn verdict(&self) -> Option<Verdict> {
        let CallState::Done { outcome, .. } = &self.state else {
            return None;
        };
        Some(match outcome {
            Err(_) => Verdict::Failed,
            // The job started, but did not end ok: its start is no success.
            Ok(_) if self.run.as_ref().is_some_and(RunView::job_failed) => Verdict::Failed,
            Ok(Outcome::BatchApplied(rows)) => {
                match rows.iter().filter(|r| r.result.is_err()).count() {
                    0 => Verdict::Ok,
                    n if n == rows.len() => Verdict::Failed,
                    _ => Verdict::Partial,
                }
            }
            Ok(_) => Verdict::Ok,
        })
    }

    /// The time from the call's start to `end`: what a run took when the
    /// client's round trip is not it (a cancel, a background job's end).
    pub fn ran_until(&self, end: Instant) -> Duration {
        end.saturating_duration_since(self.started)
    }

    pub fn in_flight(&self) -> bool {
        matches!(self.state, CallState::InFlight)
            || self.run.as_ref().is_some_and(|r| r.job_running())
    }

    /// The call as its title shows it, with a series' count.
    pub fn title(&self) -> String {
        match &self.series {
            Some(series) => format!("{} {}", self.label, series.title_mark()),
            None => self.label.clone(),
        }
    }
}

#[derive(Debug, Default)]
pub struct Results {
    pub entries: Vec<CallEntry>,
    pub selected: usize,
    pub next_number: usize,
}

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub fn sparkline(values: &[Duration], width: usize) -> String {
    let tail = &values[values.len().saturating_sub(width)..];
    let max = tail
        .iter()
        .max()
        .copied()
        .unwrap_or_default()
        .as_nanos()
        .max(1);
    tail.iter()
        .map(|d| BARS[((d.as_nanos() * 7) / max) as usize])
        .collect()
}

fn record_lines(
    before: Option<&RecordView>,
    after: Option<&RecordView>,
    theme: Theme,
    out: &mut Vec<Line<'static>>,
) {
    let generation =
        |r: Option<&RecordView>| r.map_or("-".to_string(), |r| r.generation.to_string());
    let ttl = |r: Option<&RecordView>| match r {
        None => "-".to_string(),
        Some(RecordView { ttl: None, .. }) => "never".to_string(),
        Some(RecordView { ttl: Some(t), .. }) => format!("{t}s"),
    };
    let existence = match (before.is_some(), after.is_some()) {
        (false, true) => " (created)",
        (true, false) => " (removed)",
        (false, false) => " (no record)",
        _ => "",
    };
    out.push(Line::styled(
        format!(
            "  record gen {} → {}, ttl {} → {}{existence}",
            generation(before),
            generation(after),
            ttl(before),
            ttl(after)
        ),
        theme.accent(),
    ));
    let empty = Vec::new();
    let old = before.map_or(&empty, |r| &r.bins);
    let new = after.map_or(&empty, |r| &r.bins);
    let find = |bins: &Vec<(String, Value)>, name: &str| {
        bins.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    };
    for (name, value) in new {
        match find(old, name) {
            None => out.push(Line::styled(
                format!("    + {name}: {}", literal::print(value)),
                theme.ok(),
            )),
            Some(previous) if previous != *value => out.push(Line::styled(
                format!(
                    "    ~ {name}: {} → {}",
                    literal::print(&previous),
                    literal::print(value)
                ),
                theme.warn(),
            )),
            Some(_) => out.push(Line::raw(format!(
                "      {name}: {}",
                literal::print(value)
            ))),
        }
    }
    for (name, value) in old {
        if find(new, name).is_none() {
            out.push(Line::styled(
                format!("    - {name}: {}", literal::print(value)),
                theme.error(),
            ));
        }
    }
}

fn outcome_lines(entry: &CallEntry, width: usize, theme: Theme, out: &mut Vec<Line<'static>>) {
    let CallState::Done { outcome, .. } = &entry.state else {
        return;
    };
    match outcome {
        Ok(Outcome::Applied {
            result,
            logs,
            before,
            after,
            ..
        }) => {
            if entry.expanded {
                for (i, line) in literal::pretty(result, width.saturating_sub(4))
                    .into_iter()
                    .enumerate()
                {
                    let lead = if i == 0 { "  = " } else { "    " };
                    out.push(Line::raw(format!("{lead}{line}")));
                }
            } else {
                let (text, folded) = literal::fold(result, width.saturating_sub(6).max(8));
                let mut spans = vec![Span::raw(format!("  = {text}"))];
                if folded {
                    spans.push(Span::styled(" ⏎", theme.dim()));
                }
                out.push(Line::from(spans));
            }
            for log in logs {
                out.push(Line::styled(
                    format!("  log {}: {}", log.level, log.text),
                    theme.dim(),
                ));
            }
            if before.is_some() || after.is_some() {
                record_lines(before.as_ref(), after.as_ref(), theme, out);
            }
        }
        Ok(other) => out.push(Line::raw(format!("  {other:?}"))),
        Err(failure) => failure_lines(failure, entry.registered_differs, theme, out),
    }
}

/// A failed call's error and where in the module it happened.
pub fn failure_lines(
    failure: &Failure,
    registered_differs: bool,
    theme: Theme,
    out: &mut Vec<Line<'static>>,
) {
    // A Lua traceback comes as lines, indented with tabs: one row each (a
    // line's own newline would not show), the tabs as spaces.
    let text = format!("{failure}").replace('\t', "  ");
    for (i, line) in text.lines().enumerate() {
        let indent = if i == 0 { "  " } else { "    " };
        out.push(Line::styled(format!("{indent}{line}"), theme.error()));
    }
    if let Some((module, line)) = &failure.location {
        let version = if registered_differs {
            " (the registered version; the editor differs)"
        } else {
            ""
        };
        out.push(Line::styled(
            format!("  at {module} line {line}{version}"),
            theme.error(),
        ));
    }
}

impl Results {
    pub fn push(&mut self, tag: Tag, label: String, started: Instant, series: Option<RunSeries>) {
        self.next_number += 1;
        self.entries.push(CallEntry {
            number: self.next_number,
            tag,
            label,
            started,
            state: CallState::InFlight,
            expanded: false,
            series,
            call: None,
            marked: false,
            run: None,
            request: None,
            registered_differs: false,
            registration: None,
        });
        self.selected = self.entries.len() - 1;
    }

    /// A query-path run, in flight with nothing received yet.
    pub fn push_run(&mut self, tag: Tag, label: String, started: Instant, run: RunView) {
        self.push(tag, label, started, None);
        if let Some(entry) = self.entries.last_mut() {
            entry.run = Some(run);
        }
    }

    /// The entry with this number.
    pub fn by_number(&mut self, number: usize) -> Option<&mut CallEntry> {
        self.entries.iter_mut().find(|e| e.number == number)
    }

    pub fn find_mut(&mut self, tag: Tag) -> Option<&mut CallEntry> {
        self.entries.iter_mut().rev().find(|e| e.tag == tag)
    }

    pub fn in_flight(&self) -> Option<&CallEntry> {
        self.entries.iter().rev().find(|e| e.in_flight())
    }

    pub fn move_selection(&mut self, delta: isize) {
        if !self.entries.is_empty() {
            let max = self.entries.len() as isize - 1;
            self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
        }
    }

    /// The results as JSON (all, or the selected one).
    pub fn to_json(&self, only_selected: bool) -> serde_json::Value {
        let entries: Vec<&CallEntry> = if only_selected {
            self.entries.get(self.selected).into_iter().collect()
        } else {
            self.entries.iter().collect()
        };
        let record = |r: &Option<RecordView>| match r {
            None => serde_json::Value::Null,
            Some(r) => serde_json::json!({
                "generation": r.generation,
                "ttl": r.ttl,
                "bins": serde_json::Value::Object(
                    r.bins.iter().map(|(n, v)| (n.clone(), literal::to_json(v))).collect()
                ),
            }),
        };
        let json: Vec<serde_json::Value> = entries
            .into_iter()
            .map(|e| {
                let mut item = serde_json::json!({ "call": e.title() });
                if let CallState::Done {
                    outcome,
                    round_trip,
                } = &e.state
                {
                    item["round_trip_ms"] = serde_json::json!(round_trip.as_secs_f64() * 1000.0);
                    match outcome {
                        Ok(Outcome::Applied {
                            result,
                            logs,
                            before,
                            after,
                            server_run,
                            ..
                        }) => {
                            if let Some(run) = server_run {
                                item["server_run_ms"] =
                                    serde_json::json!(run.as_secs_f64() * 1000.0);
                            }
                            item["result"] = literal::to_json(result);
                            item["logs"] = logs
                                .iter()
                                .map(|l| serde_json::json!({"level": l.level, "text": l.text}))
                                .collect();
                            item["before"] = record(before);
                            item["after"] = record(after);
                        }
                        Ok(_) if e.run.is_some() => {}
                        Ok(other) => item["outcome"] = serde_json::json!(format!("{other:?}")),
                        Err(f) => {
                            item["error"] = serde_json::json!({
                                "code": f.code,
                                "message": f.message,
                                "line": f.location.as_ref().map(|(_, l)| *l),
                            })
                        }
                    }
                }
                if let Some(run) = &e.run {
                    let outcome = match &e.state {
                        CallState::Done { outcome, .. } => Some(outcome),
                        CallState::InFlight => None,
                    };
                    runs::add_json(run, outcome, &mut item);
                }
                if let Some(b) = &e.series {
                    item["runs"] = serde_json::json!({
                        "total": b.total,
                        "done": b.done(),
                        "failed": b.failed,
                        "cancelled": b.cancelled,
                        "p50_ms": b.latencies.percentile(50.0).map(|d| d.as_secs_f64() * 1000.0),
                        "p99_ms": b.latencies.percentile(99.0).map(|d| d.as_secs_f64() * 1000.0),
                    });
                }
                item
            })
            .collect();
        if only_selected {
            json.into_iter().next().unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Array(json)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        &self,
        frame: &mut Canvas,
        area: Rect,
        theme: Theme,
        focused: bool,
        now: Instant,
        time: TimeFormat,
        spin: usize,
    ) {
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.border(focused))
            .title(" 4 Results ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let width = inner.width as usize;
        let mut lines: Vec<Line> = Vec::new();
        let mut selected_at = 0;
        if self.entries.is_empty() {
            lines.push(Line::styled(
                "No calls yet: fill the apply form and run it.",
                theme.dim(),
            ));
        }
        for (i, entry) in self.entries.iter().enumerate() {
            if i == self.selected {
                selected_at = lines.len();
            }
            let status: Span = match &entry.state {
                _ if entry.in_flight() => Span::styled(
                    format!(
                        "{} {}",
                        SPINNER[spin % SPINNER.len()],
                        time(entry.ran_until(now))
                    ),
                    theme.warn(),
                ),
                CallState::Done {
                    outcome,
                    round_trip,
                } => {
                    // Non-breaking spaces: a wrap keeps each mark with its time.
                    let server = match outcome {
                        Ok(Outcome::Applied {
                            server_run: Some(run),
                            ..
                        }) => format!(" ·\u{a0}server\u{a0}{}", time(*run)),
                        _ => String::new(),
                    };
                    let (mark, style) = match entry.verdict() {
                        Some(Verdict::Ok) => ("✓", theme.ok()),
                        Some(Verdict::Partial) => ("!", theme.warn()),
                        _ => ("✗", theme.error()),
                    };
                    Span::styled(format!("{mark}\u{a0}{}{server}", time(*round_trip)), style)
                }
                CallState::InFlight => Span::raw(""),
            };
            let label_style = if focused && i == self.selected {
                theme.selected()
            } else {
                Style::default()
            };
            let mark = if entry.marked { "▸" } else { "#" };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{mark}{} {} ", entry.number, entry.title()),
                    label_style,
                ),
                status,
            ]));
            if let Some(series) = &entry.series {
                let done = series.done();
                let filled = (done as usize * 20) / series.total.max(1) as usize;
                lines.push(Line::raw(format!(
                    "  [{}{}] {done}/{} runs, {} failed{}",
                    "█".repeat(filled),
                    "░".repeat(20 - filled),
                    series.total,
                    series.failed,
                    if series.cancelled { ", cancelled" } else { "" }
                )));
                if let [Some(min), Some(p50), Some(p90), Some(p99), Some(max)] =
                    [0.0, 50.0, 90.0, 99.0, 100.0].map(|p| series.latencies.percentile(p))
                {
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!(
                                "  {} ",
                                sparkline(
                                    series.latencies.recent(),
                                    width.saturating_sub(30).max(10)
                                )
                            ),
                            theme.accent(),
                        ),
                        Span::raw(format!(
                            "min {} p50 {} p90 {} p99 {} max {}",
                            time(min),
                            time(p50),
                            time(p90),
                            time(p99),
                            time(max)
                        )),
                    ]));
                }
            }
            match &entry.run {
                Some(run) => runs::lines(entry, run, width, theme, time, &mut lines),
                None => outcome_lines(entry, width, theme, &mut lines),
            }
        }
        // Long lines wrap by words: count the screen rows that wrapping
        // makes, so the end of the last entry can be scrolled to.
        let wrapped = |lines: Vec<Line<'static>>| Paragraph::new(lines).wrap(Wrap { trim: false });
        let selected_row = wrapped(lines[..selected_at].to_vec()).line_count(inner.width);
        let paragraph = wrapped(lines);
        let total = paragraph.line_count(inner.width);
        let rows = inner.height as usize;
        // Show the selected entry's start, and as much after it as fits.
        let scroll = if total <= rows {
            0
        } else {
            selected_row.min(total - rows)
        };
        frame.render_widget(paragraph.scroll((scroll as u16, 0)), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_sparkline() {
        let mut latencies = Latencies::default();
        for ms in [1, 2, 3, 100] {
            latencies.record(Duration::from_millis(ms));
        }
        // To 3 significant digits.
        let about = |d: Option<Duration>, ms: f64| {
            let d = d.unwrap().as_secs_f64() * 1000.0;
            assert!((d - ms).abs() <= ms / 500.0, "{d} ms, not {ms}");
        };
        about(latencies.percentile(0.0), 1.0);
        about(latencies.percentile(50.0), 2.0);
        about(latencies.percentile(90.0), 100.0);
        about(latencies.percentile(100.0), 100.0);
        assert_eq!(latencies.count(), 4);
        assert_eq!(sparkline(latencies.recent(), 10), "▁▁▁█");
        // A long series keeps its latest round trips for the sparkline.
        for us in 1..=5000 {
            latencies.record(Duration::from_micros(us));
        }
        assert_eq!(latencies.count(), 5004);
        assert!(latencies.recent().len() <= 2 * RECENT);
        assert_eq!(
            latencies.recent().last(),
            Some(&Duration::from_micros(5000))
        );
        assert_eq!(
            latencies.recent()[latencies.recent().len() - 2],
            Duration::from_micros(4999)
        );
        assert_eq!(real_time(Duration::from_micros(1500)), "1.5ms");
    }
}

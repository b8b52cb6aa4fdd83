//! The jobs list (an overlay): running and recent jobs from `query-show`,
//! with a progress gauge and their counters, polled while it is open and a
//! job runs.

use std::time::{Duration, Instant};

use crate::tui::screen::Canvas;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::client::JobInfo;
use crate::tui::app::StatusMessage;
use crate::tui::keymap::{Keymap, Scope};
use crate::tui::panes::cut;
use crate::tui::panes::samples::{key_line, overlay_box};
use crate::tui::theme::Theme;

/// How often the open list asks again while a job runs.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Jobs {
    pub list: Vec<JobInfo>,
    pub selected: usize,
    /// A request is in flight.
    pub loading: bool,
    pub loaded_once: bool,
    /// When to ask again (only while some job runs).
    pub due: Option<Instant>,
}

impl Jobs {
    /// A fresh answer; running jobs first, then the most recently finished
    /// (servers list the oldest first). Within each, the newest started
    /// (least run time) first; jobs without the fields keep the server's order.
    pub fn set_list(&mut self, mut list: Vec<JobInfo>, answered: Instant) {
        let number = |j: &JobInfo, name| j.field(name).and_then(|v| v.parse().ok());
        list.sort_by_key(|j| {
            (
                j.is_done(),
                number(j, "time-since-done").unwrap_or(u64::MAX),
                number(j, "run-time").unwrap_or(u64::MAX),
            )
        });
        self.list = list;
        self.selected = self.selected.min(self.list.len().saturating_sub(1));
        self.loading = false;
        self.loaded_once = true;
        self.due = self.running().then(|| answered + POLL_EVERY);
    }

    pub fn running(&self) -> bool {
        self.list.iter().any(|j| !j.is_done())
    }

    pub fn selected_job(&self) -> Option<&JobInfo> {
        self.list.get(self.selected)
    }

    pub fn move_selection(&mut self, delta: isize) {
        if self.list.is_empty() {
            return;
        }
        let max = self.list.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }
}

/// `ns.set` of a job.
pub fn place(job: &JobInfo) -> String {
    let ns = job.field("ns").unwrap_or("?");
    match job.field("set") {
        Some(set) if !set.is_empty() && set != "null" => format!("{ns}.{set}"),
        _ => ns.to_string(),
    }
}

/// `module.function` of a background UDF job, `-` for others.
pub fn call(job: &JobInfo) -> String {
    match (job.field("udf-filename"), job.field("udf-function")) {
        (Some(m), Some(f)) => format!("{m}.{f}"),
        _ => "-".to_string(),
    }
}

/// A text gauge `[████░░░░]` for a percentage.
pub fn gauge(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

/// The list; `status` is the status line's message, shown inside the list
/// too since the list covers the status line or draws the eye from it.
pub fn draw(
    frame: &mut Canvas,
    jobs: &Jobs,
    status: Option<&StatusMessage>,
    keymap: &Keymap,
    theme: Theme,
) {
    let area = frame.area();
    let width = area.width.min(120);
    let rows = (jobs.list.len().max(1) * 2) as u16;
    // Border, the row marking hidden jobs, the message row, the keys.
    let height = (rows + 5).min(area.height);
    let title = if jobs.loading && !jobs.loaded_once {
        " Jobs … ".to_string()
    } else {
        format!(" Jobs ({}) ", jobs.list.len())
    };
    let inner = overlay_box(frame, width, height, &title, theme);
    let text_width = inner.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if jobs.list.is_empty() && jobs.loaded_once {
        lines.push(Line::styled(
            "(no jobs: run a background UDF or a query)",
            theme.dim(),
        ));
    }
    let visible = (inner.height.saturating_sub(3) as usize / 2).max(1);
    let first = (jobs.selected + 1).saturating_sub(visible);
    for (i, job) in jobs.list.iter().enumerate().skip(first).take(visible) {
        let style = if i == jobs.selected {
            theme.selected()
        } else {
            theme.accent()
        };
        let status = job.status().to_string();
        let status_style = if !job.is_done() {
            theme.warn()
        } else if status == "done(ok)" {
            theme.ok()
        } else {
            theme.error()
        };
        let head = format!(
            "{}  {}  {}",
            job.field("job-type").unwrap_or("?"),
            place(job),
            call(job)
        );
        lines.push(Line::from(vec![
            Span::styled(job.id().to_string(), style),
            Span::raw("  "),
            Span::raw(cut(&head, text_width.saturating_sub(22 + status.len()))),
            Span::raw("  "),
            Span::styled(status, status_style),
        ]));
        let counts = format!(
            "✓ {}  ✗ {}  filtered {}",
            job.succeeded(),
            job.failed(),
            job.filtered()
        );
        // A stopped job reads 100% on the server however far it got, and
        // this list has no earlier reading of it: no gauge.
        let progress = if job.stopped() {
            vec![Span::styled("stopped", status_style), Span::raw("  ")]
        } else {
            let gauge_width = if text_width >= 100 { 30 } else { 16 };
            vec![
                Span::styled(gauge(job.percent(), gauge_width), status_style),
                Span::raw(format!(" {:>5.1}%  ", job.percent())),
            ]
        };
        lines.push(Line::from(
            [vec![Span::raw("  ")], progress, vec![Span::raw(counts)]].concat(),
        ));
    }
    let below = jobs.list.len().saturating_sub(first + visible);
    let more: Vec<String> = [(first, "↑"), (below, "↓")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, arrow)| format!("{arrow} {n} more"))
        .collect();
    lines.push(Line::styled(more.join("  "), theme.dim()));
    lines.push(match status {
        Some(m) if m.error => Line::styled(cut(&m.text, text_width), theme.error()),
        Some(m) => Line::raw(cut(&m.text, text_width)),
        None => Line::raw(""),
    });
    lines.push(key_line(keymap, Scope::Jobs, theme));
    frame.render_widget(Paragraph::new(lines), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::query::parse_jobs;

    #[test]
    fn polls_only_while_a_job_runs() {
        let now = Instant::now();
        let mut jobs = Jobs::default();
        let reply = "trid=1:ns=test:set=s:status=done(ok):job-progress=100.00:job-type=basic;\
                     trid=2:ns=test:status=active(ok):job-progress=40.00:recs-succeeded=4:\
                     job-type=background-udf:udf-filename=stamp:udf-function=mark";
        jobs.set_list(parse_jobs(reply), now);
        assert_eq!(jobs.list[0].id(), 2, "running first");
        assert_eq!(jobs.due, Some(now + POLL_EVERY));
        assert_eq!(place(&jobs.list[0]), "test");
        assert_eq!(call(&jobs.list[0]), "stamp.mark");
        assert_eq!(place(&jobs.list[1]), "test.s");
        jobs.set_list(parse_jobs("trid=2:ns=test:status=done(ok)"), now);
        assert_eq!(jobs.due, None);
    }

    #[test]
    fn gauge_fills_by_percent() {
        assert_eq!(gauge(50.0, 4), "[██░░]");
        assert_eq!(gauge(100.0, 2), "[██]");
        assert_eq!(gauge(-3.0, 2), "[░░]");
    }
}

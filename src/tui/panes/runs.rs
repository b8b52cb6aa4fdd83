//! What the results pane shows for the query-path kinds: an aggregation's
//! values and its stage view, a background job's gauge and counters, a
//! query's records, a batch apply's per-key table. The state lives in the
//! result entry ([`RunView`]); these functions only turn it into lines.

use aerospike::Value;
use ratatui::text::{Line, Span};

use crate::client::{BatchRow, Failure, JobId, JobInfo, Outcome, RecordView};
use crate::sandbox::server::info::{StreamReport, level_text};
use crate::text::plural;
use crate::tui::literal;
use crate::tui::panes::results::{self, CallEntry, CallState, TimeFormat};
use crate::tui::panes::{cut, pad};
use crate::tui::theme::Theme;
use unicode_width::UnicodeWidthStr;

/// Rows of a list shown at once (folded; expanded shows [`ROWS_EXPANDED`]).
pub const ROWS_FOLDED: usize = 10;
pub const ROWS_EXPANDED: usize = 50;
/// Records and values kept per result: more are counted, not kept.
pub const MAX_KEPT: usize = 10_000;

/// A query-path result: what arrived, and where the list is scrolled to.
#[derive(Debug, Clone, PartialEq)]
pub struct RunView {
    /// The first row shown of the entry's list.
    pub scroll: usize,
    pub detail: Detail,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Aggregate(AggregateView),
    Background(JobView),
    /// The records, as they arrived.
    Query(Vec<QueryRow>),
    /// The rows come with the outcome.
    Batch,
}

impl RunView {
    pub fn new(detail: Detail) -> RunView {
        RunView { scroll: 0, detail }
    }

    /// True while a background job runs on the server (the request that
    /// started it is already answered).
    pub fn job_running(&self) -> bool {
        matches!(&self.detail, Detail::Background(job) if job.running())
    }

    /// True once a background job ended other than ok (aborted), or its
    /// progress could not be read (as for `asudf execute`, a failure).
    pub fn job_failed(&self) -> bool {
        matches!(&self.detail, Detail::Background(job) if job.stopped() || job.error.is_some())
    }

    /// Rows the entry lists (values, records or keys).
    pub fn rows(&self, outcome: Option<&Outcome>) -> usize {
        match (&self.detail, outcome) {
            (Detail::Aggregate(view), _) => view.values.len(),
            (Detail::Query(records), _) => records.len(),
            (Detail::Batch, Some(Outcome::BatchApplied(rows))) => rows.len(),
            _ => 0,
        }
    }

    /// Moves the list by `delta` rows, within its length.
    pub fn scroll_by(&mut self, delta: isize, rows: usize) {
        let last = rows.saturating_sub(1) as isize;
        self.scroll = (self.scroll as isize + delta).clamp(0, last.max(0)) as usize;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggregateView {
    pub values: Vec<Value>,
    /// Values beyond [`MAX_KEPT`], counted only.
    pub dropped: u64,
    /// `module.function`, namespace and set: to pick this run's job on
    /// the sandbox.
    pub udf: String,
    pub ns: String,
    pub set: Option<String>,
    pub stages: Stages,
    /// The sandbox job whose counts [`stages`](Self::stages) shows: no
    /// other run's entry takes them.
    pub trid: Option<u64>,
}

/// The stage view of an aggregation.
#[derive(Debug, Clone, PartialEq)]
pub enum Stages {
    /// The aggregation runs, or its stages are being read.
    Waiting,
    /// Not on the sandbox: a cluster has no stage counts.
    NeedsSandbox,
    Ready(StreamReport),
    Unavailable(String),
    /// The run failed and the sandbox lists no job of its own: its stream
    /// never ran (refused at its start), so there is nothing to show.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobView {
    /// Known once the server accepted the job.
    pub id: Option<u64>,
    /// The latest `query-show` entry.
    pub info: Option<JobInfo>,
    /// Why polling stopped early.
    pub error: Option<String>,
    /// The last read failed on the connection: read again once it is back.
    pub read_again: bool,
    pub abort_sent: bool,
    /// The progress last read while the job ran: what a stopped job shows.
    pub reached: f64,
}

impl JobView {
    pub fn running(&self) -> bool {
        self.id.is_some()
            && self.error.is_none()
            && !self.info.as_ref().is_some_and(|i| i.is_done())
    }

    pub fn stopped(&self) -> bool {
        self.info.as_ref().is_some_and(JobInfo::stopped)
    }

    /// Takes a new `query-show` entry, keeping how far the job got.
    pub fn read(&mut self, info: JobInfo) {
        if !info.stopped() {
            self.reached = info.percent();
        }
        self.info = Some(info);
    }

    /// How far the job got: a stopped job reads 100 on the server, so it
    /// shows the progress last read while it ran.
    pub fn percent(&self) -> f64 {
        match &self.info {
            Some(info) if !info.stopped() => info.percent(),
            _ => self.reached,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueryRow {
    pub key: Option<Value>,
    pub digest: [u8; 20],
    pub view: RecordView,
}

/// The lines of a query-path entry, after its header line.
pub fn lines(
    entry: &CallEntry,
    run: &RunView,
    width: usize,
    theme: Theme,
    time: TimeFormat,
    out: &mut Vec<Line<'static>>,
) {
    let outcome = match &entry.state {
        CallState::Done { outcome, .. } => Some(outcome),
        CallState::InFlight => None,
    };
    let page = if entry.expanded {
        ROWS_EXPANDED
    } else {
        ROWS_FOLDED
    };
    let ok = outcome.and_then(|o| o.as_ref().ok());
    match &run.detail {
        Detail::Aggregate(view) => {
            let values = Values {
                scroll: run.scroll,
                page,
                expanded: entry.expanded,
            };
            aggregate_lines(view, outcome, values, width, theme, time, out)
        }
        Detail::Background(job) => job_lines(job, width, theme, out),
        Detail::Query(records) => {
            query_lines(records, outcome, run.scroll, page, width, theme, time, out)
        }
        Detail::Batch => {
            if let Some(Outcome::BatchApplied(rows)) = ok {
                batch_lines(rows, run.scroll, page, entry.expanded, width, theme, out);
            }
        }
    }
    if let Some(Err(failure)) = outcome {
        results::failure_lines(failure, entry.registered_differs, theme, out);
    }
}

/// "rows 11–20 of 1000" under a list that does not fit.
fn window_line(scroll: usize, shown: usize, total: usize, theme: Theme) -> Option<Line<'static>> {
    (total > shown || scroll > 0).then(|| {
        Line::styled(
            format!(
                "  rows {}–{} of {total}",
                (scroll + 1).min(total),
                scroll + shown
            ),
            theme.dim(),
        )
    })
}

/// "12 values so far…" while streaming, "1 value · 3.2ms" when done,
/// "12 values received" when it failed or was cancelled.
fn count_line(
    count: u64,
    noun: (&str, &str),
    outcome: Option<&Result<Outcome, Failure>>,
    theme: Theme,
    time: TimeFormat,
) -> Line<'static> {
    match outcome {
        Some(Ok(Outcome::Streamed { count, elapsed })) => Line::styled(
            format!("  {} · {}", plural(*count, noun.0, noun.1), time(*elapsed)),
            theme.accent(),
        ),
        None => Line::styled(
            format!("  {} so far…", plural(count, noun.0, noun.1)),
            theme.warn(),
        ),
        Some(_) => Line::styled(
            format!("  {} received", plural(count, noun.0, noun.1)),
            theme.dim(),
        ),
    }
}

/// Which of an aggregation's values show, and how: expanded (Enter), each
/// one whole over as many rows as it takes, as a record call's value.
struct Values {
    scroll: usize,
    page: usize,
    expanded: bool,
}

fn aggregate_lines(
    view: &AggregateView,
    outcome: Option<&Result<Outcome, Failure>>,
    Values {
        scroll,
        page,
        expanded,
    }: Values,
    width: usize,
    theme: Theme,
    time: TimeFormat,
    out: &mut Vec<Line<'static>>,
) {
    let received = view.values.len() as u64 + view.dropped;
    out.push(count_line(
        received,
        ("value", "values"),
        outcome,
        theme,
        time,
    ));
    let shown: Vec<&Value> = view.values.iter().skip(scroll).take(page).collect();
    for value in &shown {
        if expanded {
            for (i, line) in literal::pretty(value, width.saturating_sub(4))
                .into_iter()
                .enumerate()
            {
                let lead = if i == 0 { "  = " } else { "    " };
                out.push(Line::raw(format!("{lead}{line}")));
            }
            continue;
        }
        let (text, folded) = literal::fold(value, width.saturating_sub(6).max(8));
        let mut spans = vec![Span::raw(format!("  = {text}"))];
        if folded {
            spans.push(Span::styled(" ⏎", theme.dim()));
        }
        out.push(Line::from(spans));
    }
    out.extend(window_line(scroll, shown.len(), view.values.len(), theme));
    match &view.stages {
        Stages::Waiting | Stages::NotRun => {}
        Stages::NeedsSandbox => out.push(Line::styled(
            "  stage view: needs the sandbox (a cluster does not count stages)",
            theme.dim(),
        )),
        Stages::Unavailable(why) => {
            out.push(Line::styled(format!("  stage view: {why}"), theme.dim()))
        }
        Stages::Ready(report) => {
            let client = client_reduce(view, report, outcome);
            stage_lines(report, client, page, width, theme, out)
        }
    }
}

/// The client's reduce as a stage: it reads what the last server stage
/// yielded (one partial value per partition) and hands over the values
/// received. Known once it ended, ok or failed (not when the server's half
/// failed, nor while running or cancelled).
#[derive(Debug, Clone, Copy, PartialEq)]
struct ClientReduce {
    values_in: u64,
    values_out: u64,
    failed: bool,
}

fn client_reduce(
    view: &AggregateView,
    report: &StreamReport,
    outcome: Option<&Result<Outcome, Failure>>,
) -> Option<ClientReduce> {
    let failed = match outcome? {
        Ok(_) => false,
        Err(f) if crate::client::query::failed_in_client(f) => true,
        Err(_) => return None,
    };
    Some(ClientReduce {
        values_in: report.stages.last().map_or(0, |s| s.values_out),
        values_out: view.values.len() as u64 + view.dropped,
        failed,
    })
}

/// Per server-side stage: values in and out over the partitions that ran;
/// then the client's part and the stream functions' log lines.
fn stage_lines(
    report: &StreamReport,
    client: Option<ClientReduce>,
    page: usize,
    width: usize,
    theme: Theme,
    out: &mut Vec<Line<'static>>,
) {
    out.push(Line::styled(
        format!(
            "  stages · {} partition{} ran{}",
            report.partitions,
            if report.partitions == 1 { "" } else { "s" },
            if report.done { "" } else { " (still running)" }
        ),
        theme.accent(),
    ));
    let name_width = report
        .stages
        .iter()
        .map(|s| s.stage.width())
        .chain(["client reduce".len()])
        .max()
        .unwrap_or(0)
        .min(width.saturating_sub(24).max(8));
    out.push(Line::styled(
        format!("    {:<name_width$} {:>8} {:>8}", "stage", "in", "out"),
        theme.dim(),
    ));
    for stage in &report.stages {
        out.push(Line::raw(format!(
            "    {} {:>8} {:>8}",
            pad(&stage.stage, name_width),
            stage.values_in,
            stage.values_out
        )));
    }
    if let Some(client) = client {
        let (mark, style) = if client.failed {
            (" ✗", theme.error())
        } else {
            ("", theme.ok())
        };
        out.push(Line::styled(
            format!(
                "    {:<name_width$} {:>8} {:>8}{mark}",
                "client reduce", client.values_in, client.values_out
            ),
            style,
        ));
    }
    for log in report.logs.iter().take(page) {
        out.push(Line::styled(
            cut(
                &format!("  log {}: {}", level_text(log.level), log.text),
                width,
            ),
            theme.dim(),
        ));
    }
    if report.logs.len() > page {
        out.push(Line::styled(
            format!("  … {} more log lines", report.logs.len() - page),
            theme.dim(),
        ));
    }
}

fn job_lines(job: &JobView, width: usize, theme: Theme, out: &mut Vec<Line<'static>>) {
    let Some(id) = job.id else {
        return;
    };
    let Some(info) = &job.info else {
        match &job.error {
            // Never read: what stopped the reads is all there is to say.
            Some(error) => out.push(Line::styled(format!("  job {id}: {error}"), theme.error())),
            None => out.push(Line::styled(format!("  job {id} started"), theme.dim())),
        }
        return;
    };
    let percent = job.percent().clamp(0.0, 100.0);
    let bar_width = width.saturating_sub(24).clamp(10, 40);
    let filled = ((percent / 100.0) * bar_width as f64).round() as usize;
    let style = if info.is_done() {
        if info.status() == "done(ok)" {
            theme.ok()
        } else {
            theme.error()
        }
    } else {
        theme.warn()
    };
    out.push(Line::from(vec![
        Span::styled(
            format!(
                "  [{}{}]",
                "█".repeat(filled),
                "░".repeat(bar_width - filled)
            ),
            style,
        ),
        Span::raw(format!(" {percent:>6.2}%")),
    ]));
    out.push(Line::raw(cut(
        &format!("  job {id} · {}", info.status()),
        width,
    )));
    out.push(Line::styled(
        cut(
            &format!(
                "  succeeded {} · failed {} · filtered {}",
                info.succeeded(),
                info.failed(),
                info.filtered()
            ),
            width,
        ),
        if info.failed() > 0 {
            theme.warn()
        } else {
            theme.accent()
        },
    ));
    if job.abort_sent && !info.is_done() {
        out.push(Line::styled("  aborting…", theme.warn()));
    }
    if let Some(error) = &job.error {
        out.push(Line::styled(format!("  {error}"), theme.error()));
    }
}

fn key_text(key: &Option<Value>, digest: &[u8; 20]) -> String {
    match key {
        Some(key) => literal::print(key),
        None => format!("#{}", &hex::encode(digest)[..12]),
    }
}

#[allow(clippy::too_many_arguments)]
fn query_lines(
    records: &[QueryRow],
    outcome: Option<&Result<Outcome, Failure>>,
    scroll: usize,
    page: usize,
    width: usize,
    theme: Theme,
    time: TimeFormat,
    out: &mut Vec<Line<'static>>,
) {
    let count = match outcome {
        Some(Ok(Outcome::Streamed { count, .. })) => *count,
        _ => records.len() as u64,
    };
    out.push(count_line(
        count,
        ("record", "records"),
        outcome,
        theme,
        time,
    ));
    let shown: Vec<&QueryRow> = records.iter().skip(scroll).take(page).collect();
    for row in &shown {
        let bins: Vec<String> = row
            .view
            .bins
            .iter()
            .map(|(n, v)| format!("{n}: {}", literal::print(v)))
            .collect();
        let ttl = row.view.ttl.map_or("never".into(), |t| format!("{t}s"));
        let meta = format!("  gen {} ttl {ttl}", row.view.generation);
        let key = key_text(&row.key, &row.digest);
        let room = width.saturating_sub(key.width() + meta.width() + 4);
        out.push(Line::from(vec![
            Span::styled(format!("  {key} "), theme.key()),
            Span::raw(cut(&format!("{{{}}}", bins.join(", ")), room.max(8))),
            Span::styled(meta, theme.dim()),
        ]));
    }
    out.extend(window_line(scroll, shown.len(), records.len(), theme));
}

/// A row per key; folded, an error is cut to the row; expanded, each error
/// shows whole (the pane wraps it), as a single call's does.
fn batch_lines(
    rows: &[BatchRow],
    scroll: usize,
    page: usize,
    expanded: bool,
    width: usize,
    theme: Theme,
    out: &mut Vec<Line<'static>>,
) {
    let failed = rows.iter().filter(|r| r.result.is_err()).count();
    out.push(Line::styled(
        format!("  {} · {failed} failed", plural(rows.len(), "key", "keys")),
        if failed > 0 {
            theme.warn()
        } else {
            theme.accent()
        },
    ));
    let key_width = rows
        .iter()
        .map(|r| literal::print(&r.key).width())
        .max()
        .unwrap_or(0)
        .min(width / 3);
    let shown: Vec<&BatchRow> = rows.iter().skip(scroll).take(page).collect();
    for row in &shown {
        let key = pad(&literal::print(&row.key), key_width);
        let room = width.saturating_sub(key_width + 6).max(8);
        let (mark, text, style) = match &row.result {
            Ok(value) => ("✓", literal::fold(value, room).0, theme.ok()),
            Err(failure) if expanded => {
                // A traceback's lines follow the row, indented (tabs as spaces).
                let whole = failure.to_string().replace('\t', "  ");
                let mut lines = whole.lines();
                let first = lines.next().unwrap_or_default().to_string();
                let rest: Vec<Line<'static>> = lines
                    .map(|line| Line::styled(format!("    {line}"), theme.error()))
                    .collect();
                out.push(batch_row(&key, "✗", first, theme.error()));
                out.extend(rest);
                continue;
            }
            Err(failure) => ("✗", cut(&failure.to_string(), room), theme.error()),
        };
        out.push(batch_row(&key, mark, text, style));
    }
    out.extend(window_line(scroll, shown.len(), rows.len(), theme));
}

/// `key` comes padded to the key column's width.
fn batch_row(key: &str, mark: &str, text: String, style: ratatui::style::Style) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!("  {key} ")),
        Span::styled(format!("{mark} "), style),
        Span::raw(text),
    ])
}

/// A run's rows as JSON, for copying and saving results: values typed,
/// bins plain, as the commands print them.
pub fn add_json(
    run: &RunView,
    result: Option<&Result<Outcome, Failure>>,
    item: &mut serde_json::Value,
) {
    use crate::value::{to_plain_json, to_typed_json};
    use serde_json::json;
    let outcome = result.and_then(|r| r.as_ref().ok());
    if let Some(Outcome::Streamed { count, elapsed }) = outcome {
        item["count"] = json!(count);
        item["elapsed_ms"] = json!(elapsed.as_secs_f64() * 1000.0);
    }
    match &run.detail {
        Detail::Aggregate(view) => {
            item["values"] = view.values.iter().map(to_typed_json).collect();
            if let Stages::Ready(report) = &view.stages {
                item["partitions"] = json!(report.partitions);
                let client = client_reduce(view, report, result).map(
                    |c| json!({"stage": "client reduce", "in": c.values_in, "out": c.values_out}),
                );
                item["stages"] = report
                    .stages
                    .iter()
                    .map(|s| json!({"stage": s.stage, "in": s.values_in, "out": s.values_out}))
                    .chain(client)
                    .collect();
            }
        }
        Detail::Background(job) => {
            item["job"] = json!(job.id.map(JobId));
            if let Some(info) = &job.info {
                item["status"] = json!(info.status());
                item["percent"] = json!(info.percent());
                item["succeeded"] = json!(info.succeeded());
                item["failed"] = json!(info.failed());
                item["filtered"] = json!(info.filtered());
            }
        }
        Detail::Query(rows) => {
            item["records"] = rows
                .iter()
                .map(|r| {
                    json!({
                        "key": r.key.as_ref().map_or(json!(null), to_typed_json),
                        "digest": hex::encode(r.digest),
                        "bins": r.view.bins.iter().map(|(n, v)| (n.clone(), to_plain_json(v))).collect::<serde_json::Map<_, _>>(),
                        "gen": r.view.generation,
                        "ttl": r.view.ttl,
                    })
                })
                .collect();
        }
        Detail::Batch => {
            if let Some(Outcome::BatchApplied(rows)) = outcome {
                item["results"] = rows
                    .iter()
                    .map(|row| match &row.result {
                        Ok(v) => json!({"key": to_typed_json(&row.key), "ok": true, "value": to_typed_json(v)}),
                        Err(f) => json!({"key": to_typed_json(&row.key), "ok": false,
                                         "error": {"code": f.code, "message": f.message}}),
                    })
                    .collect();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::engine::{LogLevel, LogLine, StageCount};
    use crate::tui::theme::ThemeKind;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn batch_rows_pad_keys_by_display_width_and_cut_long_ones() {
        let failed = || Err(Failure::usage("error 100: boom"));
        let rows = vec![
            BatchRow {
                key: Value::from("日本"),
                result: failed(),
            },
            BatchRow {
                key: Value::from("abcdef"),
                result: Ok(Value::from(1)),
            },
            BatchRow {
                key: Value::from("ключ-日本-a-very-long-key"),
                result: failed(),
            },
        ];
        let mut out = Vec::new();
        let theme = Theme::new(ThemeKind::Dark);
        batch_lines(&rows, 0, 10, false, 40, theme, &mut out);
        let lines = text(&out);
        // Every mark sits in the same terminal column; no row is wider than the pane.
        let marks: Vec<usize> = lines[1..]
            .iter()
            .map(|l| {
                let at = l.find(['✓', '✗']).unwrap();
                l[..at].width()
            })
            .collect();
        assert_eq!(marks, vec![marks[0]; 3], "{lines:?}");
        assert!(lines.iter().all(|l| l.width() <= 40), "{lines:?}");
        assert!(lines[3].contains('…'), "{lines:?}");
    }

    #[test]
    fn stage_view_counts_the_client_reduce_and_folds_long_logs() {
        let report = StreamReport {
            done: true,
            partitions: 2,
            stages: vec![StageCount {
                stage: "aggregate(a_rather_long_function_name)".into(),
                values_in: 9,
                values_out: 2,
            }],
            logs: (0..15)
                .map(|i| LogLine {
                    level: LogLevel::Info,
                    text: format!("line {i}"),
                })
                .collect(),
            udf: None,
        };
        let mut out = Vec::new();
        let theme = Theme::new(ThemeKind::Dark);
        let client = ClientReduce {
            values_in: 2,
            values_out: 1,
            failed: false,
        };
        stage_lines(&report, Some(client), 10, 40, theme, &mut out);
        let lines = text(&out);
        assert!(lines[0].contains("2 partitions ran"), "{lines:?}");
        assert!(
            lines[2].contains("aggregate(a_rat…") && lines[2].ends_with("9        2"),
            "{lines:?}"
        );
        assert!(
            lines[3].contains("client reduce") && lines[3].ends_with("2        1"),
            "{lines:?}"
        );
        assert_eq!(lines.iter().filter(|l| l.contains("log info")).count(), 10);
        assert_eq!(lines.last().unwrap(), "  … 5 more log lines");
    }
}

//! A run's reports as text for people, JSON for scripts, JUnit XML for CI.
//! Text and XML show control characters in names, messages and log lines
//! as escapes ([`visible`]); JSON keeps them exact (it escapes them itself).

use std::fmt::Write as _;

use quick_xml::escape::{escape, partial_escape};
use serde_json::{Value as Json, json};

use super::runner::{At, FileReport, Problem, StepReport};
use crate::client::UdfLog;
use crate::text::plural;
use crate::value::visible;

/// Totals over every file: (passed, failed), a file that did not run to
/// its end counting as a failure.
pub fn totals(files: &[FileReport]) -> (usize, usize) {
    files
        .iter()
        .fold((0, 0), |(p, f), r| (p + r.passed(), f + r.failed()))
}

fn unfinished(files: &[FileReport]) -> usize {
    files.iter().filter(|f| f.unfinished()).count()
}

/// The closing line; the files that did not run are among the failures.
pub fn summary(files: &[FileReport]) -> String {
    let (passed, failed) = totals(files);
    let mut line = format!("{passed} passed, {failed} failed");
    let unfinished = unfinished(files);
    if unfinished > 0 {
        let files = plural(unfinished, "file", "files");
        let _ = write!(line, " ({files} not run to the end)");
    }
    line
}

/// How many characters of a value, message or log line a failure shows: a
/// 2 MB value would bury the report (`--json` keeps it whole).
const SHOWN: usize = 300;
/// Of those, how many come before where two values first differ.
const BEFORE: usize = 60;

/// `text` as a report shows it whole: its escapes made visible, then cut
/// to [`SHOWN`] characters, so text and XML cut the same place.
fn shown(text: &str) -> String {
    excerpt(&visible(text), 0)
}

/// `text` from character `start`, at most [`SHOWN`] characters: `…` marks
/// each cut, and a cut text ends with its full length.
fn excerpt(text: &str, start: usize) -> String {
    let total = text.chars().count();
    let mut out = crate::text::window(text, start, SHOWN);
    if start > 0 || total > SHOWN {
        let _ = write!(out, "  ({total} characters)");
    }
    out
}

/// Where `actual` stops matching `expected`: the character both are shown
/// from (past the text they share, when it is long) and the carets under
/// the differing part of `excerpt(actual, start)`.
fn difference(expected: &str, actual: &str) -> (usize, String) {
    let e: Vec<char> = expected.chars().collect();
    let a: Vec<char> = actual.chars().collect();
    let prefix = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let max_suffix = e.len().min(a.len()) - prefix;
    let suffix = e
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let start = if e.len().max(a.len()) > SHOWN {
        prefix.saturating_sub(BEFORE)
    } else {
        0
    };
    let lead = prefix - start + usize::from(start > 0);
    let shown_end = a.len().min(start + SHOWN);
    let width = (a.len() - prefix - suffix)
        .min(shown_end.saturating_sub(prefix))
        .max(1);
    (start, format!("{}{}", " ".repeat(lead), "^".repeat(width)))
}

fn problem_text(p: &Problem, out: &mut String) {
    let _ = writeln!(out, "    {}", shown(&p.what));
    let expected = p.expected.as_deref().map(visible);
    let actual = p.actual.as_deref().map(visible);
    match (&expected, &actual) {
        (Some(e), Some(a)) => {
            // A pattern is not a value: nothing to line up.
            let (start, marker) = if p.mark {
                difference(e, a)
            } else {
                (0, String::new())
            };
            let _ = writeln!(out, "      expected: {}", excerpt(e, start));
            let _ = writeln!(out, "      actual:   {}", excerpt(a, start));
            if p.mark {
                let _ = writeln!(out, "                {marker}");
            }
        }
        (Some(e), None) => {
            let _ = writeln!(out, "      expected: {}", excerpt(e, 0));
        }
        _ => {}
    }
    if let Some(at) = &p.at {
        let (place, line) = at_text(at);
        let _ = writeln!(out, "      at {}", visible(&place));
        if let Some(text) = &at.text {
            let _ = writeln!(out, "      {line:>5} | {}", shown(text));
        }
    }
}

/// Where a UDF error is, in the file the user edits (the name the server
/// gave said too when it differs), and the line number shown with its text.
fn at_text(at: &At) -> (String, usize) {
    let Some((file, line)) = &at.file else {
        return (format!("{}:{}", at.module, at.line), at.line as usize);
    };
    let mut place = format!("{}:{line}", file.display());
    if at.inline {
        let _ = write!(place, " (line {} of inline module {})", at.line, at.module);
    } else if file.file_name().and_then(|n| n.to_str()) != Some(at.module.as_str()) {
        let _ = write!(place, " (registered as {})", at.module);
    }
    (place, *line)
}

fn log_text(log: &UdfLog, out: &mut String) {
    let _ = writeln!(out, "    log [{}] {}", log.level, shown(&log.text));
}

fn step_text(step: &StepReport, out: &mut String) {
    let _ = writeln!(
        out,
        "  step {} (line {}): {}",
        step.index + 1,
        step.line,
        visible(&step.title)
    );
    for p in &step.problems {
        problem_text(p, out);
    }
    for log in &step.logs {
        log_text(log, out);
    }
}

/// The report of one file: a line when it passed, the details when not.
pub fn file_text(file: &FileReport) -> String {
    let mut out = String::new();
    let path = file.path.display().to_string();
    let name = visible(&path);
    if let Some(e) = &file.bad_file {
        let _ = writeln!(out, "ERROR {}", visible(&e.to_string()));
        return out;
    }
    if let Some(reason) = &file.connection {
        let _ = writeln!(out, "ERROR {name}: connection: {}", visible(reason));
    }
    if file.failed() == 0 {
        let _ = writeln!(
            out,
            "ok    {name} ({}, {:.1} ms)",
            plural(file.steps.len(), "step", "steps"),
            file.elapsed.as_secs_f64() * 1000.0
        );
        return out;
    }
    if !file.setup.is_empty() || file.steps.iter().any(|s| !s.passed()) {
        let _ = writeln!(out, "FAIL  {name}");
    }
    if !file.setup.is_empty() {
        let _ = writeln!(out, "  setup (no step ran)");
        for p in &file.setup {
            problem_text(p, &mut out);
        }
    }
    for step in file.steps.iter().filter(|s| !s.passed()) {
        step_text(step, &mut out);
    }
    out
}

fn problem_json(p: &Problem) -> Json {
    let mut j = json!({"what": p.what});
    if let Some(e) = &p.expected {
        j["expected"] = json!(e);
    }
    if let Some(a) = &p.actual {
        j["actual"] = json!(a);
    }
    if let Some(at) = &p.at {
        j["module"] = json!(at.module);
        j["line"] = json!(at.line);
        if let Some((file, line)) = &at.file {
            j["file"] = json!(file.display().to_string());
            j["file_line"] = json!(line);
        }
    }
    j
}

/// The whole run as one JSON object.
pub fn json(files: &[FileReport]) -> Json {
    let (passed, failed) = totals(files);
    let files: Vec<Json> = files
        .iter()
        .map(|f| {
            let steps: Vec<Json> = f
                .steps
                .iter()
                .map(|s| {
                    let logs: Vec<Json> = s
                        .logs
                        .iter()
                        .map(|l| json!({"level": l.level, "text": l.text}))
                        .collect();
                    json!({
                        "step": s.index + 1,
                        "line": s.line,
                        "title": s.title,
                        "ok": s.passed(),
                        "problems": s.problems.iter().map(problem_json).collect::<Vec<_>>(),
                        "logs": logs,
                        "ms": s.elapsed.as_secs_f64() * 1000.0,
                    })
                })
                .collect();
            let mut j = json!({
                "file": f.path.display().to_string(),
                "passed": f.passed(),
                "failed": f.failed(),
                "setup": f.setup.iter().map(problem_json).collect::<Vec<_>>(),
                "steps": steps,
                "ms": f.elapsed.as_secs_f64() * 1000.0,
            });
            if let Some(e) = &f.bad_file {
                j["error"] =
                    json!({"line": e.pos.line, "column": e.pos.column, "message": e.message});
            }
            if let Some(reason) = &f.connection {
                j["connection_error"] = json!(reason);
            }
            if let Some(id) = &f.run_id {
                j["run_id"] = json!(id);
            }
            j
        })
        .collect();
    json!({"ok": failed == 0, "passed": passed, "failed": failed, "files": files})
}

/// A failure's text as the plain report gives it (escaped there already).
fn problems_body(problems: &[Problem], logs: &[UdfLog]) -> String {
    let mut out = String::new();
    for p in problems {
        problem_text(p, &mut out);
    }
    for log in logs {
        log_text(log, &mut out);
    }
    out
}

/// Text for an XML attribute: escaped as text is shown ([`visible`]), for
/// XML 1.0 cannot carry most control characters even as `&#N;`.
fn attr(text: &str) -> String {
    escape(visible(text)).into_owned()
}

fn testcase(out: &mut String, class: &str, name: &str, secs: f64, failure: Option<(&str, String)>) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{secs:.6}\"",
        attr(class),
        attr(name)
    );
    match failure {
        None => out.push_str("/>\n"),
        Some((message, body)) => {
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(shown(message).as_str()),
                partial_escape(&body)
            );
        }
    }
}

/// JUnit XML: a suite per file, a case per step (and one for a failed
/// setup, one in error for a file that did not run to its end), so the
/// failures and errors add up to the summary's failed count.
pub fn junit(files: &[FileReport]) -> String {
    let (passed, failed) = totals(files);
    let errors = unfinished(files);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"asudf test\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\">",
        passed + failed,
        failed - errors
    );
    for f in files {
        let class = f.path.display().to_string();
        let errors = usize::from(f.unfinished());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\" time=\"{:.6}\">",
            attr(&class),
            f.passed() + f.failed(),
            f.failed() - errors,
            f.elapsed.as_secs_f64()
        );
        // A file that did not run is one case, in error.
        let error = f.bad_file.as_ref().map(|e| e.to_string());
        if let Some(message) = error.or_else(|| f.connection.clone()) {
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"file\" time=\"0\">\n      <error message=\"{}\"/>\n    </testcase>",
                attr(&class),
                attr(&message)
            );
        }
        if !f.setup.is_empty() {
            let body = problems_body(&f.setup, &[]);
            testcase(&mut out, &class, "setup", 0.0, Some(("setup failed", body)));
        }
        for s in &f.steps {
            let name = format!("step {} (line {}): {}", s.index + 1, s.line, s.title);
            let failure = (!s.passed()).then(|| {
                let message = s.problems.first().map_or("failed", |p| p.what.as_str());
                (message, problems_body(&s.problems, &s.logs))
            });
            testcase(&mut out, &class, &name, s.elapsed.as_secs_f64(), failure);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_the_differing_part() {
        let mark = |e: &str, a: &str| difference(e, a).1;
        assert_eq!(mark("[1, 2, 3]", "[1, 5, 3]"), "    ^");
        assert_eq!(mark("8", "13"), "^^");
        assert_eq!(mark("'ab'", "'abc'"), "   ^");
        assert_eq!(mark("{'a': 1}", "nil"), "^^^");
    }

    #[test]
    fn long_values_show_a_window_at_the_difference() {
        // Short values are whole; a long one is cut after SHOWN characters.
        assert_eq!(excerpt("short", 0), "short");
        let long = "y".repeat(1000);
        assert_eq!(
            excerpt(&long, 0),
            format!("{}…  (1000 characters)", &long[..SHOWN])
        );
        // Differing past the shown part: the window starts BEFORE it.
        let (e, a) = (format!("{long}a{long}"), format!("{long}bc{long}"));
        let (start, marker) = difference(&e, &a);
        assert_eq!(start, 1000 - BEFORE);
        assert_eq!(marker, format!("{}^^", " ".repeat(BEFORE + 1)));
        let shown = excerpt(&a, start);
        assert!(
            shown.starts_with(&format!("…{}bc", &long[..BEFORE])),
            "{shown}"
        );
        assert!(shown.ends_with("…  (2002 characters)"), "{shown}");
        // A difference wider than the window: carets only under what is shown.
        let (start, marker) = difference("1", &long);
        assert_eq!((start, marker), (0, "^".repeat(SHOWN)));
    }
}

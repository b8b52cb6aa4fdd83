//! The query path from the command line: `query`, `aggregate`, `execute`,
//! `jobs` and `index`. Records and values print as they arrive.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aerospike::Value;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Headless, fail, millis, record::record_json, udf::unexpected};
use crate::client::{
    Failure, IndexInfo, JobId, JobInfo, Outcome, Request, StreamItem, Timing, no_job_started,
};
use crate::text::plural;
use crate::value;

/// How often a waiting `execute` asks for the job's progress.
const PROGRESS_POLL: Duration = Duration::from_millis(100);

/// Runs a streaming request, handing each item to `each` as it arrives.
async fn stream(
    session: &Headless,
    request: Request,
    mut each: impl FnMut(StreamItem),
) -> (Result<Outcome, Failure>, Timing) {
    let (items, mut rx) = mpsc::unbounded_channel();
    let call = session.handle.call_streaming(request, items);
    let print = async {
        while let Some(item) = rx.recv().await {
            each(item);
        }
    };
    let (answer, ()) = tokio::join!(call, print);
    answer
}

/// `noun`: what was streamed, as `(one, many)`.
fn summary(
    session: &Headless,
    outcome: Result<Outcome, Failure>,
    (one, many): (&str, &str),
) -> ExitCode {
    match outcome {
        Ok(Outcome::Streamed { count, elapsed }) => {
            if session.json {
                outln!(
                    "{}",
                    json!({"ok": true, "count": count, "elapsed_ms": elapsed.as_secs_f64() * 1000.0})
                );
            } else {
                eprintln!("({} in {})", plural(count, one, many), millis(elapsed));
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

fn key_text(key: &Option<Value>, digest: &[u8; 20]) -> String {
    match key {
        Some(key) => value::print(key),
        None => format!("digest {}", hex::encode(digest)),
    }
}

/// `asudf query`: one record per line (JSON lines with `--json`), then a summary.
pub async fn query(session: &mut Headless, request: Request) -> ExitCode {
    let json = session.json;
    let (outcome, _) = stream(session, request, |item| {
        let StreamItem::Record { key, digest, view } = item else {
            return;
        };
        if json {
            let mut line = record_json(&view);
            line["key"] = key.as_ref().map_or(json!(null), value::to_typed_json);
            line["digest"] = json!(hex::encode(digest));
            outln!("{line}");
        } else {
            let bins: Vec<String> = view
                .bins
                .iter()
                .map(|(n, v)| format!("{n}: {}", value::print(v)))
                .collect();
            let ttl = view
                .ttl
                .map_or("never expires".into(), |s| format!("ttl {s} s"));
            outln!(
                "{}  {{{}}}  (gen {}, {ttl})",
                key_text(&key, &digest),
                bins.join(", "),
                view.generation
            );
        }
    })
    .await;
    summary(session, outcome, ("record", "records"))
}

/// `asudf aggregate`: the stream's values, one per line; with `--json` one
/// object holding them all.
pub async fn aggregate(session: &mut Headless, request: Request) -> ExitCode {
    let json = session.json;
    let mut values = Vec::new();
    let (outcome, _) = stream(session, request, |item| {
        if let StreamItem::Value(v) = item {
            if !json {
                outln!("{}", value::print(&v));
            }
            values.push(v);
        }
    })
    .await;
    match outcome {
        Ok(Outcome::Streamed { count, elapsed }) if json => {
            outln!(
                "{}",
                json!({
                    "ok": true,
                    "results": values.iter().map(value::to_plain_json).collect::<Vec<_>>(),
                    "values": values.iter().map(value::to_typed_json).collect::<Vec<_>>(),
                    "count": count,
                    "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
                })
            );
            ExitCode::SUCCESS
        }
        other => summary(session, other, ("value", "values")),
    }
}

fn job_json(job: &JobInfo) -> serde_json::Value {
    let fields: serde_json::Map<_, _> = job
        .fields
        .iter()
        .map(|(n, v)| (n.clone(), json!(v)))
        .collect();
    json!({
        "id": JobId(job.id()), "status": job.status(), "percent": job.percent(),
        "succeeded": job.succeeded(), "failed": job.failed(), "filtered": job.filtered(),
        "fields": fields,
    })
}

fn job_line(job: &JobInfo) -> String {
    format!(
        "{}  {}  {:.2}%  succeeded {}  failed {}  filtered {}",
        job.id(),
        job.status(),
        job.percent(),
        job.succeeded(),
        job.failed(),
        job.filtered()
    )
}

async fn job_info(session: &Headless, id: u64) -> Result<JobInfo, Failure> {
    match session
        .handle
        .call(Request::Jobs { id: Some(id) })
        .await
        .0?
    {
        Outcome::Jobs(mut jobs) if !jobs.is_empty() => Ok(jobs.remove(0)),
        _ => Err(Failure::connection(format!("job {id} is not listed"))),
    }
}

/// `asudf execute`: starts the job and, unless `no_wait`, shows its
/// progress until it ends.
pub async fn execute(session: &mut Headless, request: Request, no_wait: bool) -> ExitCode {
    // A job outlives its command only on a server that outlives it.
    if no_wait && session.cluster.served_here {
        let refused = Failure::usage(
            "--no-wait needs a sandbox that outlives this command: this command serves the \
             local sandbox itself, and a job stops with it (keep the console or `asudf serve` \
             running, or leave out --no-wait)",
        );
        return fail(session.json, &refused);
    }
    let (set, rps) = match &request {
        Request::Execute(call) => (call.scope.set.clone(), call.records_per_second),
        _ => (None, None),
    };
    let id = match session.handle.call(request).await.0 {
        Ok(Outcome::JobStarted { id }) => JobId(id),
        Ok(other) => return unexpected(other),
        Err(mut f) => {
            // The client says what the limit is; the option is the command's.
            if let (4, Some(_)) = (f.code, rps) {
                f.message = format!("--rps: {}", f.message);
            }
            return fail(session.json, &f);
        }
    };
    if no_wait {
        if session.json {
            outln!("{}", json!({"ok": true, "job": id}));
        } else {
            outln!("{id}");
        }
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    let bar = ProgressBar::new(10_000);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}%  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if session.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut first = true;
    let job = loop {
        let job = match job_info(session, id.0).await {
            Ok(job) => job,
            Err(mut f) => {
                if first && let Some(message) = no_job_started(&f, set.as_deref()) {
                    f.message = message;
                }
                bar.abandon();
                return fail(session.json, &f);
            }
        };
        first = false;
        let done = job.succeeded() + job.failed();
        let secs = started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-3);
        let percent = job.percent();
        let eta = if percent > 0.0 && percent < 100.0 {
            format!("  eta {:.0} s", secs * (100.0 - percent) / percent)
        } else {
            String::new()
        };
        bar.set_position((percent * 100.0) as u64);
        let records = plural(done, "record", "records");
        bar.set_message(format!("{records}  {rate:.0}/s{eta}"));
        if job.is_done() {
            break job;
        }
        tokio::time::sleep(PROGRESS_POLL).await;
    };
    bar.finish_and_clear();
    if session.json {
        let mut out = job_json(&job);
        out["ok"] = json!(true);
        out["job"] = json!(id);
        outln!("{out}");
    } else {
        outln!("{}", job_line(&job));
    }
    // The job ended as the server says (done(ok) counts records the UDF
    // failed on apart): say so where a reader of the text may miss it.
    if job.failed() > 0 && !session.json {
        eprintln!(
            "warning: {} failed (the UDF's errors are in the server's log)",
            plural(job.failed(), "record call", "record calls")
        );
    }
    ExitCode::SUCCESS
}

/// `asudf jobs [ls | show ID | abort ID]`.
pub async fn jobs(session: &mut Headless, request: Request) -> ExitCode {
    match session.handle.call(request).await.0 {
        Ok(Outcome::Jobs(jobs)) => {
            if session.json {
                let list: Vec<_> = jobs.iter().map(job_json).collect();
                outln!("{}", json!({"ok": true, "jobs": list}));
            } else {
                for job in &jobs {
                    outln!("{}", job_line(job));
                }
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Info(_)) => {
            if session.json {
                outln!("{}", json!({"ok": true}));
            } else {
                outln!("aborted");
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

fn index_json(ix: &IndexInfo) -> serde_json::Value {
    json!({
        "ns": ix.ns, "name": ix.name, "set": ix.set, "bin": ix.bin,
        "type": ix.kind, "collection": ix.collection, "state": ix.state,
    })
}

/// `asudf index create|ls|rm`.
pub async fn index(session: &mut Headless, request: Request) -> ExitCode {
    match session.handle.call(request).await.0 {
        Ok(Outcome::IndexCreated { name }) | Ok(Outcome::IndexDropped { name }) => {
            if session.json {
                outln!("{}", json!({"ok": true, "name": name}));
            } else {
                outln!("{name}");
            }
            ExitCode::SUCCESS
        }
        Ok(Outcome::Indexes(list)) => {
            if session.json {
                let list: Vec<_> = list.iter().map(index_json).collect();
                outln!("{}", json!({"ok": true, "indexes": list}));
            } else {
                for ix in &list {
                    let set = ix.set.as_deref().map_or(String::new(), |s| format!(".{s}"));
                    outln!(
                        "{}  {}{set}  {} {} {}  {}",
                        ix.name,
                        ix.ns,
                        ix.bin,
                        ix.kind,
                        ix.collection,
                        ix.state
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Ok(other) => unexpected(other),
        Err(f) => fail(session.json, &f),
    }
}

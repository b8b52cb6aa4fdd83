//! `asudf bench apply`: N applies at a given concurrency through the client
//! task, then throughput and latency percentiles.

use std::process::ExitCode;
use std::time::Instant;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{Headless, report_failure};
use crate::client::{ApplyCall, Event, Failure, Request};

#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<Failure>,
}

/// Runs `n` applies of `call` with `concurrency` in flight.
pub async fn measure(
    session: &mut Headless,
    call: &ApplyCall,
    n: u64,
    concurrency: u64,
) -> BenchReport {
    let progress = ProgressBar::new(n);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} applies  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut latencies = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    let (mut sent, mut done, mut errors) = (0u64, 0u64, 0u64);
    let mut first_error = None;
    let start = Instant::now();
    while sent < n.min(concurrency.max(1)) {
        session.handle.send(Request::Apply(call.clone()));
        sent += 1;
    }
    while done < n {
        let Some(event) = session.events.recv().await else {
            break;
        };
        let Event::Done {
            outcome, timing, ..
        } = event
        else {
            continue;
        };
        done += 1;
        progress.inc(1);
        match outcome {
            Ok(_) => {
                let _ = latencies.record(timing.round_trip().as_micros() as u64);
            }
            Err(f) => {
                errors += 1;
                first_error.get_or_insert(f);
            }
        }
        if sent < n {
            session.handle.send(Request::Apply(call.clone()));
            sent += 1;
        }
    }
    progress.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    BenchReport {
        ops: done,
        errors,
        seconds,
        ops_per_sec: done as f64 / seconds.max(f64::EPSILON),
        p50_us: latencies.value_at_quantile(0.50),
        p90_us: latencies.value_at_quantile(0.90),
        p99_us: latencies.value_at_quantile(0.99),
        max_us: latencies.max(),
        first_error,
    }
}

pub async fn run(session: &mut Headless, call: ApplyCall, n: u64, concurrency: u64) -> ExitCode {
    let r = measure(session, &call, n, concurrency).await;
    if session.json {
        println!(
            "{}",
            json!({
                "ops": r.ops, "concurrency": concurrency, "seconds": r.seconds,
                "ops_per_sec": r.ops_per_sec, "p50_us": r.p50_us, "p90_us": r.p90_us,
                "p99_us": r.p99_us, "max_us": r.max_us, "errors": r.errors,
            })
        );
    } else {
        println!(
            "{} applies in {:.2} s at concurrency {concurrency}: {:.0} ops/s",
            r.ops, r.seconds, r.ops_per_sec
        );
        println!(
            "latency p50 {} µs  p90 {} µs  p99 {} µs  max {} µs  errors {}",
            r.p50_us, r.p90_us, r.p99_us, r.max_us, r.errors
        );
    }
    if let Some(f) = &r.first_error {
        if !session.json {
            eprint!("first error: ");
            report_failure(false, f, None);
        }
        return ExitCode::from(super::EXIT_SERVER);
    }
    ExitCode::SUCCESS
}

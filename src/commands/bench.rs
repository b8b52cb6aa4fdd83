//! `asudf bench apply`: N applies at a given concurrency through the client
//! task, then throughput and latency percentiles of the calls that
//! succeeded. With `--baseline`, as many calls go through the bare
//! `aerospike` client (the floor), in rounds alternating with asudf's, so
//! the two figures come from one run under the same load.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::{Headless, failure_json, report_failure};
use crate::client::{ApplyCall, ClientHandle, Failure, Request, apply_policy, failure};
use crate::text::plural;

/// What one series of calls gave. Throughput and percentiles count the
/// calls that succeeded only; failed calls are counted apart.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub errors: u64,
    pub seconds: f64,
    /// Successful calls per second.
    pub ops_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// This process's CPU time (user + system) per call, in µs: what a call
    /// costs the client whatever the load, where wall time depends on it.
    pub cpu_us_per_call: f64,
    /// Successful calls per second in each round of a `--baseline` run.
    pub round_ops_per_sec: Vec<f64>,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<Failure>,
}

/// What each worker counts; merged at the end.
struct Tally {
    latencies: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<Failure>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latencies: Histogram::new(3).expect("3 significant digits is valid"),
            ok: 0,
            errors: 0,
            first_error: None,
        }
    }

    fn merge(&mut self, other: Tally) {
        let _ = self.latencies.add(&other.latencies);
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Calls made so far in one series, and the time they took.
struct Series {
    tally: Tally,
    seconds: f64,
    cpu: Duration,
    rounds: Vec<f64>,
}

impl Series {
    fn new() -> Series {
        Series {
            tally: Tally::new(),
            seconds: 0.0,
            cpu: Duration::ZERO,
            rounds: Vec::new(),
        }
    }

    fn measured(self) -> Measured {
        let (total, seconds) = (self.tally, self.seconds);
        let calls = (total.ok + total.errors).max(1);
        let l = &total.latencies;
        Measured {
            ok: total.ok,
            errors: total.errors,
            seconds,
            ops_per_sec: total.ok as f64 / seconds.max(f64::EPSILON),
            p50_us: l.value_at_quantile(0.50),
            p90_us: l.value_at_quantile(0.90),
            p99_us: l.value_at_quantile(0.99),
            max_us: l.max(),
            cpu_us_per_call: self.cpu.as_secs_f64() * 1e6 / calls as f64,
            round_ops_per_sec: self.rounds,
            first_error: total.first_error,
        }
    }
}

/// Makes `n` more calls of a series with `concurrency` workers, each
/// awaiting its call before the next (a worker per task, so calls spread
/// over the runtime's threads).
async fn run_workers<F, Fut>(
    series: &mut Series,
    n: u64,
    concurrency: u64,
    progress: &ProgressBar,
    call: F,
) where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let (start, cpu_start, ok_before) = (Instant::now(), process_cpu(), series.tally.ok);
    let workers: Vec<_> = (0..concurrency.clamp(1, n.max(1)))
        .map(|_| {
            let (next, call, progress) = (next.clone(), call.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let began = Instant::now();
                    match call().await {
                        Ok(()) => {
                            tally.ok += 1;
                            let _ = tally.latencies.record(began.elapsed().as_micros() as u64);
                        }
                        Err(f) => {
                            tally.errors += 1;
                            tally.first_error.get_or_insert(f);
                        }
                    }
                    progress.inc(1);
                }
                tally
            })
        })
        .collect();
    for worker in workers {
        match worker.await {
            Ok(tally) => series.tally.merge(tally),
            Err(e) => {
                series.tally.errors += 1;
                series
                    .tally
                    .first_error
                    .get_or_insert(Failure::connection(format!("bench worker failed: {e}")));
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    series.seconds += seconds;
    series.cpu += process_cpu().saturating_sub(cpu_start);
    let ok = series.tally.ok - ok_before;
    series.rounds.push(ok as f64 / seconds.max(f64::EPSILON));
}

/// CPU time this process has used so far, all threads, user and system.
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes the whole struct when it returns 0.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: initialised by the successful call above.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn progress_bar(n: u64, label: &str) -> ProgressBar {
    let progress = ProgressBar::new(n);
    progress.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {label}  {{per_sec}}  eta {{eta}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress
}

/// `n` applies of `call` through the client task (the path every command
/// and the console take).
pub async fn measure(
    handle: &ClientHandle,
    call: &ApplyCall,
    n: u64,
    concurrency: u64,
) -> Measured {
    let mut series = Series::new();
    let progress = progress_bar(n, "applies");
    let calls = through_task(handle, call);
    run_workers(&mut series, n, concurrency, &progress, calls).await;
    progress.finish_and_clear();
    series.measured()
}

/// One apply through the client task, as a bench call.
fn through_task(
    handle: &ClientHandle,
    call: &ApplyCall,
) -> impl Fn() -> BoxFuture<'static, Result<(), Failure>> + Clone + Send + 'static {
    let (handle, request) = (handle.clone(), Request::Apply(Arc::new(call.clone())));
    move || {
        let (handle, request) = (handle.clone(), request.clone());
        Box::pin(async move { handle.call(request).await.0.map(|_| ()) })
    }
}

/// One apply through the bare `aerospike` client (the floor), as a bench call.
fn through_crate(
    handle: &ClientHandle,
    call: &ApplyCall,
) -> Result<impl Fn() -> BoxFuture<'static, Result<(), Failure>> + Clone + Send + 'static, Failure>
{
    let client = handle
        .bare_client()
        .ok_or_else(|| Failure::connection("not connected"))?;
    let key = Arc::new(call.key.to_key()?);
    let policy = Arc::new(apply_policy(call));
    let call = Arc::new(call.clone());
    Ok(move || {
        let (client, key, policy, call) =
            (client.clone(), key.clone(), policy.clone(), call.clone());
        let future: BoxFuture<'static, _> = Box::pin(async move {
            client
                .execute_udf(&policy, &key, &call.module, &call.function, &call.args)
                .await
                .map(|_| ())
                .map_err(failure)
        });
        future
    })
}

/// Rounds the two series alternate in: the load of a shared machine
/// changes during a run, and alternating (which goes first alternates too)
/// lets both series see the same load, so their ratio means something.
const ROUNDS: u64 = 20;

/// The median over rounds of asudf's throughput over the floor's in the
/// same round: a burst of load that hits one round moves the overall ratio
/// but not this one.
pub fn median_round_ratio(floor: &Measured, ours: &Measured) -> Option<f64> {
    let mut ratios: Vec<f64> = floor
        .round_ops_per_sec
        .iter()
        .zip(&ours.round_ops_per_sec)
        .filter(|(f, _)| **f > 0.0)
        .map(|(f, o)| o / f)
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    Some(if ratios.len() % 2 == 1 {
        ratios[mid]
    } else {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    })
}

/// `n` applies through the bare client and `n` through the client task, in
/// alternating rounds: (floor, asudf).
pub async fn measure_with_baseline(
    handle: &ClientHandle,
    call: &ApplyCall,
    n: u64,
    concurrency: u64,
) -> Result<(Measured, Measured), Failure> {
    let (bare, task) = (through_crate(handle, call)?, through_task(handle, call));
    let (mut floor, mut ours) = (Series::new(), Series::new());
    let progress = progress_bar(2 * n, "applies (bare client and asudf, alternating)");
    for round in 0..ROUNDS {
        let chunk = n / ROUNDS + u64::from(round < n % ROUNDS);
        if chunk == 0 {
            continue;
        }
        if round % 2 == 0 {
            run_workers(&mut floor, chunk, concurrency, &progress, bare.clone()).await;
            run_workers(&mut ours, chunk, concurrency, &progress, task.clone()).await;
        } else {
            run_workers(&mut ours, chunk, concurrency, &progress, task.clone()).await;
            run_workers(&mut floor, chunk, concurrency, &progress, bare.clone()).await;
        }
    }
    progress.finish_and_clear();
    Ok((floor.measured(), ours.measured()))
}

fn measured_json(m: &Measured) -> serde_json::Value {
    json!({
        "ops": m.ok, "errors": m.errors, "seconds": m.seconds, "ops_per_sec": m.ops_per_sec,
        "p50_us": m.p50_us, "p90_us": m.p90_us, "p99_us": m.p99_us, "max_us": m.max_us,
        "cpu_us_per_call": m.cpu_us_per_call,
        "first_error": m.first_error.as_ref().map(|f| failure_json(f)["error"].clone()),
    })
}

fn print_measured(name: &str, m: &Measured, concurrency: u64) {
    outln!(
        "{name}: {} applies in {:.2} s at concurrency {concurrency}: {:.0} ops/s",
        m.ok,
        m.seconds,
        m.ops_per_sec
    );
    outln!(
        "  latency p50 {} µs  p90 {} µs  p99 {} µs  max {} µs  client CPU {:.1} µs/call",
        m.p50_us,
        m.p90_us,
        m.p99_us,
        m.max_us,
        m.cpu_us_per_call
    );
    if m.errors > 0 {
        let calls = plural(m.errors, "call", "calls");
        outln!("  {calls} failed (not counted above)");
    }
}

pub struct BenchOptions {
    pub count: u64,
    pub concurrency: u64,
    /// Measure the bare client first, in the same run.
    pub baseline: bool,
    /// Exit 0 even when some calls failed.
    pub allow_errors: bool,
}

pub async fn run(session: &mut Headless, call: ApplyCall, opts: BenchOptions) -> ExitCode {
    // No more calls are in flight than there are calls; said, so the
    // figures are not read as those of the concurrency asked for (JSON
    // gives the concurrency used).
    let (n, c) = (opts.count, opts.concurrency.min(opts.count));
    if c < opts.concurrency && !session.json {
        eprintln!(
            "note: -c {} with -n {n}: runs {c} at once (no more calls in flight than calls)",
            opts.concurrency
        );
    }
    let (baseline, m) = if opts.baseline {
        match measure_with_baseline(&session.handle, &call, n, c).await {
            Ok((floor, ours)) => (Some(floor), ours),
            Err(f) => return super::fail(session.json, &f),
        }
    } else {
        (None, measure(&session.handle, &call, n, c).await)
    };
    let ratio = baseline
        .as_ref()
        .map(|b| m.ops_per_sec / b.ops_per_sec.max(f64::EPSILON));
    let median = baseline.as_ref().and_then(|b| median_round_ratio(b, &m));
    // Failed calls fail the run unless they are allowed.
    let failed = m
        .first_error
        .as_ref()
        .or(baseline.as_ref().and_then(|b| b.first_error.as_ref()))
        .filter(|_| !opts.allow_errors);
    if session.json {
        let mut out = measured_json(&m);
        out["ok"] = json!(failed.is_none());
        if let Some(f) = failed {
            out["error"] = failure_json(f)["error"].clone();
        }
        out["concurrency"] = json!(c);
        if let (Some(b), Some(r)) = (&baseline, ratio) {
            out["baseline"] = measured_json(b);
            out["ratio"] = json!(r);
            out["round_ratio_median"] = json!(median);
        }
        outln!("{out}");
    } else {
        if let Some(b) = &baseline {
            print_measured("bare client", b, c);
        }
        print_measured("asudf", &m, c);
        if let Some(r) = ratio {
            outln!("asudf / bare client throughput: {r:.3}");
        }
        if let Some(m) = median {
            outln!("  median of the {ROUNDS} rounds' ratios: {m:.3}");
        }
    }
    match failed {
        Some(f) => {
            if !session.json {
                eprint!("first error: ");
                report_failure(false, f, None);
            }
            ExitCode::from(super::EXIT_SERVER)
        }
        None => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(rates: &[f64]) -> Measured {
        let mut series = Series::new();
        series.rounds = rates.to_vec();
        series.measured()
    }

    #[test]
    fn the_median_round_ratio_ignores_one_disturbed_round() {
        let floor = rounds(&[100.0, 100.0, 10.0, 100.0]);
        let ours = rounds(&[95.0, 97.0, 96.0, 99.0]);
        // Overall the floor looks slow (its third round was hit); per round
        // asudf is 0.95–0.99 of it, and 9.6 in the disturbed round.
        assert_eq!(median_round_ratio(&floor, &ours), Some((0.97 + 0.99) / 2.0));
        let odd = median_round_ratio(&rounds(&[100.0, 50.0, 10.0]), &rounds(&[90.0, 50.0, 1.0]));
        assert_eq!(odd, Some(0.9));
        // A round where the floor made no call has no ratio.
        assert_eq!(median_round_ratio(&rounds(&[0.0]), &rounds(&[5.0])), None);
    }
}

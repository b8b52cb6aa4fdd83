//! The job registry: every query run (basic, aggregation, background) is a
//! job keyed by its transaction id, listed by `query-show` and stopped by
//! `query-abort` with the server's replies (`query-udfs.md` §5.3–§5.4).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::sandbox::engine::{LogLine, StageCount};
use crate::sandbox::server::info::param;

/// Finished jobs kept for `query-show` (the server's `query-max-done`).
const MAX_DONE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Basic,
    Aggregation,
    BackgroundUdf,
}

impl JobKind {
    fn name(self) -> &'static str {
        match self {
            JobKind::Basic => "basic",
            JobKind::Aggregation => "aggregation",
            JobKind::BackgroundUdf => "background-udf",
        }
    }
}

/// How a job ended (or why it is ending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Ok,
    /// A stream UDF failed.
    AbandonedUnknown,
    UserAborted,
    /// The client went away.
    ResponseError,
    /// The client stopped reading for longer than its socket timeout.
    ResponseTimeout,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::Ok => "ok",
            Ending::AbandonedUnknown => "abandoned-unknown",
            Ending::UserAborted => "user-aborted",
            Ending::ResponseError => "abandoned-response-error",
            Ending::ResponseTimeout => "abandoned-response-timeout",
        }
    }
}

/// What a job is, fixed at its start.
#[derive(Debug, Clone)]
pub struct JobInfo {
    pub trid: u64,
    pub kind: JobKind,
    pub ns: String,
    pub set: Option<String>,
    pub sindex: Option<String>,
    /// Basic queries: partitions and resume digests requested.
    pub n_pids: usize,
    pub n_digests: usize,
    pub rps: u32,
    pub from: Option<SocketAddr>,
    pub socket_timeout_ms: u32,
    /// Background UDFs: module and function.
    pub udf: Option<(String, String)>,
}

/// Stage counts and logs of an aggregation, summed over its partitions.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    pub partitions: u64,
    pub stages: Vec<StageCount>,
    pub logs: Vec<LogLine>,
}

/// Log lines kept per aggregation run.
const MAX_STREAM_LOGS: usize = 1000;

impl StreamStats {
    pub fn add(&mut self, stages: &[StageCount], logs: Vec<LogLine>) {
        self.partitions += 1;
        for s in stages {
            match self.stages.iter_mut().find(|t| t.stage == s.stage) {
                Some(t) => {
                    t.values_in += s.values_in;
                    t.values_out += s.values_out;
                }
                None => self.stages.push(s.clone()),
            }
        }
        let room = MAX_STREAM_LOGS.saturating_sub(self.logs.len());
        self.logs.extend(logs.into_iter().take(room));
    }
}

pub struct Job {
    pub info: JobInfo,
    started: Instant,
    done_at: Mutex<Option<Instant>>,
    ending: Mutex<Option<Ending>>,
    /// Shared with the connection, which sets it when the client goes.
    abort: Arc<AtomicBool>,
    /// Partitions handed out so far, for `job-progress`.
    pids_done: AtomicU32,
    pub n_pids_total: u32,
    pub throttled: AtomicU64,
    pub filtered_meta: AtomicU64,
    pub filtered_bins: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub net_io_bytes: AtomicU64,
    pub udf_active: AtomicU32,
    pub stream: Mutex<StreamStats>,
}

impl Job {
    /// True once the job was asked to stop (abort, client gone).
    pub fn stopping(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    /// The flag a stream run polls.
    pub fn abort_flag(&self) -> &AtomicBool {
        &self.abort
    }

    /// Stops the job for `why`; the first reason given is kept.
    pub fn stop(&self, why: Ending) {
        let mut ending = self.ending.lock();
        if ending.is_none() {
            *ending = Some(why);
        }
        self.abort.store(true, Ordering::Relaxed);
    }

    /// `n` more partitions handed out.
    pub fn partitions_done(&self, n: u32) {
        self.pids_done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn is_done(&self) -> bool {
        self.done_at.lock().is_some()
    }

    fn progress(&self, done: bool) -> f64 {
        if done || self.n_pids_total == 0 {
            return 100.0;
        }
        let n = self
            .pids_done
            .load(Ordering::Relaxed)
            .min(self.n_pids_total);
        f64::from(n) * 100.0 / f64::from(self.n_pids_total)
    }

    /// The `query-show` entry: `:`-separated pairs in the server's order.
    pub fn show(&self) -> String {
        let i = &self.info;
        let done_at = *self.done_at.lock();
        let ending = self.ending.lock().unwrap_or(Ending::Ok);
        let status = match done_at {
            Some(_) => format!("done({})", ending.name()),
            None => format!("active({})", ending.name()),
        };
        let run_time = done_at
            .unwrap_or_else(Instant::now)
            .duration_since(self.started)
            .as_millis();
        let since_done = done_at.map_or(0, |d| d.elapsed().as_millis());
        let mut out = format!("trid={}:ns={}", i.trid, i.ns);
        if let Some(set) = &i.set {
            out += &format!(":set={set}");
        }
        if let Some(name) = &i.sindex {
            out += &format!(":sindex-name={name}");
        }
        if i.kind == JobKind::Basic {
            out += &format!(
                ":n-pids-requested={}:n-keyds-requested={}",
                i.n_pids, i.n_digests
            );
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out += &format!(
            ":rps={}:active-threads={}:status={status}:job-progress={:.2}:run-time={run_time}:time-since-done={since_done}",
            i.rps,
            u8::from(done_at.is_none()),
            self.progress(done_at.is_some()),
        );
        out += &format!(
            ":recs-throttled={}:recs-filtered-meta={}:recs-filtered-bins={}:recs-succeeded={}:recs-failed={}",
            load(&self.throttled),
            load(&self.filtered_meta),
            load(&self.filtered_bins),
            load(&self.succeeded),
            load(&self.failed)
        );
        let from = i
            .from
            .map_or_else(String::new, |a| a.to_string().replace(':', "+"));
        out += &format!(":from={from}:job-type={}", i.kind.name());
        match &i.udf {
            Some((module, function)) if i.kind == JobKind::BackgroundUdf => {
                out += &format!(
                    ":net-io-bytes=30:socket-timeout=10000:udf-filename={module}:udf-function={function}:udf-active={}",
                    self.udf_active.load(Ordering::Relaxed)
                );
            }
            _ => {
                out += &format!(
                    ":net-io-bytes={}:net-io-time=0:socket-timeout={}",
                    load(&self.net_io_bytes),
                    i.socket_timeout_ms
                );
            }
        }
        out
    }
}

/// Active and recently finished jobs.
#[derive(Default)]
pub struct Jobs {
    inner: Mutex<Lists>,
}

#[derive(Default)]
struct Lists {
    active: Vec<Arc<Job>>,
    done: VecDeque<Arc<Job>>,
}

impl Jobs {
    /// Registers a running job. `n_pids_total` drives `job-progress`.
    /// `abort` stops it from outside (the connection, when its client goes).
    pub fn start(&self, info: JobInfo, n_pids_total: u32, abort: Arc<AtomicBool>) -> Arc<Job> {
        let job = Arc::new(Job {
            info,
            started: Instant::now(),
            done_at: Mutex::new(None),
            ending: Mutex::new(None),
            abort,
            pids_done: AtomicU32::new(0),
            n_pids_total,
            throttled: AtomicU64::new(0),
            filtered_meta: AtomicU64::new(0),
            filtered_bins: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            net_io_bytes: AtomicU64::new(0),
            udf_active: AtomicU32::new(0),
            stream: Mutex::new(StreamStats::default()),
        });
        self.inner.lock().active.push(job.clone());
        job
    }

    /// Marks `job` finished and moves it to the done list.
    pub fn finish(&self, job: &Arc<Job>) {
        if job.stopping() {
            // Stopped from outside without a reason: the client went away.
            job.stop(Ending::ResponseError);
        }
        *job.done_at.lock() = Some(Instant::now());
        let mut lists = self.inner.lock();
        lists.active.retain(|j| !Arc::ptr_eq(j, job));
        lists.done.push_back(job.clone());
        while lists.done.len() > MAX_DONE {
            lists.done.pop_front();
        }
    }

    /// Stops every running job and waits (up to `limit`) until their
    /// threads are done with the store. True when none is left running.
    pub async fn stop_all(&self, limit: std::time::Duration) -> bool {
        for job in &self.inner.lock().active {
            job.stop(Ending::UserAborted);
        }
        let deadline = Instant::now() + limit;
        while !self.inner.lock().active.is_empty() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// The newest job with this id, active first.
    pub fn get(&self, trid: u64) -> Option<Arc<Job>> {
        let lists = self.inner.lock();
        lists
            .active
            .iter()
            .rev()
            .chain(lists.done.iter().rev())
            .find(|j| j.info.trid == trid)
            .cloned()
    }

    /// `query-show` / `query-show:id=N` (also `trid=N`).
    pub fn info_show(&self, params: &str) -> String {
        match id_param(params) {
            IdParam::Missing => {
                let lists = self.inner.lock();
                let all: Vec<String> = lists
                    .active
                    .iter()
                    .chain(lists.done.iter())
                    .map(|j| j.show())
                    .collect();
                all.join(";")
            }
            IdParam::Empty | IdParam::Bad => "ERROR:4:bad id".to_string(),
            IdParam::Id(id) => match self.get(id) {
                Some(job) => job.show(),
                None => "ERROR:2:job not found".to_string(),
            },
        }
    }

    /// `query-abort:id=N` (also `trid=N`).
    pub fn info_abort(&self, params: &str) -> String {
        match id_param(params) {
            IdParam::Missing => "ERROR:4:missing 'id'".to_string(),
            IdParam::Empty => "ERROR:4:missing 'id' value".to_string(),
            IdParam::Bad => "ERROR:4:bad id".to_string(),
            IdParam::Id(id) => {
                let active = self
                    .inner
                    .lock()
                    .active
                    .iter()
                    .find(|j| j.info.trid == id)
                    .cloned();
                match active {
                    Some(job) if !job.stopping() => {
                        job.stop(Ending::UserAborted);
                        "ok".to_string()
                    }
                    _ => "ERROR:2:id not active".to_string(),
                }
            }
        }
    }

    /// Whether any job is running.
    pub fn any_active(&self) -> bool {
        !self.inner.lock().active.is_empty()
    }
}

#[derive(Debug, PartialEq, Eq)]
enum IdParam {
    Missing,
    Empty,
    Bad,
    Id(u64),
}

/// The `id=` (or older `trid=`) parameter.
fn id_param(params: &str) -> IdParam {
    let value = param(params, "id").or_else(|| param(params, "trid"));
    match value {
        None => IdParam::Missing,
        Some("") => IdParam::Empty,
        Some(v) => v.parse().map_or(IdParam::Bad, IdParam::Id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(trid: u64, kind: JobKind) -> JobInfo {
        JobInfo {
            trid,
            kind,
            ns: "test".into(),
            set: Some("bg".into()),
            sindex: None,
            n_pids: 4096,
            n_digests: 0,
            rps: 10000,
            from: Some("127.0.0.1:5000".parse().unwrap()),
            socket_timeout_ms: 30000,
            udf: Some(("bg".into(), "f".into())),
        }
    }

    #[test]
    fn background_entry_has_the_servers_fields_in_order() {
        let jobs = Jobs::default();
        let job = jobs.start(info(7, JobKind::BackgroundUdf), 4096, Default::default());
        job.throttled.store(4, Ordering::Relaxed);
        job.succeeded.store(4, Ordering::Relaxed);
        assert!(job.show().contains(":status=active(ok):"));
        jobs.finish(&job);
        let text = jobs.info_show("id=7");
        let names: Vec<&str> = text
            .split(':')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            names,
            [
                "trid",
                "ns",
                "set",
                "rps",
                "active-threads",
                "status",
                "job-progress",
                "run-time",
                "time-since-done",
                "recs-throttled",
                "recs-filtered-meta",
                "recs-filtered-bins",
                "recs-succeeded",
                "recs-failed",
                "from",
                "job-type",
                "net-io-bytes",
                "socket-timeout",
                "udf-filename",
                "udf-function",
                "udf-active"
            ]
        );
        assert!(text.contains(":status=done(ok):job-progress=100.00:"));
        assert!(text.contains(":from=127.0.0.1+5000:"));
    }

    #[test]
    fn basic_entries_name_partitions() {
        let jobs = Jobs::default();
        let job = jobs.start(info(8, JobKind::Basic), 4096, Default::default());
        jobs.finish(&job);
        let text = jobs.info_show("trid=8");
        assert!(text.contains(":set=bg:n-pids-requested=4096:n-keyds-requested=0:rps="));
        assert!(
            text.ends_with(":job-type=basic:net-io-bytes=0:net-io-time=0:socket-timeout=30000")
        );
    }

    #[test]
    fn abort_replies() {
        let jobs = Jobs::default();
        let job = jobs.start(info(9, JobKind::BackgroundUdf), 4096, Default::default());
        assert_eq!(jobs.info_abort("id=9"), "ok");
        assert!(job.show().contains("status=active(user-aborted)"));
        assert_eq!(jobs.info_abort("trid=9"), "ERROR:2:id not active");
        jobs.finish(&job);
        assert!(
            job.show()
                .contains("status=done(user-aborted):job-progress=100.00")
        );
        assert_eq!(jobs.info_abort("id=12345"), "ERROR:2:id not active");
        assert_eq!(jobs.info_abort("id=abc"), "ERROR:4:bad id");
        assert_eq!(jobs.info_abort(""), "ERROR:4:missing 'id'");
        assert_eq!(jobs.info_abort("foo=1"), "ERROR:4:missing 'id'");
        assert_eq!(jobs.info_abort("id="), "ERROR:4:missing 'id' value");
        assert_eq!(jobs.info_show("id=1"), "ERROR:2:job not found");
        assert_eq!(jobs.info_show("id=x"), "ERROR:4:bad id");
    }

    #[test]
    fn done_list_is_bounded() {
        let jobs = Jobs::default();
        for i in 0..150 {
            let job = jobs.start(info(i, JobKind::Basic), 1, Default::default());
            jobs.finish(&job);
        }
        assert_eq!(jobs.info_show("").split(';').count(), MAX_DONE);
        assert!(jobs.get(10).is_none());
        assert!(jobs.get(149).is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_id_params_never_panic(text in any::<String>()) {
            let jobs = Jobs::default();
            let _ = jobs.info_show(&text);
            let _ = jobs.info_abort(&text);
        }
    }
}

//! Background UDF jobs (§5): a record UDF applied to every selected record,
//! on a thread of its own, paced to the job's records per second, counted
//! in the job's succeeded/failed fields. The job is `done` only once every
//! call has finished, so its effects are visible when `query-show` says so.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::sandbox::engine::ApplyRequest;
use crate::sandbox::expr::{Filter, RecordFilter};
use crate::sandbox::jobs::Job;

use super::select::Selection;
use super::{IndexUse, QueryRequest, QueryService, Throttle};

pub fn spawn(
    svc: QueryService,
    req: QueryRequest,
    index: Option<IndexUse>,
    filter: Option<Filter>,
    job: Arc<Job>,
) {
    let name = format!("asudf-job-{}", req.trid);
    let spawned = std::thread::Builder::new().name(name).spawn({
        let job = job.clone();
        let svc = svc.clone();
        move || {
            run(&svc, &req, index, filter, &job);
            svc.jobs.finish(&job);
        }
    });
    if let Err(e) = spawned {
        tracing::error!("could not start background job: {e}");
        svc.jobs.finish(&job);
    }
}

fn run(
    svc: &QueryService,
    req: &QueryRequest,
    index: Option<IndexUse>,
    filter: Option<Filter>,
    job: &Job,
) {
    let Some(udf) = &req.udf else { return };
    let selection = Selection {
        store: svc.sandbox.store(),
        ns: &req.ns,
        set: req.set.as_deref(),
        partitions: &req.partitions,
        index,
        filter,
        job,
    };
    let mut throttle = Throttle::new(job.info.rps);
    selection.for_each_partition(&mut |_, records| {
        for s in records {
            throttle.wait();
            if job.stopping() {
                return false;
            }
            job.throttled.fetch_add(1, Ordering::Relaxed);
            job.udf_active.store(1, Ordering::Relaxed);
            let outcome = svc.sandbox.apply(ApplyRequest {
                ns: req.ns.clone(),
                set: s.record.set.clone(),
                digest: s.digest,
                key: None,
                module: udf.module.clone(),
                function: udf.function.clone(),
                args: udf.args.clone(),
                timeout_ms: 0,
                received: std::time::Instant::now(),
                ttl: req.record_ttl,
                // The selection has applied the job's filter already.
                filter: RecordFilter::none(),
            });
            job.udf_active.store(0, Ordering::Relaxed);
            let counter = match outcome.result {
                Ok(_) => &job.succeeded,
                Err(_) => &job.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        true
    });
}

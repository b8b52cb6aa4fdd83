//! Basic queries: the selected records as reply messages, then LAST (§3).

use std::sync::atomic::Ordering;

use crate::sandbox::expr::Filter;
use crate::sandbox::jobs::{Ending, Job};

use super::reply::{ReplyWriter, write_record};
use super::select::Selection;
use super::{IndexUse, QueryRequest, QueryService, Throttle};

pub fn run(
    svc: &QueryService,
    req: &QueryRequest,
    index: Option<IndexUse>,
    filter: Option<Filter>,
    job: &Job,
    out: &mut ReplyWriter,
) {
    let selection = Selection {
        store: svc.sandbox.store(),
        ns: &req.ns,
        set: req.set.as_deref(),
        partitions: &req.partitions,
        index,
        filter,
        job,
    };
    let mut throttle = Throttle::new(req.rps);
    let mut taken = 0u64;
    let mut reader_gone = false;
    selection.for_each_partition(&mut |_, records| {
        for s in records {
            if req.max_records > 0 && taken >= req.max_records {
                return false;
            }
            taken += 1;
            throttle.wait();
            job.succeeded.fetch_add(1, Ordering::Relaxed);
            // A record with none of the selected bins is counted, not sent.
            let written = out.push_with(|buf| {
                write_record(buf, &req.ns, &s.digest, &s.record, &req.bins, s.bval)
            });
            if !written {
                reader_gone = true;
                return false;
            }
        }
        true
    });
    if reader_gone || job.stopping() || !out.last(0) {
        job.stop(Ending::ResponseError);
    }
    job.net_io_bytes.store(out.sent, Ordering::Relaxed);
}

//! Aggregations: the stream UDF's server side, once per partition that has
//! matching records (§4.1); its values as `SUCCESS` messages, a failure as
//! one `FAILURE` message and a LAST with result 1 (§4.2, §4.3).

use std::sync::atomic::Ordering;

use crate::sandbox::engine::{StreamCall, StreamRecord};
use crate::sandbox::jobs::{Ending, Job};
use crate::sandbox::value::Value;

use super::reply::{ReplyWriter, failure_message, value_message};
use super::select::Selection;
use super::{IndexUse, QueryRequest, QueryService};

pub fn run(
    svc: &QueryService,
    req: &QueryRequest,
    index: Option<IndexUse>,
    job: &Job,
    out: &mut ReplyWriter,
) {
    let Some(udf) = &req.udf else { return };
    let call = StreamCall {
        module: &udf.module,
        function: &udf.function,
        args: &udf.args,
    };
    let selection = Selection {
        store: svc.sandbox.store(),
        ns: &req.ns,
        set: req.set.as_deref(),
        partitions: &req.partitions,
        index,
        // Refused at start: an aggregation never carries a filter.
        filter: None,
        job,
    };
    let mut failure = None;
    let mut reader_gone = false;
    selection.for_each_partition(&mut |_, records| {
        let mut stream = records.map(|s| {
            job.succeeded.fetch_add(1, Ordering::Relaxed);
            StreamRecord {
                digest: s.digest,
                record: s.record,
            }
        });
        let mut emit = |value: Value| {
            let ok = out.push(&value_message(&value));
            reader_gone |= !ok;
            ok
        };
        let run = svc
            .sandbox
            .run_stream_partition(&call, &mut stream, &mut emit, job.abort_flag());
        match run {
            Ok(run) => {
                job.stream.lock().add(&run.stages, run.logs);
                // Each partition's values go out in a frame of their own.
                !reader_gone && out.flush()
            }
            Err(failed) => {
                // Its counts and logs show how far the stream got.
                job.stream.lock().add(&failed.run.stages, failed.run.logs);
                failure = Some(failed.text);
                false
            }
        }
    });
    let delivered = match failure {
        _ if reader_gone || job.stopping() => false,
        Some(text) => {
            job.stop(Ending::AbandonedUnknown);
            // The FAILURE, then the end of the job in a frame of its own.
            out.push(&failure_message(&text)) && out.last(1)
        }
        None => out.last(0),
    };
    if !delivered {
        job.stop(Ending::ResponseError);
    }
    job.net_io_bytes.store(out.sent, Ordering::Relaxed);
}

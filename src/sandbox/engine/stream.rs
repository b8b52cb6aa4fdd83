//! Stream UDFs (aggregations): the server's side of a stream pipeline, run
//! once per partition over that partition's matching records
//! (`../shared/reference/query-udfs.md` §4).
//!
//! The query path selects the records and sends the values; this module runs
//! the Lua. Until it lands, every run fails as the server does for a module
//! it cannot load.

use std::sync::atomic::AtomicBool;

use super::{LogLine, Sandbox};
use crate::sandbox::store::{Digest, Record};
use crate::sandbox::value::Value;

/// One aggregation's stream function, as the query message names it.
#[derive(Debug, Clone)]
pub struct StreamCall<'a> {
    pub ns: &'a str,
    pub module: &'a str,
    pub function: &'a str,
    pub args: &'a [Value],
}

/// A record the stream reads.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub digest: Digest,
    pub record: Record,
}

/// Values into and out of one server-side stage over one run.
#[derive(Debug, Clone, PartialEq)]
pub struct StageCount {
    /// The op and the Lua function it was given, e.g. `map(to_pair)`.
    pub stage: String,
    pub values_in: u64,
    pub values_out: u64,
}

/// What one partition's run did.
#[derive(Debug, Clone, Default)]
pub struct StreamRun {
    pub stages: Vec<StageCount>,
    /// Log lines the stream functions wrote, in order.
    pub logs: Vec<LogLine>,
}

impl Sandbox {
    /// Runs `call`'s server-side ops over one partition's `records`, handing
    /// each output value to `emit` (which answers false when the reader is
    /// gone: the run stops). `cancel` stops the Lua too. An error is the
    /// `FAILURE` text the server sends (`UDF: Execution Error …`).
    pub fn run_stream_partition(
        &self,
        _call: &StreamCall<'_>,
        _records: &mut dyn Iterator<Item = StreamRecord>,
        _emit: &mut dyn FnMut(Value) -> bool,
        _cancel: &AtomicBool,
    ) -> Result<StreamRun, String> {
        Err("UDF: Execution Error 1".to_string())
    }
}

//! Stream UDFs (aggregations): the server's side of a stream pipeline, run
//! once per partition over that partition's matching records
//! (`../shared/reference/query-udfs.md` §4).
//!
//! The query path selects the records and sends the values; this module runs
//! the Lua. The pipeline itself (`StreamOps`, `apply_stream`) is Lua in
//! `prelude.rs`; the state is one of the module's pooled states.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mlua::{AnyUserData, Lua, Value as Lv};
use parking_lot::Mutex;

use super::containers::push_elem;
use super::elem::Elem;
use super::errors::{error_text, lua_type_name};
use super::record::{LRecord, RecState};
use super::runtime::{DEFAULT_LIMIT_MS, restart_deadline};
use super::{LogLine, Sandbox};
use crate::sandbox::store::{Digest, Record};
use crate::sandbox::value::Value;

/// The error of a run stopped by its `cancel` flag (nothing is sent for it:
/// whoever set the flag reads no more).
pub const CANCELLED: &str = "query cancelled";

/// Scopes `apply_stream` takes: which side's ops run.
const SCOPE_SERVER: i64 = 1;
const SCOPE_CLIENT: i64 = 2;

/// One aggregation's stream function, as the query message names it.
#[derive(Debug, Clone)]
pub struct StreamCall<'a> {
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
    /// The op and the Lua function it was given, e.g. `map(to_pair)`: the
    /// name the module defines the function under, `math.max` for a library
    /// function, or for an anonymous one where it is defined (`map(fm.lua:7)`);
    /// `groupby(f)` and `reduce(groupby)` for the two halves of a group-by.
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

/// A stream run that failed: the `FAILURE` text, and what the run did up
/// to the failure (so a failed stream still shows how far it got).
#[derive(Debug, Clone)]
pub struct StreamFailure {
    pub text: String,
    pub run: StreamRun,
}

/// How long the client's half of a stream may run its Lua before it fails
/// with "UDF Execution Timeout" (the server gives stream UDFs no limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientLimit {
    /// Until this instant: the request's own time limit, which waiting for
    /// the server's values uses up too.
    Until(Instant),
    /// This long from the start and from each value read: only the Lua's
    /// own time counts, however long the server takes.
    PerValue(Duration),
}

impl ClientLimit {
    /// With no request limit: a UDF call's default on a server
    /// (`transaction-max-ms`), for each value.
    pub const DEFAULT: ClientLimit = ClientLimit::PerValue(Duration::from_millis(DEFAULT_LIMIT_MS));
}

impl Sandbox {
    /// Runs `call`'s server-side ops over one partition's `records`, handing
    /// each output value to `emit` (which answers false when the reader is
    /// gone: the run stops). `cancel` stops the Lua too ([`CANCELLED`]). An
    /// error is the `FAILURE` text the server sends (`UDF: Execution Error …`).
    ///
    /// A partition without records runs no Lua (not even the module's
    /// loading), as on a server. No transaction time limit applies; the
    /// sandbox's `max_udf_ms` cap and memory limit apply to each run.
    pub fn run_stream_partition(
        &self,
        call: &StreamCall<'_>,
        records: &mut dyn Iterator<Item = StreamRecord>,
        emit: &mut dyn FnMut(Value) -> bool,
        cancel: &AtomicBool,
    ) -> Result<StreamRun, StreamFailure> {
        let Some(first) = records.next() else {
            return Ok(StreamRun::default());
        };
        let mut records = std::iter::once(first).chain(records);
        // One record object per run, refilled for each record as the stream
        // moves on (inferred: the server reads a partition's records into one
        // record handle in turn); a reference kept past its turn sees the
        // record being read now.
        let mut current: Option<(AnyUserData, Arc<Mutex<RecState>>)> = None;
        let mut next = |lua: &Lua| {
            let Some(StreamRecord { digest, record }) = records.next() else {
                return Ok(Lv::Nil);
            };
            let state = RecState::stream(digest, record);
            if let Some((userdata, rec)) = &current {
                *rec.lock() = state;
                return Ok(Lv::UserData(userdata.clone()));
            }
            let rec = Arc::new(Mutex::new(state));
            let userdata = lua.create_userdata(LRecord(rec.clone()))?;
            current = Some((userdata.clone(), rec));
            Ok(Lv::UserData(userdata))
        };
        let limit = self.inner.config.max_udf_ms.map(Duration::from_millis);
        self.run_stream(call, SCOPE_SERVER, &mut next, emit, cancel, limit)
    }

    /// Runs `call`'s client-side ops (its first `reduce` and what follows)
    /// over the values the server side sent, as a client does; with no
    /// `reduce` the values pass through as they are. For tests and tools
    /// that reduce without a client.
    pub fn run_stream_client(
        &self,
        call: &StreamCall<'_>,
        values: Vec<Value>,
    ) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut emit = |value| {
            out.push(value);
            true
        };
        let cancel = AtomicBool::new(false);
        let mut values = values.into_iter();
        self.run_stream_client_from(call, &mut values, &mut emit, &cancel, ClientLimit::DEFAULT)?;
        Ok(out)
    }

    /// [`Sandbox::run_stream_client`] over values as they come (`values`
    /// may wait for the next), handing each output to `emit` as it is made,
    /// within `limit`. Values that end because `cancel` was set are not the
    /// stream's end: the run fails ([`CANCELLED`]) instead of finishing a
    /// reduce over part of the stream.
    pub fn run_stream_client_from(
        &self,
        call: &StreamCall<'_>,
        values: &mut dyn Iterator<Item = Value>,
        emit: &mut dyn FnMut(Value) -> bool,
        cancel: &AtomicBool,
        limit: ClientLimit,
    ) -> Result<(), String> {
        let mut next = |lua: &Lua| {
            let value = values.next();
            // Waiting for the server is not the Lua's time.
            if let ClientLimit::PerValue(each) = limit {
                restart_deadline(each);
            }
            match value {
                Some(value) => push_elem(lua, &Elem::from_value(&value)),
                None if cancel.load(Ordering::Relaxed) => {
                    Err(mlua::Error::RuntimeError(CANCELLED.to_string()))
                }
                None => Ok(Lv::Nil),
            }
        };
        let first = match limit {
            ClientLimit::Until(deadline) => deadline.saturating_duration_since(Instant::now()),
            ClientLimit::PerValue(each) => each,
        };
        self.run_stream(call, SCOPE_CLIENT, &mut next, emit, cancel, Some(first))
            .map(|_| ())
            .map_err(|failure| failure.text)
    }

    fn run_stream(
        &self,
        call: &StreamCall<'_>,
        scope: i64,
        next: &mut super::runtime::StreamSource<'_>,
        emit: &mut dyn FnMut(Value) -> bool,
        cancel: &AtomicBool,
        limit: Option<Duration>,
    ) -> Result<StreamRun, StreamFailure> {
        let pool = self.pool(call.module);
        let mut state = pool
            .take(&self.inner.states, call.module)
            .map_err(|_| StreamFailure {
                text: "UDF: Execution Error 1".to_string(),
                run: StreamRun::default(),
            })?;
        let (result, run) =
            state.stream(call.function, scope, call.args, next, emit, cancel, limit);
        // A state stopped mid-run (cancelled, out of memory) may hold
        // half-built globals or a hook firing at every instruction: drop it.
        let broken = cancel.load(Ordering::Relaxed)
            || matches!(&result, Err(text) if text.contains("not enough memory"));
        if !broken && pool.generation == self.inner.registry.generation() {
            pool.give_back(state);
        }
        match result {
            Ok(()) => Ok(run),
            Err(text) => Err(StreamFailure { text, run }),
        }
    }
}

/// The FAILURE text of a stream run whose Lua raised `err`: strings and
/// numbers as text; any other value fails the host's string check, whose
/// message is what the server sends.
pub(crate) fn stream_failure_text(lua: &Lua, err: &Lv) -> String {
    let text = match err {
        Lv::Error(e) => error_text(e),
        Lv::String(_) | Lv::Integer(_) | Lv::Number(_) => lua
            .coerce_string(err.clone())
            .ok()
            .flatten()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default(),
        // An optional-string check lets nil through: no message (inferred).
        Lv::Nil => return "UDF: Execution Error 2".to_string(),
        other => format!(
            "bad argument #1 to '?' (string expected, got {})",
            lua_type_name(other)
        ),
    };
    format!("UDF: Execution Error 2 : {text}")
}

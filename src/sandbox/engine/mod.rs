//! The Lua UDF runtime and the module registry, behind the [`Sandbox`] facade.
//!
//! The facade is the contract the wire server calls:
//! - `registry`: registered modules and the `udf-*` info replies' checks;
//! - `runtime`: Lua states (libraries, prelude, time and memory limits),
//!   pooled per module;
//! - `record`: the record a UDF sees and the write model;
//! - `stream`: stream UDFs (aggregations), run once per partition;
//! - `containers` / `elem`: `list`, `map`, `bytes`, `geojson`;
//! - `budget`: Rust-side container memory counted against the state's limit;
//! - `errors`: the server's error texts.

mod budget;
mod containers;
mod elem;
mod errors;
mod prelude;
mod record;
mod registry;
mod runtime;
pub(crate) mod stream;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::Mutex;

use crate::sandbox::expr::{FILTERED_OUT, RecordFilter, Subject};
use crate::sandbox::store::{Change, Digest, Store};
use crate::sandbox::value::Value;
pub(crate) use record::too_big as record_too_big;
use record::{MAX_BINS, RecState};
pub(crate) use registry::{MAX_FILENAME, filename_problem};
use registry::{Registry, valid_filename};
pub(crate) use runtime::DEFAULT_LIMIT_MS;
use runtime::{Failure, LuaState, ModulePool, StateConfig};
pub use stream::{ClientLimit, StageCount, StreamCall, StreamFailure, StreamRecord, StreamRun};

/// Which standard Lua libraries a UDF sees (see the runtime fact sheet §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LuaLibs {
    /// Current releases' default: no `io`, `os` limited to time functions, no `debug`.
    #[default]
    Default,
    /// Every standard library, as 8.1 servers up to 8.1.2.0 (the conformance cases).
    All,
    /// The documented hardened mode.
    Hardened,
}

impl LuaLibs {
    /// The mode's name as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            LuaLibs::Default => "default",
            LuaLibs::All => "all",
            LuaLibs::Hardened => "hardened",
        }
    }
}

impl std::fmt::Display for LuaLibs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LuaLibs {
    type Err = String;

    fn from_str(text: &str) -> Result<LuaLibs, String> {
        match text {
            "default" => Ok(LuaLibs::Default),
            "all" => Ok(LuaLibs::All),
            "hardened" => Ok(LuaLibs::Hardened),
            other => Err(format!(
                "unknown Lua library mode {other:?} (expected default, all or hardened)"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Modules and records persist here; `None` keeps nothing.
    pub data_dir: Option<PathBuf>,
    pub namespaces: Vec<String>,
    pub lua_libs: LuaLibs,
    /// The path in error prefixes: `<user_path>/<module>.lua:<line>: ...`.
    pub user_path: String,
    /// Cap on any UDF's run time, whatever the request asks.
    pub max_udf_ms: Option<u64>,
    /// Per Lua state memory limit in bytes.
    pub lua_memory_limit: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            data_dir: None,
            namespaces: vec!["test".to_string()],
            lua_libs: LuaLibs::Default,
            user_path: "/opt/aerospike/usr/udf/lua".to_string(),
            max_udf_ms: None,
            lua_memory_limit: 64 << 20,
        }
    }
}

/// One record UDF call, as the wire message carries it.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    pub ns: String,
    pub set: Option<String>,
    pub digest: Digest,
    /// The user key, when the client sent it (key policy SEND).
    pub key: Option<Value>,
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
    /// The request's time limit in ms; 0 = none (the server's 1000 ms applies).
    pub timeout_ms: u32,
    /// When the server received the request: the time limit runs from here,
    /// as a server's transaction deadline does (waiting for the record's lock counts).
    pub received: std::time::Instant,
    /// The message header's record TTL (0 = namespace default, u32::MAX = never, u32::MAX-1 = unchanged).
    pub ttl: u32,
    /// Field 43, checked under the key's lock when the record exists: a
    /// record it leaves out answers 27 and the UDF does not run.
    pub filter: RecordFilter,
}

/// How a UDF call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum UdfFailure {
    /// Result code 100 with this `FAILURE` bin text.
    Execution(String),
    /// Another result code (2, 4, 12, 13, 21, ...) with no bin.
    Code(u8),
}

#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// The `SUCCESS` value (Nil for nothing) or the failure.
    pub result: Result<Value, UdfFailure>,
    /// The record's generation and void time after the call (0/0 when there is none).
    pub generation: u16,
    pub void_time: u32,
    /// Log lines and `print` output the UDF wrote, in order.
    pub logs: Vec<LogLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Warn,
    Info,
    Debug,
    Trace,
    Print,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: LogLevel,
    pub text: String,
}

/// The logs of one UDF call, kept in a ring for the sandbox's log info name.
#[derive(Debug, Clone)]
pub struct CallLog {
    pub seq: u64,
    pub ns: String,
    pub digest: Digest,
    /// `module.function`
    pub call: String,
    pub lines: Vec<LogLine>,
    /// How long the call ran in the sandbox (the whole write model).
    pub run: std::time::Duration,
}

/// Log lines of the call running on a Lua state (its app data).
#[derive(Default)]
pub(crate) struct LuaLogs {
    lines: Vec<LogLine>,
    /// Lines past [`MAX_LOG_LINES`] that were not kept.
    dropped: usize,
}

/// Log lines kept per call.
const MAX_LOG_LINES: usize = 1000;
/// Longest kept log line in bytes (the server cuts its log lines about there).
const MAX_LOG_LINE: usize = 1023;

impl LuaLogs {
    pub(crate) fn push(&mut self, level: LogLevel, mut text: String) {
        if self.lines.len() >= MAX_LOG_LINES {
            self.dropped += 1;
            return;
        }
        if text.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        self.lines.push(LogLine { level, text });
    }

    /// The call's lines (with a note of any dropped), leaving it empty.
    pub(crate) fn take(&mut self) -> Vec<LogLine> {
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(LogLine {
                level: LogLevel::Warn,
                text: format!("({} more log lines not kept)", self.dropped),
            });
            self.dropped = 0;
        }
        lines
    }
}

/// Calls kept for [`Sandbox::calls_since`], and calls that wrote a line
/// kept for [`Sandbox::logs_since`] (apart, so quiet calls do not push
/// logged ones out).
const LOG_RING_CALLS: usize = 1000;
/// Largest module, decoded.
const MAX_MODULE_SIZE: usize = 1 << 20;
/// Module and function names in a call are shorter than this.
const MAX_CALL_NAME: usize = 128;

// Result codes the facade answers itself.
const PARAMETER: u8 = 4;
const KEY_MISMATCH: u8 = 19;
const BIN_NAME: u8 = 21;
const NAMESPACE_NOT_FOUND: u8 = 20;

/// The sandbox: store + module registry + Lua runtime. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    config: SandboxConfig,
    store: Store,
    registry: Arc<Registry>,
    states: StateConfig,
    pools: Mutex<HashMap<String, Arc<ModulePool>>>,
    calls: Mutex<VecDeque<CallLog>>,
    logs: Mutex<VecDeque<CallLog>>,
    log_seq: AtomicU64,
}

impl Sandbox {
    pub fn open(config: SandboxConfig) -> std::io::Result<Sandbox> {
        let store = Store::open(config.data_dir.as_deref(), &config.namespaces)?;
        let registry = Arc::new(Registry::open(config.data_dir.as_deref())?);
        let states = StateConfig {
            libs: config.lua_libs,
            user_path: config.user_path.trim_end_matches('/').to_string(),
            memory_limit: config.lua_memory_limit,
            max_udf_ms: config.max_udf_ms,
            registry: registry.clone(),
        };
        Ok(Sandbox {
            inner: Arc::new(Inner {
                config,
                store,
                registry,
                states,
                pools: Mutex::new(HashMap::new()),
                calls: Mutex::new(VecDeque::new()),
                logs: Mutex::new(VecDeque::new()),
                log_seq: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The current pool of `module`, replaced when the registry changed.
    fn pool(&self, module: &str) -> Arc<ModulePool> {
        let generation = self.inner.registry.generation();
        let mut pools = self.inner.pools.lock();
        match pools.get(module) {
            Some(pool) if pool.generation == generation => pool.clone(),
            _ => {
                if pools.values().any(|p| p.generation != generation) {
                    pools.retain(|_, p| p.generation == generation);
                }
                let pool = Arc::new(ModulePool::new(generation));
                pools.insert(module.to_string(), pool.clone());
                pool
            }
        }
    }

    /// Runs a record UDF: the whole write model, all-or-nothing.
    pub fn apply(&self, req: ApplyRequest) -> ApplyOutcome {
        let started = std::time::Instant::now();
        let outcome = self.apply_inner(&req);
        // Every call is kept, with its run time, so a client can show both.
        self.keep_logs(&req, &outcome.logs, started.elapsed());
        outcome
    }

    fn apply_inner(&self, req: &ApplyRequest) -> ApplyOutcome {
        let fail = |failure: UdfFailure| ApplyOutcome {
            result: Err(failure),
            generation: 0,
            void_time: 0,
            logs: Vec::new(),
        };
        if req.module.len() >= MAX_CALL_NAME || req.function.len() >= MAX_CALL_NAME {
            return fail(UdfFailure::Code(PARAMETER));
        }
        if !self.inner.store.has_namespace(&req.ns) {
            return fail(UdfFailure::Code(NAMESPACE_NOT_FOUND));
        }
        let pool = self.pool(&req.module);
        // A module that cannot load only matters once the filter lets the call run.
        let mut state = pool.take(&self.inner.states, &req.module);
        let limit = self.inner.states.limit(req.timeout_ms);
        let modified = self.inner.store.modify(&req.ns, &req.digest, |current| {
            if let Some(record) = current {
                let subject = Subject {
                    ns: &req.ns,
                    digest: &req.digest,
                    record,
                };
                if let Err(code) = req.filter.check(&subject) {
                    let mut outcome = fail(UdfFailure::Code(code));
                    if code == FILTERED_OUT {
                        outcome.generation = record.generation;
                        outcome.void_time = record.void_time;
                    }
                    return (Change::Keep, outcome);
                }
            }
            let Ok(state) = &mut state else {
                let error = UdfFailure::Execution("UDF: Execution Error 1".to_string());
                return (Change::Keep, fail(error));
            };
            let stored_key = current.and_then(|r| r.key.as_ref());
            if let (Some(sent), Some(stored)) = (&req.key, stored_key)
                && sent != stored
            {
                return (Change::Keep, fail(UdfFailure::Code(KEY_MISMATCH)));
            }
            // The server cannot load a record of more bins for a UDF.
            if current.is_some_and(|r| r.bins.len() > MAX_BINS) {
                return (Change::Keep, fail(UdfFailure::Code(BIN_NAME)));
            }
            let rec = RecState::new(req.digest, req.set.clone(), req.key.clone(), current);
            let limit = limit.saturating_sub(req.received.elapsed());
            let (result, logs, rec) = state.call(&req.function, rec, &req.args, limit);
            let (generation, void_time) = rec.start_meta();
            let mut outcome = ApplyOutcome {
                result: Ok(Value::Nil),
                generation,
                void_time,
                logs,
            };
            let change = match result {
                Err(text) => {
                    outcome.result = Err(UdfFailure::Execution(text));
                    Change::Keep
                }
                Ok(value) => match rec.commit(req.ttl) {
                    Err(failure) => {
                        outcome.result = Err(failure);
                        Change::Keep
                    }
                    Ok(change) => {
                        match &change {
                            Change::Put(record) => {
                                outcome.generation = record.generation;
                                outcome.void_time = record.void_time;
                            }
                            Change::Delete => {
                                outcome.generation = 0;
                                outcome.void_time = 0;
                            }
                            Change::Keep => {}
                        }
                        outcome.result = Ok(value);
                        change
                    }
                },
            };
            (change, outcome)
        });
        let outcome = match modified {
            Ok(outcome) => outcome,
            Err(e) => fail(UdfFailure::Execution(format!("sandbox store error: {e}"))),
        };
        // A state that ran out of memory may hold half-built globals: drop it.
        let exhausted = matches!(&outcome.result,
            Err(UdfFailure::Execution(text)) if text.contains("not enough memory"));
        if let Ok(state) = state
            && !exhausted
            && pool.generation == self.inner.registry.generation()
        {
            pool.give_back(state);
        }
        outcome
    }

    fn keep_logs(&self, req: &ApplyRequest, lines: &[LogLine], run: std::time::Duration) {
        let seq = self.inner.log_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let call = CallLog {
            seq,
            ns: req.ns.clone(),
            digest: req.digest,
            call: format!("{}.{}", req.module, req.function),
            lines: lines.to_vec(),
            run,
        };
        let keep = |ring: &Mutex<VecDeque<CallLog>>, call: CallLog| {
            let mut ring = ring.lock();
            if ring.len() >= LOG_RING_CALLS {
                ring.pop_front();
            }
            ring.push_back(call);
        };
        if !lines.is_empty() {
            keep(&self.inner.logs, call.clone());
        }
        keep(&self.inner.calls, call);
    }

    // Info commands, answered with the real server's exact reply values
    // (the text after the tab), given the parameters after `name:`.
    pub fn info_udf_put(&self, params: &str) -> String {
        let p = parse_params(params);
        // Hardened mode also wants the `.lua` extension, case-sensitively.
        let hardened = self.inner.config.lua_libs == LuaLibs::Hardened;
        let Some(filename) = p
            .get("filename")
            .filter(|f| valid_filename(f) && (!hardened || f.ends_with(".lua")))
        else {
            return "error=invalid_filename".to_string();
        };
        let Some(content_len) = p.get("content-len") else {
            return "error=invalid_content_len".to_string();
        };
        if p.get("udf-type").is_some_and(|t| *t != "LUA") {
            return "error=invalid_udf_type".to_string();
        }
        let Some(content_len) = content_len.parse::<u32>().ok().filter(|n| n % 4 == 0) else {
            return "error=invalid_content_len".to_string();
        };
        let Some(content) = p.get("content").filter(|c| c.len() == content_len as usize) else {
            return "error=invalid_content".to_string();
        };
        let padding = content.bytes().rev().take_while(|&b| b == b'=').count();
        if (content.len() / 4 * 3).saturating_sub(padding) > MAX_MODULE_SIZE {
            return "error=invalid_udf_content_len,>1M".to_string();
        }
        let source = match STANDARD.decode(content) {
            Ok(source) if !source.is_empty() => source,
            _ => return "error=invalid_base64_content".to_string(),
        };
        if let Err(failure) = LuaState::validate(&self.inner.states, filename, &source) {
            return compile_error_reply(failure);
        }
        match self.inner.registry.put(filename, content, source) {
            Ok(()) => "ok".to_string(),
            Err(e) => {
                tracing::warn!("storing module {filename}: {e}");
                "error=unknown_error".to_string()
            }
        }
    }

    pub fn info_udf_get(&self, params: &str) -> String {
        let p = parse_params(params);
        let Some(filename) = p
            .get("filename")
            .filter(|f| !f.is_empty() && f.len() < MAX_FILENAME)
        else {
            return "error=invalid_filename".to_string();
        };
        match self.inner.registry.source(filename) {
            None => "error=not_found".to_string(),
            Some(source) if source.is_empty() => "error=empty".to_string(),
            Some(source) => format!("type=LUA;content={};", STANDARD.encode(&source)),
        }
    }

    pub fn info_udf_list(&self) -> String {
        self.inner
            .registry
            .list()
            .iter()
            .map(|(name, hash)| format!("filename={name},hash={hash},type=LUA;"))
            .collect()
    }

    pub fn info_udf_remove(&self, params: &str) -> String {
        let p = parse_params(params);
        let Some(filename) = p.get("filename").filter(|f| !f.is_empty()) else {
            return "error=invalid_filename".to_string();
        };
        // A name that could never be registered has nothing to remove.
        if valid_filename(filename)
            && let Err(e) = self.inner.registry.remove(filename)
        {
            tracing::warn!("removing module {filename}: {e}");
            return "error=unknown_error".to_string();
        }
        "ok".to_string()
    }

    pub fn info_udf_clear_cache(&self) -> String {
        self.inner.registry.invalidate();
        self.inner.pools.lock().clear();
        "ok".to_string()
    }

    /// The calls that wrote a line with `seq > since`, oldest first (of the
    /// last 1000 such calls).
    pub fn logs_since(&self, since: u64) -> Vec<CallLog> {
        since_in(&self.inner.logs, since)
    }

    /// Every call with `seq > since`, oldest first (of the last 1000 calls).
    pub fn calls_since(&self, since: u64) -> Vec<CallLog> {
        since_in(&self.inner.calls, since)
    }
}

fn since_in(ring: &Mutex<VecDeque<CallLog>>, since: u64) -> Vec<CallLog> {
    ring.lock()
        .iter()
        .filter(|c| c.seq > since)
        .cloned()
        .collect()
}

/// `k=v;k=v;` → map (a value may itself contain '=').
fn parse_params(params: &str) -> HashMap<&str, &str> {
    params
        .split(';')
        .filter_map(|field| field.split_once('='))
        .collect()
}

/// `error=compile_error;file=<f>;line=<n>;message=<base64>`, with the file
/// and line taken from a `[string "<f>"]:<n>: <message>` error text.
fn compile_error_reply(failure: Failure) -> String {
    let (file, line, message) = match failure {
        Failure::NotText => (
            String::new(),
            0,
            "(Null error message returned by lua)".to_string(),
        ),
        Failure::Text(text) => split_compile_error(&text),
    };
    format!(
        "error=compile_error;file={file};line={line};message={}",
        STANDARD.encode(message)
    )
}

fn split_compile_error(text: &str) -> (String, u32, String) {
    let positioned = || -> Option<(String, u32, String)> {
        let rest = text.strip_prefix("[string \"")?;
        let (file, rest) = rest.split_once("\"]:")?;
        let (line, message) = rest.split_once(':')?;
        let message = message.strip_prefix(' ').unwrap_or(message);
        Some((file.to_string(), line.parse().ok()?, message.to_string()))
    };
    positioned().unwrap_or_else(|| {
        let first: String = text
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        (String::new(), 0, first)
    })
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;

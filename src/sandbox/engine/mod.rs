//! The Lua UDF runtime and the module registry, behind the [`Sandbox`] facade.
//!
//! The facade is the contract the wire server calls; its bodies are filled
//! in by the engine work.

use std::path::PathBuf;

use crate::sandbox::store::{Digest, Store};
use crate::sandbox::value::Value;

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
    /// The message header's record TTL (0 = namespace default, u32::MAX = never, u32::MAX-1 = unchanged).
    pub ttl: u32,
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
}

/// The sandbox: store + module registry + Lua runtime. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    _todo: (),
}

impl Sandbox {
    pub fn open(_config: SandboxConfig) -> std::io::Result<Sandbox> {
        todo!()
    }
    pub fn config(&self) -> &SandboxConfig {
        todo!()
    }
    pub fn store(&self) -> &Store {
        todo!()
    }
    /// Runs a record UDF: the whole write model, all-or-nothing.
    pub fn apply(&self, _req: ApplyRequest) -> ApplyOutcome {
        todo!()
    }

    // Info commands, answered with the real server's exact reply values
    // (the text after the tab), given the parameters after `name:`.
    pub fn info_udf_put(&self, _params: &str) -> String {
        todo!()
    }
    pub fn info_udf_get(&self, _params: &str) -> String {
        todo!()
    }
    pub fn info_udf_list(&self) -> String {
        todo!()
    }
    pub fn info_udf_remove(&self, _params: &str) -> String {
        todo!()
    }
    pub fn info_udf_clear_cache(&self) -> String {
        todo!()
    }
    /// Call logs with `seq > since`, oldest first.
    pub fn logs_since(&self, _since: u64) -> Vec<CallLog> {
        todo!()
    }
}

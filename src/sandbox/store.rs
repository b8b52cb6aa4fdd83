//! Records by namespace and digest, persisted when a directory is given.
//!
//! Contract (used by the engine's apply and by the wire server's record
//! commands):
//! - `modify` runs its closure while holding that key's lock, so calls on
//!   one key are serialized and calls on different keys run in parallel.
//! - When `modify` returns, the change is written to the OS (the data
//!   directory), so an acknowledged write survives a SIGKILL.
//! - An expired record (void time passed) reads as missing.

use std::path::Path;

use crate::sandbox::value::Value;

/// RIPEMD-160(set ‖ key particle type ‖ key bytes), as the client computes it.
pub type Digest = [u8; 20];

/// Seconds between the Unix epoch and the server's epoch (2010-01-01 UTC).
pub const CITRUSLEAF_EPOCH_SECS: u64 = 1_262_304_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Bins in the order they were first written.
    pub bins: Vec<(String, Value)>,
    /// Starts at 1 on create, +1 per write; 16-bit, wraps to 1 (never 0).
    pub generation: u16,
    /// Expiry in seconds since 2010-01-01 UTC; 0 = never expires.
    pub void_time: u32,
    /// Last write in milliseconds since 2010-01-01 UTC.
    pub last_update_ms: u64,
    pub set: Option<String>,
    /// The stored user key, when a client sent it with a write.
    pub key: Option<Value>,
}

/// What a `modify` closure decided.
pub enum Change {
    Keep,
    Put(Record),
    Delete,
}

/// A cheap, cloneable handle to the record store.
#[derive(Clone)]
pub struct Store {
    _todo: (),
}

impl Store {
    /// Opens (or creates) the store; `dir: None` keeps nothing.
    pub fn open(_dir: Option<&Path>, _namespaces: &[String]) -> std::io::Result<Store> {
        todo!()
    }
    pub fn namespaces(&self) -> Vec<String> {
        todo!()
    }
    pub fn has_namespace(&self, _ns: &str) -> bool {
        todo!()
    }
    pub fn get(&self, _ns: &str, _digest: &Digest) -> Option<Record> {
        todo!()
    }
    /// Runs `f` on the current record under the key's lock and applies its change.
    pub fn modify<R>(
        &self,
        _ns: &str,
        _digest: &Digest,
        _f: impl FnOnce(Option<&Record>) -> (Change, R),
    ) -> std::io::Result<R> {
        todo!()
    }
    /// Removes every record of `ns` (of one set when given) last updated before `before_ms` (cf epoch ms; None = now).
    pub fn truncate(
        &self,
        _ns: &str,
        _set: Option<&str>,
        _before_ms: Option<u64>,
    ) -> std::io::Result<()> {
        todo!()
    }
    /// Live records in `ns`.
    pub fn count(&self, _ns: &str) -> usize {
        todo!()
    }
}

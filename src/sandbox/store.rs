//! Records by namespace and digest, persisted when a directory is given.
//!
//! Contract (used by the engine's apply and by the wire server's record
//! commands):
//! - `modify` runs its closure while holding that key's lock, so calls on
//!   one key are serialized and calls on different keys run in parallel.
//! - When `modify` returns, the change is written to the OS (the data
//!   directory), so an acknowledged write survives a SIGKILL.
//! - An expired record (void time passed) reads as missing.
//!
//! Persistence, per namespace in `<dir>/records/`: a snapshot `<ns>.snap`
//! and an append-only log `<ns>.log`, both one JSON object per line (`put`
//! with the whole record, or `del`). Each change is appended with a single
//! `write(2)` while the key's lock is held. Replaying the snapshot, then
//! `<ns>.log.old` (present only mid-compaction), then the log gives the
//! store back: for each key the last line about it wins, and a torn last
//! line is skipped; any other line that does not parse fails the open.
//! Values nest at most [`MAX_DEPTH`] lists and maps deep, so what is
//! written can be read back. At open, and while running once the log has
//! grown past [`COMPACT_AFTER`] and twice the snapshot, the snapshot is
//! rewritten from memory: the log is first renamed to `.log.old` and a new
//! one started, so writers never wait for the snapshot.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use ripemd::{Digest as _, Ripemd160};
use serde::Deserialize as _;
use serde_json::{Value as Json, json};

use crate::sandbox::sindex::{CreateError, IndexDef, Indexes};
use crate::sandbox::value::{MAX_DEPTH, STRING, Value};

/// RIPEMD-160(set ‖ key particle type ‖ key bytes), as the client computes it.
pub type Digest = [u8; 20];

/// Seconds between the Unix epoch and the server's epoch (2010-01-01 UTC).
pub const CITRUSLEAF_EPOCH_SECS: u64 = 1_262_304_000;

/// The digest of a user key: RIPEMD-160(set ‖ key particle type ‖ key bytes).
///
/// Keys are integers (type 1, 8 bytes big-endian), strings (type 3) or blobs
/// (their particle type). Any other value cannot be a key: `None`.
pub fn digest(set: Option<&str>, key: &Value) -> Option<Digest> {
    let mut hasher = Ripemd160::new();
    hasher.update(set.unwrap_or("").as_bytes());
    match key {
        Value::Int(i) => {
            hasher.update([1u8]);
            hasher.update(i.to_be_bytes());
        }
        Value::Str(s) => {
            hasher.update([STRING]);
            hasher.update(s);
        }
        Value::Bytes { ty, data } => {
            hasher.update([*ty]);
            hasher.update(data);
        }
        _ => return None,
    }
    Some(hasher.finalize().into())
}

/// Now, in seconds since the server's epoch.
pub fn now_cf_secs() -> u32 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    unix.saturating_sub(CITRUSLEAF_EPOCH_SECS) as u32
}

/// Now, in milliseconds since the server's epoch.
pub fn now_cf_ms() -> u64 {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    unix_ms.saturating_sub(CITRUSLEAF_EPOCH_SECS * 1000)
}

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

impl Record {
    /// True when the void time has passed.
    pub fn is_expired(&self, now_secs: u32) -> bool {
        self.void_time != 0 && self.void_time <= now_secs
    }

    /// The bin named `name`.
    pub fn bin(&self, name: &str) -> Option<&Value> {
        self.bins.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// The generation after `generation`: +1, wrapping to 1 (never 0).
pub fn next_generation(generation: u16) -> u16 {
    match generation.wrapping_add(1) {
        0 => 1,
        g => g,
    }
}

/// What a `modify` closure decided.
pub enum Change {
    Keep,
    Put(Record),
    Delete,
}

/// Shards of the key table: a shard lock is held only to find a key's slot.
/// A record's shard is its digest's first byte modulo this, so every
/// partition (low 12 bits of the first two bytes) lives in one shard.
pub const SHARDS: usize = 64;

/// One key's slot: its lock serializes every call on that key.
type Slot = Arc<Mutex<Option<Record>>>;

/// Log bytes after which a running store rewrites its snapshot.
pub const COMPACT_AFTER: u64 = 64 << 20;

struct Namespace {
    shards: Vec<Mutex<HashMap<Digest, Slot>>>,
    log: Option<Log>,
    /// Sets that have held a record since the store opened (they outlive
    /// truncation, as on a server).
    sets: RwLock<HashSet<String>>,
}

/// A namespace's files and the log being appended to.
struct Log {
    paths: LogPaths,
    file: Mutex<LogFile>,
    compacting: AtomicBool,
    /// Log size that triggers a compaction (at least twice the snapshot).
    compact_after: u64,
}

struct LogFile {
    file: File,
    /// Bytes appended since the log was started.
    appended: u64,
    /// Size of the current snapshot.
    snapshot_len: u64,
}

struct LogPaths {
    snapshot: PathBuf,
    log: PathBuf,
    old: PathBuf,
}

impl Namespace {
    fn shard(&self, digest: &Digest) -> &Mutex<HashMap<Digest, Slot>> {
        &self.shards[digest[0] as usize % SHARDS]
    }

    fn slot(&self, digest: &Digest) -> Slot {
        self.shard(digest)
            .lock()
            .entry(*digest)
            .or_insert_with(|| Arc::new(Mutex::new(None)))
            .clone()
    }

    /// Drops an empty slot nobody else holds (called with the slot's lock held).
    fn forget_if_unused(&self, digest: &Digest, slot: &Slot) {
        let mut shard = self.shard(digest).lock();
        // The map and the caller: nobody else can be waiting on it, since a
        // slot is only cloned under this shard lock.
        if Arc::strong_count(slot) == 2 {
            shard.remove(digest);
        }
    }

    fn note_set(&self, set: Option<&str>) {
        if let Some(set) = set
            && !self.sets.read().contains(set)
        {
            self.sets.write().insert(set.to_string());
        }
    }

    /// Appends the line `line()` builds (only built when there is a log).
    fn append(&self, line: impl FnOnce() -> String) -> std::io::Result<()> {
        if let Some(log) = &self.log {
            let line = line();
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            let mut file = log.file.lock();
            file.file.write_all(&bytes)?;
            file.appended += bytes.len() as u64;
        }
        Ok(())
    }

    /// Live records, each read under its own lock.
    fn snapshot(&self) -> Vec<(Digest, Record)> {
        let now = now_cf_secs();
        let mut out = Vec::new();
        for shard in &self.shards {
            let slots: Vec<(Digest, Slot)> =
                shard.lock().iter().map(|(d, s)| (*d, s.clone())).collect();
            for (digest, slot) in slots {
                if let Some(record) = slot.lock().as_ref().filter(|r| !r.is_expired(now)) {
                    out.push((digest, record.clone()));
                }
            }
        }
        out
    }

    /// Rewrites the snapshot once the log has grown enough. Called with no
    /// key lock held.
    fn compact_if_due(&self) {
        let Some(log) = &self.log else {
            return;
        };
        {
            let file = log.file.lock();
            if file.appended < log.compact_after.max(2 * file.snapshot_len) {
                return;
            }
        }
        if log.compacting.swap(true, Ordering::AcqRel) {
            return; // another thread is at it
        }
        if let Err(e) = self.compact(log) {
            tracing::warn!("compacting {}: {e}", log.paths.log.display());
        }
        log.compacting.store(false, Ordering::Release);
    }

    fn compact(&self, log: &Log) -> std::io::Result<()> {
        if log.paths.old.exists() {
            // An earlier compaction failed half way: keep appending, lose nothing.
            return Ok(());
        }
        {
            // From here on, changes go to a new log; the snapshot taken
            // below is at least as new as everything in the old one.
            let mut file = log.file.lock();
            fs::rename(&log.paths.log, &log.paths.old)?;
            file.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log.paths.log)?;
            file.appended = 0;
        }
        let len = write_snapshot(&log.paths.snapshot, self.snapshot().iter())?;
        fs::remove_file(&log.paths.old)?;
        log.file.lock().snapshot_len = len;
        Ok(())
    }
}

/// A cheap, cloneable handle to the record store.
#[derive(Clone)]
pub struct Store {
    namespaces: Arc<HashMap<String, Namespace>>,
    names: Arc<Vec<String>>,
    /// Secondary indexes, changed by every write in the same place as the records.
    indexes: Arc<Indexes>,
}

impl Store {
    /// Opens (or creates) the store; `dir: None` keeps nothing.
    pub fn open(dir: Option<&Path>, namespaces: &[String]) -> std::io::Result<Store> {
        Store::open_compacting_after(dir, namespaces, COMPACT_AFTER)
    }

    /// [`Store::open`] with another log size that triggers a compaction.
    pub fn open_compacting_after(
        dir: Option<&Path>,
        namespaces: &[String],
        compact_after: u64,
    ) -> std::io::Result<Store> {
        let mut map = HashMap::new();
        let mut names = Vec::new();
        for ns in namespaces {
            if map.contains_key(ns) {
                continue;
            }
            let (records, log) = match dir {
                Some(dir) => {
                    let (records, log) = open_log(log_paths(dir, ns)?, compact_after)?;
                    (records, Some(log))
                }
                None => (HashMap::new(), None),
            };
            let mut shards: Vec<HashMap<Digest, Slot>> =
                (0..SHARDS).map(|_| HashMap::new()).collect();
            let sets = records.values().filter_map(|r| r.set.clone()).collect();
            for (digest, record) in records {
                shards[digest[0] as usize % SHARDS]
                    .insert(digest, Arc::new(Mutex::new(Some(record))));
            }
            map.insert(
                ns.clone(),
                Namespace {
                    shards: shards.into_iter().map(Mutex::new).collect(),
                    log,
                    sets: RwLock::new(sets),
                },
            );
            names.push(ns.clone());
        }
        let (indexes, defs) = Indexes::open(dir)?;
        let store = Store {
            namespaces: Arc::new(map),
            names: Arc::new(names),
            indexes: Arc::new(indexes),
        };
        for def in defs {
            let (ns, name) = (def.ns.clone(), def.name.clone());
            if let Err(e) = store
                .indexes
                .create(def, false, |add| store.visit(&ns, add))
            {
                tracing::warn!("index {name} not rebuilt: {e:?}");
            }
        }
        Ok(store)
    }

    pub fn indexes(&self) -> &Indexes {
        &self.indexes
    }

    /// Adds a secondary index and fills it from the records already stored.
    pub fn create_index(&self, def: IndexDef) -> Result<(), CreateError> {
        let ns = def.ns.clone();
        self.indexes.create(def, true, |add| self.visit(&ns, add))
    }

    /// Calls `f` on every live record of `ns`, each under its own lock.
    pub fn visit(&self, ns: &str, f: &mut dyn FnMut(&Digest, &Record)) {
        let Some(namespace) = self.namespaces.get(ns) else {
            return;
        };
        let now = now_cf_secs();
        for shard in &namespace.shards {
            let slots: Vec<(Digest, Slot)> =
                shard.lock().iter().map(|(d, s)| (*d, s.clone())).collect();
            for (digest, slot) in slots {
                if let Some(record) = slot.lock().as_ref().filter(|r| !r.is_expired(now)) {
                    f(&digest, record);
                }
            }
        }
    }

    /// The digests in shard `shard` (< [`SHARDS`]) of `ns` that `keep` accepts.
    pub fn shard_digests(
        &self,
        ns: &str,
        shard: usize,
        keep: impl Fn(&Digest) -> bool,
    ) -> Vec<Digest> {
        match self.namespaces.get(ns).and_then(|n| n.shards.get(shard)) {
            Some(shard) => shard.lock().keys().filter(|d| keep(d)).copied().collect(),
            None => Vec::new(),
        }
    }

    /// Whether `set` has held a record in `ns` since the store opened.
    pub fn knows_set(&self, ns: &str, set: &str) -> bool {
        self.namespaces
            .get(ns)
            .is_some_and(|n| n.sets.read().contains(set))
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.names.as_ref().clone()
    }

    pub fn has_namespace(&self, ns: &str) -> bool {
        self.namespaces.contains_key(ns)
    }

    pub fn get(&self, ns: &str, digest: &Digest) -> Option<Record> {
        let namespace = self.namespaces.get(ns)?;
        let slot = namespace.shard(digest).lock().get(digest)?.clone();
        let record = slot.lock();
        record
            .as_ref()
            .filter(|r| !r.is_expired(now_cf_secs()))
            .cloned()
    }

    /// Runs `f` on the current record under the key's lock and applies its change.
    ///
    /// An unknown namespace is an `InvalidInput` error and `f` is not run.
    pub fn modify<R>(
        &self,
        ns: &str,
        digest: &Digest,
        f: impl FnOnce(Option<&Record>) -> (Change, R),
    ) -> std::io::Result<R> {
        let namespace = self.namespaces.get(ns).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("unknown namespace {ns}"),
            )
        })?;
        let (out, wrote) = {
            let slot = namespace.slot(digest);
            let mut current = slot.lock();
            if current
                .as_ref()
                .is_some_and(|r| r.is_expired(now_cf_secs()))
            {
                self.indexes.update(ns, digest, current.as_ref(), None);
                *current = None;
            }
            let (change, out) = f(current.as_ref());
            let wrote = !matches!(change, Change::Keep);
            match change {
                Change::Keep => {}
                Change::Put(record) => {
                    check_depth(&record)?;
                    namespace.append(|| put_line(digest, &record))?;
                    namespace.note_set(record.set.as_deref());
                    self.indexes
                        .update(ns, digest, current.as_ref(), Some(&record));
                    *current = Some(record);
                }
                Change::Delete => {
                    if current.is_some() {
                        namespace.append(|| del_line(digest))?;
                        self.indexes.update(ns, digest, current.as_ref(), None);
                    }
                    *current = None;
                }
            }
            if current.is_none() {
                namespace.forget_if_unused(digest, &slot);
            }
            (out, wrote)
        };
        if wrote {
            namespace.compact_if_due();
        }
        Ok(out)
    }

    /// Removes every record of `ns` (of one set when given) last updated before `before_ms` (cf epoch ms; None = now).
    pub fn truncate(
        &self,
        ns: &str,
        set: Option<&str>,
        before_ms: Option<u64>,
    ) -> std::io::Result<()> {
        let Some(namespace) = self.namespaces.get(ns) else {
            return Ok(());
        };
        let before = before_ms.unwrap_or_else(|| now_cf_ms() + 1);
        for shard in &namespace.shards {
            let slots: Vec<(Digest, Slot)> =
                shard.lock().iter().map(|(d, s)| (*d, s.clone())).collect();
            for (digest, slot) in slots {
                let mut current = slot.lock();
                let doomed = current.as_ref().is_some_and(|r| {
                    r.last_update_ms < before && set.is_none_or(|s| r.set.as_deref() == Some(s))
                });
                if doomed {
                    namespace.append(|| del_line(&digest))?;
                    self.indexes.update(ns, &digest, current.as_ref(), None);
                    *current = None;
                    namespace.forget_if_unused(&digest, &slot);
                }
            }
        }
        namespace.compact_if_due();
        Ok(())
    }

    /// Live records in `ns`.
    pub fn count(&self, ns: &str) -> usize {
        self.records(ns).len()
    }

    /// A snapshot of the live records in `ns` (for scans and listings).
    pub fn records(&self, ns: &str) -> Vec<(Digest, Record)> {
        match self.namespaces.get(ns) {
            Some(namespace) => namespace.snapshot(),
            None => Vec::new(),
        }
    }
}

fn log_paths(dir: &Path, ns: &str) -> std::io::Result<LogPaths> {
    let valid = !ns.is_empty()
        && ns
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("namespace name {ns:?} is not usable as a file name"),
        ));
    }
    let records = dir.join("records");
    fs::create_dir_all(&records)?;
    Ok(LogPaths {
        snapshot: records.join(format!("{ns}.snap")),
        log: records.join(format!("{ns}.log")),
        old: records.join(format!("{ns}.log.old")),
    })
}

/// Applies every line of `path` (if it exists) to `records`.
///
/// Only a last line with no newline may be cut short (by a crash in the
/// middle of its write): it is skipped. Any other line that is not a record
/// or a delete is corruption, and an error: going on would drop it for
/// good, since opening rewrites the snapshot and starts an empty log.
fn replay(path: &Path, records: &mut HashMap<Digest, Record>) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let mut reader = BufReader::new(File::open(path)?);
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let complete = line.last() == Some(&b'\n');
        match parse_line(&line) {
            Some((digest, Some(record))) => {
                records.insert(digest, record);
            }
            Some((digest, None)) => {
                records.remove(&digest);
            }
            None if !complete => tracing::warn!(
                "{}: skipped line {number}, cut short by a crash",
                path.display()
            ),
            None => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} line {number} is not a record the sandbox wrote (damaged?); \
                         nothing was changed: mend or remove that line to open the sandbox",
                        path.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A line of a log or snapshot → (digest, Some(record) for a put, None for
/// a delete); `None` when it is not one.
fn parse_line(line: &[u8]) -> Option<(Digest, Option<Record>)> {
    // serde_json stops at 128 levels, fewer than a stored value may nest:
    // its limit is lifted, and this bound keeps the stack safe instead.
    if json_depth(line) > MAX_LINE_DEPTH {
        return None;
    }
    // From text, not bytes: the parser serde_json itself compiles for
    // text, optimised, takes a third of the stack in a debug build.
    let mut parser = serde_json::Deserializer::from_str(std::str::from_utf8(line).ok()?);
    parser.disable_recursion_limit();
    let entry = Json::deserialize(&mut parser).ok()?;
    parser.end().ok()?;
    parse_entry(&entry)
}

/// How deep a line's JSON nests: a put's bins are 3 levels in, a value
/// takes up to 3 per list or map (`{"m":[[k,v]]}`) and 1 at a leaf
/// (`{"i":5}`).
const MAX_LINE_DEPTH: usize = 3 + 3 * MAX_DEPTH + 1;

/// How deep `[` and `{` nest in JSON text (not counting those in strings).
fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuses a record with a value nested deeper than [`MAX_DEPTH`]: it
/// could not be read back.
fn check_depth(record: &Record) -> std::io::Result<()> {
    let mut values = record.bins.iter().map(|(_, v)| v).chain(&record.key);
    if values.any(|v| v.depth() > MAX_DEPTH) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("lists and maps nested deeper than {MAX_DEPTH} levels cannot be stored"),
        ));
    }
    Ok(())
}

/// Writes a snapshot beside `path` and renames it into place; its length.
fn write_snapshot<'a>(
    path: &Path,
    records: impl Iterator<Item = &'a (Digest, Record)>,
) -> std::io::Result<u64> {
    let tmp = path.with_extension("snap.tmp");
    let mut len = 0u64;
    {
        let mut out = std::io::BufWriter::new(File::create(&tmp)?);
        for (digest, record) in records {
            let line = put_line(digest, record);
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            len += line.len() as u64 + 1;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    Ok(len)
}

/// Replays a namespace's files, writes a fresh snapshot, starts an empty log.
fn open_log(
    paths: LogPaths,
    compact_after: u64,
) -> std::io::Result<(HashMap<Digest, Record>, Log)> {
    let mut records = HashMap::new();
    for path in [&paths.snapshot, &paths.old, &paths.log] {
        replay(path, &mut records)?;
    }
    let now = now_cf_secs();
    records.retain(|_, r| !r.is_expired(now));
    let live: Vec<(Digest, Record)> = records.iter().map(|(d, r)| (*d, r.clone())).collect();
    let snapshot_len = write_snapshot(&paths.snapshot, live.iter())?;
    let file = File::create(&paths.log)?;
    if paths.old.exists() {
        fs::remove_file(&paths.old)?;
    }
    let log = Log {
        paths,
        file: Mutex::new(LogFile {
            file,
            appended: 0,
            snapshot_len,
        }),
        compacting: AtomicBool::new(false),
        compact_after,
    };
    Ok((records, log))
}

fn put_line(digest: &Digest, record: &Record) -> String {
    // No value goes through `json!`: it would convert it again with
    // `to_value`, which takes 2 kB of stack per level in a debug build.
    let bins = record
        .bins
        .iter()
        .map(|(name, v)| Json::Array(vec![Json::from(name.as_str()), value_to_json(v)]))
        .collect();
    let fields = [
        ("op", json!("put")),
        ("d", json!(hex::encode(digest))),
        ("bins", Json::Array(bins)),
        ("gen", json!(record.generation)),
        ("void", json!(record.void_time)),
        ("lut", json!(record.last_update_ms)),
        ("set", json!(record.set)),
        ("key", record.key.as_ref().map_or(Json::Null, value_to_json)),
    ];
    let fields = fields.into_iter().map(|(name, v)| (name.to_string(), v));
    Json::Object(fields.collect()).to_string()
}

fn del_line(digest: &Digest) -> String {
    json!({"op": "del", "d": hex::encode(digest)}).to_string()
}

/// One log line → (digest, Some(record) for a put, None for a delete).
fn parse_entry(entry: &Json) -> Option<(Digest, Option<Record>)> {
    let digest: Digest = hex::decode(entry.get("d")?.as_str()?)
        .ok()?
        .try_into()
        .ok()?;
    match entry.get("op")?.as_str()? {
        "del" => Some((digest, None)),
        "put" => {
            let mut bins = Vec::new();
            for bin in entry.get("bins")?.as_array()? {
                let name = bin.get(0)?.as_str()?.to_string();
                bins.push((name, value_from_json(bin.get(1)?)?));
            }
            let key = match entry.get("key") {
                None | Some(Json::Null) => None,
                Some(k) => Some(value_from_json(k)?),
            };
            let record = Record {
                bins,
                generation: u16::try_from(entry.get("gen")?.as_u64()?).ok()?,
                void_time: u32::try_from(entry.get("void")?.as_u64()?).ok()?,
                last_update_ms: entry.get("lut")?.as_u64()?,
                set: entry.get("set")?.as_str().map(str::to_string),
                key,
            };
            Some((digest, Some(record)))
        }
        _ => None,
    }
}

/// A value in the log's JSON form; floats keep their exact bits.
///
/// It recurses once per list or map, so it keeps its stack frame small:
/// no `json!` here, objects are built by [`tagged`].
fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => tagged("i", Json::from(*i)),
        Value::Float(f) => tagged("f", Json::from(f.to_bits())),
        // JSON strings are text: other bytes go as a blob of the string type.
        Value::Str(s) => match std::str::from_utf8(s) {
            Ok(text) => Json::String(text.to_string()),
            Err(_) => bytes_json(STRING, s),
        },
        Value::Bytes { ty, data } => bytes_json(*ty, data),
        Value::List(items) => Json::Array(items.iter().map(value_to_json).collect()),
        Value::Map(pairs) => {
            let pairs = pairs
                .iter()
                .map(|(k, v)| Json::Array(vec![value_to_json(k), value_to_json(v)]));
            tagged("m", Json::Array(pairs.collect()))
        }
        Value::GeoJson(text) => tagged("g", Json::String(text.clone())),
    }
}

/// `{"tag": value}`.
fn tagged(tag: &str, value: Json) -> Json {
    Json::Object([(tag.to_string(), value)].into_iter().collect())
}

/// Apart from [`value_to_json`], so `json!`'s temporaries stay out of its frame.
fn bytes_json(ty: u8, data: &[u8]) -> Json {
    json!({ "b": hex::encode(data), "t": ty })
}

/// The value of a log's JSON form (recursing with a small frame, as above).
fn value_from_json(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone().into_bytes()),
        Json::Array(items) => Value::List(
            items
                .iter()
                .map(value_from_json)
                .collect::<Option<Vec<_>>>()?,
        ),
        Json::Object(obj) => match obj.get("m") {
            Some(m) => {
                let mut pairs = Vec::new();
                for pair in m.as_array()? {
                    pairs.push((
                        value_from_json(pair.get(0)?)?,
                        value_from_json(pair.get(1)?)?,
                    ));
                }
                Value::Map(pairs)
            }
            None => scalar_from_json(obj)?,
        },
        Json::Number(_) => return None,
    })
}

fn scalar_from_json(obj: &serde_json::Map<String, Json>) -> Option<Value> {
    Some(if let Some(i) = obj.get("i") {
        Value::Int(i.as_i64()?)
    } else if let Some(f) = obj.get("f") {
        Value::Float(f64::from_bits(f.as_u64()?))
    } else if let Some(b) = obj.get("b") {
        let data = hex::decode(b.as_str()?).ok()?;
        match u8::try_from(obj.get("t")?.as_u64()?).ok()? {
            STRING => Value::Str(data),
            ty => Value::Bytes { ty, data },
        }
    } else if let Some(g) = obj.get("g") {
        Value::GeoJson(g.as_str()?.to_string())
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> Vec<String> {
        vec!["test".to_string(), "bar".to_string()]
    }

    fn record(bins: Vec<(&str, Value)>) -> Record {
        Record {
            bins: bins.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            generation: 1,
            void_time: 0,
            last_update_ms: now_cf_ms(),
            set: Some("demo".to_string()),
            key: Some(Value::Str("k".into())),
        }
    }

    fn put(store: &Store, ns: &str, d: &Digest, r: Record) {
        store.modify(ns, d, |_| (Change::Put(r), ())).unwrap();
    }

    #[test]
    fn digest_matches_the_protocol_vectors() {
        let cases = [
            (
                Some("set"),
                Value::Str("haha".into()),
                "36eb02a807dbade8cd784e7800d76308b4e89212",
            ),
            (
                Some("set"),
                Value::Int(1),
                "82d7213b469812947c109a6d341e3b5b1dedec1f",
            ),
            (
                Some("demo"),
                Value::Str("key1".into()),
                "ec91192d4b7f8ce35d5d78d34bca65cbaaaac960",
            ),
            (
                None,
                Value::Str("key1".into()),
                "579f05ecf9e6a9e796f4da2ab0b1323364df5c10",
            ),
            (
                None,
                Value::Int(1),
                "a443f05d05d962202b59abb402afae1737dbf66a",
            ),
        ];
        for (set, key, want) in cases {
            assert_eq!(
                hex::encode(digest(set, &key).unwrap()),
                want,
                "{set:?} {key:?}"
            );
        }
        assert!(digest(None, &Value::Float(1.0)).is_none());
    }

    #[test]
    fn namespaces_from_the_config_only() {
        let store = Store::open(None, &ns()).unwrap();
        assert!(store.has_namespace("test"));
        assert!(!store.has_namespace("nope"));
        assert_eq!(store.namespaces(), ns());
        assert!(
            store
                .modify("nope", &[0; 20], |_| (Change::Keep, ()))
                .is_err()
        );
        assert!(store.get("nope", &[0; 20]).is_none());
    }

    #[test]
    fn put_get_delete_and_count() {
        let store = Store::open(None, &ns()).unwrap();
        let d = [7u8; 20];
        assert!(store.get("test", &d).is_none());
        put(&store, "test", &d, record(vec![("a", Value::Int(1))]));
        assert_eq!(
            store.get("test", &d).unwrap().bin("a"),
            Some(&Value::Int(1))
        );
        assert_eq!(store.count("test"), 1);
        assert_eq!(store.count("bar"), 0);
        let seen = store
            .modify("test", &d, |r| (Change::Delete, r.map(|r| r.generation)))
            .unwrap();
        assert_eq!(seen, Some(1));
        assert!(store.get("test", &d).is_none());
        assert_eq!(store.count("test"), 0);
    }

    #[test]
    fn expired_records_read_as_missing() {
        let store = Store::open(None, &ns()).unwrap();
        let d = [1u8; 20];
        let mut r = record(vec![("a", Value::Int(1))]);
        r.void_time = now_cf_secs() - 1;
        put(&store, "test", &d, r);
        assert!(store.get("test", &d).is_none());
        let seen = store
            .modify("test", &d, |r| (Change::Keep, r.is_some()))
            .unwrap();
        assert!(!seen);
        assert_eq!(store.count("test"), 0);
    }

    #[test]
    fn truncate_by_set_and_time() {
        let store = Store::open(None, &ns()).unwrap();
        let mut other = record(vec![("a", Value::Int(1))]);
        other.set = Some("other".into());
        put(&store, "test", &[1; 20], record(vec![("a", Value::Int(1))]));
        put(&store, "test", &[2; 20], other);
        store.truncate("test", Some("demo"), None).unwrap();
        assert!(store.get("test", &[1; 20]).is_none());
        assert!(store.get("test", &[2; 20]).is_some());
        store.truncate("test", None, Some(0)).unwrap();
        assert_eq!(store.count("test"), 1);
        store.truncate("test", None, None).unwrap();
        assert_eq!(store.count("test"), 0);
    }

    #[test]
    fn generation_wraps_to_one() {
        assert_eq!(next_generation(1), 2);
        assert_eq!(next_generation(u16::MAX), 1);
    }

    #[test]
    fn persists_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let every_type = vec![
            ("nil", Value::Nil),
            ("b", Value::Bool(true)),
            ("i", Value::Int(i64::MIN)),
            ("f", Value::Float(-0.0)),
            ("nan", Value::Float(f64::NAN)),
            ("s", Value::Str("héllo\n".into())),
            // Not UTF-8: kept as the bytes of a string.
            ("s8", Value::Str(b"caf\xe9".to_vec())),
            (
                "y",
                Value::Bytes {
                    ty: 4,
                    data: vec![0, 255],
                },
            ),
            ("l", Value::List(vec![Value::Int(1), Value::List(vec![])])),
            (
                "m",
                Value::Map(vec![
                    (Value::Str("k".into()), Value::Float(f64::INFINITY)),
                    (Value::Str(vec![0xff]), Value::Nil),
                ]),
            ),
            ("g", Value::GeoJson("{\"type\":\"Point\"}".into())),
        ];
        let kept = record(every_type);
        {
            let store = Store::open(Some(dir.path()), &ns()).unwrap();
            put(&store, "test", &[1; 20], kept.clone());
            put(&store, "test", &[2; 20], record(vec![("a", Value::Int(2))]));
            store
                .modify("test", &[2; 20], |_| (Change::Delete, ()))
                .unwrap();
            put(&store, "bar", &[3; 20], record(vec![("a", Value::Int(3))]));
            // No close, no flush: dropped as a killed process would leave it.
        }
        for _ in 0..2 {
            let store = Store::open(Some(dir.path()), &ns()).unwrap();
            let got = store.get("test", &[1; 20]).unwrap();
            assert_eq!(got.bins.len(), kept.bins.len());
            for ((n1, v1), (n2, v2)) in got.bins.iter().zip(&kept.bins) {
                assert_eq!(n1, n2);
                match (v1, v2) {
                    (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
                    _ => assert_eq!(v1, v2),
                }
            }
            assert_eq!(got.key, kept.key);
            assert_eq!(got.set, kept.set);
            assert!(store.get("test", &[2; 20]).is_none());
            assert_eq!(store.count("bar"), 1);
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(Some(dir.path()), &ns()).unwrap();
            put(&store, "test", &[1; 20], record(vec![("a", Value::Int(1))]));
        }
        let path = dir.path().join("records/test.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"put\",\"d\":\"01").unwrap();
        drop(f);
        let store = Store::open(Some(dir.path()), &ns()).unwrap();
        assert_eq!(store.count("test"), 1);
    }

    /// `leaf` inside `depth` containers, each made by `wrap`.
    fn nested(depth: usize, leaf: Value, wrap: impl Fn(Value) -> Value) -> Value {
        (0..depth).fold(leaf, |inner, _| wrap(inner))
    }

    fn in_list(inner: Value) -> Value {
        Value::List(vec![inner])
    }

    fn in_map(inner: Value) -> Value {
        Value::Map(vec![(Value::Int(1), inner)])
    }

    #[test]
    fn values_nested_as_deep_as_allowed_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        // Deeper than serde_json's default limit of 128, which lost them.
        let kept = record(vec![
            ("l", nested(MAX_DEPTH, Value::Int(1), in_list)),
            ("m", nested(MAX_DEPTH, Value::Int(2), in_map)),
        ]);
        {
            let store = Store::open(Some(dir.path()), &ns()).unwrap();
            put(&store, "test", &[1; 20], kept.clone());
        }
        for _ in 0..2 {
            let store = Store::open(Some(dir.path()), &ns()).unwrap();
            assert_eq!(store.get("test", &[1; 20]).unwrap().bins, kept.bins);
        }
    }

    #[test]
    fn a_value_nested_deeper_than_allowed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(Some(dir.path()), &ns()).unwrap();
        put(&store, "test", &[1; 20], record(vec![("a", Value::Int(1))]));
        for wrap in [in_list, in_map] {
            let deep = record(vec![("d", nested(MAX_DEPTH + 1, Value::Nil, wrap))]);
            let error = store
                .modify("test", &[1; 20], |_| (Change::Put(deep), ()))
                .unwrap_err();
            assert!(error.to_string().contains("deeper than 256"), "{error}");
        }
        drop(store);
        let store = Store::open(Some(dir.path()), &ns()).unwrap();
        assert_eq!(
            store.get("test", &[1; 20]).unwrap().bin("a"),
            Some(&Value::Int(1)),
            "the record as it was"
        );
    }

    #[test]
    fn a_line_that_does_not_parse_before_the_last_fails_the_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("records")).unwrap();
        let path = dir.path().join("records/test.log");
        let good = put_line(&[2; 20], &record(vec![("b", Value::Int(2))]));
        let damaged = [good.as_str(), "{\"op\":\"put\",\"d\"", good.as_str()].join("\n") + "\n";
        fs::write(&path, &damaged).unwrap();
        let error = Store::open(Some(dir.path()), &ns()).err().unwrap();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        let text = error.to_string();
        assert!(text.contains("test.log line 2 "), "{text}");
        assert_eq!(fs::read_to_string(&path).unwrap(), damaged, "left as it is");
        // A whole line that is not ours is corruption too, even the last one.
        fs::write(&path, format!("{good}\n{{\"op\":\"nope\"}}\n")).unwrap();
        let error = Store::open(Some(dir.path()), &ns()).err().unwrap();
        assert!(error.to_string().contains("test.log line 2 "), "{error}");
        fs::write(&path, format!("{good}\n")).unwrap();
        let store = Store::open(Some(dir.path()), &ns()).unwrap();
        assert!(store.get("test", &[2; 20]).is_some());
    }

    #[test]
    fn json_depth_skips_brackets_in_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[\"{"}]}"#), 3);
        assert_eq!(json_depth(b"5"), 0);
    }

    #[test]
    fn one_key_is_serialized() {
        let store = Store::open(None, &ns()).unwrap();
        let d = [9u8; 20];
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..500 {
                        store
                            .modify("test", &d, |r| {
                                let n = match r.and_then(|r| r.bin("n")) {
                                    Some(Value::Int(n)) => *n,
                                    _ => 0,
                                };
                                (Change::Put(record(vec![("n", Value::Int(n + 1))])), ())
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert_eq!(
            store.get("test", &d).unwrap().bin("n"),
            Some(&Value::Int(4000))
        );
    }

    #[test]
    fn compaction_while_writing_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<Digest> = (0..4u8).map(|i| [i; 20]).collect();
        {
            let store = Store::open_compacting_after(Some(dir.path()), &ns(), 4000).unwrap();
            std::thread::scope(|s| {
                for key in &keys {
                    let store = &store;
                    s.spawn(move || {
                        for _ in 0..300 {
                            store
                                .modify("test", key, |r| {
                                    let n = match r.and_then(|r| r.bin("n")) {
                                        Some(Value::Int(n)) => *n,
                                        _ => 0,
                                    };
                                    (Change::Put(record(vec![("n", Value::Int(n + 1))])), ())
                                })
                                .unwrap();
                        }
                    });
                }
            });
            store
                .modify("test", &keys[3], |_| (Change::Delete, ()))
                .unwrap();
            let log_len = fs::metadata(dir.path().join("records/test.log"))
                .unwrap()
                .len();
            assert!(
                log_len < 8000,
                "the log was never compacted: {log_len} bytes"
            );
            assert!(dir.path().join("records/test.snap").exists());
        }
        let store = Store::open(Some(dir.path()), &ns()).unwrap();
        for key in &keys[..3] {
            assert_eq!(
                store.get("test", key).unwrap().bin("n"),
                Some(&Value::Int(300))
            );
        }
        assert!(store.get("test", &keys[3]).is_none());
    }
}

//! The record a UDF sees, the `record` module, the `aerospike` object and
//! the write model: staged bins, `create`/`update`/`remove` applying them to
//! a working copy, and one commit after the UDF returned successfully.

use std::sync::Arc;

use mlua::{
    Lua, MetaMethod, MultiValue, Result, Table, UserData, UserDataFields, UserDataMethods,
    Value as Lv,
};
use parking_lot::Mutex;

use super::budget::{charge, cost};
use super::containers::{push_elem, to_elem, userdata_elem};
use super::elem::{Elem, too_deep};
use super::errors::{bad_userdata_arg, int_arg, raise};
use super::{LogLevel, LuaLogs, UdfFailure};
use crate::sandbox::store::{
    CITRUSLEAF_EPOCH_SECS, Change, Digest, Record, next_generation, now_cf_ms, now_cf_secs,
};
use crate::sandbox::value::{BLOB, Value};

/// Longest usable bin name in bytes.
pub(crate) const MAX_BIN_NAME: usize = 15;
/// Bins a record may have to be loaded by a UDF, and after a UDF write.
pub(crate) const MAX_BINS: usize = 512;
/// Distinct bin names one call may touch.
const MAX_TOUCHED_BINS: usize = 1024;
/// Largest TTL a write may carry (10 years).
const MAX_TTL: u32 = 315_360_000;
/// The namespace's `max-record-size`.
const MAX_RECORD_SIZE: usize = 1 << 20;
/// TTL values with a meaning of their own.
const TTL_NEVER: u32 = u32::MAX;
const TTL_UNCHANGED: u32 = u32::MAX - 1;

// Result codes.
const NOT_FOUND: u8 = 2;
const PARAMETER: u8 = 4;
const INCOMPATIBLE_TYPE: u8 = 12;
const RECORD_TOO_BIG: u8 = 13;
const BIN_NAME: u8 = 21;

/// The stored record's metadata as the call found it.
#[derive(Clone)]
struct Meta {
    generation: u16,
    void_time: u32,
    last_update_ms: u64,
    key: Option<Value>,
}

/// A bin value staged in the call's cache.
#[derive(Clone)]
enum Staged {
    Value(Elem),
    /// A value no bin can hold (a record); fails the next apply with 12.
    Unusable,
}

struct CacheEntry {
    name: String,
    value: Staged,
    dirty: bool,
}

/// Everything one UDF call knows about its record.
pub(crate) struct RecState {
    digest: Digest,
    set: Option<String>,
    sent_key: Option<Value>,
    /// Metadata of the stored record (None: missing or expired).
    start: Option<Meta>,
    /// The record exists or was created in this call.
    open: bool,
    /// The working copy of the stored bins: what a commit writes.
    bins: Vec<(String, Value)>,
    cache: Vec<CacheEntry>,
    has_updates: bool,
    result_code: u8,
    ttl: Option<u32>,
    drop_key: bool,
    /// A stream function's record: bin writes, TTL and key changes are ignored.
    read_only: bool,
}

impl RecState {
    pub fn new(
        digest: Digest,
        set: Option<String>,
        sent_key: Option<Value>,
        current: Option<&Record>,
    ) -> RecState {
        RecState {
            digest,
            set,
            sent_key,
            start: current.map(|r| Meta {
                generation: r.generation,
                void_time: r.void_time,
                last_update_ms: r.last_update_ms,
                key: r.key.clone(),
            }),
            open: current.is_some(),
            bins: current.map(|r| r.bins.clone()).unwrap_or_default(),
            cache: Vec::new(),
            has_updates: false,
            result_code: 0,
            ttl: None,
            drop_key: false,
            read_only: false,
        }
    }

    /// A record as a stream function sees it (read-only).
    pub fn stream(digest: Digest, record: Record) -> RecState {
        let Record {
            bins,
            generation,
            void_time,
            last_update_ms,
            set,
            key,
        } = record;
        RecState {
            digest,
            set,
            sent_key: None,
            start: Some(Meta {
                generation,
                void_time,
                last_update_ms,
                key,
            }),
            open: true,
            bins,
            cache: Vec::new(),
            has_updates: false,
            result_code: 0,
            ttl: None,
            drop_key: false,
            read_only: true,
        }
    }

    /// A state bound to no call: no record, nothing staged.
    pub fn detached() -> RecState {
        RecState::new([0; 20], None, None, None)
    }

    /// The generation and void time the record has before this call's write.
    pub fn start_meta(&self) -> (u16, u32) {
        self.start
            .as_ref()
            .map(|m| (m.generation, m.void_time))
            .unwrap_or((0, 0))
    }

    fn get_bin(&mut self, name: &str) -> Option<Staged> {
        if name.len() > MAX_BIN_NAME {
            return None;
        }
        if let Some(entry) = self.cache.iter().find(|e| e.name == name) {
            return Some(entry.value.clone());
        }
        if !self.open {
            return None;
        }
        let value = self.bins.iter().find(|(n, _)| n == name)?;
        let elem = Elem::from_value(&value.1);
        // A container is a fresh object per bin, cached so later reads see
        // the same one (changing it in place does not mark it dirty);
        // a plain value needs no cache.
        if !matches!(elem, Elem::List(_) | Elem::Map(_) | Elem::Bytes(_)) {
            return Some(Staged::Value(elem));
        }
        self.cache.push(CacheEntry {
            name: name.to_string(),
            value: Staged::Value(elem.clone()),
            dirty: false,
        });
        Some(Staged::Value(elem))
    }

    fn set_bin(&mut self, name: &str, value: Staged) {
        if name.len() > MAX_BIN_NAME || self.read_only {
            return; // the server logs "bin name too big" and ignores it
        }
        match self.cache.iter_mut().find(|e| e.name == name) {
            Some(entry) => {
                entry.value = value;
                entry.dirty = true;
            }
            None => self.cache.push(CacheEntry {
                name: name.to_string(),
                value,
                dirty: true,
            }),
        }
    }

    /// Applies the dirty cache entries to the working copy; an error, and
    /// nothing applied, when a value nests too deep to be stored.
    fn execute_updates(&mut self) -> std::result::Result<bool, String> {
        if self.cache.len() > MAX_TOUCHED_BINS {
            self.result_code = BIN_NAME;
            return Ok(false);
        }
        // Each dirty bin's new value (nil removes the bin).
        let mut writes = Vec::new();
        for entry in self.cache.iter().filter(|e| e.dirty) {
            let Staged::Value(elem) = &entry.value else {
                self.result_code = INCOMPATIBLE_TYPE;
                return Ok(false);
            };
            let value = elem
                .to_value()
                .ok_or_else(|| too_deep(&format!("bin {}", entry.name)))?;
            writes.push((entry.name.clone(), value));
        }
        let mut count = self.bins.len();
        for (name, value) in &writes {
            let exists = self.bins.iter().any(|(n, _)| n == name);
            match value {
                Value::Nil if exists => count -= 1,
                Value::Nil => {}
                _ if !exists => count += 1,
                _ => {}
            }
        }
        if count > MAX_BINS {
            self.result_code = BIN_NAME;
            return Ok(false);
        }
        for entry in &mut self.cache {
            entry.dirty = false;
        }
        for (name, value) in writes {
            let position = self.bins.iter().position(|(n, _)| *n == name);
            match (value, position) {
                (Value::Nil, Some(i)) => {
                    self.bins.remove(i);
                }
                (Value::Nil, None) => {}
                (value, Some(i)) => self.bins[i].1 = value,
                (value, None) => self.bins.push((name, value)),
            }
        }
        self.has_updates = true;
        self.result_code = 0;
        Ok(true)
    }

    fn create(&mut self) -> std::result::Result<i64, String> {
        if self.open && !self.bins.is_empty() {
            return Ok(1);
        }
        self.open = true;
        Ok(if self.execute_updates()? { 0 } else { -1 })
    }

    fn update(&mut self) -> std::result::Result<i64, String> {
        if !self.open {
            return Ok(-2);
        }
        Ok(if self.execute_updates()? { 0 } else { -1 })
    }

    fn remove(&mut self) -> i64 {
        if !self.open {
            return 1;
        }
        self.bins.clear();
        for entry in &mut self.cache {
            entry.value = Staged::Value(Elem::Nil);
            entry.dirty = false;
        }
        self.has_updates = true;
        0
    }

    fn ttl_left(&self) -> i64 {
        match &self.start {
            Some(m) if self.open && m.void_time != 0 => {
                m.void_time.saturating_sub(now_cf_secs()) as i64
            }
            _ => 0,
        }
    }

    /// What the call leaves behind once the UDF returned successfully:
    /// the store change, or the result code that fails the call.
    pub fn commit(&self, header_ttl: u32) -> std::result::Result<Change, UdfFailure> {
        if self.result_code != 0 {
            return Err(UdfFailure::Code(self.result_code));
        }
        if !self.has_updates {
            return Ok(Change::Keep);
        }
        if self.bins.is_empty() {
            return match self.start {
                Some(_) => Ok(Change::Delete),
                None => Err(UdfFailure::Code(NOT_FOUND)),
            };
        }
        let ttl = self.ttl.unwrap_or(header_ttl);
        if ttl > MAX_TTL && ttl != TTL_NEVER && ttl != TTL_UNCHANGED {
            return Err(UdfFailure::Code(PARAMETER));
        }
        if too_big(&self.bins) {
            return Err(UdfFailure::Code(RECORD_TOO_BIG));
        }
        let void_time = match ttl {
            // The namespace default TTL is 0 here: never expire.
            0 | TTL_NEVER => 0,
            TTL_UNCHANGED => self.start.as_ref().map(|m| m.void_time).unwrap_or(0),
            t => now_cf_secs().saturating_add(t),
        };
        let key = if self.drop_key {
            None
        } else {
            self.sent_key
                .clone()
                .or_else(|| self.start.as_ref().and_then(|m| m.key.clone()))
        };
        Ok(Change::Put(Record {
            bins: self.bins.clone(),
            generation: self
                .start
                .as_ref()
                .map(|m| next_generation(m.generation))
                .unwrap_or(1),
            void_time,
            last_update_ms: now_cf_ms(),
            set: self.set.clone(),
            key,
        }))
    }
}

/// Whether a record of these bins is over the namespace's `max-record-size`
/// (the server refuses it with 13): for UDF and client writes alike.
pub(crate) fn too_big(bins: &[(String, Value)]) -> bool {
    record_size(bins) > MAX_RECORD_SIZE
}

/// Approximate stored size of a record (what `max-record-size` limits).
fn record_size(bins: &[(String, Value)]) -> usize {
    let overhead = 16;
    overhead
        + bins
            .iter()
            .map(|(name, v)| name.len() + 1 + packed_size(v))
            .sum::<usize>()
}

/// Size of a value's msgpack encoding (as `list.nbytes` reports it).
pub(crate) fn packed_size(value: &Value) -> usize {
    fn header(n: usize, small: usize) -> usize {
        if n < small {
            1
        } else if n < 1 << 16 {
            3
        } else {
            5
        }
    }
    match value {
        Value::Nil | Value::Bool(_) => 1,
        Value::Int(i) => match *i {
            -32..=127 => 1,
            -128..=255 => 2,
            -32768..=65535 => 3,
            -2147483648..=4294967295 => 5,
            _ => 9,
        },
        Value::Float(_) => 9,
        // Strings and blobs carry their particle type byte.
        Value::Str(s) => header(s.len() + 1, 32) + s.len() + 1,
        Value::Bytes { data, .. } => header(data.len() + 1, 32) + data.len() + 1,
        Value::GeoJson(g) => header(g.len() + 1, 32) + g.len() + 1,
        Value::List(items) => {
            header(items.len(), 16) + items.iter().map(packed_size).sum::<usize>()
        }
        Value::Map(pairs) => {
            header(pairs.len(), 16)
                + pairs
                    .iter()
                    .map(|(k, v)| packed_size(k) + packed_size(v))
                    .sum::<usize>()
        }
    }
}

/// The record userdata handed to a UDF.
pub(crate) struct LRecord(pub Arc<Mutex<RecState>>);

fn bin_name(key: &Lv) -> Option<String> {
    match key {
        Lv::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Lv::Integer(_) | Lv::Number(_) => key.to_string().ok(),
        _ => None,
    }
}

impl UserData for LRecord {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "Record");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, this, key: Lv| {
            let Some(name) = bin_name(&key) else {
                return Ok(Lv::Nil);
            };
            let value = this.0.lock().get_bin(&name);
            match value {
                Some(Staged::Value(elem)) => push_elem(lua, &elem),
                _ => Ok(Lv::Nil),
            }
        });
        methods.add_meta_method(MetaMethod::NewIndex, |lua, this, (key, value): (Lv, Lv)| {
            let Some(name) = bin_name(&key) else {
                return Ok(());
            };
            if this.0.lock().read_only {
                return Ok(());
            }
            let staged = match &value {
                Lv::UserData(ud) if ud.is::<LRecord>() => Staged::Unusable,
                other => match to_elem(other) {
                    Some(elem) => Staged::Value(elem),
                    None => {
                        return Err(raise(
                            lua,
                            &format!("can't set bin {name} to unsupported type"),
                        ));
                    }
                },
            };
            if let Staged::Value(elem) = &staged {
                charge(name.len() + cost(elem))?;
            }
            this.0.lock().set_bin(&name, staged);
            Ok(())
        });
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Record: {:p}", Arc::as_ptr(&this.0)))
        });
    }
}

fn rec_arg(lua: &Lua, value: &Lv, n: usize, fname: &str) -> Result<Arc<Mutex<RecState>>> {
    if let Lv::UserData(ud) = value
        && let Ok(r) = ud.borrow::<LRecord>()
    {
        return Ok(r.0.clone());
    }
    Err(bad_userdata_arg(lua, n, fname, "Record", value))
}

/// The global `record` table.
pub(crate) fn register_record(lua: &Lua) -> Result<Table> {
    let module = lua.create_table()?;
    let f = |name: &str, func: mlua::Function| module.raw_set(name, func);
    f(
        "ttl",
        lua.create_function(|lua, r: Lv| Ok(rec_arg(lua, &r, 1, "ttl")?.lock().ttl_left()))?,
    )?;
    f(
        "set_ttl",
        lua.create_function(|lua, (r, ttl): (Lv, Lv)| {
            let r = rec_arg(lua, &r, 1, "set_ttl")?;
            let ttl = match ttl {
                Lv::Nil => 0,
                other => int_arg(lua, &other, 2, "set_ttl")?,
            };
            let mut r = r.lock();
            if !r.read_only {
                r.ttl = Some(ttl as u32);
            }
            Ok(())
        })?,
    )?;
    f(
        "gen",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "gen")?;
            let r = r.lock();
            Ok(if r.open { r.start_meta().0 } else { 0 })
        })?,
    )?;
    f(
        "last_update_time",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "last_update_time")?;
            let r = r.lock();
            Ok(match (&r.start, r.open) {
                (Some(m), true) => m.last_update_ms,
                _ => 0,
            })
        })?,
    )?;
    f(
        "key",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "key")?;
            let key = {
                let r = r.lock();
                r.sent_key
                    .clone()
                    .or_else(|| r.start.as_ref().and_then(|m| m.key.clone()))
            };
            match key {
                Some(k) => push_elem(lua, &Elem::from_value(&k)),
                None => Ok(Lv::Nil),
            }
        })?,
    )?;
    f(
        "drop_key",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "drop_key")?;
            let mut r = r.lock();
            // Only once the record is open; before that it does nothing.
            if r.open && !r.read_only {
                r.drop_key = true;
            }
            Ok(())
        })?,
    )?;
    f(
        "digest",
        lua.create_function(|lua, r: Lv| {
            let digest = rec_arg(lua, &r, 1, "digest")?.lock().digest;
            push_elem(lua, &Elem::new_bytes(BLOB, digest.to_vec()))
        })?,
    )?;
    f(
        "setname",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "setname")?;
            let r = r.lock();
            Ok(if r.open { r.set.clone() } else { None })
        })?,
    )?;
    f(
        "numbins",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "numbins")?;
            let r = r.lock();
            Ok(if r.open { r.bins.len() } else { 0 })
        })?,
    )?;
    f(
        "bin_names",
        lua.create_function(|lua, r: Lv| {
            let r = rec_arg(lua, &r, 1, "bin_names")?;
            let names: Vec<String> = {
                let r = r.lock();
                if !r.open {
                    return Err(raise(lua, "can't get bin names"));
                }
                r.bins.iter().map(|(n, _)| n.clone()).collect()
            };
            lua.create_sequence_from(names)
        })?,
    )?;
    for name in ["size", "memory_size"] {
        f(
            name,
            lua.create_function(move |lua, r: Lv| {
                let r = rec_arg(lua, &r, 1, name)?;
                let r = r.lock();
                Ok(if r.open { record_size(&r.bins) } else { 0 })
            })?,
        )?;
    }
    // Memory-only namespaces: nothing on a device.
    f(
        "device_size",
        lua.create_function(|lua, r: Lv| {
            rec_arg(lua, &r, 1, "device_size")?;
            Ok(0)
        })?,
    )?;
    Ok(module)
}

/// The `aerospike` object. Stream functions get one without record hooks:
/// its record methods give the defaults (`exists` true, the writes 1) and
/// `get_current_time` 0, as a server's aggregation context does.
pub(crate) struct LAerospike {
    pub stream: bool,
}

/// What `create`/`update`/`remove` return where there is no record hook.
const NO_HOOK: i64 = 1;

impl UserData for LAerospike {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type, "Aerospike");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("exists", |lua, this, r: Lv| {
            Ok(this.stream || rec_arg(lua, &r, 1, "exists")?.lock().open)
        });
        methods.add_method("create", |lua, this, r: Lv| {
            if this.stream {
                return Ok(NO_HOOK);
            }
            let created = rec_arg(lua, &r, 1, "create")?.lock().create();
            created.map_err(|text| raise(lua, &text))
        });
        methods.add_method("update", |lua, this, r: Lv| {
            if this.stream {
                return Ok(NO_HOOK);
            }
            let updated = rec_arg(lua, &r, 1, "update")?.lock().update();
            updated.map_err(|text| raise(lua, &text))
        });
        methods.add_method("remove", |lua, this, r: Lv| {
            if this.stream {
                return Ok(NO_HOOK);
            }
            Ok(rec_arg(lua, &r, 1, "remove")?.lock().remove())
        });
        methods.add_method("log", |lua, _, (level, message): (Lv, Lv)| {
            let level = match level {
                Lv::Integer(1) => LogLevel::Warn,
                Lv::Integer(2) => LogLevel::Info,
                Lv::Integer(3) => LogLevel::Debug,
                Lv::Integer(4) => LogLevel::Trace,
                _ => LogLevel::Warn,
            };
            let text = match &message {
                Lv::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
                other => other.to_string().unwrap_or_default(),
            };
            push_log(lua, level, text);
            Ok(())
        });
        methods.add_method("get_current_time", |_, this, ()| {
            if this.stream {
                return Ok(0);
            }
            Ok((now_cf_ms() + CITRUSLEAF_EPOCH_SECS * 1000) as i64)
        });
        // No server hooks behind these two: constant answers.
        methods.add_method("set_context", |_, _, _: MultiValue| Ok(2));
        methods.add_method("get_config", |_, _, _: MultiValue| Ok(0));
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("Aerospike: {:p}", this as *const LAerospike))
        });
    }
}

pub(crate) fn push_log(lua: &Lua, level: LogLevel, text: String) {
    if let Some(mut logs) = lua.app_data_mut::<LuaLogs>() {
        logs.push(level, text);
    }
}

/// A UDF's result as a value: nil for what no bin could hold (a table, a
/// function, a record); an error for lists and maps nested too deep.
pub(crate) fn result_value(value: &Lv) -> std::result::Result<Value, String> {
    Ok(match value {
        Lv::Boolean(b) => Value::Bool(*b),
        Lv::Integer(i) => Value::Int(*i),
        Lv::Number(n) => Value::Float(*n),
        Lv::String(s) => Value::Str(super::elem::c_string(&s.as_bytes())),
        Lv::UserData(ud) => match userdata_elem(ud) {
            Some(elem) => elem.to_value().ok_or_else(|| too_deep("the result"))?,
            None => Value::Nil,
        },
        _ => Value::Nil,
    })
}

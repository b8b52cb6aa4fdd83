//! Secondary indexes: definitions, entries kept current by the store's one
//! write path, and the `sindex-*` info replies (`query-udfs.md` §6).
//!
//! Entries are `(key, digest)` pairs in a sorted set per index, so an
//! equality or range lookup is a range walk. The store calls
//! [`Indexes::update`] under the record's lock for every change (puts,
//! deletes, UDF writes, expiry, truncate), and [`Indexes::create`] builds a
//! new index over the existing records the same way, so an index never
//! misses a write. Definitions persist in `<dir>/sindex.json`.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::sandbox::server::info::param;
use crate::sandbox::store::{Digest, Record};
use crate::sandbox::value::Value;

pub mod geo;

/// What values an index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Numeric,
    String,
    Blob,
    Geo2dsphere,
}

impl KeyType {
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Numeric => "numeric",
            KeyType::String => "string",
            KeyType::Blob => "blob",
            KeyType::Geo2dsphere => "geo2dsphere",
        }
    }

    fn parse(text: &str) -> Option<KeyType> {
        Some(match text.to_ascii_lowercase().as_str() {
            "numeric" => KeyType::Numeric,
            "string" => KeyType::String,
            "blob" => KeyType::Blob,
            "geo2dsphere" => KeyType::Geo2dsphere,
            _ => return None,
        })
    }

    /// The index type a query range's particle type asks for.
    pub fn of_particle(particle: u8) -> Option<KeyType> {
        Some(match particle {
            1 => KeyType::Numeric,
            3 => KeyType::String,
            4 => KeyType::Blob,
            23 => KeyType::Geo2dsphere,
            _ => return None,
        })
    }
}

/// Which part of a bin an index holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    Default,
    List,
    Mapkeys,
    Mapvalues,
}

impl Collection {
    pub fn name(self) -> &'static str {
        match self {
            Collection::Default => "default",
            Collection::List => "list",
            Collection::Mapkeys => "mapkeys",
            Collection::Mapvalues => "mapvalues",
        }
    }

    fn parse(text: &str) -> Option<Collection> {
        Some(match text.to_ascii_lowercase().as_str() {
            "default" => Collection::Default,
            "list" => Collection::List,
            "mapkeys" => Collection::Mapkeys,
            "mapvalues" => Collection::Mapvalues,
            _ => return None,
        })
    }

    /// Field 26 of a query (absent = default).
    pub fn of_wire(byte: u8) -> Option<Collection> {
        Some(match byte {
            0 => Collection::Default,
            1 => Collection::List,
            2 => Collection::Mapkeys,
            3 => Collection::Mapvalues,
            _ => return None,
        })
    }
}

/// One index definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub ns: String,
    pub set: Option<String>,
    pub name: String,
    pub bin: String,
    pub key_type: KeyType,
    pub collection: Collection,
}

/// An index key; one index holds one kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    Int(i64),
    /// String or blob bytes, or GeoJSON text for a geo index.
    Bytes(Vec<u8>),
}

impl Key {
    /// The 8 bytes a reply's BVAL field carries: the integer for a numeric
    /// key, else 0 (resume then goes by digest within the equal key).
    pub fn bval(&self) -> u64 {
        match self {
            Key::Int(i) => *i as u64,
            Key::Bytes(_) => 0,
        }
    }
}

/// What a query asks an index for.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Inclusive at both ends.
    Range(Key, Key),
    /// Geo: indexed shapes relating to this region or point (GeoJSON text).
    Geo(String),
}

pub struct Index {
    pub def: IndexDef,
    entries: RwLock<BTreeSet<(Key, Digest)>>,
    load_ms: AtomicU64,
}

impl Index {
    /// The keys `record` puts in this index.
    pub fn keys_of(&self, record: &Record) -> Vec<Key> {
        let def = &self.def;
        if def.set.is_some() && record.set != def.set {
            return Vec::new();
        }
        let Some(value) = record.bin(&def.bin) else {
            return Vec::new();
        };
        let key = |v: &Value| -> Option<Key> {
            match (def.key_type, v) {
                (KeyType::Numeric, Value::Int(i)) => Some(Key::Int(*i)),
                (KeyType::String, Value::Str(s)) => Some(Key::Bytes(s.clone())),
                (KeyType::Blob, Value::Bytes { ty: 4, data }) => Some(Key::Bytes(data.clone())),
                (KeyType::Geo2dsphere, Value::GeoJson(g)) => {
                    Some(Key::Bytes(g.as_bytes().to_vec()))
                }
                _ => None,
            }
        };
        let mut keys: Vec<Key> = match (def.collection, value) {
            (Collection::Default, v) => key(v).into_iter().collect(),
            (Collection::List, Value::List(items)) => items.iter().filter_map(key).collect(),
            (Collection::Mapkeys, Value::Map(pairs)) => {
                pairs.iter().filter_map(|(k, _)| key(k)).collect()
            }
            (Collection::Mapvalues, Value::Map(pairs)) => {
                pairs.iter().filter_map(|(_, v)| key(v)).collect()
            }
            _ => Vec::new(),
        };
        keys.sort();
        keys.dedup();
        keys
    }

    pub fn entries(&self) -> usize {
        self.entries.read().len()
    }

    fn change(&self, digest: &Digest, old: Option<&Record>, new: Option<&Record>) {
        let old = old.map(|r| self.keys_of(r)).unwrap_or_default();
        let new = new.map(|r| self.keys_of(r)).unwrap_or_default();
        if old == new {
            return;
        }
        let mut entries = self.entries.write();
        for k in old {
            entries.remove(&(k, *digest));
        }
        for k in new {
            entries.insert((k, *digest));
        }
    }

    /// The entries matching `lookup`, in key then digest order. `keep`
    /// picks which digests to collect (the query's partitions).
    pub fn matching(
        &self,
        lookup: &Lookup,
        keep: impl Fn(&Digest) -> bool,
    ) -> Result<Vec<(Key, Digest)>, String> {
        let entries = self.entries.read();
        match lookup {
            Lookup::Range(begin, end) => {
                if begin > end {
                    return Ok(Vec::new());
                }
                let from = Bound::Included((begin.clone(), [0u8; 20]));
                let to = Bound::Included((end.clone(), [0xffu8; 20]));
                Ok(entries
                    .range((from, to))
                    .filter(|(_, d)| keep(d))
                    .cloned()
                    .collect())
            }
            Lookup::Geo(region) => {
                let query = geo::Shape::parse(region)?;
                Ok(entries
                    .iter()
                    .filter(|(k, d)| {
                        keep(d)
                            && match k {
                                Key::Bytes(text) => std::str::from_utf8(text)
                                    .ok()
                                    .and_then(|t| geo::Shape::parse(t).ok())
                                    .is_some_and(|shape| geo::relates(&shape, &query)),
                                Key::Int(_) => false,
                            }
                    })
                    .cloned()
                    .collect())
            }
        }
    }

    /// Whether `key` (one of a record's keys) satisfies `lookup`.
    pub fn key_matches(key: &Key, lookup: &Lookup) -> bool {
        match lookup {
            Lookup::Range(b, e) => b <= key && key <= e,
            Lookup::Geo(region) => match (key, geo::Shape::parse(region)) {
                (Key::Bytes(text), Ok(query)) => std::str::from_utf8(text)
                    .ok()
                    .and_then(|t| geo::Shape::parse(t).ok())
                    .is_some_and(|shape| geo::relates(&shape, &query)),
                _ => false,
            },
        }
    }
}

/// Every index of every namespace.
pub struct Indexes {
    list: RwLock<Vec<Arc<Index>>>,
    /// Number of indexes: writes skip the lock when there is none.
    count: AtomicUsize,
    file: Option<PathBuf>,
    /// Serializes create/delete and the definitions file.
    admin: Mutex<()>,
}

/// Why `sindex-create` refused.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    Param(String),
    Exists,
}

impl Indexes {
    /// Opens the definitions kept in `dir` (none for `None`). The entries
    /// are built by the store once its records are loaded.
    pub fn open(dir: Option<&Path>) -> std::io::Result<(Indexes, Vec<IndexDef>)> {
        let file = dir.map(|d| d.join("sindex.json"));
        let defs: Vec<IndexDef> = match &file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                    tracing::warn!("{}: {e}; starting with no index", path.display());
                    Vec::new()
                }),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e),
            },
            None => Vec::new(),
        };
        let indexes = Indexes {
            list: RwLock::new(Vec::new()),
            count: AtomicUsize::new(0),
            file,
            admin: Mutex::new(()),
        };
        Ok((indexes, defs))
    }

    /// Called by the store under `digest`'s lock for every change.
    pub fn update(&self, ns: &str, digest: &Digest, old: Option<&Record>, new: Option<&Record>) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        for index in self.list.read().iter().filter(|i| i.def.ns == ns) {
            index.change(digest, old, new);
        }
    }

    /// Adds `def` (a no-op when the same definition exists) and fills it by
    /// calling `build` with a function to add each existing record under
    /// its lock. `persist` writes the definitions file; rebuilding from that
    /// file at start does not, so a crash mid-rebuild loses no definition.
    pub fn create(
        &self,
        def: IndexDef,
        persist: bool,
        build: impl FnOnce(&mut dyn FnMut(&Digest, &Record)),
    ) -> Result<(), CreateError> {
        let _admin = self.admin.lock();
        if let Some(existing) = self.find(&def.ns, &def.name) {
            return if existing.def == def {
                Ok(())
            } else {
                Err(CreateError::Exists)
            };
        }
        let started = std::time::Instant::now();
        let index = Arc::new(Index {
            def,
            entries: RwLock::new(BTreeSet::new()),
            load_ms: AtomicU64::new(0),
        });
        // In the list first, so writes during the build update it too.
        self.list.write().push(index.clone());
        self.count.fetch_add(1, Ordering::AcqRel);
        build(&mut |digest, record| index.change(digest, None, Some(record)));
        index
            .load_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        if persist {
            self.save();
        }
        Ok(())
    }

    /// Removes an index; false when there was none.
    pub fn delete(&self, ns: &str, name: &str) -> bool {
        let _admin = self.admin.lock();
        let mut list = self.list.write();
        let before = list.len();
        list.retain(|i| !(i.def.ns == ns && i.def.name == name));
        let removed = list.len() != before;
        if removed {
            self.count.fetch_sub(1, Ordering::AcqRel);
            drop(list);
            self.save();
        }
        removed
    }

    pub fn find(&self, ns: &str, name: &str) -> Option<Arc<Index>> {
        self.list
            .read()
            .iter()
            .find(|i| i.def.ns == ns && i.def.name == name)
            .cloned()
    }

    /// The index a query can use: by name when the query names one, else
    /// the one on this namespace, set, bin, collection and key type.
    pub fn fitting(
        &self,
        ns: &str,
        set: Option<&str>,
        bin: &str,
        collection: Collection,
        key_type: KeyType,
    ) -> Option<Arc<Index>> {
        self.list
            .read()
            .iter()
            .find(|i| {
                let d = &i.def;
                d.ns == ns
                    && d.set.as_deref() == set
                    && d.bin == bin
                    && d.collection == collection
                    && d.key_type == key_type
            })
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Index>> {
        self.list.read().clone()
    }

    fn save(&self) {
        let Some(path) = &self.file else { return };
        let defs: Vec<IndexDef> = self.list.read().iter().map(|i| i.def.clone()).collect();
        let text = serde_json::to_string_pretty(&defs).unwrap_or_default();
        let tmp = path.with_extension("json.tmp");
        let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::warn!("saving {}: {e}", path.display());
        }
    }
}

// ---- info commands (`query-udfs.md` §6): params are the text after `name:` ----

/// Namespace names are at most 31 bytes; set, bin and index names as the server limits them.
const MAX_NS: usize = 31;
const MAX_SET: usize = 63;
const MAX_BIN: usize = 15;
const MAX_INDEX_NAME: usize = 63;

/// Parses `sindex-create` parameters (both the `bin=`/`type=` and the
/// older `indexdata=bin,type` styles, `namespace=` or `ns=`).
pub fn parse_create(text: &str) -> Result<IndexDef, String> {
    let ns = param(text, "namespace")
        .or_else(|| param(text, "ns"))
        .filter(|n| !n.is_empty())
        .ok_or("ERROR:4:missing 'namespace'")?;
    if ns.len() > MAX_NS {
        return Err("ERROR:4:bad 'namespace'".into());
    }
    let name = param(text, "indexname")
        .filter(|n| !n.is_empty())
        .ok_or("ERROR:4:missing 'indexname'")?;
    if name.len() > MAX_INDEX_NAME {
        return Err("ERROR:4:'indexname' too long".into());
    }
    let set = match param(text, "set") {
        None | Some("") => None,
        Some(s) if s.len() > MAX_SET => return Err("ERROR:4:'set' too long".into()),
        Some(s) => Some(s.to_string()),
    };
    // An index on a CDT context or an expression would be built here on the
    // whole bin and answer queries it should not: refused, not ignored.
    for unserved in ["context", "exp"] {
        if param(text, unserved).is_some_and(|v| !v.is_empty()) {
            return Err(format!(
                "ERROR:16:'{unserved}' indexes are not served by the sandbox"
            ));
        }
    }
    let collection = match param(text, "indextype") {
        None => Collection::Default,
        Some(t) => Collection::parse(t).ok_or(
            "ERROR:4:bad 'indextype' - must be one of 'default', 'list', 'mapkeys', 'mapvalues'",
        )?,
    };
    let (bin, ty) = match (param(text, "bin"), param(text, "indexdata")) {
        (Some(bin), _) => (bin, param(text, "type").ok_or("ERROR:4:missing 'type'")?),
        (None, Some(data)) => data.split_once(',').ok_or("ERROR:4:bad 'indexdata'")?,
        (None, None) => return Err("ERROR:4:missing 'bin'".into()),
    };
    if bin.is_empty() || bin.len() > MAX_BIN {
        return Err("ERROR:4:bad 'bin'".into());
    }
    let key_type = KeyType::parse(ty)
        .ok_or("ERROR:4:bad 'type' - must be one of 'numeric', 'string', 'blob', 'geo2dsphere'")?;
    Ok(IndexDef {
        ns: ns.to_string(),
        set,
        name: name.to_string(),
        bin: bin.to_string(),
        key_type,
        collection,
    })
}

/// `namespace=`/`ns=` and `indexname=` of `sindex-stat`, `-exists`, `-delete`.
pub fn parse_ns_name(text: &str) -> Result<(&str, &str), String> {
    let ns = param(text, "namespace")
        .or_else(|| param(text, "ns"))
        .filter(|n| !n.is_empty())
        .ok_or("ERROR:4:missing 'namespace'")?;
    let name = param(text, "indexname")
        .filter(|n| !n.is_empty())
        .ok_or("ERROR:4:missing 'indexname'")?;
    Ok((ns, name))
}

/// One `sindex-list` entry.
pub fn list_entry(def: &IndexDef) -> String {
    format!(
        "ns={}:indexname={}:set={}:bin={}:type={}:indextype={}:context=null:exp=null:state=RW",
        def.ns,
        def.name,
        def.set.as_deref().unwrap_or("null"),
        def.bin,
        def.key_type.name(),
        def.collection.name()
    )
}

/// The `sindex-stat` reply of a loaded index.
pub fn stat(index: &Index) -> String {
    format!(
        "entries={};used_bytes=16777216;entries_per_bval=1;entries_per_rec=1;load_pct=100;load_time={};stat_gc_recs=0",
        index.entries(),
        index.load_ms.load(Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(set: Option<&str>, bins: Vec<(&str, Value)>) -> Record {
        Record {
            bins: bins.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            generation: 1,
            void_time: 0,
            last_update_ms: 0,
            set: set.map(str::to_string),
            key: None,
        }
    }

    #[test]
    fn context_and_expression_indexes_are_refused_not_built_on_the_bin() {
        for extra in ["context=kiKiA2E=", "exp=kwMBo2FiYw=="] {
            let text = format!("namespace=test;set=s;indexname=ix;bin=m;type=NUMERIC;{extra}");
            let refused = parse_create(&text).unwrap_err();
            assert!(refused.starts_with("ERROR:16:"), "{refused}");
            assert!(refused.contains("not served by the sandbox"), "{refused}");
        }
    }

    #[test]
    fn create_parses_both_styles_and_refuses_bad_types() {
        let def =
            parse_create("namespace=test;set=nums;indexname=ix;indextype=LIST;bin=l;type=NUMERIC")
                .unwrap();
        assert_eq!(def.collection, Collection::List);
        assert_eq!(def.key_type, KeyType::Numeric);
        assert_eq!(def.set.as_deref(), Some("nums"));
        let old = parse_create("ns=test;indexname=ix;indexdata=s,string").unwrap();
        assert_eq!(
            (old.bin.as_str(), old.key_type, old.set),
            ("s", KeyType::String, None)
        );
        assert_eq!(
            parse_create("namespace=test;indexname=ix;bin=n;type=FLOAT").unwrap_err(),
            "ERROR:4:bad 'type' - must be one of 'numeric', 'string', 'blob', 'geo2dsphere'"
        );
        assert!(
            parse_create("namespace=test;indexname=ix;indextype=BOGUS;bin=n;type=numeric")
                .unwrap_err()
                .contains("'indextype'")
        );
    }

    #[test]
    fn keys_follow_the_collection_type() {
        let (indexes, _) = Indexes::open(None).unwrap();
        let def =
            parse_create("namespace=test;set=s;indexname=l;indextype=list;bin=l;type=numeric")
                .unwrap();
        indexes.create(def, true, |_| {}).unwrap();
        let index = indexes.find("test", "l").unwrap();
        let r = record(
            Some("s"),
            vec![(
                "l",
                Value::List(vec![
                    Value::Int(2),
                    Value::Int(1),
                    Value::Int(2),
                    Value::Str("x".into()),
                ]),
            )],
        );
        assert_eq!(index.keys_of(&r), vec![Key::Int(1), Key::Int(2)]);
        let other_set = record(Some("t"), vec![("l", Value::List(vec![Value::Int(1)]))]);
        assert!(index.keys_of(&other_set).is_empty());
    }

    #[test]
    fn updates_keep_entries_current() {
        let (indexes, _) = Indexes::open(None).unwrap();
        let def = parse_create("namespace=test;indexname=n;bin=n;type=numeric").unwrap();
        let existing = record(None, vec![("n", Value::Int(5))]);
        indexes
            .create(def.clone(), true, |add| add(&[1; 20], &existing))
            .unwrap();
        assert_eq!(indexes.create(def.clone(), true, |_| {}), Ok(()));
        let mut other = def;
        other.bin = "m".into();
        assert_eq!(
            indexes.create(other, true, |_| {}),
            Err(CreateError::Exists)
        );
        let index = indexes.find("test", "n").unwrap();
        let range = Lookup::Range(Key::Int(0), Key::Int(10));
        assert_eq!(index.matching(&range, |_| true).unwrap().len(), 1);
        let moved = record(None, vec![("n", Value::Int(50))]);
        indexes.update("test", &[1; 20], Some(&existing), Some(&moved));
        assert!(index.matching(&range, |_| true).unwrap().is_empty());
        indexes.update("test", &[2; 20], None, Some(&existing));
        indexes.update("test", &[1; 20], Some(&moved), None);
        let found = index.matching(&range, |_| true).unwrap();
        assert_eq!(found, vec![(Key::Int(5), [2; 20])]);
        assert!(indexes.delete("test", "n"));
        assert!(!indexes.delete("test", "n"));
    }

    #[test]
    fn definitions_persist() {
        let dir = tempfile::tempdir().unwrap();
        let def = parse_create("namespace=test;set=a;indexname=x;bin=b;type=string").unwrap();
        {
            let (indexes, defs) = Indexes::open(Some(dir.path())).unwrap();
            assert!(defs.is_empty());
            indexes.create(def.clone(), true, |_| {}).unwrap();
        }
        let (_, defs) = Indexes::open(Some(dir.path())).unwrap();
        assert_eq!(defs, vec![def]);
    }

    #[test]
    fn list_entries_are_lower_case() {
        let def = parse_create("namespace=test;indexname=g;bin=loc;type=GEO2DSPHERE").unwrap();
        assert_eq!(
            list_entry(&def),
            "ns=test:indexname=g:set=null:bin=loc:type=geo2dsphere:indextype=default:context=null:exp=null:state=RW"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_create_params_never_panic(text in "[a-z=;,A-Z0-9]{0,80}") {
            let _ = parse_create(&text);
            let _ = parse_ns_name(&text);
        }

        #[test]
        fn arbitrary_unicode_params_never_panic(text in any::<String>()) {
            let _ = parse_create(&text);
        }
    }
}

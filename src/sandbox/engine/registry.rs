//! Registered UDF modules: name → source, persisted as plain files in
//! `<data_dir>/modules/` when a directory is given.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parking_lot::RwLock;
use sha1::{Digest as _, Sha1};

/// Longest module file name (exclusive), as the server checks it.
pub(crate) const MAX_FILENAME: usize = 128;

pub(crate) struct Module {
    pub source: Arc<[u8]>,
    /// The base64 text as registered (what the list hash covers).
    pub content64: String,
}

pub(crate) struct Registry {
    dir: Option<PathBuf>,
    modules: RwLock<BTreeMap<String, Module>>,
    /// Bumped by every change; pooled Lua states of an older generation are dropped.
    generation: AtomicU64,
}

/// Whether `name` is acceptable as a module file name (see [`filename_problem`]).
pub(crate) fn valid_filename(name: &str) -> bool {
    filename_problem(name).is_none()
}

/// Why `name` is not acceptable as a module file name, or `None`: the
/// server's rules (under [`MAX_FILENAME`] bytes, a '.' that neither starts
/// nor ends the name) plus the allowlist of current releases
/// (`[A-Za-z0-9._$-]`, no `..`), which also keeps every name a plain file
/// inside the modules folder. The client says it to explain a server's
/// `invalid_filename`.
pub(crate) fn filename_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.len() >= MAX_FILENAME {
        return Some(format!(
            "it is {} bytes; servers take at most {}",
            name.len(),
            MAX_FILENAME - 1
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '$' | '-');
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Some(format!(
            "it contains {c:?}; newer servers take only letters, digits, '.', '_', '$' and '-'"
        ));
    }
    match name.find('.') {
        None => Some("it has no extension (.lua)".into()),
        Some(dot) if dot == 0 || dot == name.len() - 1 || name.contains("..") => {
            Some("a name may not start or end with '.' or hold '..'".into())
        }
        Some(_) => None,
    }
}

impl Registry {
    pub fn open(data_dir: Option<&Path>) -> std::io::Result<Registry> {
        let mut modules = BTreeMap::new();
        let dir = match data_dir {
            Some(d) => {
                let dir = d.join("modules");
                fs::create_dir_all(&dir)?;
                for entry in fs::read_dir(&dir)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !valid_filename(&name) || !entry.file_type()?.is_file() {
                        continue;
                    }
                    let source = fs::read(entry.path())?;
                    if source.is_empty() {
                        continue;
                    }
                    let content64 = STANDARD.encode(&source);
                    modules.insert(
                        name,
                        Module {
                            source: source.into(),
                            content64,
                        },
                    );
                }
                Some(dir)
            }
            None => None,
        };
        Ok(Registry {
            dir,
            modules: RwLock::new(modules),
            generation: AtomicU64::new(1),
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops every pooled state (on the next use of each pool).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn source(&self, filename: &str) -> Option<Arc<[u8]>> {
        self.modules.read().get(filename).map(|m| m.source.clone())
    }

    pub fn put(&self, filename: &str, content64: &str, source: Vec<u8>) -> std::io::Result<()> {
        if let Some(dir) = &self.dir {
            let tmp = dir.join(format!(".{filename}.tmp"));
            fs::write(&tmp, &source)?;
            fs::rename(&tmp, dir.join(filename))?;
        }
        self.modules.write().insert(
            filename.to_string(),
            Module {
                source: source.into(),
                content64: content64.to_string(),
            },
        );
        self.invalidate();
        Ok(())
    }

    pub fn remove(&self, filename: &str) -> std::io::Result<()> {
        if let Some(dir) = &self.dir {
            match fs::remove_file(dir.join(filename)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        self.modules.write().remove(filename);
        self.invalidate();
        Ok(())
    }

    /// `(filename, hash)` of every module, by name.
    pub fn list(&self) -> Vec<(String, String)> {
        self.modules
            .read()
            .iter()
            .map(|(name, m)| (name.clone(), list_hash(name, &m.content64)))
            .collect()
    }
}

/// The server's `udf-list` hash: SHA-1 of the module's metadata as the JSON
/// text `{"content64": "...", "type": "LUA", "name": "..."}`.
pub(crate) fn list_hash(name: &str, content64: &str) -> String {
    let json = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let text = format!(
        "{{\"content64\": {}, \"type\": \"LUA\", \"name\": {}}}",
        json(content64),
        json(name)
    );
    hex::encode(Sha1::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_rules() {
        for ok in ["a.lua", "mod.txt", "a.b.lua", "x$-_.lua"] {
            assert!(valid_filename(ok), "{ok}");
        }
        let long = format!("{}.lua", "a".repeat(124));
        for bad in [
            "noext", ".hidden", "dot.", "", "../x.lua", "a/b.lua", "a..lua", &long,
        ] {
            assert!(!valid_filename(bad), "{bad}");
        }
        // Each said with the rule it breaks.
        let problem = |name: &str| filename_problem(name).unwrap();
        assert_eq!(problem(&long), "it is 128 bytes; servers take at most 127");
        assert!(problem("a/b.lua").starts_with("it contains '/'"));
        assert!(problem("a..lua").contains("hold '..'"));
        assert!(problem(".hidden").contains("start or end with '.'"));
        assert!(problem("noext").contains("no extension"));
    }

    #[test]
    fn hash_matches_the_server_recipe() {
        // SHA-1 of the literal JSON text, checked independently.
        let text = r#"{"content64": "eA==", "type": "LUA", "name": "a.lua"}"#;
        assert_eq!(list_hash("a.lua", "eA=="), hex::encode(Sha1::digest(text)));
    }

    #[test]
    fn modules_persist() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(Some(dir.path())).unwrap();
        reg.put("a.lua", "eA==", b"x".to_vec()).unwrap();
        reg.put("b.lua", "eQ==", b"y".to_vec()).unwrap();
        reg.remove("b.lua").unwrap();
        reg.remove("missing.lua").unwrap();
        let reg = Registry::open(Some(dir.path())).unwrap();
        assert_eq!(reg.source("a.lua").as_deref(), Some(&b"x"[..]));
        assert!(reg.source("b.lua").is_none());
        assert_eq!(reg.list().len(), 1);
    }
}

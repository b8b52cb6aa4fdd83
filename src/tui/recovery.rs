//! Recovery copies of unsaved buffers, in `$XDG_DATA_HOME/asudf/recovery/`.
//!
//! Each console session has a copy of its own (`ID.json`, the ID made of
//! the process id and the start time), so consoles running side by side
//! never write over, offer or remove each other's. Beside it is `ID.lock`,
//! which the session holds with an OS file lock from its first copy on.
//! The lock, rather than a process id kept in the copy, says the session
//! still runs: the OS lets go of it however the process ends, a crash
//! too, while a process id may by then belong to an unrelated process.
//!
//! A start offers a copy whose lock it can take (its session has ended),
//! the one for the file it opens first, else the newest; it keeps that
//! lock, and the copy becomes its own: edits rewrite it, a no to the offer
//! or a save removes it. A copy left by a version that kept a single
//! `recovery.json` next to the folder is offered the same way, once.

use std::fs::{File, Permissions, TryLockError};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tui::app::Recovered;

/// This session's recovery copy: where it goes, and its lock once taken.
#[derive(Debug)]
pub struct SessionCopy {
    pub copy: PathBuf,
    /// The recovery folder (a copy left by an earlier version may lie
    /// outside it).
    dir: PathBuf,
    lock: Option<File>,
}

impl SessionCopy {
    /// A copy in `dir` for a session of this process starting now (nothing
    /// is written or locked yet).
    pub fn new(dir: &Path) -> SessionCopy {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        SessionCopy {
            copy: dir.join(format!("{}-{started:x}.json", std::process::id())),
            dir: dir.to_path_buf(),
            lock: None,
        }
    }

    /// Takes the session's lock, once, before its copy is first written:
    /// from then on no other console offers the copy.
    pub fn lock(&mut self) -> io::Result<()> {
        if self.lock.is_none() {
            private_dir(&self.dir)?;
            self.lock = Some(take_lock(&self.copy)?.ok_or_else(|| {
                io::Error::new(io::ErrorKind::WouldBlock, "another console holds it")
            })?);
        }
        Ok(())
    }

    /// At the session's end: a lock file with no copy to guard goes too.
    pub fn close(self) {
        if self.lock.is_some() && !self.copy.exists() {
            let _ = std::fs::remove_file(lock_path(&self.copy));
        }
    }
}

// Copies hold unsaved code, maybe secrets: the folder and its files are
// the user's alone, also when an earlier version made them readable.

/// The mode a copy is written with when its file is new (each write after
/// a save's removal too).
pub const COPY_MODE: u32 = 0o600;

fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))
}

/// The lock file beside `copy`.
fn lock_path(copy: &Path) -> PathBuf {
    copy.with_extension("lock")
}

/// Locks `copy`'s lock file: `None` while another session holds it.
fn take_lock(copy: &Path) -> io::Result<Option<File>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path(copy))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Reads a recovery copy (also one written before copies kept `base` and
/// `module`).
pub fn read_copy(path: &Path) -> Option<Recovered> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The copy as [`read_copy`] reads it; its file named by an absolute path,
/// so another start, from another folder, recovers it into the same file.
pub fn copy_json(recovered: &Recovered) -> String {
    let mut recovered = recovered.clone();
    if let Some(path) = &recovered.path {
        recovered.path = std::path::absolute(path).ok().or(recovered.path);
    }
    serde_json::to_string(&recovered).unwrap_or_default()
}

/// The copy to offer at a start that opens `file`, from sessions that have
/// ended, with the session copy that takes it over; `None`: nothing to
/// offer, and the session gets a copy of its own in `dir`.
pub fn take_offer(dir: &Path, file: Option<&Path>) -> (Option<Recovered>, SessionCopy) {
    // The single copy of earlier versions, next to the folder.
    let legacy = dir.parent().map(|d| d.join("recovery.json"));
    let copies = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .chain(legacy.filter(|p| p.exists()));
    let wanted = file.and_then(|f| std::path::absolute(f).ok());
    let mut best: Option<(bool, SystemTime, Recovered, SessionCopy)> = None;
    for copy in copies {
        // A lock that cannot be taken is a running session's: skip its copy.
        let Ok(Some(lock)) = take_lock(&copy) else {
            continue;
        };
        // Read under the lock: a session that ended meanwhile may have
        // removed it.
        let Some(recovered) = read_copy(&copy) else {
            continue;
        };
        let for_file = wanted.is_some() && recovered.path == wanted;
        let written = std::fs::metadata(&copy)
            .and_then(|m| m.modified())
            .unwrap_or(UNIX_EPOCH);
        if best
            .as_ref()
            .is_none_or(|(f, w, ..)| (for_file, written) > (*f, *w))
        {
            let session = SessionCopy {
                copy,
                dir: dir.to_path_buf(),
                lock: Some(lock),
            };
            best = Some((for_file, written, recovered, session));
        }
    }
    match best {
        Some((_, _, recovered, session)) => {
            // Only the recovery folder: an earlier version's copy lies in
            // the config folder, which stays as the user made it.
            let _ = private_dir(dir);
            // A copy an earlier version left readable; writes keep the
            // mode of a file that is there.
            let _ = std::fs::set_permissions(&session.copy, Permissions::from_mode(COPY_MODE));
            (Some(recovered), session)
        }
        None => (None, SessionCopy::new(dir)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_of(text: &str, path: Option<&Path>) -> Recovered {
        Recovered {
            text: text.into(),
            path: path.map(Path::to_path_buf),
            module: Some("work.lua".into()),
            base: None,
        }
    }

    /// What a session does when the console asks for a copy.
    fn write(session: &mut SessionCopy, recovered: &Recovered) {
        session.lock().unwrap();
        std::fs::write(&session.copy, copy_json(recovered)).unwrap();
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn copies_and_their_folder_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let copies = dir.path().join("recovery");
        let (_, mut session) = take_offer(&copies, None);
        // Written as the console writes it.
        session.lock().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let text = copy_json(&copy_of("local password = 'x'", None));
        let write_copy = |session: &SessionCopy| {
            rt.block_on(crate::tui::save::write_file(
                &session.copy,
                &text,
                Some(COPY_MODE),
            ))
            .unwrap()
        };
        write_copy(&session);
        assert_eq!(mode(&copies), 0o700);
        assert_eq!(mode(&session.copy), 0o600);
        assert_eq!(mode(&lock_path(&session.copy)), 0o600);
        // A save removes the copy (`Effect::ClearRecovery`) while the lock
        // stays held; the next edit's copy is a new file, private too.
        std::fs::remove_file(&session.copy).unwrap();
        session.lock().unwrap();
        write_copy(&session);
        assert_eq!(mode(&session.copy), 0o600);
        // A copy and folder an earlier version left readable are narrowed
        // when a start takes the copy over.
        std::fs::remove_file(&session.copy).unwrap();
        drop(session);
        std::fs::set_permissions(&copies, Permissions::from_mode(0o755)).unwrap();
        let old = copies.join("1-0.json");
        std::fs::write(&old, &text).unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        let (offered, taken) = take_offer(&copies, None);
        assert!(offered.is_some());
        assert_eq!((mode(&copies), mode(&taken.copy)), (0o700, 0o600));
    }

    #[test]
    fn a_running_sessions_copy_is_neither_offered_nor_touched() {
        let dir = tempfile::tempdir().unwrap();
        let copies = dir.path().join("recovery");
        let work = dir.path().join("work.lua");
        let (none, mut a) = take_offer(&copies, Some(&work));
        assert_eq!(none, None);
        let a_edits = copy_of("a's edits", Some(&work));
        write(&mut a, &a_edits);

        // B starts while A runs: nothing to offer, and a copy of its own.
        let (offered, mut b) = take_offer(&copies, Some(&work));
        assert_eq!(offered, None, "A still runs");
        assert_ne!(a.copy, b.copy);
        write(&mut b, &copy_of("b's edits", Some(&work)));
        assert_eq!(read_copy(&a.copy), Some(a_edits.clone()));
        // B's undo to a clean buffer removes B's copy only.
        std::fs::remove_file(&b.copy).unwrap();
        b.close();
        assert_eq!(read_copy(&a.copy), Some(a_edits.clone()));

        // Once A has ended, the next start offers A's copy and takes it over.
        let a_copy = a.copy.clone();
        drop(a);
        let (offered, c) = take_offer(&copies, None);
        assert_eq!(offered, Some(a_edits));
        assert_eq!(c.copy, a_copy);
        let (again, _) = take_offer(&copies, None);
        assert_eq!(again, None, "C holds it while the question is open");
    }

    #[test]
    fn the_copy_for_the_opened_file_is_offered_before_a_newer_one() {
        let dir = tempfile::tempdir().unwrap();
        let copies = dir.path().join("recovery");
        let (one, two) = (dir.path().join("one.lua"), dir.path().join("two.lua"));
        let an_hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        for (file, text, written) in [(&one, "one", an_hour_ago), (&two, "two", SystemTime::now())]
        {
            let mut session = SessionCopy::new(&copies);
            write(&mut session, &copy_of(text, Some(file)));
            File::options()
                .write(true)
                .open(&session.copy)
                .and_then(|f| f.set_modified(written))
                .unwrap();
            // Ends: its copy stays for the next start.
        }
        let offered = |file: Option<&Path>| take_offer(&copies, file).0.map(|r| r.text);
        assert_eq!(offered(Some(&one)).as_deref(), Some("one"));
        assert_eq!(offered(Some(&two)).as_deref(), Some("two"));
        assert_eq!(offered(None).as_deref(), Some("two"), "the newest");
    }

    /// A copy written before `base` and `module` were kept, in the single `recovery.json`
    /// of earlier versions, is offered, and then is the session's copy: a
    /// no removes it.
    #[test]
    fn an_earlier_versions_single_copy_is_offered_once() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("recovery.json");
        std::fs::write(&legacy, r#"{"path":"/w/work.lua","text":"local a\n"}"#).unwrap();
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        let (offered, session) = take_offer(&dir.path().join("recovery"), None);
        // The copy is narrowed, and the recovery folder, not the config
        // folder the old copy lies in.
        assert_eq!(mode(&legacy), 0o600);
        assert_eq!(mode(dir.path()), 0o755);
        assert_eq!(mode(&dir.path().join("recovery")), 0o700);
        let offered = offered.expect("the old copy is offered");
        assert_eq!(
            (offered.text.as_str(), offered.base, offered.module),
            ("local a\n", None, None)
        );
        assert_eq!(session.copy, legacy);
        std::fs::remove_file(&session.copy).unwrap(); // the answer was no
        session.close();
        let (again, _) = take_offer(&dir.path().join("recovery"), None);
        assert_eq!(again, None);
        assert!(!dir.path().join("recovery.lock").exists());
    }

    #[test]
    fn a_copy_names_its_file_by_an_absolute_path() {
        let copy = copy_of("x", Some(Path::new("work.lua")));
        let json: serde_json::Value = serde_json::from_str(&copy_json(&copy)).unwrap();
        let path = PathBuf::from(json["path"].as_str().unwrap());
        assert!(path.is_absolute() && path.ends_with("work.lua"), "{path:?}");
    }
}

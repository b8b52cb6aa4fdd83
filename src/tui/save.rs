//! Saving a file without writing over someone else's: a save carries a
//! [`Guard`] (what it may write over), which the driver checks just before
//! it writes, off the UI thread. A refused save comes back as a
//! [`Conflict`], which the console turns into a question.

use std::path::Path;

use crate::tui::panes::editor::fingerprint;

/// What a save may write over. A file that is not there loses nothing:
/// every guard lets a save create one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: a file there is not one the console knows.
    Absent,
    /// Only a file holding this [`fingerprint`] (what the buffer was loaded
    /// from or last saved).
    Holds(String),
    /// Anything: the user said yes.
    Any,
}

/// What a guard found in the way, nothing written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// A file the console does not know is there.
    Exists,
    /// The file no longer holds what the buffer was loaded from or saved to.
    Changed,
}

/// What a save writes: the console's answer to its outcome depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saving {
    /// The editor's buffer, this version of its text.
    Buffer(u64),
    /// The session's calls as a test file (F7).
    TestFile,
    /// The results pane's runs as JSON.
    Results,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError {
    /// The guard refused.
    Conflict(Conflict),
    /// The write failed.
    Failed(String),
}

/// Writes `text` to `path` if `guard` lets it write over what is there now.
pub async fn save_file(path: &Path, text: &str, guard: &Guard) -> Result<(), SaveError> {
    check_guard(path, guard)
        .await
        .map_err(SaveError::Conflict)?;
    write_file(path, text).await.map_err(SaveError::Failed)
}

/// Whether `guard` lets a save write over what is at `path` now. A file
/// that cannot be read is left to the write to fail on.
pub async fn check_guard(path: &Path, guard: &Guard) -> Result<(), Conflict> {
    match guard {
        Guard::Any => Ok(()),
        Guard::Absent if file_exists(path).await => Err(Conflict::Exists),
        Guard::Absent => Ok(()),
        Guard::Holds(known) => match tokio::fs::read(path).await {
            Ok(held) if fingerprint(&held) != *known => Err(Conflict::Changed),
            _ => Ok(()),
        },
    }
}

/// Whether something is at `path` (as `Path::exists`, off the UI thread).
pub async fn file_exists(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok()
}

pub(crate) async fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Write then rename, so a crash never leaves half a file.
    let tmp = path.with_extension("asudf-tmp");
    tokio::fs::write(&tmp, text)
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::rename(&tmp, path)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_guard_lets_a_save_write_over_only_what_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("work.lua");
        let held = Guard::Holds(fingerprint(b"mine\n"));
        for guard in [&Guard::Absent, &held, &Guard::Any] {
            assert_eq!(
                check_guard(&path, guard).await,
                Ok(()),
                "no file: {guard:?}"
            );
        }
        std::fs::write(&path, "mine\n").unwrap();
        assert_eq!(
            check_guard(&path, &Guard::Absent).await,
            Err(Conflict::Exists)
        );
        assert_eq!(check_guard(&path, &held).await, Ok(()));
        std::fs::write(&path, "theirs\n").unwrap();
        assert_eq!(check_guard(&path, &held).await, Err(Conflict::Changed));
        assert_eq!(check_guard(&path, &Guard::Any).await, Ok(()));
        // Refused, nothing is written.
        let refused = save_file(&path, "new\n", &held).await;
        assert_eq!(refused, Err(SaveError::Conflict(Conflict::Changed)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs\n");
    }
}

//! Saving a file without writing over someone else's: a save carries a
//! [`Guard`] (what it may write over), which the driver checks just before
//! it writes, off the UI thread. A refused save comes back as a
//! [`Conflict`], which the console turns into a question.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::io::AsyncWriteExt;

use crate::tui::panes::editor::fingerprint;

/// What a save may write over. A file that is not there loses nothing:
/// every guard lets a save create one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: a file there is not one the console knows.
    Absent,
    /// Only a file holding this [`fingerprint`] (what the buffer was loaded
    /// from or last saved, or what the user said yes to writing over).
    Holds(String),
    /// Anything: the user said yes to a file that was not read.
    Any,
}

/// What a guard found in the way, nothing written, with the
/// [`fingerprint`] of the file found: a yes writes over that version only,
/// so a file changed again while the question was open is asked about again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A file the console does not know is there (`None`: not read).
    Exists(Option<String>),
    /// The file no longer holds what the buffer was loaded from or saved to.
    Changed(String),
}

impl Conflict {
    /// What a save after a yes may write over: the file as it was found.
    pub fn yes(&self) -> Guard {
        match self {
            Conflict::Exists(Some(found)) | Conflict::Changed(found) => Guard::Holds(found.clone()),
            Conflict::Exists(None) => Guard::Any,
        }
    }
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
/// A directory or a read-only file there is refused at once: no yes could
/// write over it.
pub async fn save_file(path: &Path, text: &str, guard: &Guard) -> Result<(), SaveError> {
    if let Ok(found) = tokio::fs::metadata(path).await {
        let refused = if found.is_dir() {
            Some("a directory")
        } else if found.permissions().mode() & 0o200 == 0 {
            // As vim does, even for root, who could write it.
            Some("read-only")
        } else {
            None
        };
        if let Some(refused) = refused {
            return Err(SaveError::Failed(format!(
                "{} is {refused}",
                path.display()
            )));
        }
    }
    check_guard(path, guard)
        .await
        .map_err(SaveError::Conflict)?;
    write_file(path, text, None)
        .await
        .map_err(SaveError::Failed)
}

/// Whether `guard` lets a save write over what is at `path` now. A file
/// that cannot be read is left to the write to fail on.
pub async fn check_guard(path: &Path, guard: &Guard) -> Result<(), Conflict> {
    match guard {
        Guard::Any => Ok(()),
        Guard::Absent => match tokio::fs::metadata(path).await {
            // Only a regular file is read: a FIFO's read could wait forever.
            Ok(found) if found.is_file() => Err(Conflict::Exists(
                tokio::fs::read(path)
                    .await
                    .ok()
                    .map(|held| fingerprint(&held)),
            )),
            Ok(_) => Err(Conflict::Exists(None)),
            Err(_) => Ok(()),
        },
        Guard::Holds(known) => match tokio::fs::read(path).await {
            Ok(held) if fingerprint(&held) != *known => Err(Conflict::Changed(fingerprint(&held))),
            _ => Ok(()),
        },
    }
}

/// Whether something is at `path` (as `Path::exists`, off the UI thread).
pub async fn file_exists(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok()
}

/// Writes `text` to the file at `path` (through a symlink, the file it
/// points to: the link stays), keeping the permission bits of a file that
/// is there; a new one gets `new_mode` (`None`: the default mode).
pub(crate) async fn write_file(
    path: &Path,
    text: &str,
    new_mode: Option<u32>,
) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = tokio::fs::create_dir_all(dir).await
    {
        // A file where a folder should be fails with "File exists": name it.
        return Err(match file_in_the_way(dir).await {
            Some(file) => format!("{} is not a directory", file.display()),
            None => e.to_string(),
        });
    }
    // Not there (or a link to nothing): written where `path` says.
    let target = tokio::fs::canonicalize(path)
        .await
        .unwrap_or_else(|_| path.to_path_buf());
    let mode = tokio::fs::metadata(&target)
        .await
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
        .or(new_mode);
    // Write then rename, so a crash never leaves half a file.
    let tmp = target.with_extension("asudf-tmp");
    if let Err(e) = write_new(&tmp, text, mode).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        // The temporary file's name says where a save could not write
        // (a folder that takes no new files, as /proc).
        return Err(format!("cannot write {}: {e}", tmp.display()));
    }
    if let Err(e) = tokio::fs::rename(&tmp, &target).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(format!("cannot replace {}: {e}", target.display()));
    }
    Ok(())
}

/// Writes `text` to a file at `path` with `mode` (`None`: the default),
/// set before the text goes in, so a private file's text never sits in a
/// file others may read.
async fn write_new(path: &Path, text: &str, mode: Option<u32>) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode.unwrap_or(0o666))
        .open(path)
        .await?;
    if let Some(mode) = mode {
        // The umask may have taken bits away, and a file left there by
        // an earlier save keeps its own mode.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .await?;
    }
    file.write_all(text.as_bytes()).await?;
    // tokio's file writes in the background: done before the rename.
    file.flush().await
}

/// The nearest of `dir` and its parents that is there, if it is no folder.
async fn file_in_the_way(dir: &Path) -> Option<&Path> {
    for ancestor in dir.ancestors() {
        if let Ok(found) = tokio::fs::metadata(ancestor).await {
            return (!found.is_dir()).then_some(ancestor);
        }
    }
    None
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
        let mine = Some(fingerprint(b"mine\n"));
        assert_eq!(
            check_guard(&path, &Guard::Absent).await,
            Err(Conflict::Exists(mine))
        );
        assert_eq!(check_guard(&path, &held).await, Ok(()));
        std::fs::write(&path, "theirs\n").unwrap();
        let theirs = Conflict::Changed(fingerprint(b"theirs\n"));
        assert_eq!(check_guard(&path, &held).await, Err(theirs.clone()));
        assert_eq!(check_guard(&path, &theirs.yes()).await, Ok(()));
        assert_eq!(check_guard(&path, &Guard::Any).await, Ok(()));
        // Refused, nothing is written.
        let refused = save_file(&path, "new\n", &held).await;
        assert_eq!(refused, Err(SaveError::Conflict(theirs)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs\n");
    }

    #[tokio::test]
    async fn a_save_in_the_way_of_a_file_or_onto_a_directory_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("echo.lua");
        std::fs::write(&file, "x\n").unwrap();
        for under in [file.join("x.lua"), file.join("deeper").join("x.lua")] {
            let failed = save_file(&under, "y\n", &Guard::Absent).await;
            let expected = format!("{} is not a directory", file.display());
            assert_eq!(failed, Err(SaveError::Failed(expected)), "{under:?}");
        }
        // A directory: refused before any question, whatever the guard.
        for guard in [Guard::Absent, Guard::Any] {
            let failed = save_file(dir.path(), "y\n", &guard).await;
            let expected = format!("{} is a directory", dir.path().display());
            assert_eq!(failed, Err(SaveError::Failed(expected)));
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing but echo.lua: {left:?}");
    }

    /// A write that fails names the file it could not write: in /proc, a
    /// writable file's folder takes no temporary file beside it.
    #[tokio::test]
    async fn a_failed_write_names_the_file() {
        let comm = std::fs::canonicalize("/proc/self/comm").unwrap();
        let failed = save_file(&comm, "x\n", &Guard::Any).await;
        let expected = format!(
            "cannot write {}: No such file or directory (os error 2)",
            comm.with_extension("asudf-tmp").display()
        );
        assert_eq!(failed, Err(SaveError::Failed(expected)));
    }
}

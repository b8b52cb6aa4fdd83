//! UDF tests as files: scenario files ([`format`]) run through the client
//! task ([`runner`]), reported for people, scripts and CI ([`report`]),
//! their expectations rewritten in place ([`update`]), and written from the
//! console's calls ([`save`]).

pub mod format;
pub mod report;
pub mod runner;
pub mod save;
pub mod update;

use std::path::{Path, PathBuf};

pub use format::{FileError, SUFFIX, Scenario};
pub use runner::{FileReport, Mode};

/// The scenario files under `paths` (files as given, folders searched
/// recursively but for hidden ones and `target/`), in a stable order, each
/// once (a file named twice, or also through its folder, where first
/// given: it would run twice, and `--update` rewrite it twice). A path that
/// does not exist is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_file() {
            files.push(path.clone());
        } else if path.is_dir() {
            let mut found: Vec<PathBuf> = walkdir::WalkDir::new(path)
                .into_iter()
                .filter_entry(|e| e.depth() == 0 || !is_skipped(e))
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file() && is_scenario(e.path()))
                .map(|e| e.into_path())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            return Err(format!("{}: no such file or folder", path.display()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    Ok(files)
}

/// Hidden folders and build output are not searched (`target/` can be huge).
fn is_skipped(entry: &walkdir::DirEntry) -> bool {
    let name = entry.file_name().to_string_lossy();
    entry.file_type().is_dir() && (name.starts_with('.') || name == "target")
}

fn is_scenario(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX))
}

/// Runs every file: each on its own sandbox, or all on the one cluster
/// `cluster` is connected to, each file in sets of its own
/// ([`Mode::for_file`], numbered in `scenarios`' order from 1). Files run in
/// parallel; reports keep file order.
pub async fn run_files(
    scenarios: Vec<Scenario>,
    cluster: Option<(crate::client::ClientHandle, Mode)>,
) -> Vec<FileReport> {
    let tasks: Vec<_> = scenarios
        .into_iter()
        .enumerate()
        .map(|(i, scenario)| {
            let cluster = cluster
                .as_ref()
                .map(|(handle, mode)| (handle.clone(), mode.for_file(i + 1)));
            tokio::spawn(async move {
                match cluster {
                    Some((handle, mode)) => runner::run(&handle, &scenario, &mode).await,
                    None => runner::run_on_sandbox(&scenario).await,
                }
            })
        })
        .collect();
    let mut reports = Vec::new();
    for task in tasks {
        reports.push(task.await.unwrap_or_else(|e| FileReport {
            connection: Some(format!("the run stopped: {e}")),
            ..FileReport::default()
        }));
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_given_twice_is_found_once_in_the_order_first_given() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            dir.path().join("a.udftest.toml"),
            dir.path().join("b.udftest.toml"),
        );
        for file in [&a, &b] {
            std::fs::write(file, "").unwrap();
        }
        let dotted = dir.path().join(".").join("b.udftest.toml");
        let found = discover(&[b.clone(), dir.path().to_path_buf(), dotted, a.clone()]).unwrap();
        assert_eq!(found, [b, a]);
    }
}

//! `asudf check FILE.lua…`: the console's diagnostics for scripts and CI.
//! No server is needed. Exit 0 when no file has an error (warnings
//! allowed), 4 when one has, 2 for a usage error (unreadable file, bad
//! config, unknown rule).

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use crate::cli::CheckArgs;
use crate::commands::{EXIT_OK, EXIT_SERVER};
use crate::lint::{self, Config, Level, Options, Severity};
use crate::text::plural;

pub fn run(args: &CheckArgs, json_out: bool) -> ExitCode {
    match check(args, json_out) {
        Ok(true) => ExitCode::from(EXIT_SERVER),
        Ok(false) => ExitCode::from(EXIT_OK),
        Err(message) => super::fail(
            json_out,
            &crate::client::Failure::usage(format!("asudf check: {message}")),
        ),
    }
}

/// Lints every file; true when any has an error.
fn check(args: &CheckArgs, json_out: bool) -> Result<bool, String> {
    for rule in &args.allow {
        if !lint::is_rule(rule) {
            return Err(format!("unknown rule '{rule}'"));
        }
    }
    let explicit = args.lint_config.as_deref().map(Config::read).transpose()?;
    let mut files = Vec::new();
    let (mut errors, mut warnings) = (0, 0);
    for path in &args.files {
        let stdin = crate::cli::is_stdin(path);
        let shown = crate::cli::input_name(path);
        let source = super::read_input(path)?;
        let mut config = match &explicit {
            Some(c) => c.clone(),
            None => nearest_config(path)?,
        };
        for rule in &args.allow {
            config.set(rule, Level::Allow);
        }
        let options = Options {
            libs: args.lua_libs.into(),
            // Standard input has no file name to check as a module's.
            module: path
                .file_name()
                .filter(|_| !stdin)
                .map(|n| n.to_string_lossy().into_owned()),
            function: args.function.clone(),
            config,
        };
        let found = lint::lint(&source, &options);
        for d in &found {
            match d.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            if !json_out {
                outln!("{}", lint::format_line(&shown, d));
            }
        }
        files.push(json!({"file": shown, "diagnostics": found}));
    }
    if json_out {
        let summary =
            json!({"ok": errors == 0, "errors": errors, "warnings": warnings, "files": files});
        outln!("{summary}");
    } else if errors + warnings > 0 {
        eprintln!(
            "{}, {}",
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings")
        );
    }
    Ok(errors > 0)
}

fn nearest_config(file: &Path) -> Result<Config, String> {
    let dir = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    match dir.as_deref().and_then(lint::find_config) {
        Some(path) => Config::read(&path),
        None => Ok(Config::default()),
    }
}

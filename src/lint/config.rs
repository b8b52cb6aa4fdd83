//! Switching rules off: `-- asudf: allow(rule, …)` in a module silences
//! those rules in that file; a config file `asudf-lint.toml` (in the
//! module's folder or any folder above it) sets a rule's level:
//!
//! ```toml
//! [rules]
//! unused_variable = "allow"
//! long_bin_name = "error"
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const CONFIG_FILE: &str = "asudf-lint.toml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Allow,
    Warn,
    Error,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    rules: HashMap<String, Level>,
}

/// The file as written: each rule name with its place, for the error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rules: HashMap<toml::Spanned<String>, Level>,
}

impl Config {
    /// A rule name that is not one is refused, as `--allow` refuses it: a
    /// misspelt rule would otherwise leave the rule as it was, unnoticed.
    /// An error is `LINE:COL: message`, at the file's first mistake.
    pub fn parse(text: &str) -> Result<Config, String> {
        let error = |offset: usize, message: &str| {
            let at = crate::testing::format::Pos::at(text, offset);
            format!("{}:{}: {message}", at.line, at.column)
        };
        let file: File = toml::from_str(text)
            .map_err(|e| error(e.span().map_or(0, |s| s.start), e.message().trim_end()))?;
        let unknown = file.rules.keys().filter(|r| !super::is_rule(r.as_ref()));
        if let Some(rule) = unknown.min_by_key(|r| r.span().start) {
            let message = format!("unknown rule '{}'", rule.as_ref());
            return Err(error(rule.span().start, &message));
        }
        let rules = file
            .rules
            .into_iter()
            .map(|(rule, level)| (rule.into_inner(), level))
            .collect();
        Ok(Config { rules })
    }

    pub fn read(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}:{e}", path.display()))
    }

    pub fn level(&self, rule: &str) -> Option<Level> {
        self.rules.get(rule).copied()
    }

    pub fn set(&mut self, rule: &str, level: Level) {
        self.rules.insert(rule.to_string(), level);
    }
}

/// The config file for a module in `dir`: the nearest `asudf-lint.toml`
/// in it or a folder above.
pub fn find_config(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
}

/// The rules `-- asudf: allow(a, b)` comments switch off in this source,
/// each with the (1-based) line of its comment.
pub fn allowed_in_source(source: &str) -> Vec<(u32, String)> {
    const MARK: &str = "asudf: allow(";
    let mut out = Vec::new();
    for (number, line) in (1..).zip(source.lines()) {
        let Some(comment) = line.find("--").map(|i| &line[i + 2..]) else {
            continue;
        };
        let Some(at) = comment.find(MARK) else {
            continue;
        };
        let rest = &comment[at + MARK.len()..];
        let Some(end) = rest.find(')') else { continue };
        out.extend(
            rest[..end]
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(|r| (number, r.to_string())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_files_name_rules() {
        let src = "local x = 1 -- asudf: allow(unused_variable, long_bin_name)\n-- asudf: allow(shadowing)\n";
        let found = allowed_in_source(src);
        let allowed: Vec<(u32, &str)> = found
            .iter()
            .map(|(line, rule)| (*line, rule.as_str()))
            .collect();
        assert_eq!(
            allowed,
            [
                (1, "unused_variable"),
                (1, "long_bin_name"),
                (2, "shadowing")
            ]
        );
        let config = Config::parse("[rules]\nshadowing = \"allow\"\n").unwrap();
        assert_eq!(config.level("shadowing"), Some(Level::Allow));
        assert!(Config::parse("[rules]\nshadowing = \"maybe\"\n").is_err());
        assert!(Config::parse("rulez = 1\n").is_err());
        // Each mistake at its line and column: the first in the file.
        let at = |text: &str| Config::parse(text).unwrap_err();
        assert_eq!(
            at("[rules]\nshadowing = \"warn\"\n  zz = \"allow\"\nbogus = \"error\"\n"),
            "3:3: unknown rule 'zz'"
        );
        let error = at("# levels\n[rules]\nshadowing = \"maybe\"\n");
        assert!(
            error.starts_with("3:13: unknown variant `maybe`"),
            "{error}"
        );
        let error = at("[rules\nshadowing = \"warn\"\n");
        assert!(error.starts_with("1:7: "), "{error}");
        let error = at("[rules]\n[rulez]\n");
        assert!(error.starts_with("2:2: unknown field `rulez`"), "{error}");
        // Selene's rules that run may be named too.
        assert!(Config::parse("[rules]\nempty_if = \"allow\"\n").is_ok());
    }
}

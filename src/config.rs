//! Settings from the config file, the environment and the flags (flags win),
//! resolved to a [`Target`]: a cluster to connect to, or a sandbox.
//!
//! - Config file: Aerospike tools' shared `astools.conf` (TOML), its
//!   `[cluster]` table: `host`, `port`, `user`, `password`, `tls-enable`,
//!   `tls-name`, `tls-cafile`, `tls-capath`, `tls-certfile`, `tls-keyfile`
//!   (other keys and tables belong to other tools and are ignored). Read from
//!   `/etc/aerospike/astools.conf` then `~/.aerospike/astools.conf`, the
//!   later overriding the earlier key by key; `--config-file FILE` is read
//!   instead of both (and must exist).
//! - Environment: `ASUDF_HOST`, `ASUDF_PORT`, `ASUDF_USER`, `ASUDF_PASSWORD`.
//! - Flags: see [`crate::cli::ConnectionArgs`].
//!
//! `--memory` or `--sandbox-dir` choose the sandbox whatever is configured.
//! Otherwise a host or a port from any source chooses a cluster (a port alone
//! means 127.0.0.1), and nothing chooses the user's local sandbox in
//! `<data dir>/asudf/sandbox`.
//!
//! A password comes from `-P=VALUE`, else `ASUDF_PASSWORD`, else the file,
//! in any of the tools' forms (`env:VAR`, `env-b64:VAR`, `b64:TEXT`,
//! `file:PATH`, else the password itself); `-P` alone, or a user with no password anywhere, asks for it on the
//! terminal. TLS is on with `--tls-enable` / `tls-enable = true`, or when any
//! other TLS setting is given (unless the file says `tls-enable = false`).

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::ConnectionArgs;

/// A password: compared and cloned like a string, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(text))
    }
}

/// What the commands talk to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Cluster {
        seeds: Vec<Seed>,
        user: Option<String>,
        password: Option<Secret>,
        /// `None`: plain TCP.
        tls: Option<TlsSettings>,
        /// `--timeout`: the time limit of each request.
        timeout: Option<Duration>,
    },
    Sandbox {
        /// Where modules and records are kept; `None` (`--memory`) keeps nothing.
        dir: Option<PathBuf>,
    },
}

/// One seed host. `tls_name` is set only when TLS is on: the host's own
/// (`host:tlsname:port`) or the default `--tls-name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub host: String,
    pub port: u16,
    pub tls_name: Option<String>,
}

impl Seed {
    pub fn to_host(&self) -> aerospike::Host {
        match &self.tls_name {
            Some(name) => aerospike::Host::new_tls(&self.host, name, self.port),
            None => aerospike::Host::new(&self.host, self.port),
        }
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// TLS files and the default name to verify; all optional (no CA file means
/// the system's roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub name: Option<String>,
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// Bad TOML or a bad value in it; `message` starts with the line.
    #[error("config file {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read the password: {0}")]
    Prompt(io::Error),
    #[error(
        "a password is needed and there is no terminal to ask for it on: give it with \
         -P=PASSWORD, ASUDF_PASSWORD or password in astools.conf's [cluster]"
    )]
    NoTerminal,
    #[error("no data directory is known for the sandbox; give --sandbox-dir DIR or --memory")]
    NoDataDir,
}

/// A host that does not parse, with one sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad host '{host}': {reason}")]
pub struct HostError {
    pub host: String,
    pub reason: String,
}

/// Parses hosts as Aerospike's tools accept them, separated by commas:
/// `host`, `host:port`, `host:tlsname`, `host:tlsname:port`, `[v6]`,
/// `[v6]:port`, `[v6]:tlsname:port`. Hosts without a port get `default_port`.
/// The TLS names are kept as written (see [`Seed::tls_name`] for what
/// [`resolve`] keeps).
pub fn parse_hosts(text: &str, default_port: u16) -> Result<Vec<Seed>, HostError> {
    text.split(',')
        .map(|entry| parse_host(entry.trim(), default_port))
        .collect()
}

fn parse_host(entry: &str, default_port: u16) -> Result<Seed, HostError> {
    let fail = |reason: &str| HostError {
        host: entry.to_owned(),
        reason: reason.to_owned(),
    };
    if entry.is_empty() {
        return Err(fail("the host name is empty (check for a stray comma)"));
    }
    let (host, rest) = if let Some(after) = entry.strip_prefix('[') {
        let Some(end) = after.find(']') else {
            return Err(fail("missing ']' after the IPv6 address"));
        };
        let rest = &after[end + 1..];
        if !rest.is_empty() && !rest.starts_with(':') {
            return Err(fail("expected ':' after ']'"));
        }
        (&after[..end], rest.strip_prefix(':'))
    } else {
        if entry.matches(':').count() > 2 || entry.parse::<Ipv6Addr>().is_ok() {
            return Err(fail("IPv6 addresses go in brackets, e.g. [::1]:3000"));
        }
        match entry.split_once(':') {
            Some((host, rest)) => (host, Some(rest)),
            None => (entry, None),
        }
    };
    if host.is_empty() {
        return Err(fail("the host name is empty"));
    }
    let port = |text: &str| match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(fail(&format!(
            "port '{text}' is not a number from 1 to 65535"
        ))),
    };
    let parts: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
    let (tls_name, port) = match parts.as_slice() {
        [] => (None, default_port),
        [p] if p.is_empty() || p.starts_with(|c: char| c.is_ascii_digit()) => (None, port(p)?),
        [name] => (Some(*name), default_port),
        [name, p] if !name.is_empty() => (Some(*name), port(p)?),
        [_, _] => return Err(fail("the TLS name between the colons is empty")),
        _ => {
            return Err(fail(
                "expected HOST, HOST:PORT, HOST:TLSNAME:PORT or [IPv6]:PORT",
            ));
        }
    };
    Ok(Seed {
        host: host.to_owned(),
        port,
        tls_name: tls_name.map(str::to_owned),
    })
}

/// The `[cluster]` keys asudf reads, merged over the files in order.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterTable {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    password: Option<String>,
    tls_enable: Option<bool>,
    tls_name: Option<String>,
    tls_cafile: Option<PathBuf>,
    tls_capath: Option<PathBuf>,
    tls_certfile: Option<PathBuf>,
    tls_keyfile: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolsFile {
    #[serde(default)]
    cluster: ClusterTable,
}

impl ClusterTable {
    /// Key by key: what `later` sets wins.
    fn merge(&mut self, later: ClusterTable) {
        macro_rules! take {
            ($($field:ident),*) => { $( if later.$field.is_some() { self.$field = later.$field; } )* };
        }
        take!(
            host,
            port,
            user,
            password,
            tls_enable,
            tls_name,
            tls_cafile,
            tls_capath,
            tls_certfile,
            tls_keyfile
        );
    }
}

/// Where settings come from besides the flags; [`resolve`] uses the real ones.
pub struct Environment<'a> {
    /// Config files read in order when there is no `--config-file`; missing ones are skipped.
    pub default_files: Vec<PathBuf>,
    /// Environment variables.
    pub var: &'a dyn Fn(&str) -> Option<String>,
    /// The user's data directory (`dirs::data_dir()`).
    pub data_dir: Option<PathBuf>,
    /// Asks for a password without echo, given the prompt text.
    pub prompt: &'a mut dyn FnMut(&str) -> io::Result<String>,
}

/// `/etc/aerospike/astools.conf`, then `~/.aerospike/astools.conf`.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/etc/aerospike/astools.conf")];
    if let Some(home) = dirs::home_dir() {
        files.push(home.join(".aerospike").join("astools.conf"));
    }
    files
}

/// The local sandbox's directory: `<data dir>/asudf/sandbox`.
pub fn default_sandbox_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|dir| sandbox_dir_in(&dir))
}

fn sandbox_dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("asudf").join("sandbox")
}

/// Resolves the target from the real config files, environment and terminal.
pub fn resolve(connection: &ConnectionArgs) -> Result<Target, ConfigError> {
    let var = |name: &str| std::env::var(name).ok();
    let mut prompt = |text: &str| rpassword::prompt_password(text);
    let mut environment = Environment {
        default_files: default_config_files(),
        var: &var,
        data_dir: dirs::data_dir(),
        prompt: &mut prompt,
    };
    resolve_with(connection, &mut environment)
}

/// Resolves the target: config file < environment < flags.
pub fn resolve_with(
    connection: &ConnectionArgs,
    env: &mut Environment<'_>,
) -> Result<Target, ConfigError> {
    if connection.memory {
        return Ok(Target::Sandbox { dir: None });
    }
    if let Some(dir) = &connection.sandbox_dir {
        return Ok(Target::Sandbox {
            dir: Some(dir.clone()),
        });
    }

    let mut settings = read_files(connection.config_file.as_deref(), &env.default_files)?;
    settings.merge(from_environment(env.var)?);
    settings.merge(from_flags(connection));

    if settings.host.is_none() && settings.port.is_none() {
        let data_dir = env.data_dir.as_deref().ok_or(ConfigError::NoDataDir)?;
        return Ok(Target::Sandbox {
            dir: Some(sandbox_dir_in(data_dir)),
        });
    }

    let tls = tls_settings(&settings, connection.tls_enable)?;
    let hosts = settings.host.as_deref().unwrap_or("127.0.0.1");
    let mut seeds = parse_hosts(hosts, settings.port.unwrap_or(3000))?;
    for seed in &mut seeds {
        seed.tls_name = match &tls {
            Some(tls) => seed.tls_name.take().or_else(|| tls.name.clone()),
            None => None,
        };
    }

    // A password the flag gives (or asks for) with no user would go unused.
    if connection.password.is_some() && settings.user.is_none() {
        return Err(ConfigError::Invalid(
            "-P/--password was given without a user: add -U/--user NAME (or ASUDF_USER, \
             or user in astools.conf's [cluster])"
                .into(),
        ));
    }
    let password = match (&connection.password, settings.password, &settings.user) {
        (Some(None), _, user) => Some(ask_password(env, user.as_deref())?),
        (_, Some(password), _) => Some(password_from(&password, env.var)?),
        (_, None, Some(user)) => Some(ask_password(env, Some(user))?),
        (_, None, None) => None,
    };

    Ok(Target::Cluster {
        seeds,
        user: settings.user,
        password,
        tls,
        timeout: connection
            .timeout
            .map(|ms| Duration::from_millis(ms.into())),
    })
}

/// A password as Aerospike's tools take it (flag, environment or file):
/// `env:VAR` and `env-b64:VAR` read a variable, `b64:TEXT` decodes TEXT,
/// `file:PATH` reads the file's first line; anything else is the password.
fn password_from(given: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<Secret, ConfigError> {
    use base64::Engine;
    let invalid = |why: String| ConfigError::Invalid(format!("the password {why}"));
    let read_var =
        |name: &str| var(name).ok_or_else(|| invalid(format!("names ${name}, which is not set")));
    // The decoded text is never shown: it is the password.
    let decode = |text: &str, from: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| invalid(format!("{from} is not base64 of UTF-8 text")))
    };
    let text = if let Some(name) = given.strip_prefix("env-b64:") {
        decode(&read_var(name)?, &format!("in ${name}"))?
    } else if let Some(text) = given.strip_prefix("b64:") {
        decode(text, "after 'b64:'")?
    } else if let Some(name) = given.strip_prefix("env:") {
        read_var(name)?
    } else if let Some(path) = given.strip_prefix("file:") {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("file {path} cannot be read: {e}")))?;
        text.lines().next().unwrap_or_default().to_owned()
    } else {
        given.to_owned()
    };
    Ok(Secret::new(text))
}

fn ask_password(env: &mut Environment<'_>, user: Option<&str>) -> Result<Secret, ConfigError> {
    let text = match user {
        Some(user) => format!("Password for {user}: "),
        None => "Password: ".to_owned(),
    };
    (env.prompt)(&text).map(Secret::new).map_err(|e| {
        // The prompt could not open /dev/tty: the process has none.
        if e.raw_os_error() == Some(libc::ENXIO) {
            ConfigError::NoTerminal
        } else {
            ConfigError::Prompt(e)
        }
    })
}

fn read_files(explicit: Option<&Path>, defaults: &[PathBuf]) -> Result<ClusterTable, ConfigError> {
    let mut merged = ClusterTable::default();
    if let Some(path) = explicit {
        merged.merge(read_file(path)?);
        return Ok(merged);
    }
    for path in defaults {
        match read_file(path) {
            Err(ConfigError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            result => merged.merge(result?),
        }
    }
    Ok(merged)
}

fn read_file(path: &Path) -> Result<ClusterTable, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file: ToolsFile = toml::from_str(&text).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        let message = match e.span() {
            Some(span) => format!(
                "line {}: {message}",
                1 + text[..span.start].matches('\n').count()
            ),
            None => message,
        };
        ConfigError::File {
            path: path.to_owned(),
            message,
        }
    })?;
    Ok(file.cluster)
}

fn from_environment(var: &dyn Fn(&str) -> Option<String>) -> Result<ClusterTable, ConfigError> {
    let non_empty = |name: &str| var(name).filter(|v| !v.is_empty());
    let port = match non_empty("ASUDF_PORT") {
        Some(text) => Some(text.parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
            ConfigError::Invalid(format!(
                "ASUDF_PORT is '{text}', not a port number from 1 to 65535"
            ))
        })?),
        None => None,
    };
    Ok(ClusterTable {
        host: non_empty("ASUDF_HOST"),
        port,
        user: non_empty("ASUDF_USER"),
        password: var("ASUDF_PASSWORD"),
        ..ClusterTable::default()
    })
}

fn from_flags(connection: &ConnectionArgs) -> ClusterTable {
    ClusterTable {
        host: (!connection.hosts.is_empty()).then(|| connection.hosts.join(",")),
        port: connection.port,
        user: connection.user.clone(),
        password: connection
            .password
            .clone()
            .flatten()
            .map(|s| s.expose().to_owned()),
        tls_enable: None,
        tls_name: connection.tls_name.clone(),
        tls_cafile: connection.tls_cafile.clone(),
        tls_capath: None,
        tls_certfile: connection.tls_certfile.clone(),
        tls_keyfile: connection.tls_keyfile.clone(),
    }
}

fn tls_settings(settings: &ClusterTable, flag: bool) -> Result<Option<TlsSettings>, ConfigError> {
    let tls = TlsSettings {
        name: settings.tls_name.clone(),
        cafile: settings.tls_cafile.clone(),
        capath: settings.tls_capath.clone(),
        certfile: settings.tls_certfile.clone(),
        keyfile: settings.tls_keyfile.clone(),
    };
    let any_setting = tls != TlsSettings::default();
    let enabled = flag || settings.tls_enable.unwrap_or(any_setting);
    if !enabled {
        return Ok(None);
    }
    if tls.certfile.is_some() != tls.keyfile.is_some() {
        return Err(ConfigError::Invalid(
            "a TLS client certificate needs its key: give both --tls-certfile and --tls-keyfile"
                .into(),
        ));
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    use crate::cli::Cli;

    fn seed(host: &str, port: u16, tls_name: Option<&str>) -> Seed {
        Seed {
            host: host.into(),
            port,
            tls_name: tls_name.map(Into::into),
        }
    }

    fn flags(args: &[&str]) -> ConnectionArgs {
        let mut argv = vec!["asudf"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap().connection
    }

    /// Runs `resolve_with` over given files and variables; returns the target
    /// and the prompts that were shown.
    fn run(
        args: &[&str],
        files: &[&Path],
        vars: &[(&str, &str)],
    ) -> (Result<Target, ConfigError>, Vec<String>) {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = move |name: &str| vars.get(name).cloned();
        let mut prompts = Vec::new();
        let mut prompt = |text: &str| {
            prompts.push(text.to_owned());
            Ok("typed".to_owned())
        };
        let mut env = Environment {
            default_files: files.iter().map(|p| p.to_path_buf()).collect(),
            var: &var,
            data_dir: Some(PathBuf::from("/home/u/.local/share")),
            prompt: &mut prompt,
        };
        let result = resolve_with(&flags(args), &mut env);
        (result, prompts)
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn cluster(
        target: Target,
    ) -> (
        Vec<Seed>,
        Option<String>,
        Option<Secret>,
        Option<TlsSettings>,
    ) {
        match target {
            Target::Cluster {
                seeds,
                user,
                password,
                tls,
                ..
            } => (seeds, user, password, tls),
            other => panic!("not a cluster: {other:?}"),
        }
    }

    #[test]
    fn host_forms() {
        assert_eq!(parse_hosts("db1", 3000).unwrap(), [seed("db1", 3000, None)]);
        assert_eq!(
            parse_hosts("db1:3100", 3000).unwrap(),
            [seed("db1", 3100, None)]
        );
        assert_eq!(
            parse_hosts("db1:cert1", 3000).unwrap(),
            [seed("db1", 3000, Some("cert1"))]
        );
        assert_eq!(
            parse_hosts("10.0.0.1:cert1:4333", 3000).unwrap(),
            [seed("10.0.0.1", 4333, Some("cert1"))]
        );
        assert_eq!(
            parse_hosts("[::1]", 3000).unwrap(),
            [seed("::1", 3000, None)]
        );
        assert_eq!(
            parse_hosts("[::1]:3100", 3000).unwrap(),
            [seed("::1", 3100, None)]
        );
        assert_eq!(
            parse_hosts("[fe80::1]:tls:4333", 3000).unwrap(),
            [seed("fe80::1", 4333, Some("tls"))]
        );
        assert_eq!(
            parse_hosts("a:3000, b:3001,c", 4000).unwrap(),
            [
                seed("a", 3000, None),
                seed("b", 3001, None),
                seed("c", 4000, None)
            ]
        );
        assert_eq!(seed("::1", 3000, None).to_string(), "[::1]:3000");
        assert_eq!(
            seed("db", 3000, Some("n")).to_host(),
            aerospike::Host::new_tls("db", "n", 3000)
        );
    }

    #[test]
    fn bad_hosts_say_why_in_one_sentence() {
        let bad = |text: &str| parse_hosts(text, 3000).unwrap_err().to_string();
        assert_eq!(
            bad("db1:70000"),
            "bad host 'db1:70000': port '70000' is not a number from 1 to 65535"
        );
        assert_eq!(
            bad("db1:0"),
            "bad host 'db1:0': port '0' is not a number from 1 to 65535"
        );
        assert_eq!(
            bad("db1:"),
            "bad host 'db1:': port '' is not a number from 1 to 65535"
        );
        assert_eq!(
            bad("db1:n:x"),
            "bad host 'db1:n:x': port 'x' is not a number from 1 to 65535"
        );
        assert_eq!(
            bad("a,,b"),
            "bad host '': the host name is empty (check for a stray comma)"
        );
        assert_eq!(bad(":3000"), "bad host ':3000': the host name is empty");
        assert_eq!(
            bad("::1"),
            "bad host '::1': IPv6 addresses go in brackets, e.g. [::1]:3000"
        );
        assert_eq!(
            bad("fe80::1:3000"),
            "bad host 'fe80::1:3000': IPv6 addresses go in brackets, e.g. [::1]:3000"
        );
        assert_eq!(
            bad("[::1"),
            "bad host '[::1': missing ']' after the IPv6 address"
        );
        assert_eq!(
            bad("[::1]3000"),
            "bad host '[::1]3000': expected ':' after ']'"
        );
        assert_eq!(
            bad("dbx::3000"),
            "bad host 'dbx::3000': the TLS name between the colons is empty"
        );
        assert_eq!(
            bad("[::1]:a:1:2"),
            "bad host '[::1]:a:1:2': expected HOST, HOST:PORT, HOST:TLSNAME:PORT or [IPv6]:PORT"
        );
    }

    #[test]
    fn nothing_configured_means_the_local_sandbox() {
        let (target, prompts) = run(&[], &[], &[]);
        assert_eq!(
            target.unwrap(),
            Target::Sandbox {
                dir: Some(PathBuf::from("/home/u/.local/share/asudf/sandbox"))
            }
        );
        assert!(prompts.is_empty());
        assert_eq!(
            run(&["--memory"], &[], &[]).0.unwrap(),
            Target::Sandbox { dir: None }
        );
        assert_eq!(
            run(&["--sandbox-dir", "/tmp/sb"], &[], &[]).0.unwrap(),
            Target::Sandbox {
                dir: Some("/tmp/sb".into())
            }
        );
    }

    #[test]
    fn sandbox_flags_win_over_a_configured_host() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "astools.conf", "[cluster]\nhost = \"db1\"\n");
        assert_eq!(
            run(&["--memory"], &[&file], &[("ASUDF_HOST", "db2")])
                .0
                .unwrap(),
            Target::Sandbox { dir: None }
        );
    }

    #[test]
    fn no_data_dir_is_a_clear_error() {
        let var = |_: &str| None;
        let mut prompt = |_: &str| Ok(String::new());
        let mut env = Environment {
            default_files: vec![],
            var: &var,
            data_dir: None,
            prompt: &mut prompt,
        };
        let e = resolve_with(&flags(&[]), &mut env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no data directory is known for the sandbox; give --sandbox-dir DIR or --memory"
        );
    }

    #[test]
    fn precedence_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let global = write(
            &dir,
            "global.conf",
            "[cluster]\nhost = \"g1\"\nport = 3100\nuser = \"gu\"\ntls-name = \"gname\"\n",
        );
        let user = write(
            &dir,
            "user.conf",
            "[cluster]\nhost = \"u1,u2\"\n[aql]\ntimeout = 5\n",
        );

        // Later file wins key by key; keys it lacks come from the earlier one.
        let (seeds, user_name, password, tls) =
            cluster(run(&[], &[&global, &user], &[]).0.unwrap());
        assert_eq!(
            seeds,
            [
                seed("u1", 3100, Some("gname")),
                seed("u2", 3100, Some("gname"))
            ]
        );
        assert_eq!(user_name.as_deref(), Some("gu"));
        assert_eq!(
            password,
            Some(Secret::new("typed")),
            "a user without a password is asked"
        );
        assert_eq!(tls.unwrap().name.as_deref(), Some("gname"));

        // The environment beats the files.
        let vars = [
            ("ASUDF_HOST", "e1"),
            ("ASUDF_PORT", "3200"),
            ("ASUDF_USER", "eu"),
            ("ASUDF_PASSWORD", "ep"),
        ];
        let (seeds, user_name, password, _) =
            cluster(run(&[], &[&global, &user], &vars).0.unwrap());
        assert_eq!(seeds, [seed("e1", 3200, Some("gname"))]);
        assert_eq!(user_name.as_deref(), Some("eu"));
        assert_eq!(password, Some(Secret::new("ep")));

        // Flags beat both.
        let args = [
            "-h",
            "f1:3300",
            "-h",
            "f2",
            "-p",
            "3400",
            "-U",
            "fu",
            "-P=fp",
            "--tls-name",
            "fname",
        ];
        let (seeds, user_name, password, tls) =
            cluster(run(&args, &[&global, &user], &vars).0.unwrap());
        assert_eq!(
            seeds,
            [
                seed("f1", 3300, Some("fname")),
                seed("f2", 3400, Some("fname"))
            ]
        );
        assert_eq!(user_name.as_deref(), Some("fu"));
        assert_eq!(password, Some(Secret::new("fp")));
        assert_eq!(tls.unwrap().name.as_deref(), Some("fname"));
    }

    #[test]
    fn config_file_flag_replaces_the_default_files() {
        let dir = tempfile::tempdir().unwrap();
        let default = write(
            &dir,
            "default.conf",
            "[cluster]\nhost = \"d1\"\nuser = \"du\"\n",
        );
        let mine = write(&dir, "mine.conf", "[cluster]\nhost = \"m1\"\n");
        let (seeds, user, password, _) = cluster(
            run(&["--config-file", mine.to_str().unwrap()], &[&default], &[])
                .0
                .unwrap(),
        );
        assert_eq!(seeds, [seed("m1", 3000, None)]);
        assert_eq!((user, password), (None, None));
    }

    #[test]
    fn missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("absent.conf");
        // Default files may be missing.
        assert!(matches!(
            run(&[], &[&absent], &[]).0.unwrap(),
            Target::Sandbox { .. }
        ));
        // A file named on the command line must exist.
        let e = run(&["--config-file", absent.to_str().unwrap()], &[], &[])
            .0
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("cannot read config file {}: ", absent.display())),
            "{e}"
        );
    }

    #[test]
    fn bad_toml_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let broken = write(
            &dir,
            "broken.conf",
            "# tools\n[cluster]\nhost = \"db1\nport = 3000\n",
        );
        let e = run(&[], &[&broken], &[]).0.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("config file {}: line 3: ", broken.display())),
            "{e}"
        );
        let wrong_type = write(
            &dir,
            "wrong.conf",
            "[cluster]\nhost = \"db1\"\n\nport = \"x\"\n",
        );
        let e = run(&[], &[&wrong_type], &[]).0.unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("config file {}: line 4: ", wrong_type.display())),
            "{e}"
        );
        assert!(e.contains("u16"), "{e}");
    }

    #[test]
    fn other_tools_keys_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "astools.conf",
            "[cluster]\nhost = \"db1\"\nauth = \"INTERNAL\"\nservices-alternate = true\n\n[asadm]\nno-color = true\n",
        );
        let (seeds, ..) = cluster(run(&[], &[&file], &[]).0.unwrap());
        assert_eq!(seeds, [seed("db1", 3000, None)]);
    }

    #[test]
    fn password_forms_of_aerospikes_tools() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "pw", "from-file\nsecond line\n");
        let vars = [("PW", "from-env"), ("PW64", "ZnJvbS1lbnYtYjY0")];
        let file_form = format!("-P=file:{}", file.display());
        let cases = [
            ("-P=env:PW", "from-env"),
            ("-P=env-b64:PW64", "from-env-b64"),
            ("-P=b64:ZnJvbS1iNjQ=", "from-b64"),
            (file_form.as_str(), "from-file"),
            ("-P=plain:text", "plain:text"),
        ];
        for (flag, password) in cases {
            let (target, _) = run(&["-h", "db", "-U", "u", flag], &[], &vars);
            assert_eq!(
                cluster(target.unwrap()).2,
                Some(Secret::new(password)),
                "{flag}"
            );
        }
        // The config file's password too.
        let conf = write(
            &dir,
            "astools.conf",
            "[cluster]\nhost = \"db\"\nuser = \"u\"\npassword = \"env:PW\"\n",
        );
        let (target, _) = run(&[], &[conf.as_path()], &vars);
        assert_eq!(cluster(target.unwrap()).2, Some(Secret::new("from-env")));
        // What is wrong is said, never the password.
        let refused = |flag: &str| {
            let (target, _) = run(&["-h", "db", "-U", "u", flag], &[], &vars);
            target.unwrap_err().to_string()
        };
        assert_eq!(
            refused("-P=env:NOPE"),
            "the password names $NOPE, which is not set"
        );
        assert_eq!(
            refused("-P=b64:%%"),
            "the password after 'b64:' is not base64 of UTF-8 text"
        );
        assert!(
            refused("-P=file:/no/such").starts_with("the password file /no/such cannot be read: ")
        );
    }

    #[test]
    fn a_password_with_no_user_or_no_terminal_says_what_to_give() {
        let said = run(&["-h", "db", "-P=secret"], &[], &[]).0.unwrap_err();
        assert!(
            said.to_string()
                .starts_with("-P/--password was given without a user: add -U/--user NAME"),
            "{said}"
        );
        let var = |_: &str| None;
        let mut no_tty = |_: &str| Err(io::Error::from_raw_os_error(6));
        let mut env = Environment {
            default_files: Vec::new(),
            var: &var,
            data_dir: None,
            prompt: &mut no_tty,
        };
        let said = resolve_with(&flags(&["-h", "db", "-U", "u"]), &mut env).unwrap_err();
        assert!(
            said.to_string().starts_with("a password is needed and there is no terminal to ask for it on: give it with -P=PASSWORD, ASUDF_PASSWORD"),
            "{said}"
        );
    }

    #[test]
    fn passwords() {
        // -P alone asks, naming the user.
        let (target, prompts) = run(
            &["-h", "db", "-U", "admin", "-P"],
            &[],
            &[("ASUDF_PASSWORD", "env")],
        );
        assert_eq!(cluster(target.unwrap()).2, Some(Secret::new("typed")));
        assert_eq!(prompts, ["Password for admin: "]);
        // No user and no password: nothing asked.
        let (target, prompts) = run(&["-h", "db"], &[], &[]);
        assert_eq!(cluster(target.unwrap()).2, None);
        assert!(prompts.is_empty());
        // An empty password from the environment is a password.
        let (target, prompts) = run(&["-h", "db", "-U", "u"], &[], &[("ASUDF_PASSWORD", "")]);
        assert_eq!(cluster(target.unwrap()).2, Some(Secret::new("")));
        assert!(prompts.is_empty());
        // Never shown by Debug.
        let (target, _) = run(&["-h", "db", "-U", "u", "-P=hunter2"], &[], &[]);
        let debug = format!("{:?}", target.unwrap());
        assert!(
            !debug.contains("hunter2") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn a_port_alone_means_this_machine() {
        let (seeds, ..) = cluster(run(&["-p", "4000"], &[], &[]).0.unwrap());
        assert_eq!(seeds, [seed("127.0.0.1", 4000, None)]);
    }

    #[test]
    fn tls_rules() {
        let (seeds, .., tls) = cluster(run(&["-h", "db:n1:4333,db2"], &[], &[]).0.unwrap());
        assert_eq!(tls, None);
        assert_eq!(seeds[0].tls_name, None, "names are dropped without TLS");

        let (seeds, .., tls) = cluster(
            run(
                &["-h", "db:n1:4333,db2", "--tls-enable", "--tls-name", "dflt"],
                &[],
                &[],
            )
            .0
            .unwrap(),
        );
        assert_eq!(
            tls,
            Some(TlsSettings {
                name: Some("dflt".into()),
                ..TlsSettings::default()
            })
        );
        assert_eq!(
            seeds,
            [
                seed("db", 4333, Some("n1")),
                seed("db2", 3000, Some("dflt"))
            ]
        );

        let (.., tls) = cluster(
            run(&["-h", "db", "--tls-cafile", "ca.pem"], &[], &[])
                .0
                .unwrap(),
        );
        assert_eq!(tls.unwrap().cafile, Some(PathBuf::from("ca.pem")));

        let dir = tempfile::tempdir().unwrap();
        let off = write(
            &dir,
            "off.conf",
            "[cluster]\nhost = \"db\"\ntls-enable = false\ntls-name = \"x\"\n",
        );
        assert_eq!(cluster(run(&[], &[&off], &[]).0.unwrap()).3, None);
        assert!(
            cluster(run(&["--tls-enable"], &[&off], &[]).0.unwrap())
                .3
                .is_some()
        );

        let e = run(&["-h", "db", "--tls-certfile", "c.pem"], &[], &[])
            .0
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "a TLS client certificate needs its key: give both --tls-certfile and --tls-keyfile"
        );
    }

    #[test]
    fn bad_env_port_and_bad_flag_host() {
        let e = run(&[], &[], &[("ASUDF_PORT", "http")])
            .0
            .unwrap_err()
            .to_string();
        assert_eq!(e, "ASUDF_PORT is 'http', not a port number from 1 to 65535");
        let e = run(&["-h", "db:99999"], &[], &[])
            .0
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "bad host 'db:99999': port '99999' is not a number from 1 to 65535"
        );
    }

    #[test]
    fn timeout_flag() {
        match run(&["-h", "db", "--timeout", "250"], &[], &[]).0.unwrap() {
            Target::Cluster { timeout, .. } => {
                assert_eq!(timeout, Some(Duration::from_millis(250)))
            }
            other => panic!("{other:?}"),
        }
    }
}

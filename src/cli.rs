//! The command line: every command and the connection flags they share.
//!
//! Connection flags follow Aerospike's own tools (aql, asadm): `-h/--host`,
//! `-p/--port`, `-U/--user`, `-P/--password`, TLS options. So help is
//! `--help` only (`-h` is the host). Every flag is global: it is accepted
//! before or after the subcommand and among positional arguments; `--` ends
//! the flags. Negative numbers are values (`apply test k m.f -5 -1.5`); any
//! other word starting with `-` (`-inf`) goes after `--`.
//!
//! Keys, arguments and bin values are in the literal syntax of
//! [`crate::value`], read with [`value::parse_arg`]: a bare word that is not
//! a number, `nil`, `true` or `false` is a string.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use aerospike::Value;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::config::Secret;
use crate::value;
use crate::where_clause::{self, Where};

/// Interactive console for Aerospike Lua UDFs, with an embedded sandbox.
///
/// Without a subcommand, opens the console (on FILE if given). Without a
/// configured host, every command works on your local sandbox.
#[derive(Debug, Parser)]
#[command(name = "asudf", version, disable_help_flag = true)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print help.
    #[arg(long, global = true, action = ArgAction::Help)]
    help: Option<bool>,

    #[command(subcommand)]
    pub command: Option<Command>,

    /// Lua file to open in the console.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// The console lints for this Lua library mode on a cluster (a sandbox
    /// reports its own).
    #[arg(long, value_enum, value_name = "MODE")]
    pub lua_libs: Option<LuaLibsArg>,
}

/// Where to connect, shared by every command (all flags are global).
#[derive(Clone, Default, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectionArgs {
    /// Seed host: HOST, HOST:PORT, HOST:TLSNAME:PORT or [IPv6]:PORT; repeat
    /// the flag or separate hosts with commas.
    #[arg(short = 'h', long = "host", global = true, value_name = "HOST[:PORT]")]
    pub hosts: Vec<String>,

    /// Port of hosts given without one (default 3000). For `serve`, the port
    /// to listen on.
    #[arg(short = 'p', long, global = true, value_name = "PORT")]
    pub port: Option<u16>,

    /// User name. For `serve`, the user the sandbox requires.
    #[arg(short = 'U', long, global = true, value_name = "NAME")]
    pub user: Option<String>,

    /// Password, given as -P=PASSWORD or --password=PASSWORD; with no
    /// value, asks for it without echo (also read from ASUDF_PASSWORD).
    /// Not for `serve`: it reads --password-file.
    // The value needs '=': a word after a bare -P is never taken for it
    // (`-P udf ls` would send 'udf' and run 'ls').
    #[arg(
        short = 'P',
        long,
        global = true,
        num_args = 0..=1,
        require_equals = true,
        value_name = "PASSWORD"
    )]
    pub password: Option<Option<Secret>>,

    /// Use TLS (implied by --tls-cafile, --tls-certfile or --tls-keyfile).
    #[arg(long, global = true)]
    pub tls_enable: bool,

    /// TLS name to verify, for hosts given without one.
    #[arg(long, global = true, value_name = "NAME")]
    pub tls_name: Option<String>,

    /// CA certificates to trust (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cafile: Option<PathBuf>,

    /// Client certificate chain for mutual TLS (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_certfile: Option<PathBuf>,

    /// Client private key for mutual TLS (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_keyfile: Option<PathBuf>,

    /// Time limit of each request in milliseconds; for `apply`, the UDF's
    /// deadline on the server; for `aggregate`, the whole stream's, the
    /// client's part included (without it, that part's Lua may run 1000 ms
    /// on each value). At most 4294967295: requests carry it in 32 bits.
    #[arg(long, global = true, value_name = "MS", value_parser = clap::value_parser!(u32))]
    pub timeout: Option<u32>,

    /// Use the sandbox kept in DIR instead of the default one.
    #[arg(long, global = true, value_name = "DIR", conflicts_with_all = ["memory", "hosts"])]
    pub sandbox_dir: Option<PathBuf>,

    /// Use a sandbox in memory that keeps nothing.
    #[arg(long, global = true, conflicts_with = "hosts")]
    pub memory: bool,

    /// Read settings from this file instead of /etc/aerospike/astools.conf
    /// and ~/.aerospike/astools.conf.
    #[arg(long, global = true, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

// Written by hand so the password never reaches a log (Secret redacts too;
// this keeps the `Some(None)` "ask for it" case readable).
impl fmt::Debug for ConnectionArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let password = match &self.password {
            None => "none",
            Some(None) => "prompt",
            Some(Some(_)) => "<redacted>",
        };
        f.debug_struct("ConnectionArgs")
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &format_args!("{password}"))
            .field("tls_enable", &self.tls_enable)
            .field("tls_name", &self.tls_name)
            .field("tls_cafile", &self.tls_cafile)
            .field("tls_certfile", &self.tls_certfile)
            .field("tls_keyfile", &self.tls_keyfile)
            .field("timeout", &self.timeout)
            .field("sandbox_dir", &self.sandbox_dir)
            .field("memory", &self.memory)
            .field("config_file", &self.config_file)
            .finish()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register, list, show and remove UDF modules.
    #[command(subcommand)]
    Udf(UdfCommand),
    /// Call a record UDF: apply NS[.SET] KEY MODULE.FUNCTION [ARGS…].
    Apply(ApplyArgs),
    /// Read, write and delete records.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Manage the local sandbox.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Serve a sandbox on the network (listens on --port, default 3000).
    Serve(ServeArgs),
    /// Lint Lua modules for UDF mistakes (no server needed).
    Check(CheckArgs),
    /// Read records: query NS[.SET] [--where CLAUSE] [--bins a,b] [--max-records N].
    Query(QueryArgs),
    /// Run a stream UDF over records: aggregate NS[.SET] MODULE.FUNCTION [ARGS…] [--where CLAUSE].
    Aggregate(StreamUdfArgs),
    /// Run a record UDF on every selected record as a background job:
    /// execute NS[.SET] MODULE.FUNCTION [ARGS…] [--where CLAUSE] [--rps N] [--no-wait].
    Execute(ExecuteArgs),
    /// Background jobs: jobs [ls | show ID | abort ID].
    Jobs {
        #[command(subcommand)]
        action: Option<JobsCommand>,
    },
    /// Secondary indexes: index create | ls | rm.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Sample modules with their data: sample ls | load NAME.
    #[command(subcommand)]
    Sample(SampleCommand),
    /// Run UDF test files (*.udftest.toml), each on its own in-memory sandbox
    /// unless a host is given.
    Test(TestArgs),
    /// The console's linter: one request as JSON on stdin (internal).
    #[command(name = "lint-worker", hide = true)]
    LintWorker,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SampleCommand {
    /// The samples, with what each shows.
    Ls,
    /// Register a sample's module and write its data and index.
    Load { name: String },
}

/// Which records a query, aggregation or job reads.
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Namespace and optional set: `test` or `test.demo` (no set: the whole namespace).
    #[arg(value_name = "NS[.SET]")]
    pub target: NsSet,
    /// Select by a secondary index: `BIN = V`, `BIN BETWEEN A AND B`,
    /// `LIST|MAPKEYS|MAPVALUES BIN = V`, `BIN WITHIN geo'{…}'`,
    /// `BIN WITHIN RADIUS(lng, lat, meters)`, `BIN CONTAINS geo'{…}'`.
    #[arg(long = "where", value_name = "CLAUSE", value_parser = parse_where)]
    pub where_clause: Option<Where>,
}

#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Read only these bins (comma-separated; an empty value reads none).
    #[arg(long, value_name = "A,B", value_parser = parse_bins)]
    pub bins: Option<BinNames>,
    /// Stop after N records (from 1; leave it out for all).
    #[arg(long, value_name = "N", value_parser = |text: &str| {
        parse_max_records(text).map_err(|e| format!("{e} (leave --max-records out for all)"))
    })]
    pub max_records: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct StreamUdfArgs {
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// The UDF: MODULE.FUNCTION.
    #[arg(value_name = "MODULE.FUNCTION")]
    pub call: Call,
    /// Arguments in the literal syntax.
    #[arg(value_name = "ARGS", value_parser = parse_value, allow_negative_numbers = true)]
    pub args: Vec<Value>,
}

#[derive(Debug, Clone, Args)]
pub struct ExecuteArgs {
    #[command(flatten)]
    pub udf: StreamUdfArgs,
    /// Records per second (default: the server's throttle).
    #[arg(long, value_name = "N")]
    pub rps: Option<u32>,
    /// Print the job id and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum JobsCommand {
    /// Every job the server remembers.
    Ls,
    /// One job's fields.
    Show {
        #[arg(value_parser = parse_job_id)]
        id: u64,
    },
    /// Stop a running job.
    Abort {
        #[arg(value_parser = parse_job_id)]
        id: u64,
    },
}

/// A job id as printed: `123`, or `"123"` as `--json` gives it (`jq .job`).
pub fn parse_job_id(text: &str) -> Result<u64, String> {
    let digits = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    digits
        .parse()
        .map_err(|_| format!("'{text}': a job id is a number, e.g. 123 or \"123\""))
}

#[derive(Debug, Clone, Subcommand)]
pub enum IndexCommand {
    /// Create an index: index create NS[.SET] BIN TYPE [--collection list|mapkeys|mapvalues] [--name NAME].
    Create {
        #[arg(value_name = "NS[.SET]")]
        target: NsSet,
        bin: String,
        #[arg(value_name = "TYPE", value_parser = ["numeric", "string", "blob", "geo2dsphere"], ignore_case = true)]
        kind: String,
        /// Index list elements, map keys or map values instead of the bin's own value.
        #[arg(long, value_parser = ["list", "mapkeys", "mapvalues"], ignore_case = true)]
        collection: Option<String>,
        /// The index name (default: NS_SET_BIN, with the collection).
        #[arg(long)]
        name: Option<String>,
    },
    /// List indexes, of one namespace or all.
    Ls { ns: Option<String> },
    /// Drop an index.
    Rm { ns: String, name: String },
}

/// `test`'s own flags.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Scenario files, or folders searched for *.udftest.toml (default: the
    /// current folder).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Rewrite the expectations of failing steps from what came back.
    #[arg(long)]
    pub update: bool,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// With a host: register the files' modules (this replaces them for
    /// every user of the cluster). Without it the registered source must
    /// match the file's.
    #[arg(long)]
    pub register: bool,
}

/// `asudf check FILE.lua…`: exit 0 clean (warnings allowed), 4 errors, 2 usage.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Lua files to lint (`-` reads standard input).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The server's Lua library mode to lint for.
    #[arg(long, value_enum, default_value_t = LuaLibsArg::Default)]
    pub lua_libs: LuaLibsArg,
    /// The function an apply will call (flags it if it is `local`).
    #[arg(long, value_name = "NAME")]
    pub function: Option<String>,
    /// Rule levels from this file instead of the nearest asudf-lint.toml.
    #[arg(long, value_name = "FILE")]
    pub lint_config: Option<PathBuf>,
    /// Switch a rule off (repeatable).
    #[arg(long, value_name = "RULE")]
    pub allow: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum UdfCommand {
    /// Register a Lua file as a module.
    Put {
        /// The Lua source file (`-` reads standard input, and needs --name).
        file: PathBuf,
        /// Module name to register it under (default: the file's name).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// List registered modules.
    #[command(visible_alias = "list")]
    Ls,
    /// Print a module's source.
    #[command(visible_alias = "get")]
    Cat {
        /// Module name (`counter` or `counter.lua`).
        name: String,
    },
    /// Remove a module.
    #[command(visible_alias = "remove")]
    Rm {
        /// Module name (`counter` or `counter.lua`).
        name: String,
    },
}

/// Which record, and which UDF with which arguments.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Namespace and optional set: `test` or `test.demo`.
    #[arg(value_name = "NS[.SET]")]
    pub target: NsSet,
    /// KEY MODULE.FUNCTION [ARGS…]; with --keys or --keys-from, MODULE.FUNCTION
    /// [ARGS…]. A key is an integer, a string or bytes (`5`, `user1`, `'5'`,
    /// `x'0a'`); arguments are literals (`5`, `-1.5`, `name`, `'5'`, `[1,2]`,
    /// `{'a': 1}`).
    #[arg(
        value_name = "KEY MODULE.FUNCTION [ARGS]",
        required = true,
        num_args = 1..,
        allow_negative_numbers = true
    )]
    pub words: Vec<String>,
    /// Apply to these keys in one batch request (one comma-separated value;
    /// a comma in a quoted key is the key's: `a,'b,c',7`).
    #[arg(long, value_name = "K1,K2,…", conflicts_with = "keys_from")]
    pub keys: Option<String>,
    /// Apply to the keys in FILE (one per line; `-` reads standard input) in one batch request.
    #[arg(long, value_name = "FILE")]
    pub keys_from: Option<PathBuf>,
    /// Send the key with the request, so the server can store it.
    #[arg(long)]
    pub send_key: bool,
}

/// Which records an apply calls the UDF on.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyKeys {
    One(Value),
    /// A batch apply.
    Many(Vec<Value>),
}

/// An `apply` command line, its words read.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyParts {
    pub keys: ApplyKeys,
    pub call: Call,
    pub args: Vec<Value>,
}

impl ApplyArgs {
    /// Reads the key(s), the call and the arguments; `read_keys` gives the
    /// text of `--keys-from` (a file or standard input), or says why not.
    pub fn parts(
        &self,
        read_keys: impl FnOnce(&Path) -> Result<String, String>,
    ) -> Result<ApplyParts, String> {
        let batch = self.keys.is_some() || self.keys_from.is_some();
        let mut words = self.words.iter();
        let keys = if batch {
            let (text, file) = match (&self.keys, &self.keys_from) {
                (Some(list), _) => (list.clone(), None),
                (None, Some(file)) => {
                    let text = read_keys(file).map_err(|e| format!("--keys-from: {e}"))?;
                    (text, Some(file))
                }
                (None, None) => unreachable!("batch means one of them"),
            };
            if text.trim().is_empty() {
                return Err("no keys given".into());
            }
            ApplyKeys::Many(match file {
                None => list_keys(&text)?,
                Some(file) => file_keys(&text, &input_name(file))?,
            })
        } else {
            let key = words.next().ok_or("expected KEY MODULE.FUNCTION")?;
            ApplyKeys::One(
                parse_key(key).map_err(|e| format!("key '{}': {e}", excerpt(key, e.at)))?,
            )
        };
        let call = words
            .next()
            .ok_or("expected MODULE.FUNCTION after the key, e.g. counter.increment")?;
        let call = Call::parse(call)?;
        let args = words
            .enumerate()
            .map(|(i, w)| {
                parse_value(w)
                    .map_err(|e| format!("argument {} ('{}'): {e}", i + 1, excerpt(w, e.at)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApplyParts { keys, call, args })
    }
}

/// Whether a file argument is `-`, standard input (`--keys-from`, `udf
/// put`, `check`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// What messages call a file argument ([`is_stdin`]: "standard input").
pub fn input_name(path: &Path) -> String {
    if is_stdin(path) {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

/// The keys of `--keys`; an error gives its column in the whole list.
fn list_keys(list: &str) -> Result<Vec<Value>, String> {
    split_commas(list)
        .into_iter()
        .enumerate()
        .map(|(i, (start, piece))| {
            let lead = piece.len() - piece.trim_start().len();
            let at = list[..start + lead].chars().count();
            let entry = piece.trim();
            if entry.is_empty() {
                let (column, key) = (at + 1, i + 1);
                return Err(format!(
                    "--keys: column {column}: key {key} is empty: a comma too many"
                ));
            }
            key_at(entry, at).map_err(|(column, e)| format!("--keys: column {column}: {e}"))
        })
        .collect()
}

/// The keys of `--keys-from`, one a line (blank lines skipped); an error
/// is `NAME:LINE:COLUMN: …`, as in test files.
fn file_keys(text: &str, name: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let at = line.chars().take_while(|c| c.is_whitespace()).count();
            key_at(line.trim(), at).map_err(|(column, e)| format!("{name}:{}:{column}: {e}", i + 1))
        })
        .collect()
}

/// A key from `entry`, which starts `at` characters into its line; an
/// error is its column in that line (from 1) and what is wrong.
fn key_at(entry: &str, at: usize) -> Result<Value, (usize, String)> {
    let key = value::parse_arg(entry).map_err(|e| (at + e.column, e.message))?;
    only_key_types(key).map_err(|e| (at + 1, e))
}

/// Splits `--keys` at the commas outside quotes (`a,'b,c'` is two keys),
/// each piece with its byte offset; in quotes a backslash escapes the next
/// character, as in the literal syntax. Empty pieces are kept, for the
/// caller to report.
fn split_commas(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quotes) = (0, value::Quotes::default());
    for (i, c) in text.char_indices() {
        if c == ',' && !quotes.inside() {
            out.push((start, &text[start..i]));
            start = i + 1;
        }
        quotes.step(c);
    }
    out.push((start, &text[start..]));
    out
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// Print a record's bins, generation and time to live.
    Get(RecordArgs),
    /// Write bins: record put NS[.SET] KEY BIN=VALUE…
    Put {
        #[command(flatten)]
        record: RecordArgs,
        /// Bins to write, as NAME=VALUE (value in the literal syntax).
        #[arg(value_name = "BIN=VALUE", required = true)]
        bins: Vec<BinAssign>,
        /// Send the key with the request, so the server stores it.
        #[arg(long)]
        send_key: bool,
    },
    /// Delete a record.
    #[command(visible_alias = "delete")]
    Rm(RecordArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// Namespace and optional set: `test` or `test.demo`.
    #[arg(value_name = "NS[.SET]")]
    pub target: NsSet,
    /// Record key: an integer, a string or bytes.
    #[arg(value_name = "KEY", value_parser = parse_key, allow_negative_numbers = true)]
    pub key: Value,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Remove every module and record of the local sandbox.
    Reset {
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Call a UDF N times: bench apply NS[.SET] KEY MODULE.FUNCTION [ARGS…] -n N -c C
    Apply(BenchApplyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct BenchApplyArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// Number of calls.
    #[arg(
        short = 'n',
        long = "count",
        value_name = "N",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub count: u64,
    /// Calls in flight at once (at most the client's 256 connections per node,
    /// so no call waits for a connection).
    #[arg(short = 'c', long, value_name = "CONCURRENCY", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Also make as many calls through the bare `aerospike` client, in rounds
    /// alternating with asudf's, and report asudf's throughput as a ratio of it.
    #[arg(long)]
    pub baseline: bool,
    /// Exit 0 even when some calls failed (they are reported either way).
    #[arg(long)]
    pub allow_errors: bool,
}

/// `serve`'s own flags; the port and the user are the global `--port` and
/// `--user` (see [`ServeArgs::listen_port`]).
#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Of the connection options, serve takes --port (to listen on), --user (with \
                  --password-file), --sandbox-dir and --memory, and refuses the others."
)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback exposes the sandbox.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Namespace to serve (repeatable).
    #[arg(long = "namespace", value_name = "NAME", default_values_t = [String::from("test")])]
    pub namespaces: Vec<String>,
    /// Cluster name reported to clients.
    #[arg(long, value_name = "NAME", default_value = "sandbox")]
    pub cluster_name: String,
    /// Lua libraries UDFs may use.
    #[arg(long, value_enum, default_value_t = LuaLibsArg::Default)]
    pub lua_libs: LuaLibsArg,
    /// Cap on any UDF's run time in milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_udf_ms: Option<u64>,
    /// Records per second of a background UDF job that asks for no rate,
    /// and the most one may ask for (the server's background-query-max-rps).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub background_max_rps: u32,
    /// File holding the password of --user (first line).
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Server certificate chain (PEM) to serve TLS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM) to serve TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The port to listen on: the global `--port`, default 3000.
    pub fn listen_port(connection: &ConnectionArgs) -> u16 {
        connection.port.unwrap_or(3000)
    }

    /// Refuses, with what to give instead, the first of: a global option
    /// `serve` would ignore (it listens rather than connects), `--user`
    /// without its password, and every Lua library (`io`, `os`) open to
    /// UDFs on an address other machines can reach. The password comes
    /// only from `--password-file`, kept off the command line (which every
    /// user of the machine can read in `ps`).
    pub fn check(&self, cli: &Cli) -> Result<(), String> {
        let c = &cli.connection;
        let tls = "serve's TLS files are --tls-cert and --tls-key";
        let ignored = [
            (
                !c.hosts.is_empty(),
                "-h/--host",
                "it listens on --bind and --port",
            ),
            (
                c.password.is_some(),
                "-P/--password",
                "it reads the password of --user from --password-file FILE",
            ),
            (c.tls_enable, "--tls-enable", tls),
            (c.tls_name.is_some(), "--tls-name", tls),
            (c.tls_cafile.is_some(), "--tls-cafile", tls),
            (c.tls_certfile.is_some(), "--tls-certfile", tls),
            (c.tls_keyfile.is_some(), "--tls-keyfile", tls),
            (c.timeout.is_some(), "--timeout", "it sends no requests"),
            (
                c.config_file.is_some(),
                "--config-file",
                "it reads no astools.conf",
            ),
            (
                cli.lua_libs.is_some(),
                "--lua-libs before serve",
                "give it after serve",
            ),
        ];
        if let Some((_, option, why)) = ignored.into_iter().find(|(set, _, _)| *set) {
            return Err(format!("serve does not take {option}: {why}"));
        }
        if c.user.is_some() && self.password_file.is_none() {
            return Err(
                "serve --user needs --password-file FILE (the password is its first line)".into(),
            );
        }
        // An empty name is a mistake (a variable left unset), not a user.
        if c.user.as_deref().is_some_and(|user| user.trim().is_empty()) {
            return Err("serve --user: the user name is empty".into());
        }
        // Clients must be able to name every namespace it serves.
        for name in &self.namespaces {
            let problem = if name.is_empty() {
                Some("a namespace name is empty".to_string())
            } else {
                namespace_problem(name)
            };
            if let Some(problem) = problem {
                return Err(format!("--namespace: {problem}"));
            }
        }
        if self.lua_libs == LuaLibsArg::All && !self.bind.is_loopback() {
            return Err(format!(
                "--lua-libs all lets UDFs use io and os; it is refused with --bind {} (use a loopback address)",
                self.bind
            ));
        }
        Ok(())
    }
}

/// `--lua-libs`: which standard Lua libraries UDFs see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LuaLibsArg {
    /// No `io`, `os` limited to time functions, no `debug` (current releases' default).
    Default,
    /// Every standard library, as 8.1 servers up to 8.1.2.0 (loopback only).
    All,
    /// The documented hardened mode.
    Hardened,
}

impl From<LuaLibsArg> for crate::sandbox::LuaLibs {
    fn from(arg: LuaLibsArg) -> Self {
        match arg {
            LuaLibsArg::Default => crate::sandbox::LuaLibs::Default,
            LuaLibsArg::All => crate::sandbox::LuaLibs::All,
            LuaLibsArg::Hardened => crate::sandbox::LuaLibs::Hardened,
        }
    }
}

/// A namespace and an optional set, written `test` or `test.demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsSet {
    pub namespace: String,
    pub set: Option<String>,
}

/// The server's limits on names, in bytes.
const MAX_NAMESPACE_LEN: usize = 31;
const MAX_SET_LEN: usize = 63;
const MAX_BIN_LEN: usize = 15;

/// What is wrong with a namespace name that is not empty, if anything; the
/// console's form checks its namespace field with it. A `.` would end it in
/// `NS.SET`.
pub fn namespace_problem(name: &str) -> Option<String> {
    name_problem("namespace", name, MAX_NAMESPACE_LEN, true)
}

/// What is wrong with a set name that is not empty, if anything (the
/// form's set field too).
pub fn set_problem(name: &str) -> Option<String> {
    name_problem("set", name, MAX_SET_LEN, false)
}

/// Names are words the server's info commands can carry
/// ([`crate::client::info_name_problem`]). A namespace is also one word of
/// the server's configuration file, so it takes no spaces (most often a
/// clause or a list typed in the wrong place) and no `.`; a set is named by
/// the clients that write it, so only the info rule holds for it.
fn name_problem(what: &str, name: &str, max: usize, namespace: bool) -> Option<String> {
    if name.len() > max {
        return Some(format!("{what} '{name}' is longer than {max} bytes"));
    }
    if let Some(problem) = crate::client::info_name_problem(what, name) {
        return Some(problem);
    }
    let c = name
        .chars()
        .find(|&c| namespace && (c.is_whitespace() || c == '.'))?;
    Some(format!(
        "{what} '{name}' contains {c:?}: a {what} name takes no spaces or '.'"
    ))
}

impl NsSet {
    pub fn parse(text: &str) -> Result<NsSet, String> {
        let (namespace, set) = match text.split_once('.') {
            Some((ns, set)) => (ns, Some(set)),
            None => (text, None),
        };
        if namespace.is_empty() {
            return Err(format!(
                "'{text}': the namespace is empty (write NS or NS.SET, e.g. test.demo)"
            ));
        }
        if let Some(problem) = namespace_problem(namespace) {
            return Err(problem);
        }
        if let Some(set) = set {
            if set.is_empty() {
                return Err(format!(
                    "'{text}': the set after '.' is empty (write {namespace} for no set)"
                ));
            }
            if let Some(problem) = set_problem(set) {
                return Err(problem);
            }
        }
        Ok(NsSet {
            namespace: namespace.to_owned(),
            set: set.map(str::to_owned),
        })
    }
}

impl FromStr for NsSet {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        NsSet::parse(text)
    }
}

impl fmt::Display for NsSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.set {
            Some(set) => write!(f, "{}.{set}", self.namespace),
            None => f.write_str(&self.namespace),
        }
    }
}

/// A UDF to call, written `MODULE.FUNCTION` (`counter.increment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The module name, without `.lua`.
    pub module: String,
    pub function: String,
}

impl Call {
    /// Splits at the last `.`. A module written `counter.lua` is refused:
    /// a server answers "UDF: Execution Error 1" to it, so a call that
    /// worked here would fail when copied into an application.
    pub fn parse(text: &str) -> Result<Call, String> {
        let Some((module, function)) = text.rsplit_once('.') else {
            return Err(format!(
                "'{text}': expected MODULE.FUNCTION, e.g. counter.increment"
            ));
        };
        if let Some(stem) = module.strip_suffix(".lua")
            && !stem.is_empty()
        {
            return Err(format!(
                "'{text}': name the module without its .lua, as servers call it: {stem}.{function}"
            ));
        }
        if module.is_empty() {
            return Err(format!("'{text}': the module name before '.' is empty"));
        }
        if function.is_empty() {
            return Err(format!("'{text}': the function name after '.' is empty"));
        }
        if !is_lua_identifier(function) {
            return Err(format!(
                "'{function}' is not a Lua function name (letters, digits and _, not starting with a digit)"
            ));
        }
        Ok(Call {
            module: module.to_owned(),
            function: function.to_owned(),
        })
    }
}

fn is_lua_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for Call {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Call::parse(text)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.function)
    }
}

/// One bin to write, written `NAME=VALUE` with the value in the literal syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct BinAssign {
    pub bin: String,
    pub value: Value,
}

impl BinAssign {
    pub fn parse(text: &str) -> Result<BinAssign, WordError> {
        let at_start = |message: String| WordError { at: 0, message };
        let Some((bin, literal)) = text.split_once('=') else {
            return Err(at_start(format!(
                "'{text}': expected BIN=VALUE, e.g. count=5"
            )));
        };
        if bin.is_empty() {
            return Err(at_start(format!(
                "'{text}': the bin name before '=' is empty"
            )));
        }
        if bin.len() > MAX_BIN_LEN {
            return Err(at_start(format!(
                "bin name '{bin}' is longer than {MAX_BIN_LEN} bytes"
            )));
        }
        // The column is the whole word's, as for any other argument; clap
        // quotes the word.
        let value = value::parse_arg(literal).map_err(|mut e| {
            let at = bin.chars().count() + 1 + e.offset(literal);
            if e.line <= 1 {
                e.column += bin.chars().count() + 1;
            }
            WordError {
                at,
                message: e.to_string(),
            }
        })?;
        Ok(BinAssign {
            bin: bin.to_owned(),
            value,
        })
    }
}

impl FromStr for BinAssign {
    type Err = WordError;
    fn from_str(text: &str) -> Result<Self, WordError> {
        BinAssign::parse(text)
    }
}

/// A command-line word in the literal syntax (see [`value::parse_arg`]).
pub fn parse_value(word: &str) -> Result<Value, WordError> {
    value::parse_arg(word).map_err(|e| WordError {
        at: e.offset(word),
        message: e.to_string(),
    })
}

/// A word refused at a place in it. clap quotes the whole word in its
/// error; main cuts that to an [`excerpt`] around `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordError {
    /// Characters from the word's start to the error.
    pub at: usize,
    pub message: String,
}

impl fmt::Display for WordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WordError {}

/// The most of a word an error quotes.
const EXCERPT_CHARS: usize = 60;

/// `word` to quote in an error at character `at` (from 0): whole when
/// short, else the [`EXCERPT_CHARS`] characters around `at`, "…" marking
/// the text cut: quoted whole, a 40 KB word made a 40 KB message.
pub fn excerpt(word: &str, at: usize) -> String {
    let len = word.chars().count();
    let start = at
        .saturating_sub(EXCERPT_CHARS / 2)
        .min(len.saturating_sub(EXCERPT_CHARS));
    crate::text::window(word, start, EXCERPT_CHARS)
}

/// `--bins`: the names to read; none for an empty value.
#[derive(Debug, Clone, PartialEq)]
pub struct BinNames(pub Vec<String>);

/// `--bins A,B`: an empty value reads no bins, but an empty name in a list
/// (`a,,b`, `a,`) is a slip, refused with its column.
pub fn parse_bins(text: &str) -> Result<BinNames, WordError> {
    if text.is_empty() {
        return Ok(BinNames(Vec::new()));
    }
    let mut column = 1;
    let mut names = Vec::new();
    for name in text.split(',') {
        if name.is_empty() {
            return Err(WordError {
                at: column - 1,
                message: format!("column {column}: an empty bin name"),
            });
        }
        column += name.chars().count() + 1;
        names.push(name.to_string());
    }
    Ok(BinNames(names))
}

/// A `where` clause (see [`crate::where_clause`]).
/// A query's record limit, as `--max-records` and the console's form take
/// it: a count from 1. Zero is refused rather than read as "no limit"
/// (which the server would make of it): leaving the limit out says that.
pub fn parse_max_records(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a count of records")),
    }
}

pub fn parse_where(text: &str) -> Result<Where, WordError> {
    where_clause::parse(text).map_err(|e| WordError {
        at: e.column - 1,
        message: e.to_string(),
    })
}

/// A record key: an integer, a string or bytes.
pub fn parse_key(word: &str) -> Result<Value, WordError> {
    only_key_types(parse_value(word)?).map_err(|message| WordError { at: 0, message })
}

fn only_key_types(key: Value) -> Result<Value, String> {
    match key {
        Value::Int(_) | Value::String(_) | Value::Blob(_) => Ok(key),
        other => Err(format!(
            "a key must be an integer, a string or bytes, not {}",
            value::type_name(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["asudf"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn parse_err(args: &[&str]) -> clap::Error {
        let mut argv = vec!["asudf"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect_err("should not parse")
    }

    /// An apply command line's words, read.
    fn parts(cli: &Cli) -> ApplyParts {
        apply(cli)
            .parts(|_| unreachable!("no --keys-from here"))
            .unwrap()
    }

    /// What reading an apply command line's words says is wrong.
    fn parts_err(args: &[&str]) -> String {
        apply(&parse(args))
            .parts(|_| unreachable!("no --keys-from here"))
            .expect_err("should not read")
    }

    fn apply(cli: &Cli) -> &ApplyArgs {
        match &cli.command {
            Some(Command::Apply(a)) => a,
            other => panic!("not apply: {other:?}"),
        }
    }

    #[test]
    fn max_records_is_a_count_from_one_as_in_the_form() {
        match &parse(&["query", "test.s", "--max-records", "5"]).command {
            Some(Command::Query(q)) => assert_eq!(q.max_records, Some(5)),
            other => panic!("not query: {other:?}"),
        }
        // 0 is refused, not taken as no limit: leaving the option out is that.
        let error = parse_err(&["query", "test.s", "--max-records", "0"]).to_string();
        assert!(
            error.contains("'0' is not a count of records (leave --max-records out for all)"),
            "{error}"
        );
    }

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_opens_the_console() {
        let cli = parse(&[]);
        assert!(cli.command.is_none() && cli.file.is_none());
        let cli = parse(&["counter.lua", "-h", "db1"]);
        assert_eq!(cli.file, Some(PathBuf::from("counter.lua")));
        assert_eq!(cli.connection.hosts, ["db1"]);
    }

    #[test]
    fn dash_h_is_the_host_and_help_is_long_only() {
        let cli = parse(&["-h", "10.0.0.1:3100", "udf", "ls"]);
        assert_eq!(cli.connection.hosts, ["10.0.0.1:3100"]);
        assert_eq!(parse_err(&["--help"]).kind(), ErrorKind::DisplayHelp);
        assert_eq!(
            parse_err(&["udf", "ls", "--help"]).kind(),
            ErrorKind::DisplayHelp
        );
        assert_eq!(parse_err(&["udf", "--help"]).kind(), ErrorKind::DisplayHelp);
        assert_eq!(parse_err(&["--version"]).kind(), ErrorKind::DisplayVersion);
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("-h, --host"), "{help}");
        assert!(!help.contains("-h, --help"), "{help}");
    }

    #[test]
    fn flags_are_accepted_anywhere() {
        let cli = parse(&[
            "udf", "ls", "-h", "a", "--json", "-p", "4000", "-U", "admin",
        ]);
        assert!(cli.json);
        assert_eq!(cli.connection.hosts, ["a"]);
        assert_eq!(cli.connection.port, Some(4000));
        assert_eq!(cli.connection.user.as_deref(), Some("admin"));
        let cli = parse(&[
            "--json",
            "-h",
            "a",
            "-h",
            "b,c",
            "apply",
            "test",
            "k",
            "m.f",
            "1",
            "--timeout",
            "50",
        ]);
        assert!(cli.json);
        assert_eq!(cli.connection.hosts, ["a", "b,c"]);
        assert_eq!(cli.connection.timeout, Some(50));
        assert_eq!(parts(&cli).args, [Value::Int(1)]);
    }

    #[test]
    fn a_timeout_past_32_bits_is_refused_naming_the_maximum() {
        // Requests carry the limit in 32 bits: 2^32 + 1 ms would be 1 ms.
        let cli = parse(&["--timeout", "4294967295", "udf", "ls"]);
        assert_eq!(cli.connection.timeout, Some(u32::MAX));
        let e = parse_err(&["--timeout", "4294967297", "udf", "ls"]);
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(e.to_string().contains("4294967295"), "{e}");
    }

    #[test]
    fn apply_arguments() {
        let cli = parse(&[
            "apply",
            "test.demo",
            "user1",
            "counter.increment",
            "count",
            "5",
            "5.0",
            "'5'",
            "[1,2]",
        ]);
        let a = parts(&cli);
        assert_eq!(
            apply(&cli).target,
            NsSet {
                namespace: "test".into(),
                set: Some("demo".into())
            }
        );
        assert_eq!(a.keys, ApplyKeys::One(Value::String("user1".into())));
        assert_eq!(
            a.call,
            Call {
                module: "counter".into(),
                function: "increment".into()
            }
        );
        assert_eq!(
            a.args,
            [
                Value::String("count".into()),
                Value::Int(5),
                Value::from(5.0),
                Value::String("5".into()),
                Value::List(vec![Value::Int(1), Value::Int(2)])
            ]
        );
        assert!(!apply(&cli).send_key);
        let cli = parse(&["apply", "test", "7", "m.f", "--send-key"]);
        assert_eq!(parts(&cli).keys, ApplyKeys::One(Value::Int(7)));
        assert!(apply(&cli).send_key && apply(&cli).target.set.is_none());
    }

    #[test]
    fn negative_numbers_are_values() {
        let cli = parse(&[
            "apply", "test", "k", "m.f", "-5", "-1.5", "-2e3", "--json", "7",
        ]);
        assert_eq!(
            parts(&cli).args,
            [
                Value::Int(-5),
                Value::from(-1.5),
                Value::from(-2000.0),
                Value::Int(7)
            ]
        );
        assert!(cli.json);
        // A word that only starts like a flag needs `--` before it.
        let cli = parse(&["apply", "test", "k", "m.f", "--", "-inf"]);
        assert_eq!(parts(&cli).args, [Value::from(f64::NEG_INFINITY)]);
        assert_eq!(
            parse_err(&["apply", "test", "k", "m.f", "-inf"]).kind(),
            ErrorKind::UnknownArgument
        );
        let cli = parse(&["apply", "test", "-3", "m.f"]);
        assert_eq!(parts(&cli).keys, ApplyKeys::One(Value::Int(-3)));
    }

    #[test]
    fn double_dash_ends_the_flags() {
        let cli = parse(&["apply", "test", "k", "m.f", "--", "--json", "-h"]);
        assert!(!cli.json);
        assert_eq!(
            parts(&cli).args,
            [Value::String("--json".into()), Value::String("-h".into())]
        );
    }

    #[test]
    fn bad_literals_are_clear_errors() {
        let e = parts_err(&["apply", "test", "k", "m.f", "[1,"]);
        assert!(
            e.contains("column 4: expected a value, found the end of the input"),
            "{e}"
        );
        let e = parts_err(&["apply", "test", "[1]", "m.f"]);
        assert!(
            e.contains("a key must be an integer, a string or bytes, not a list"),
            "{e}"
        );
        let e = parts_err(&["apply", "test", "k", "nodot"]);
        assert!(e.contains("expected MODULE.FUNCTION"), "{e}");
        let e = parts_err(&["apply", "test", "k", "m.f", "1", "[x"]);
        assert!(e.starts_with("argument 2 ('[x'): column 2"), "{e}");
    }

    #[test]
    fn batch_apply_keys() {
        let cli = parse(&["apply", "test.demo", "--keys", "a, 5,'6'", "m.f", "1"]);
        let a = parts(&cli);
        assert_eq!(
            a.keys,
            ApplyKeys::Many(vec![
                Value::String("a".into()),
                Value::Int(5),
                Value::String("6".into())
            ])
        );
        assert_eq!(
            (a.call.function.as_str(), a.args),
            ("f", vec![Value::Int(1)])
        );
        let from_file = |text: &'static str, file: &str| {
            apply(&parse(&["apply", "test", "--keys-from", file, "m.f"])).parts(|path| {
                assert_eq!(path, Path::new(file));
                Ok(text.into())
            })
        };
        assert_eq!(
            from_file("k1\n\n2\n", "keys.txt").unwrap().keys,
            ApplyKeys::Many(vec![Value::String("k1".into()), Value::Int(2)])
        );
        // A bad key is named by its line and column in the file: blank
        // lines are skipped but counted.
        assert_eq!(
            from_file("a\n\n'b\nc\n", "keys.txt").unwrap_err(),
            "keys.txt:3:1: string is not closed (no closing ')"
        );
        assert_eq!(
            from_file("a\r\n  [1]\r\n", "-").unwrap_err(),
            "standard input:2:3: a key must be an integer, a string or bytes, not a list"
        );
        let e = parts_err(&["apply", "test", "--keys", "a,[1]", "m.f"]);
        assert!(e.starts_with("--keys: column 3: a key must be"), "{e}");
        assert_eq!(
            parts_err(&["apply", "test", "--keys", " ", "m.f"]),
            "no keys given"
        );
        assert!(
            parse_err(&["apply", "test", "--keys", "a", "--keys-from", "f", "m.f"])
                .to_string()
                .contains("cannot be used with")
        );
    }

    #[test]
    fn batch_keys_split_outside_quotes_and_empty_ones_are_errors() {
        let cli = parse(&[
            "apply",
            "test",
            "--keys",
            r#"a,'b,c',7,"d,\"e",x'0a'"#,
            "m.f",
        ]);
        assert_eq!(
            parts(&cli).keys,
            ApplyKeys::Many(vec![
                Value::String("a".into()),
                Value::String("b,c".into()),
                Value::Int(7),
                Value::String("d,\"e".into()),
                Value::Blob(vec![0x0a]),
            ])
        );
        // Errors give their column in the whole list.
        assert_eq!(
            parts_err(&["apply", "test", "--keys", "a,,b", "m.f"]),
            "--keys: column 3: key 2 is empty: a comma too many"
        );
        assert_eq!(
            parts_err(&["apply", "test", "--keys", "a,b,", "m.f"]),
            "--keys: column 5: key 3 is empty: a comma too many"
        );
        assert_eq!(
            parts_err(&["apply", "test", "--keys", "é, 'b,c", "m.f"]),
            "--keys: column 4: string is not closed (no closing ')"
        );
        assert_eq!(
            parts_err(&["apply", "test", "--keys", "1, x'0g'", "m.f"]),
            "--keys: column 7: 'g' is not a hex digit"
        );
    }

    #[test]
    fn password_flag() {
        assert!(parse(&["udf", "ls"]).connection.password.is_none());
        let prompt = parse(&["udf", "ls", "-P"]).connection.password;
        assert!(matches!(prompt, Some(None)));
        let prompt = parse(&["-P", "--json", "udf", "ls"]);
        assert!(matches!(prompt.connection.password, Some(None)) && prompt.json);
        let given = parse(&["-P=secret", "udf", "ls"]).connection.password;
        assert_eq!(given.flatten().unwrap().expose(), "secret");
        let given = parse(&["--password=s3cret", "udf", "ls"])
            .connection
            .password;
        assert_eq!(given.flatten().unwrap().expose(), "s3cret");
        // A word after a bare -P is the next argument, never the password.
        let cli = parse(&["-U", "admin", "-P", "udf", "ls"]);
        assert!(matches!(cli.connection.password, Some(None)));
        assert!(matches!(cli.command, Some(Command::Udf(UdfCommand::Ls))));
        let debug = format!("{:?}", parse(&["-P=hunter2", "udf", "ls"]));
        assert!(
            !debug.contains("hunter2") && debug.contains("<redacted>"),
            "{debug}"
        );
    }

    #[test]
    fn udf_commands() {
        match parse(&["udf", "put", "counter.lua", "--name", "ctr"]).command {
            Some(Command::Udf(UdfCommand::Put { file, name })) => {
                assert_eq!(file, PathBuf::from("counter.lua"));
                assert_eq!(name.as_deref(), Some("ctr"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["udf", "ls"]).command,
            Some(Command::Udf(UdfCommand::Ls))
        ));
        assert!(matches!(
            parse(&["udf", "cat", "counter"]).command,
            Some(Command::Udf(UdfCommand::Cat { .. }))
        ));
        assert!(matches!(
            parse(&["udf", "rm", "counter"]).command,
            Some(Command::Udf(UdfCommand::Rm { .. }))
        ));
    }

    #[test]
    fn record_commands() {
        match parse(&[
            "record",
            "put",
            "test.demo",
            "k1",
            "count=5",
            "name=bob",
            "neg=-2",
            "--send-key",
        ])
        .command
        {
            Some(Command::Record(RecordCommand::Put {
                record,
                bins,
                send_key,
            })) => {
                assert_eq!(record.target.to_string(), "test.demo");
                assert_eq!(record.key, Value::String("k1".into()));
                assert_eq!(
                    bins[0],
                    BinAssign {
                        bin: "count".into(),
                        value: Value::Int(5)
                    }
                );
                assert_eq!(bins[1].value, Value::String("bob".into()));
                assert_eq!(bins[2].value, Value::Int(-2));
                assert!(send_key);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["record", "get", "test", "5"]).command,
            Some(Command::Record(RecordCommand::Get(_)))
        ));
        assert!(matches!(
            parse(&["record", "rm", "test", "5"]).command,
            Some(Command::Record(RecordCommand::Rm(_)))
        ));
        assert_eq!(
            parse_err(&["record", "put", "test", "k"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn sandbox_and_bench() {
        assert!(matches!(
            parse(&["sandbox", "reset", "--yes"]).command,
            Some(Command::Sandbox(SandboxCommand::Reset { yes: true }))
        ));
        match parse(&[
            "bench", "apply", "test", "k", "m.f", "1", "-n", "500", "-c", "8",
        ])
        .command
        {
            Some(Command::Bench(BenchCommand::Apply(b))) => {
                assert_eq!((b.count, b.concurrency), (500, 8));
                assert_eq!(
                    b.apply.parts(|_| unreachable!()).unwrap().args,
                    [Value::Int(1)]
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            parse_err(&["bench", "apply", "test", "k", "m.f", "-c", "0"])
                .to_string()
                .contains("-c")
        );
    }

    #[test]
    fn an_excerpt_is_the_word_around_the_place_with_cuts_marked() {
        assert_eq!(excerpt("[1,", 3), "[1,");
        let word: String = ('a'..='z').cycle().take(100).collect();
        let cut = excerpt(&word, 50);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 2, "{cut}");
        assert_eq!(cut, format!("…{}…", &word[20..80]));
        assert_eq!(excerpt(&word, 0), format!("{}…", &word[..60]));
        // At the end of the input (one past the last character).
        assert_eq!(excerpt(&word, 100), format!("…{}", &word[40..]));
        let wide = "é".repeat(100);
        assert_eq!(excerpt(&wide, 50), format!("…{}…", "é".repeat(60)));
    }

    #[test]
    fn an_empty_bin_name_in_a_list_is_refused_with_its_column() {
        let names = |v: &[&str]| BinNames(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(parse_bins(""), Ok(names(&[])));
        assert_eq!(parse_bins("a,bé"), Ok(names(&["a", "bé"])));
        let refused = |text| {
            let e = parse_bins(text).unwrap_err();
            (e.at, e.to_string())
        };
        assert_eq!(refused("a,,b"), (2, "column 3: an empty bin name".into()));
        assert_eq!(refused(",a"), (0, "column 1: an empty bin name".into()));
        assert_eq!(refused("é,"), (2, "column 3: an empty bin name".into()));
        let e = parse_err(&["query", "test", "--bins", "a,,b"]).to_string();
        assert!(
            e.contains("'a,,b' for '--bins <A,B>'") && e.contains("column 3"),
            "{e}"
        );
    }

    #[test]
    fn serve_names_a_global_option_it_would_ignore() {
        let refused = |args: &[&str]| {
            let cli = parse(args);
            let Some(Command::Serve(s)) = &cli.command else {
                panic!("not serve: {args:?}")
            };
            s.check(&cli).err()
        };
        let with_password = ["serve", "--user", "u", "--password-file", "pw"];
        assert_eq!(refused(&with_password), None);
        assert_eq!(
            refused(&["-h", "1.2.3.4", "serve"]).unwrap(),
            "serve does not take -h/--host: it listens on --bind and --port"
        );
        let said = refused(&["serve", "--user", "bob", "-P=secret"]).unwrap();
        assert!(
            said.contains("-P/--password") && said.contains("--password-file"),
            "{said}"
        );
        let said = refused(&["serve", "--tls-certfile", "c.pem"]).unwrap();
        assert!(said.contains("--tls-cert and --tls-key"), "{said}");
        let said = refused(&["--lua-libs", "all", "serve"]).unwrap();
        assert!(said.contains("--lua-libs before serve"), "{said}");
        assert_eq!(
            refused(&["serve", "--user", "u"]).unwrap(),
            "serve --user needs --password-file FILE (the password is its first line)"
        );
        // An ignored option is named first.
        let said = refused(&["serve", "--user", "u", "--timeout", "5"]).unwrap();
        assert!(said.contains("--timeout"), "{said}");
        assert_eq!(refused(&["serve", "--lua-libs", "all"]), None);
        assert_eq!(
            refused(&["serve", "--lua-libs", "all", "--bind", "0.0.0.0"]).unwrap(),
            "--lua-libs all lets UDFs use io and os; it is refused with --bind 0.0.0.0 (use a loopback address)"
        );
    }

    #[test]
    fn serve_defaults_and_flags() {
        let cli = parse(&["serve"]);
        let Some(Command::Serve(s)) = &cli.command else {
            panic!()
        };
        assert_eq!(ServeArgs::listen_port(&cli.connection), 3000);
        assert_eq!(s.bind, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.namespaces, ["test"]);
        assert_eq!(s.cluster_name, "sandbox");
        assert_eq!(s.lua_libs, LuaLibsArg::Default);
        let cli = parse(&[
            "serve",
            "--port",
            "4000",
            "--bind",
            "0.0.0.0",
            "--namespace",
            "a",
            "--namespace",
            "b",
            "--lua-libs",
            "hardened",
            "--max-udf-ms",
            "200",
            "--user",
            "admin",
            "--password-file",
            "pw",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        let Some(Command::Serve(s)) = &cli.command else {
            panic!()
        };
        assert_eq!(ServeArgs::listen_port(&cli.connection), 4000);
        assert_eq!(s.namespaces, ["a", "b"]);
        assert_eq!(s.lua_libs, LuaLibsArg::Hardened);
        assert_eq!(s.max_udf_ms, Some(200));
        assert_eq!(cli.connection.user.as_deref(), Some("admin"));
        assert_eq!(s.password_file, Some(PathBuf::from("pw")));
        assert_eq!(
            parse_err(&["serve", "--password-file", "pw"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse_err(&["serve", "--tls-cert", "c.pem"]).kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse_err(&["serve", "--lua-libs", "some"]).kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn sandbox_flags_exclude_hosts() {
        assert!(parse(&["--memory", "udf", "ls"]).connection.memory);
        assert_eq!(
            parse_err(&["--memory", "-h", "a", "udf", "ls"]).kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            parse_err(&["--memory", "--sandbox-dir", "d"]).kind(),
            ErrorKind::ArgumentConflict
        );
    }

    #[test]
    fn ns_set_parsing() {
        assert_eq!(
            NsSet::parse("test").unwrap(),
            NsSet {
                namespace: "test".into(),
                set: None
            }
        );
        assert_eq!(
            NsSet::parse("test.demo").unwrap().set.as_deref(),
            Some("demo")
        );
        assert_eq!(
            NsSet::parse(".demo").unwrap_err(),
            "'.demo': the namespace is empty (write NS or NS.SET, e.g. test.demo)"
        );
        assert_eq!(
            NsSet::parse("test.").unwrap_err(),
            "'test.': the set after '.' is empty (write test for no set)"
        );
        assert!(
            NsSet::parse(&"n".repeat(32))
                .unwrap_err()
                .contains("longer than 31 bytes")
        );
        assert!(
            NsSet::parse(&format!("test.{}", "s".repeat(64)))
                .unwrap_err()
                .contains("longer than 63 bytes")
        );
        // Names are words: what looks like a clause or a list is refused.
        assert_eq!(
            NsSet::parse("a b.demo").unwrap_err(),
            "namespace 'a b' contains ' ': a namespace name takes no spaces or '.'"
        );
        assert_eq!(
            NsSet::parse("t;x").unwrap_err(),
            "namespace 't;x' contains ';', which the server's info commands cannot carry"
        );
        assert_eq!(
            NsSet::parse("test.a.b").unwrap().set.as_deref(),
            Some("a.b")
        );
    }

    #[test]
    fn call_parsing() {
        assert_eq!(
            Call::parse("counter.increment").unwrap(),
            Call {
                module: "counter".into(),
                function: "increment".into()
            }
        );
        // A server answers "UDF: Execution Error 1" to a module named with
        // its .lua: refused here, not quietly made right.
        assert_eq!(
            Call::parse("counter.lua.get").unwrap_err(),
            "'counter.lua.get': name the module without its .lua, as servers call it: counter.get"
        );
        assert_eq!(
            Call::parse("my.mod.f").unwrap(),
            Call {
                module: "my.mod".into(),
                function: "f".into()
            }
        );
        assert_eq!(
            Call::parse("counter").unwrap_err(),
            "'counter': expected MODULE.FUNCTION, e.g. counter.increment"
        );
        assert_eq!(
            Call::parse(".f").unwrap_err(),
            "'.f': the module name before '.' is empty"
        );
        assert_eq!(
            Call::parse("m.").unwrap_err(),
            "'m.': the function name after '.' is empty"
        );
        assert!(
            Call::parse("m.1f")
                .unwrap_err()
                .contains("not a Lua function name")
        );
    }

    #[test]
    fn bin_assign_parsing() {
        assert_eq!(
            BinAssign::parse("count=5").unwrap(),
            BinAssign {
                bin: "count".into(),
                value: Value::Int(5)
            }
        );
        assert_eq!(
            BinAssign::parse("s='a=b'").unwrap().value,
            Value::String("a=b".into())
        );
        assert_eq!(
            BinAssign::parse("s=").unwrap().value,
            Value::String(String::new())
        );
        assert_eq!(
            BinAssign::parse("count").unwrap_err().to_string(),
            "'count': expected BIN=VALUE, e.g. count=5"
        );
        assert_eq!(
            BinAssign::parse("=5").unwrap_err().to_string(),
            "'=5': the bin name before '=' is empty"
        );
        assert!(
            BinAssign::parse("a_very_long_bin_name=1")
                .unwrap_err()
                .message
                .contains("longer than 15 bytes")
        );
        assert_eq!(
            BinAssign::parse("l=[1,").unwrap_err(),
            WordError {
                at: 5,
                message: "column 6: expected a value, found the end of the input".into()
            }
        );
    }
}

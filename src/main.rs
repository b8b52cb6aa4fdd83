//! `asudf`: parse the command line, then run the console or a subcommand.

use std::process::ExitCode;
use std::sync::Arc;

use aerospike::{AuthMode, ClientPolicy, TlsPolicy};
use asudf::cli::{
    self, ApplyArgs, ApplyKeys, ApplyParts, BenchCommand, Cli, Command, IndexCommand, JobsCommand,
    NsSet, RecordCommand, SampleCommand, SandboxCommand, ScopeArgs, ServeArgs, UdfCommand,
};
use asudf::client::{self, ApplyCall, RecordKey};
use asudf::commands::{self, Headless};
use asudf::config::{self, TlsSettings};
use asudf::sandbox::SandboxConfig;
use asudf::sandbox::local::{ServeOptions, Sharing, Storage};
use clap::Parser;
use tokio_rustls::rustls;

fn main() -> ExitCode {
    let mut cli = match Cli::try_parse().map_err(quote_excerpt) {
        Ok(cli) => cli,
        // With --json a script reads stdout: the usage error goes there as
        // every other failure does, as clap says it up to its usage lines.
        Err(e) if e.use_stderr() && json_asked() => return usage(true, clap_error_text(&e)),
        // clap prints help/version (exit 0) or the usage error (exit 2).
        Err(e) => e.exit(),
    };
    let command = cli.command.take();
    if let Some(Command::LintWorker) = command {
        return asudf::tui::diagnostics::serve_worker();
    }
    let console = command.is_none();
    if console {
        limit_malloc_arenas();
    }
    let runtime = match build_runtime(console) {
        Ok(rt) => rt,
        Err(e) => return runtime_failed(e),
    };
    // The console runs on this thread (its panic hook restores the terminal
    // for panics in its own code); a headless command runs as a task on a
    // worker, where answers reach it without a wake of another thread.
    let Some(command) = command else {
        return match build_client_runtime() {
            Ok(client) => runtime.block_on(run_console(cli, client.handle().clone())),
            Err(e) => runtime_failed(e),
        };
    };
    runtime.block_on(async {
        tokio::spawn(run(cli, command)).await.unwrap_or_else(|e| {
            eprintln!("asudf: {e}");
            ExitCode::FAILURE
        })
    })
}

/// The console reads, handles and draws on this thread alone, so a key
/// wakes no other thread; its client side has a runtime of its own
/// ([`build_client_runtime`]). Commands keep a worker per core: `bench` and
/// `test` drive load.
fn build_runtime(console: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if console {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

fn runtime_failed(e: std::io::Error) -> ExitCode {
    eprintln!("cannot start the async runtime: {e}");
    ExitCode::FAILURE
}

/// The console's client side (the client task, its requests, an embedded
/// sandbox): one worker thread of its own, beside the console's.
fn build_client_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("asudf-client")
        .enable_all()
        .build()
}

/// glibc gives each thread that meets a locked arena an arena of its own (up
/// to eight per core) and keeps freed memory in each: for the console, whose
/// threads allocate little and seldom at once, that is resident memory for
/// nothing. One arena is enough.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// clap quotes a refused word whole in its error: a word refused at a
/// place in it ([`cli::WordError`]) is quoted as an excerpt around it.
fn quote_excerpt(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let at = std::error::Error::source(&e)
        .and_then(|source| source.downcast_ref::<cli::WordError>())
        .map(|w| w.at);
    if let (Some(at), Some(ContextValue::String(word))) = (at, e.get(ContextKind::InvalidValue)) {
        let cut = cli::excerpt(word, at);
        e.insert(ContextKind::InvalidValue, ContextValue::String(cut));
    }
    e
}

/// clap's error as one line: its first line and what it lists under it
/// (the missing arguments, the possible values), without the usage lines.
fn clap_error_text(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let said: Vec<&str> = text
        .lines()
        .take_while(|line| !line.is_empty())
        .map(str::trim)
        .collect();
    said.join(" ")
        .strip_prefix("error: ")
        .map(str::to_string)
        .unwrap_or_else(|| said.join(" "))
}

/// `--json` among the words before `--`, for errors found before the
/// command line is read.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// A usage error (exit 2): a sentence on stderr, or with `--json` the error
/// object every command prints.
fn usage(json: bool, message: impl std::fmt::Display) -> ExitCode {
    commands::fail(json, &client::Failure::usage(message.to_string()))
}

/// The console: on this thread, never moved (its state is not `Send`).
async fn run_console(cli: Cli, client_runtime: tokio::runtime::Handle) -> ExitCode {
    let _log_guard = init_logging(LogTo::File);
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return usage(
            cli.json,
            "the console needs a terminal: run asudf in one, or give a command \
             (asudf --help lists them)",
        );
    }
    // The console serves the sandbox to other asudf commands while it runs.
    let target = match resolve_target(&cli, Sharing::Shared) {
        Ok(t) => t,
        Err(message) => return usage(cli.json, message),
    };
    match asudf::tui::run(
        target,
        cli.file,
        cli.lua_libs.map(Into::into),
        client_runtime,
    )
    .await
    {
        Ok(None) => ExitCode::SUCCESS,
        // The shell's code for a process a signal ended.
        Ok(Some(signal)) => ExitCode::from(128 + signal as u8),
        Err(e) => {
            eprintln!("asudf: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, command: Command) -> ExitCode {
    let _log_guard = match &command {
        Command::Serve(_) => init_logging(LogTo::Stderr),
        _ => init_logging(LogTo::File),
    };
    if let Command::Serve(args) = &command {
        return serve(&cli, args).await;
    }
    if let Command::Check(args) = &command {
        return commands::check::run(args, cli.json);
    }
    // A command serves the sandbox to itself alone: it would stop under others.
    let target = match resolve_target(&cli, Sharing::Private) {
        Ok(t) => t,
        Err(message) => return usage(cli.json, message),
    };
    if let Command::Test(args) = &command {
        return commands::test::run(target, args, cli.json).await;
    }
    if let Command::Sample(SampleCommand::Ls) = command {
        return commands::sample::ls(cli.json);
    }
    let timeout_ms = cli.connection.timeout;
    // An apply's words are read before connecting: a bad one is a usage error.
    let apply_parts = match &command {
        Command::Apply(args) => Some(args.parts(commands::read_input)),
        Command::Bench(BenchCommand::Apply(args)) => Some(args.apply.parts(commands::read_input)),
        _ => None,
    };
    let apply_parts = match apply_parts.transpose() {
        Ok(parts) => parts,
        Err(message) => return usage(cli.json, format!("asudf apply: {message}")),
    };
    let module = match &command {
        Command::Udf(UdfCommand::Put { file, name }) => {
            match commands::udf::module_to_put(file, name.as_deref()) {
                Ok(module) => Some(module),
                Err(failure) => return commands::fail(cli.json, &failure),
            }
        }
        _ => None,
    };
    let mut session = match Headless::connect(target, cli.json).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match command {
        Command::Udf(UdfCommand::Put { .. }) => {
            let (name, source) = module.expect("read above");
            commands::udf::put(&mut session, name, source).await
        }
        Command::Udf(UdfCommand::Ls) => commands::udf::ls(&mut session).await,
        Command::Udf(UdfCommand::Cat { name }) => commands::udf::cat(&mut session, &name).await,
        Command::Udf(UdfCommand::Rm { name }) => commands::udf::rm(&mut session, &name).await,
        Command::Apply(args) => {
            let parts = apply_parts.expect("read above");
            match &parts.keys {
                ApplyKeys::One(key) => {
                    let call = apply_call(&args, key, &parts, timeout_ms, true);
                    commands::apply::run(&mut session, call).await
                }
                ApplyKeys::Many(keys) => {
                    let call = client::BatchApplyCall {
                        keys: keys.iter().map(|k| record_key(&args.target, k)).collect(),
                        module: parts.call.module,
                        function: parts.call.function,
                        args: parts.args,
                        send_key: args.send_key,
                    };
                    commands::apply::batch(&mut session, call).await
                }
            }
        }
        Command::Record(RecordCommand::Get(args)) => {
            commands::record::get(&mut session, record_key(&args.target, &args.key)).await
        }
        Command::Record(RecordCommand::Put {
            record,
            bins,
            send_key,
        }) => {
            let bins = bins.into_iter().map(|b| (b.bin, b.value)).collect();
            let key = record_key(&record.target, &record.key);
            commands::record::put(&mut session, key, bins, send_key).await
        }
        Command::Record(RecordCommand::Rm(args)) => {
            commands::record::rm(&mut session, record_key(&args.target, &args.key)).await
        }
        Command::Sandbox(SandboxCommand::Reset { yes }) => {
            commands::sandbox::reset(&mut session, yes).await
        }
        Command::Bench(BenchCommand::Apply(args)) => {
            let parts = apply_parts.expect("read above");
            let ApplyKeys::One(key) = &parts.keys else {
                return usage(
                    cli.json,
                    "asudf bench apply: give one KEY (--keys is for apply)",
                );
            };
            // The bench measures the apply alone: no log read per call.
            let call = apply_call(&args.apply, key, &parts, timeout_ms, false);
            let opts = commands::bench::BenchOptions {
                count: args.count,
                concurrency: args.concurrency.into(),
                baseline: args.baseline,
                allow_errors: args.allow_errors,
            };
            commands::bench::run(&mut session, call, opts).await
        }
        Command::Serve(_) | Command::Test(_) | Command::Check(_) | Command::LintWorker => {
            unreachable!("handled above")
        }
        Command::Query(args) => {
            let call = client::QueryCall {
                scope: scope(&args.scope),
                bins: args.bins.map(|b| b.0),
                max_records: args.max_records,
            };
            commands::query::query(&mut session, client::Request::Query(Box::new(call))).await
        }
        Command::Aggregate(args) => {
            let call = client::AggregateCall {
                scope: scope(&args.scope),
                module: args.call.module,
                function: args.call.function,
                args: args.args,
                source: None,
                timeout_ms,
            };
            let request = client::Request::Aggregate(Box::new(call));
            commands::query::aggregate(&mut session, request).await
        }
        Command::Execute(args) => {
            let call = client::ExecuteCall {
                scope: scope(&args.udf.scope),
                module: args.udf.call.module,
                function: args.udf.call.function,
                args: args.udf.args,
                records_per_second: args.rps,
            };
            let request = client::Request::Execute(Box::new(call));
            commands::query::execute(&mut session, request, args.no_wait).await
        }
        Command::Jobs { action } => {
            let request = match action.unwrap_or(JobsCommand::Ls) {
                JobsCommand::Ls => client::Request::Jobs { id: None },
                JobsCommand::Show { id } => client::Request::Jobs { id: Some(id) },
                JobsCommand::Abort { id } => client::Request::AbortJob { id },
            };
            commands::query::jobs(&mut session, request).await
        }
        Command::Index(IndexCommand::Create {
            target,
            bin,
            kind,
            collection,
            name,
        }) => {
            let spec = client::IndexSpec::new(
                target.namespace,
                target.set,
                &bin,
                &kind,
                collection.as_deref(),
                name.as_deref(),
            );
            commands::query::index(&mut session, client::Request::CreateIndex(spec)).await
        }
        Command::Sample(SampleCommand::Load { name }) => {
            commands::sample::load(&mut session, &name).await
        }
        Command::Sample(SampleCommand::Ls) => unreachable!("handled before connecting"),
        Command::Index(IndexCommand::Ls { ns }) => {
            commands::query::index(&mut session, client::Request::ListIndexes { ns }).await
        }
        Command::Index(IndexCommand::Rm { ns, name }) => {
            commands::query::index(&mut session, client::Request::DropIndex { ns, name }).await
        }
    }
}

fn scope(args: &ScopeArgs) -> client::Scope {
    client::Scope {
        ns: args.target.namespace.clone(),
        set: args.target.set.clone(),
        where_clause: args.where_clause.clone(),
    }
}

fn record_key(target: &NsSet, key: &aerospike::Value) -> RecordKey {
    RecordKey {
        ns: target.namespace.clone(),
        set: target.set.clone(),
        key: key.clone(),
    }
}

fn apply_call(
    args: &ApplyArgs,
    key: &aerospike::Value,
    parts: &ApplyParts,
    timeout_ms: Option<u32>,
    with_logs: bool,
) -> ApplyCall {
    ApplyCall {
        key: record_key(&args.target, key),
        module: parts.call.module.clone(),
        function: parts.call.function.clone(),
        args: parts.args.clone(),
        timeout_ms,
        send_key: args.send_key,
        with_record: false,
        with_logs,
    }
}

/// Settings (file, environment, flags) → what the client task connects to.
fn resolve_target(cli: &Cli, sharing: Sharing) -> Result<client::Target, String> {
    match config::resolve(&cli.connection).map_err(|e| e.to_string())? {
        config::Target::Sandbox { dir } => Ok(client::Target::Sandbox {
            dir,
            config: SandboxConfig::default(),
            sharing,
        }),
        config::Target::Cluster {
            seeds,
            user,
            password,
            tls,
            timeout,
        } => {
            let mut policy = ClientPolicy::default();
            if let Some(user) = user {
                let password = password.map(|p| p.expose().to_string()).unwrap_or_default();
                policy.auth_mode = AuthMode::Internal(user, password);
            }
            if let Some(tls) = tls {
                policy.tls_policy = Some(tls_policy(&tls)?);
            }
            if let Some(t) = timeout {
                let ms = t.as_millis().min(u32::MAX as u128) as u32;
                policy.timeout = ms;
                policy.login_timeout = ms;
            }
            Ok(client::Target::Cluster {
                hosts: seeds.iter().map(config::Seed::to_host).collect(),
                policy,
            })
        }
    }
}

fn read_pem_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut data.as_slice()).collect();
    let certs =
        certs.map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// A rustls client configuration from the TLS flags.
fn tls_policy(tls: &TlsSettings) -> Result<TlsPolicy, String> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(cafile) = &tls.cafile else {
        return Err(
            "TLS needs --tls-cafile FILE (or tls-cafile in astools.conf): the CA \
                    certificate that signed the cluster's node certificates"
                .into(),
        );
    };
    for cert in read_pem_certs(cafile)? {
        roots
            .add(cert)
            .map_err(|e| format!("{}: unusable CA certificate: {e}", cafile.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots);
    let config = match (&tls.certfile, &tls.keyfile) {
        (Some(cert), Some(key)) => {
            let certs = read_pem_certs(cert)?;
            let data =
                std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
            let key_der = rustls_pemfile::private_key(&mut data.as_slice())
                .map_err(|e| format!("{}: not a PEM key: {e}", key.display()))?
                .ok_or_else(|| format!("{}: no private key in it", key.display()))?;
            builder
                .with_client_auth_cert(certs, key_der)
                .map_err(|e| format!("client certificate refused: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("--tls-certfile and --tls-keyfile go together".into()),
    };
    Ok(TlsPolicy::new(config))
}

async fn serve(cli: &Cli, args: &ServeArgs) -> ExitCode {
    if let Err(message) = args.check(cli) {
        return usage(cli.json, message);
    }
    let storage = if cli.connection.memory {
        Storage::Memory
    } else if let Some(dir) = &cli.connection.sandbox_dir {
        Storage::Directory(dir.clone())
    } else {
        match config::default_sandbox_dir() {
            Some(dir) => Storage::Directory(dir),
            None => {
                return usage(
                    cli.json,
                    "no data directory on this system: pass --sandbox-dir or --memory",
                );
            }
        }
    };
    let opts = ServeOptions {
        bind: args.bind,
        port: ServeArgs::listen_port(&cli.connection),
        namespaces: args.namespaces.clone(),
        cluster_name: args.cluster_name.clone(),
        lua_libs: args.lua_libs.into(),
        max_udf_ms: args.max_udf_ms,
        background_max_rps: args.background_max_rps,
        storage,
        user: cli.connection.user.clone(),
        password_file: args.password_file.clone(),
        tls_cert: args.tls_cert.clone(),
        tls_key: args.tls_key.clone(),
        json: cli.json,
    };
    // Options that do not fit together, or a password file that is empty
    // or missing, are the command line's fault: a usage error.
    let resolved = match opts.resolve() {
        Ok(resolved) => resolved,
        Err(e) => return usage(cli.json, format!("asudf serve: {e:#}")),
    };
    match asudf::sandbox::local::serve(opts, resolved).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => commands::fail(
            cli.json,
            &client::Failure::connection(format!("asudf serve: {e:#}")),
        ),
    }
}

enum LogTo {
    Stderr,
    File,
}

/// Log lines waiting for the writer thread; more are dropped (and counted).
const LOG_QUEUE_LINES: usize = 1024;

/// `serve` logs to stderr like any server; everything else logs to a file,
/// never to the terminal the console draws on.
fn init_logging(to: LogTo) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("ASUDF_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    match to {
        LogTo::Stderr => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
            None
        }
        LogTo::File => {
            let dir = dirs::state_dir()
                .or_else(dirs::data_dir)
                .map(|d| d.join("asudf"))?;
            std::fs::create_dir_all(&dir).ok()?;
            let appender = tracing_appender::rolling::never(dir, "asudf.log");
            // The default queue holds 128,000 lines, allocated up front (4 MiB
            // resident); the default filter lets through a few lines a session.
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .finish(appender);
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_ansi(false)
                .try_init();
            Some(guard)
        }
    }
}

//! Each request, performed with the `aerospike` client.

use std::time::{Duration, Instant};

use aerospike::{
    AdminPolicy, BatchOperation, BatchPolicy, BatchUdfPolicy, Bin, Bins, Client, ErrorKind,
    ReadPolicy, ResultCode, Value, WritePolicy,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::sandbox::engine::{MAX_FILENAME, filename_problem};
use crate::sandbox::server::info::decode_calls;

use super::{
    ApplyCall, BatchApplyCall, BatchRow, Failure, FailureKind, ModuleInfo, Outcome, RecordKey,
    RecordView, Request, UdfLog, query,
};

/// How long registration may take to show on every node.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(10);
/// How often `udf-list` is polled while waiting for it.
const PROPAGATION_POLL: Duration = Duration::from_millis(5);
/// Extra time the client waits beyond the limit it sends, so the server's
/// own timeout answer can arrive first.
const CLIENT_GRACE_MS: u32 = 1000;
/// Client-side wait when the request carries no limit (the server applies its own).
const NO_LIMIT_SOCKET_MS: u32 = 30_000;

/// The key last applied to, with its digest: the console and `bench` apply
/// to one key again and again, and the digest (RIPEMD-160) is a few per cent
/// of a call to the sandbox. Shared, not cloned: a `Key` clone is three
/// allocations per call.
#[derive(Default)]
pub(super) struct LastKey(parking_lot::Mutex<Option<Arc<(RecordKey, aerospike::Key)>>>);

impl LastKey {
    fn key(&self, key: &RecordKey) -> Result<Arc<(RecordKey, aerospike::Key)>, Failure> {
        if let Some(last) = &*self.0.lock()
            && last.0 == *key
        {
            return Ok(last.clone());
        }
        let made = Arc::new((key.clone(), key.to_key()?));
        *self.0.lock() = Some(made.clone());
        Ok(made)
    }
}

pub(super) async fn perform(
    client: &Client,
    sandbox: Option<&AtomicU64>,
    last_key: &LastKey,
    request: Request,
    sent: Instant,
    items: &query::ItemSink,
    stop: Option<&Notify>,
) -> Result<Outcome, Failure> {
    match request {
        // Both boxed: a future is moved (copied whole) into its caller's at
        // each level of `.await`, and the crate's apply future alone is a
        // few KiB; boxed here, the levels above carry a pointer.
        Request::Apply(call) => Box::pin(apply(client, sandbox, last_key, &call, sent)).await,
        Request::ApplySeries { call, times } => {
            let series = Series {
                log_mark: sandbox,
                last_key,
                items,
                stop,
            };
            Box::pin(series.run(client, &call, times)).await
        }
        request => Box::pin(perform_other(client, request, items)).await,
    }
}

async fn perform_other(
    client: &Client,
    request: Request,
    items: &query::ItemSink,
) -> Result<Outcome, Failure> {
    match request {
        Request::Apply(_) | Request::ApplySeries { .. } => {
            unreachable!("performed inline by `perform`")
        }
        Request::ListModules => list_modules(client).await.map(Outcome::Modules),
        Request::GetModule { name } => get_module(client, &name).await,
        Request::PutModule { name, source } => put_module(client, &name, &source).await,
        Request::RemoveModule { name } => remove_module(client, &name).await,
        Request::GetRecord { key } => get_record(client, &key).await.map(Outcome::Record),
        Request::PutRecord {
            key,
            bins,
            send_key,
        } => {
            let bins: Vec<Bin> = bins.into_iter().map(|(n, v)| Bin::new(n, v)).collect();
            let policy = WritePolicy {
                send_key,
                ..WritePolicy::default()
            };
            client
                .put(&policy, &key.to_key()?, &bins)
                .await
                .map_err(failure)?;
            Ok(Outcome::Written)
        }
        Request::DeleteRecord { key } => {
            let existed = client
                .delete(&WritePolicy::default(), &key.to_key()?)
                .await
                .map_err(failure)?;
            Ok(Outcome::Deleted { existed })
        }
        Request::Info { command } => {
            let answer = info(client, &command).await?;
            Ok(Outcome::Info(answer))
        }
        Request::BatchApply(call) => batch_apply(client, *call).await,
        Request::Query(call) => query::query(client, *call, items).await,
        Request::Aggregate(call) => query::aggregate(client, *call, items).await,
        Request::Execute(call) => query::execute(client, *call).await,
        Request::Jobs { id: Some(id) } => query::job(client, id).await,
        Request::Jobs { id: None } => query::jobs(client).await,
        Request::AbortJob { id } => query::abort_job(client, id).await,
        Request::CreateIndex(spec) => query::create_index(client, spec).await,
        Request::ListIndexes { ns } => query::list_indexes(client, ns.as_deref()).await,
        Request::DropIndex { ns, name } => query::drop_index(client, &ns, &name).await,
    }
}

/// The registered file name for a module name given with or without `.lua`.
pub fn module_file(name: &str) -> String {
    if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.lua")
    }
}

/// [`module_file`] for a name that goes into an info command: refuses one
/// the command cannot carry or no server takes (too long), before it is
/// sent. The other rules differ between releases: the server says those.
fn checked_module_file(name: &str) -> Result<String, Failure> {
    if name.is_empty() {
        return Err(Failure::usage("the module name is empty"));
    }
    info_name("module name", name)?;
    let file = module_file(name);
    if file.len() >= MAX_FILENAME
        && let Some(problem) = filename_problem(&file)
    {
        return Err(Failure::usage(format!(
            "the module name '{file}': {problem}"
        )));
    }
    Ok(file)
}

/// What is wrong with a name an info command cannot carry, if anything:
/// `;` ends a parameter, `=` and `:` split names from values (and
/// `sindex-list`'s fields), `,` splits older servers' `indexdata=BIN,TYPE`
/// and `udf-list`'s fields, and a tab or a line end ends the request line.
/// Sent as is, the server would read another name.
pub fn info_name_problem(what: &str, name: &str) -> Option<String> {
    let c = name
        .chars()
        .find(|c| matches!(c, ';' | ':' | '=' | ',') || c.is_control())?;
    Some(format!(
        "{what} '{}' contains {c:?}, which the server's info commands cannot carry",
        name.escape_debug()
    ))
}

/// Refuses a name an info command cannot carry ([`info_name_problem`]).
pub(super) fn info_name(what: &str, name: &str) -> Result<(), Failure> {
    match info_name_problem(what, name) {
        Some(problem) => Err(Failure::usage(problem)),
        None => Ok(()),
    }
}

pub(super) async fn info(client: &Client, command: &str) -> Result<String, Failure> {
    let answers = client
        .info(&AdminPolicy::default(), &[command])
        .await
        .map_err(failure)?;
    Ok(answers.get(command).cloned().unwrap_or_default())
}

/// Parses `filename=a.lua,hash=…,type=LUA;…` (fields split by ',' or ';').
pub fn parse_udf_list(text: &str) -> Vec<ModuleInfo> {
    let mut modules = Vec::new();
    let mut current: Option<ModuleInfo> = None;
    for field in text.split([',', ';']) {
        if let Some(name) = field.strip_prefix("filename=") {
            modules.extend(current.take());
            current = Some(ModuleInfo {
                name: name.to_string(),
                hash: String::new(),
            });
        } else if let (Some(hash), Some(m)) = (field.strip_prefix("hash="), current.as_mut()) {
            m.hash = hash.to_string();
        }
    }
    modules.extend(current);
    modules.sort_by(|a, b| a.name.cmp(&b.name));
    modules
}

async fn list_modules(client: &Client) -> Result<Vec<ModuleInfo>, Failure> {
    Ok(parse_udf_list(&info(client, "udf-list").await?))
}

pub(super) async fn get_module(client: &Client, name: &str) -> Result<Outcome, Failure> {
    let file = checked_module_file(name)?;
    let reply = info(client, &format!("udf-get:filename={file};")).await?;
    if let Some(err) = reply.strip_prefix("error=") {
        return Err(match err {
            "not_found" => not_registered(&file),
            other => Failure {
                kind: FailureKind::Server,
                code: 100,
                message: format!("cannot read {file}: {other}"),
                location: None,
                logs: Vec::new(),
            },
        });
    }
    let content = reply
        .split(';')
        .find_map(|f| f.strip_prefix("content="))
        .unwrap_or_default();
    let bytes = BASE64
        .decode(content)
        .map_err(|_| Failure::connection(format!("the server sent bad base64 for {file}")))?;
    Ok(Outcome::Module {
        name: file,
        source: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// The hash a server lists for a module: SHA-1 of its metadata record.
fn expected_hash(file: &str, content_b64: &str) -> String {
    use sha1::Digest as _;
    let record =
        format!("{{\"content64\": \"{content_b64}\", \"type\": \"LUA\", \"name\": \"{file}\"}}");
    hex::encode(sha1::Sha1::digest(record.as_bytes()))
}

/// Turns a `udf-put` (or `udf-remove`) error reply for `file` into a
/// failure; compile errors carry their line.
pub fn put_error(reply: &str, file: &str) -> Failure {
    let fields: Vec<(&str, &str)> = reply.split(';').filter_map(|f| f.split_once('=')).collect();
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let kind = get("error").unwrap_or(reply);
    if kind == "compile_error" {
        let message = get("message")
            .and_then(|m| BASE64.decode(m).ok())
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .unwrap_or_default();
        let file = get("file").unwrap_or_default().to_string();
        let line = get("line").and_then(|l| l.parse().ok()).unwrap_or(0);
        return Failure {
            kind: FailureKind::Compile,
            code: 100,
            message,
            location: (line > 0).then_some((file, line)),
            logs: Vec::new(),
        };
    }
    let message = match kind {
        "invalid_filename" => format!("the name '{file}': {}", filename_rule(file)),
        "invalid_udf_content_len,>1M" => "the module is larger than 1 MiB".into(),
        "invalid_base64_content" => "the module is empty".into(),
        _ => kind.into(),
    };
    Failure {
        kind: FailureKind::Server,
        code: 100,
        message: format!("registration refused: {message}"),
        location: None,
        logs: Vec::new(),
    }
}

/// Which of the server's rules (udf-runtime §6.1), as the sandbox keeps
/// them, a name that passed [`checked_module_file`] breaks, for its
/// `invalid_filename` answer.
fn filename_rule(file: &str) -> String {
    filename_problem(file)
        .unwrap_or_else(|| "a server in hardened mode takes only names ending in .lua".into())
}

async fn put_module(client: &Client, name: &str, source: &str) -> Result<Outcome, Failure> {
    let file = checked_module_file(name)?;
    let content = BASE64.encode(source.as_bytes());
    let command = format!(
        "udf-put:filename={file};content={content};content-len={};udf-type=LUA;",
        content.len()
    );
    let reply = info(client, &command).await?;
    if reply != "ok" && !reply.is_empty() {
        return Err(put_error(&reply, &file));
    }
    let started = Instant::now();
    let hash = expected_hash(&file, &content);
    wait_for_nodes(client, |modules| {
        modules.iter().any(|m| m.name == file && m.hash == hash)
            // A server that hashes differently: its listing is all there is.
            || (started.elapsed() > Duration::from_secs(2) && modules.iter().any(|m| m.name == file))
    })
    .await?;
    Ok(Outcome::Registered {
        name: file,
        propagation: started.elapsed(),
    })
}

/// The answer for a module the server does not have.
fn not_registered(file: &str) -> Failure {
    Failure {
        kind: FailureKind::Server,
        code: 100,
        message: format!("{file} is not registered"),
        location: None,
        logs: Vec::new(),
    }
}

async fn remove_module(client: &Client, name: &str) -> Result<Outcome, Failure> {
    let file = checked_module_file(name)?;
    // A server answers `ok` to removing a module it does not have
    // (udf-runtime §6.4): look first, or that would read as done.
    if !list_modules(client).await?.iter().any(|m| m.name == file) {
        return Err(not_registered(&file));
    }
    let reply = info(client, &format!("udf-remove:filename={file};")).await?;
    if reply != "ok" && !reply.is_empty() {
        return Err(put_error(&reply, &file));
    }
    wait_for_nodes(client, |modules| modules.iter().all(|m| m.name != file)).await?;
    Ok(Outcome::Removed { name: file })
}

/// Polls `udf-list` on every node until `done` holds for each.
async fn wait_for_nodes(
    client: &Client,
    done: impl Fn(&[ModuleInfo]) -> bool,
) -> Result<(), Failure> {
    let deadline = Instant::now() + PROPAGATION_LIMIT;
    loop {
        let mut all = true;
        for node in client.nodes() {
            let answers = node
                .info(&AdminPolicy::default(), &["udf-list"])
                .await
                .map_err(failure)?;
            let listed = parse_udf_list(answers.get("udf-list").map_or("", |s| s));
            if !done(&listed) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Failure {
                kind: FailureKind::Timeout,
                code: 9,
                message: "the change did not reach every node within 10 s".into(),
                location: None,
                logs: Vec::new(),
            });
        }
        tokio::time::sleep(PROPAGATION_POLL).await;
    }
}

/// The policy an apply is sent with.
pub fn apply_policy(call: &ApplyCall) -> WritePolicy {
    let mut policy = WritePolicy {
        send_key: call.send_key,
        ..WritePolicy::default()
    };
    // A UDF is not idempotent: never send it twice.
    policy.base_policy.max_retries = 0;
    match call.timeout_ms {
        // The crate sends its socket timeout as the server's limit when a
        // total timeout is set; the total leaves room for the server's answer.
        Some(ms) => {
            policy.base_policy.socket_timeout = ms;
            policy.base_policy.total_timeout = ms.saturating_add(CLIENT_GRACE_MS);
        }
        None => {
            policy.base_policy.socket_timeout = NO_LIMIT_SOCKET_MS;
            policy.base_policy.total_timeout = 0;
        }
    }
    policy
}

/// `log_mark` is the newest sandbox log sequence number this task has seen;
/// `None` on a real cluster, which keeps UDF logs in its own log file.
/// `sent` is when the request left its caller: the call starts then unless
/// a record read comes first (a clock read less per bare apply).
async fn apply(
    client: &Client,
    log_mark: Option<&AtomicU64>,
    last_key: &LastKey,
    call: &ApplyCall,
    sent: Instant,
) -> Result<Outcome, Failure> {
    let shared_key = last_key.key(&call.key)?;
    let key = &shared_key.1;
    // The extra reads are boxed: the bare apply's future stays small.
    let before = if call.with_record {
        Box::pin(get_record(client, &call.key)).await?
    } else {
        None
    };
    let started = if call.with_record {
        Instant::now()
    } else {
        sent
    };
    let result = client
        .execute_udf(
            &apply_policy(call),
            key,
            &call.module,
            &call.function,
            &call.args,
        )
        .await;
    let call_time = started.elapsed();
    let (logs, server_run) = match log_mark {
        Some(mark) if call.with_logs => match Box::pin(read_call(client, mark, call, key)).await {
            Some(kept) => (kept.logs, Some(kept.run)),
            None => (Vec::new(), None),
        },
        _ => (Vec::new(), None),
    };
    let result = result.map_err(|e| Failure {
        logs: logs.clone(),
        ..failure(e)
    })?;
    let after = if call.with_record {
        Box::pin(get_record(client, &call.key)).await?
    } else {
        None
    };
    Ok(Outcome::Applied {
        result: result.unwrap_or(Value::Nil),
        logs,
        before,
        after,
        call: call_time,
        server_run,
    })
}

/// How often a series reports its runs: the console draws a report, and a
/// frame per run would cost more than the run.
const SERIES_REPORT: Duration = Duration::from_millis(50);

/// What a run-N series runs with (see [`Request::ApplySeries`]).
struct Series<'a> {
    log_mark: Option<&'a AtomicU64>,
    last_key: &'a LastKey,
    items: &'a query::ItemSink,
    stop: Option<&'a Notify>,
}

impl Series<'_> {
    async fn run(&self, client: &Client, call: &ApplyCall, times: u32) -> Result<Outcome, Failure> {
        let before = if call.with_record {
            get_record(client, &call.key).await?
        } else {
            None
        };
        // The runs are bare: the record and the logs are read around the
        // series, not around each run.
        let bare = ApplyCall {
            with_record: false,
            with_logs: false,
            ..call.clone()
        };
        let (mut round_trips, mut failed) = (Vec::new(), 0);
        let mut reported = Instant::now();
        let mut last = None;
        for _ in 0..times {
            let stopped = async {
                match self.stop {
                    Some(stop) => stop.notified().await,
                    None => std::future::pending().await,
                }
            };
            let run = apply(client, None, self.last_key, &bare, Instant::now());
            // Stopped: the run in flight is dropped, and counts for nothing.
            let outcome = tokio::select! {
                biased;
                () = stopped => break,
                outcome = Box::pin(run) => outcome,
            };
            match &outcome {
                Ok(Outcome::Applied { call, .. }) => round_trips.push(*call),
                _ => failed += 1,
            }
            last = Some(outcome);
            if reported.elapsed() >= SERIES_REPORT {
                self.report(&mut round_trips, &mut failed);
                reported = Instant::now();
            }
        }
        self.report(&mut round_trips, &mut failed);
        let last = last.ok_or_else(Failure::cancelled)?;
        let (logs, server_run) = match self.log_mark {
            Some(mark) if call.with_logs => {
                let key = &self.last_key.key(&call.key)?.1;
                match read_call(client, mark, call, key).await {
                    Some(kept) => (kept.logs, Some(kept.run)),
                    None => (Vec::new(), None),
                }
            }
            _ => (Vec::new(), None),
        };
        let (result, call_time) = match last {
            Ok(Outcome::Applied { result, call, .. }) => (result, call),
            Ok(other) => return Ok(other),
            Err(failure) => return Err(Failure { logs, ..failure }),
        };
        let after = if call.with_record {
            get_record(client, &call.key).await?
        } else {
            None
        };
        Ok(Outcome::Applied {
            result,
            logs,
            before,
            after,
            call: call_time,
            server_run,
        })
    }

    /// Hands over the runs done since the last report.
    fn report(&self, round_trips: &mut Vec<Duration>, failed: &mut u32) {
        if round_trips.is_empty() && *failed == 0 {
            return;
        }
        let _ = self.items.send(query::StreamItem::Runs {
            round_trips: std::mem::take(round_trips),
            failed: std::mem::take(failed),
        });
    }
}

async fn batch_apply(client: &Client, call: BatchApplyCall) -> Result<Outcome, Failure> {
    let policy = BatchUdfPolicy {
        send_key: call.send_key,
        ..BatchUdfPolicy::default()
    };
    let mut ops = call
        .keys
        .iter()
        .map(|key| {
            Ok(BatchOperation::udf(
                &policy,
                key.to_key()?,
                &call.module,
                &call.function,
                call.args.clone(),
            ))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    client
        .batch(&BatchPolicy::default(), &mut ops)
        .await
        .map_err(failure)?;
    let rows = call
        .keys
        .into_iter()
        .zip(&ops)
        .map(|(key, op)| BatchRow {
            key: key.key,
            result: batch_row(op),
        })
        .collect();
    Ok(Outcome::BatchApplied(rows))
}

/// A batch row's answer: the `SUCCESS` value, or its code and `FAILURE` text.
fn batch_row(op: &BatchOperation) -> Result<Value, Failure> {
    let bin = |name: &str| op.record().and_then(|r| r.bins.get(name)).cloned();
    let code = match op.result_code() {
        Some(ResultCode::Ok) => return Ok(bin("SUCCESS").unwrap_or(Value::Nil)),
        Some(code) => code,
        None => {
            return Err(Failure {
                kind: FailureKind::Server,
                code: -1,
                message: "the server did not answer for this key".into(),
                location: None,
                logs: Vec::new(),
            });
        }
    };
    let message = match bin("FAILURE") {
        Some(Value::String(text)) => text,
        _ => code.into_string(),
    };
    Err(Failure {
        kind: FailureKind::Server,
        code: i32::from(u8::from(code)),
        location: error_location(&message),
        message,
        logs: Vec::new(),
    })
}

async fn get_record(client: &Client, key: &RecordKey) -> Result<Option<RecordView>, Failure> {
    // With the values in reply order too: the crate leaves a bin named ""
    // out of `bins` (it takes a nameless reply op for a header op's answer).
    let mut policy = ReadPolicy::default();
    policy.base_policy.populate_positional_results = true;
    match client.get(&policy, &key.to_key()?, Bins::All).await {
        Ok(record) => Ok(Some(RecordView {
            ttl: record.time_to_live().map(|d| d.as_secs() as u32),
            generation: record.generation,
            bins: with_nameless_bin(record.bins.into_iter().collect(), record.results),
        })),
        Err(e) if e.matches(&[ResultCode::KeyNotFoundError]) => Ok(None),
        Err(e) => Err(failure(e)),
    }
}

/// `bins` with the bin named "" put back from `results` (every value the
/// reply held, in order): the one value more there than in `bins`. Where it
/// sits is where the two first differ (or the end); should that be a run of
/// equal values, the value is the same whichever of them is taken.
fn with_nameless_bin(
    mut bins: Vec<(String, Value)>,
    results: Option<Vec<Value>>,
) -> Vec<(String, Value)> {
    let Some(mut results) = results.filter(|r| r.len() == bins.len() + 1) else {
        return bins;
    };
    let at = bins
        .iter()
        .zip(&results)
        .position(|((_, bin), result)| bin != result)
        .unwrap_or(bins.len());
    // A nil is not a stored bin (the crate also drops nil values).
    if results[at] != Value::Nil {
        bins.insert(at, (String::new(), results.swap_remove(at)));
    }
    bins
}

/// What the sandbox kept of one call: its log lines and run time.
struct KeptCall {
    logs: Vec<UdfLog>,
    run: Duration,
}

/// What the sandbox kept of this call: the newest call on this record and
/// function since `mark` (then `mark` moves past what was read).
async fn read_call(
    client: &Client,
    mark: &AtomicU64,
    call: &ApplyCall,
    key: &aerospike::Key,
) -> Option<KeptCall> {
    let since = mark.load(Ordering::Relaxed);
    let text = info(client, &format!("sandbox-calls:since={since}"))
        .await
        .ok()?;
    let calls = decode_calls(&text).ok()?;
    if let Some(newest) = calls.iter().map(|c| c.seq).max() {
        mark.fetch_max(newest, Ordering::Relaxed);
    }
    let name = format!("{}.{}", call.module, call.function);
    calls
        .into_iter()
        .rev()
        .find(|c| c.ns == call.key.ns && c.digest == key.digest() && c.call == name)
        .map(|c| KeptCall {
            run: c.run,
            logs: c
                .lines
                .into_iter()
                .map(|l| UdfLog {
                    level: format!("{:?}", l.level).to_lowercase(),
                    text: l.text,
                })
                .collect(),
        })
}

/// Where in a module a UDF error points: `…/name.lua:LINE: …` → (`name.lua`, LINE).
pub fn error_location(message: &str) -> Option<(String, u32)> {
    let end = message.find(".lua:")? + 4;
    let start = message[..end].rfind(['/', ' ', '"']).map_or(0, |i| i + 1);
    let rest = &message[end + 1..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let line = digits.parse().ok()?;
    rest[digits.len()..]
        .starts_with(':')
        .then(|| (message[start..end].to_string(), line))
}

/// Maps a client error to a failure the user can read.
pub fn failure(e: aerospike::Error) -> Failure {
    let message = match e.kind() {
        // The crate decodes strings as UTF-8 and says only that it failed;
        // a server sends a Lua string's bytes as they are.
        ErrorKind::InvalidUtf8(reason) => format!(
            "the server sent a string that is not UTF-8, which the client cannot read \
             ({reason}): Lua strings are bytes; return or store binary data as bytes"
        ),
        _ => e.base_message(),
    };
    let kind = match e.kind() {
        ErrorKind::Timeout => FailureKind::Timeout,
        ErrorKind::Connection
        | ErrorKind::ConnectionPoolEmpty
        | ErrorKind::NoMoreConnections
        | ErrorKind::MaxErrorRate
        | ErrorKind::InvalidNode
        | ErrorKind::Io(_) => FailureKind::Connection,
        ErrorKind::InvalidArgument => FailureKind::Usage,
        _ => FailureKind::Server,
    };
    let location = matches!(e.kind(), ErrorKind::UdfBadResponse)
        .then(|| error_location(&message))
        .flatten();
    Failure {
        kind,
        code: e.result_code(),
        message,
        location,
        logs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn last_key_gives_each_keys_own_digest() {
        let record = |set: Option<&str>, key: Value| RecordKey {
            ns: "test".into(),
            set: set.map(Into::into),
            key,
        };
        let keys = [
            record(Some("demo"), Value::from("k1")),
            record(Some("demo"), Value::from("k2")),
            record(None, Value::from("k2")),
            record(Some("demo"), Value::from(1)),
            record(Some("demo"), Value::from("k1")),
        ];
        let last = LastKey::default();
        for key in keys.iter().chain(&keys) {
            // Key's equality covers its digest.
            assert_eq!(last.key(key).unwrap().1, key.to_key().unwrap(), "{key:?}");
        }
    }
    use super::*;

    #[test]
    fn the_nameless_bin_is_put_back_where_the_reply_had_it() {
        let bins = |pairs: &[(&str, i64)]| -> Vec<(String, Value)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), Value::from(*v)))
                .collect()
        };
        let results = |values: &[i64]| Some(values.iter().map(|v| Value::from(*v)).collect());
        let cases = [
            (
                &[("a", 1), ("b", 2)][..],
                &[1, 3, 2][..],
                &[("a", 1), ("", 3), ("b", 2)][..],
            ),
            (&[("a", 1)], &[1, 1], &[("a", 1), ("", 1)]),
            (&[], &[5], &[("", 5)]),
            // No bin missing: left as it is.
            (&[("a", 1)], &[1], &[("a", 1)]),
        ];
        for (named, all, want) in cases {
            assert_eq!(with_nameless_bin(bins(named), results(all)), bins(want));
        }
        assert_eq!(
            with_nameless_bin(bins(&[("a", 1)]), None),
            bins(&[("a", 1)])
        );
        let nil_dropped = Some(vec![Value::Nil, Value::from(1)]);
        assert_eq!(
            with_nameless_bin(bins(&[("a", 1)]), nil_dropped),
            bins(&[("a", 1)])
        );
    }

    #[test]
    fn udf_list_parses_entries_with_commas_or_semicolons() {
        let text = "filename=b.lua,hash=22,type=LUA;filename=a.lua;hash=11;type=LUA;";
        let modules = parse_udf_list(text);
        assert_eq!(
            modules,
            vec![
                ModuleInfo {
                    name: "a.lua".into(),
                    hash: "11".into()
                },
                ModuleInfo {
                    name: "b.lua".into(),
                    hash: "22".into()
                },
            ]
        );
        assert!(parse_udf_list("").is_empty());
    }

    #[test]
    fn error_location_finds_module_and_line() {
        assert_eq!(
            error_location("/opt/aerospike/usr/udf/lua/counter.lua:12: boom"),
            Some(("counter.lua".into(), 12))
        );
        // A log helper's bad format points into the runtime, not the module.
        assert_eq!(
            error_location("[string \"aerospike.lua\"]:8: bad argument #2 to 'format'"),
            None
        );
        assert_eq!(error_location("function not found"), None);
        assert_eq!(error_location("x.lua: no line"), None);
    }

    #[test]
    fn compile_error_reply_carries_file_line_and_message() {
        let f = put_error(
            "error=compile_error;file=syntax.lua;line=3;message=dW5leHBlY3RlZCBzeW1ib2wgbmVhciAnZW5kJw==",
            "syntax.lua",
        );
        assert_eq!(f.kind, FailureKind::Compile);
        assert_eq!(f.message, "unexpected symbol near 'end'");
        assert_eq!(f.location, Some(("syntax.lua".into(), 3)));
    }

    #[test]
    fn module_file_adds_lua_only_without_extension() {
        assert_eq!(module_file("counter"), "counter.lua");
        assert_eq!(module_file("counter.lua"), "counter.lua");
        assert_eq!(module_file("mod.txt"), "mod.txt");
    }
}

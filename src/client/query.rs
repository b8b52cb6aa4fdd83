//! The query path, performed with the `aerospike` client: queries (records),
//! aggregations (stream UDFs), background UDF jobs, and secondary indexes.
//! Records and values are handed to a sink as they arrive, so the first
//! ones show while the rest are coming.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aerospike::{
    AdminPolicy, Bins, Client, CollectionIndexType, IndexType, QueryPolicy, Statement, Value,
    WritePolicy,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::ops::{error_location, failure, get_module, info, info_name, module_file};
use super::{Failure, FailureKind, Outcome, RecordView};
use crate::sandbox::engine::stream::CANCELLED;
use crate::sandbox::engine::{ClientLimit, StreamCall};
use crate::sandbox::{LuaLibs, Sandbox, SandboxConfig, Value as SandboxValue};
use crate::where_clause::{Collection, Where};

/// Which records a query-path request reads: a namespace, optionally one
/// set, optionally narrowed by a `where` clause on a secondary index.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub ns: String,
    pub set: Option<String>,
    pub where_clause: Option<Where>,
}

impl Scope {
    fn statement(&self, bins: Bins) -> Statement {
        let mut statement = Statement::new(&self.ns, self.set.as_deref().unwrap_or(""), bins);
        if let Some(clause) = &self.where_clause {
            statement.set_filter(clause.to_filter());
        }
        statement
    }
}

/// A query for records.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryCall {
    pub scope: Scope,
    /// The bins to read; `None` = all.
    pub bins: Option<Vec<String>>,
    /// Stop after this many records; `None` = all.
    pub max_records: Option<u64>,
}

/// A stream UDF run over a query's records.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateCall {
    pub scope: Scope,
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
    /// The module's source for the client-side part of the stream; `None` =
    /// read back the registered one (`udf-get`).
    pub source: Option<String>,
    /// The whole aggregation's time limit, the client's part included;
    /// `None` or 0 = none, but the client's Lua may run at most a UDF
    /// call's default (1000 ms) on each value.
    pub timeout_ms: Option<u32>,
}

/// A record UDF run by the server on every record of a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecuteCall {
    pub scope: Scope,
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
    /// Records per second; `None` = the server's default throttle.
    pub records_per_second: Option<u32>,
}

/// What a secondary index covers.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub ns: String,
    pub set: Option<String>,
    pub bin: String,
    /// `numeric`, `string`, `blob` or `geo2dsphere`.
    pub kind: String,
    pub collection: Collection,
    pub name: String,
}

impl IndexSpec {
    /// The index `asudf index create`, the console's create prompt and the
    /// samples describe: a collection word (`list`, `mapkeys`, `mapvalues`,
    /// any case) or none, and the name given or `NS_SET_BIN[_COLLECTION]`.
    pub fn new(
        ns: String,
        set: Option<String>,
        bin: &str,
        kind: &str,
        collection: Option<&str>,
        name: Option<&str>,
    ) -> IndexSpec {
        let collection = collection.map(str::to_ascii_lowercase);
        let default_name = || {
            let mut parts = vec![ns.as_str()];
            parts.extend(set.as_deref());
            parts.push(bin);
            parts.extend(collection.as_deref());
            parts.join("_")
        };
        let name = name.map_or_else(default_name, str::to_string);
        IndexSpec {
            bin: bin.to_string(),
            kind: kind.to_ascii_lowercase(),
            collection: collection
                .as_deref()
                .and_then(crate::where_clause::collection_of)
                .unwrap_or(Collection::Scalar),
            name,
            ns,
            set,
        }
    }
}

/// One entry of `sindex-list`, as the server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    pub ns: String,
    pub name: String,
    pub set: Option<String>,
    pub bin: String,
    pub kind: String,
    pub collection: String,
    pub state: String,
}

/// A job id: a number in text, a string in JSON. Ids are random 64-bit
/// numbers, most above 2^53, which JSON readers (jq, JavaScript) round.
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for JobId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One job of `query-show`: its `name=value` fields in the server's order.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub fields: Vec<(String, String)>,
}

impl JobInfo {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> u64 {
        self.field(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn id(&self) -> u64 {
        self.number("trid")
    }
    /// `active(ok)`, `done(ok)`, `done(user-aborted)`, …
    pub fn status(&self) -> &str {
        self.field("status").unwrap_or("")
    }
    pub fn is_done(&self) -> bool {
        self.status().starts_with("done")
    }
    /// Ended other than `done(ok)`: aborted, or failed. Its `percent` then
    /// reads 100 however far it got (the server's way, query-udfs.md §5.4).
    pub fn stopped(&self) -> bool {
        self.is_done() && self.status() != "done(ok)"
    }
    pub fn percent(&self) -> f64 {
        self.field("job-progress")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
    pub fn succeeded(&self) -> u64 {
        self.number("recs-succeeded")
    }
    pub fn failed(&self) -> u64 {
        self.number("recs-failed")
    }
    /// Records a filter expression left out (by metadata or by bins).
    pub fn filtered(&self) -> u64 {
        self.number("recs-filtered-meta") + self.number("recs-filtered-bins")
    }
}

/// Parses a `query-show` reply: jobs separated by `;`, fields by `:`.
pub fn parse_jobs(reply: &str) -> Vec<JobInfo> {
    reply
        .split(';')
        .filter(|job| !job.trim().is_empty())
        .map(|job| JobInfo {
            fields: job
                .trim()
                .split(':')
                .filter_map(|f| f.split_once('='))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        })
        .collect()
}

/// Parses a `sindex-list` reply.
pub fn parse_indexes(reply: &str) -> Vec<IndexInfo> {
    parse_jobs(reply)
        .into_iter()
        .map(|entry| {
            let get = |name: &str| entry.field(name).unwrap_or("").to_string();
            IndexInfo {
                ns: get("ns"),
                name: get("indexname"),
                set: entry
                    .field("set")
                    .filter(|s| *s != "null")
                    .map(str::to_string),
                bin: get("bin"),
                kind: get("type"),
                collection: get("indextype"),
                state: get("state"),
            }
        })
        .collect()
}

/// One item of a query-path answer, handed over as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Record {
        /// The stored user key, when the record has one.
        key: Option<Value>,
        digest: [u8; 20],
        view: RecordView,
    },
    Value(Value),
    /// Runs of a [`Request::ApplySeries`](super::Request::ApplySeries) done
    /// since its last report: the round trips of those that succeeded.
    Runs {
        round_trips: Vec<Duration>,
        failed: u32,
    },
}

/// Where a request's items go.
pub type ItemSink = mpsc::UnboundedSender<StreamItem>;

/// Turns a server error reply (`ERROR:code:text`) into a failure.
fn info_failure(reply: &str) -> Option<Failure> {
    let rest = reply.strip_prefix("ERROR:")?;
    let (code, text) = rest.split_once(':').unwrap_or((rest, ""));
    Some(Failure {
        kind: FailureKind::Server,
        code: code.parse().unwrap_or(-1),
        message: if text.is_empty() {
            reply.to_string()
        } else {
            text.to_string()
        },
        location: None,
        logs: Vec::new(),
    })
}

pub(super) async fn query(
    client: &Client,
    call: QueryCall,
    sink: &ItemSink,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let bins = match &call.bins {
        Some(names) if names.is_empty() => Bins::None,
        Some(names) => Bins::from(names.iter().map(String::as_str).collect::<Vec<_>>()),
        None => Bins::All,
    };
    let policy = QueryPolicy {
        max_records: call.max_records.unwrap_or(0),
        ..QueryPolicy::default()
    };
    let records = client
        .query(
            &policy,
            aerospike::PartitionFilter::all(),
            call.scope.statement(bins),
        )
        .await
        .map_err(failure)?;
    // Closing the record set stops the query on the server when this task
    // is cancelled (dropped) before the end.
    let _close = CloseOnDrop(records.clone());
    let mut stream = records.into_stream();
    let mut count = 0u64;
    while let Some(record) = stream.next().await {
        let record = record.map_err(failure)?;
        count += 1;
        let key = record.key.as_ref();
        let _ = sink.send(StreamItem::Record {
            key: key.and_then(|k| k.user_key().cloned()),
            digest: key.map(|k| k.digest()).unwrap_or_default(),
            view: RecordView {
                ttl: record.time_to_live().map(|d| d.as_secs() as u32),
                generation: record.generation,
                bins: record.bins.into_iter().collect(),
            },
        });
    }
    Ok(Outcome::Streamed {
        count,
        elapsed: started.elapsed(),
    })
}

struct CloseOnDrop(Arc<aerospike::Recordset>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Runs an aggregation: the server's half through a query whose record set
/// this task holds (dropped, the task closes it: its connection closes, and
/// the server stops the job, as for any client that goes away), and the
/// client's half (the first `reduce` and what follows) on an engine of its
/// own, fed the server's values as they come. (The crate's own aggregation
/// keeps reading the server's answer after its result set is closed, so
/// the server's job ran to its end after a cancel.)
pub(super) async fn aggregate(
    client: &Client,
    call: AggregateCall,
    sink: &ItemSink,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let file = module_file(&call.module);
    let package = file.trim_end_matches(".lua").to_string();
    let source = match call.source {
        Some(source) => source,
        None => match get_module(client, &call.module).await? {
            Outcome::Module { source, .. } => source,
            _ => unreachable!("get_module answers a module"),
        },
    };
    let engine = client_engine(&file, &source)?;
    let mut statement = call.scope.statement(Bins::All);
    statement.set_aggregate_function(&package, &call.function, &call.args);
    let mut policy = QueryPolicy::default();
    // A retried partition would feed the client's half its values twice.
    policy.base_policy.max_retries = 0;
    let listed_before = match &call.scope.set {
        Some(set) => aggregations_listed(client, &call.scope.ns, set).await,
        None => None,
    };
    let timeout = call.timeout_ms.filter(|&ms| ms > 0);
    let limit = match timeout {
        Some(ms) => {
            policy.base_policy.total_timeout = ms;
            ClientLimit::Until(started + Duration::from_millis(ms.into()))
        }
        None => ClientLimit::DEFAULT,
    };
    let records = client
        .query(&policy, aerospike::PartitionFilter::all(), statement)
        .await
        .map_err(stream_failure)?;
    let _close = CloseOnDrop(records.clone());
    let mut records = records.into_stream();

    // The client's half runs on a thread of its own, reading the server's
    // values from `partials` and writing its own to `values`.
    let (partials, partials_rx) = mpsc::channel::<SandboxValue>(PARTIALS_QUEUE);
    let (values_tx, mut values) = mpsc::unbounded_channel::<SandboxValue>();
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_on_drop = StopOnDrop(stop.clone());
    // Set before `partials` closes when the server's half failed.
    let server_failed = Arc::new(AtomicBool::new(false));
    let (function, args) = (
        call.function.clone(),
        call.args
            .iter()
            .map(SandboxValue::from_client)
            .collect::<Vec<_>>(),
    );
    let cut = server_failed.clone();
    let mut client_half = tokio::task::spawn_blocking(move || {
        let mut partials_rx = partials_rx;
        let stream = StreamCall {
            module: &package,
            function: &function,
            args: &args,
        };
        let mut next = std::iter::from_fn(|| {
            let value = partials_rx.blocking_recv();
            // A stream cut by the server's failure has no end for a reduce
            // to finish on: the run stops once it has read what came before.
            if value.is_none() && cut.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
            }
            value
        });
        let mut emit = |value| values_tx.send(value).is_ok();
        engine.run_stream_client_from(&stream, &mut next, &mut emit, &stop, limit)
    });

    let mut partials = Some(partials);
    let mut server_failure = None;
    let mut from_server = 0u64;
    let mut count = 0u64;
    let mut forward = |value: SandboxValue| {
        count += 1;
        let _ = sink.send(StreamItem::Value(value.to_client()));
    };
    let ended = loop {
        tokio::select! {
            record = records.next(), if partials.is_some() => match record {
                Some(record) => match record.map_err(stream_failure).and_then(server_value) {
                    Ok(partial) => {
                        from_server += 1;
                        let sent = match &partials {
                            Some(tx) => tx.send(SandboxValue::from_client(&partial)).await.is_ok(),
                            None => false,
                        };
                        if !sent {
                            // The client's half ended early (it failed): its answer tells.
                            partials = None;
                        }
                    }
                    // Whichever half fails first in the stream's order is
                    // reported, however the threads ran: the client's half
                    // still reads the values sent before this failure.
                    Err(failure) => {
                        server_failure = Some(failure);
                        server_failed.store(true, Ordering::SeqCst);
                        partials = None;
                    }
                },
                // The server is done: the client's half reads its end.
                None => partials = None,
            },
            Some(value) = values.recv() => forward(value),
            ended = &mut client_half => break ended,
        }
    };
    while let Ok(value) = values.try_recv() {
        forward(value);
    }
    let ended = ended.map_err(|e| {
        Failure::connection(format!("the client's part of the stream stopped: {e}"))
    })?;
    match (ended, server_failure) {
        // The client's half only stopped at the server's failure.
        (Err(text), Some(failure)) if text == CANCELLED => Err(failure),
        // It failed on values sent before any failure of the server's.
        (Err(text), _) => Err(client_half_failure(&text, timeout)),
        (Ok(()), Some(failure)) => Err(failure),
        (Ok(()), None) => {
            if let (0, Some(before), Some(set)) = (from_server, listed_before, &call.scope.set)
                && let Some(after) = aggregations_listed(client, &call.scope.ns, set).await
                && after.is_subset(&before)
            {
                return Err(Failure {
                    kind: FailureKind::Server,
                    code: 2,
                    message: format!(
                        "the server started no aggregation: set '{set}' has never held a record"
                    ),
                    location: None,
                    logs: Vec::new(),
                });
            }
            Ok(Outcome::Streamed {
                count,
                elapsed: started.elapsed(),
            })
        }
    }
}

/// What a failed first read of a background job's progress means, when it
/// means the job never started: the server refuses a job on a set it has
/// never held with "not found" (2) there, which the client (as the C
/// client) takes for a started job. One wording for the CLI's `execute`,
/// the console and `asudf test`.
pub fn no_job_started(failure: &Failure, set: Option<&str>) -> Option<String> {
    let set = set.filter(|_| failure.code == 2)?;
    Some(format!(
        "the server started no job: set '{set}' has never held a record ({})",
        failure.message
    ))
}

/// The ids of the aggregations on `ns`.`set` that `query-show` lists, or
/// `None` when it lists nothing readable. The server refuses an aggregation
/// on a set it has never held with 2 at the start, which the crate (like
/// the C client, query-udfs §1.1) takes for an empty stream; a job the
/// server started is listed, so an aggregation that brought no values and
/// no new listing never started.
async fn aggregations_listed(
    client: &Client,
    ns: &str,
    set: &str,
) -> Option<std::collections::HashSet<u64>> {
    let Ok(Outcome::Jobs(listed)) = jobs(client).await else {
        return None;
    };
    let ours = |job: &&JobInfo| {
        job.field("job-type") == Some("aggregation")
            && job.field("ns") == Some(ns)
            && job.field("set") == Some(set)
    };
    Some(listed.iter().filter(ours).map(JobInfo::id).collect())
}

/// Server values queued for the client's half before the reader waits.
const PARTIALS_QUEUE: usize = 500;

/// Where the client's half says its errors come from, in place of the
/// server's module folder: `(client)/sum.lua:7: …`.
const CLIENT_HALF_PATH: &str = "(client)";

/// An engine holding only the module `file`, for the client's half of its
/// streams, with every Lua library (as the client's Lua has).
fn client_engine(file: &str, source: &str) -> Result<Sandbox, Failure> {
    let config = SandboxConfig {
        lua_libs: LuaLibs::All,
        user_path: CLIENT_HALF_PATH.to_string(),
        ..SandboxConfig::default()
    };
    let engine = Sandbox::open(config).map_err(|e| Failure::connection(e.to_string()))?;
    let content = BASE64.encode(source);
    let put = format!(
        "filename={file};content={content};content-len={}",
        content.len()
    );
    match engine.info_udf_put(&put).as_str() {
        "ok" => Ok(engine),
        reply => Err(Failure {
            kind: FailureKind::Compile,
            code: -1,
            message: format!("the client cannot load {file} for the stream's client part: {reply}"),
            location: None,
            logs: Vec::new(),
        }),
    }
}

/// The value a server's aggregation record carries: `SUCCESS`, or the
/// stream's failure there (`FAILURE`).
fn server_value(mut record: aerospike::Record) -> Result<Value, Failure> {
    if let Some(value) = record.bins.swap_remove("SUCCESS") {
        return Ok(value);
    }
    let message = match record.bins.swap_remove("FAILURE") {
        Some(reason) => format!("aggregation UDF failed on the server: {reason}"),
        None => "an aggregation record without its SUCCESS bin".to_string(),
    };
    Err(Failure {
        kind: FailureKind::Server,
        code: QUERY_GENERIC,
        location: error_location(&message),
        message,
        logs: Vec::new(),
    })
}

/// What the engine's Lua raises when its time runs out, as a server's does.
const UDF_TIMEOUT: &str = "UDF Execution Timeout";

/// The server's result code for a failed query (`AS_ERR_QUERY`).
const QUERY_GENERIC: i32 = 213;

/// How an error of the client's half of a stream starts.
const FAILED_IN_CLIENT: &str = "stream UDF aggregation failed in the client";

/// True for an aggregation's failure in the client's half (its reduce),
/// after the server's half ended.
pub fn failed_in_client(failure: &Failure) -> bool {
    failure.message.starts_with(FAILED_IN_CLIENT)
}

/// The client's half failed (the engine's text names `(client)/MODULE.lua:LINE`);
/// a timeout says which limit ran out (`timeout_ms`: the request's).
fn client_half_failure(text: &str, timeout_ms: Option<u32>) -> Failure {
    let text = text
        .strip_prefix("UDF: Execution Error 2 : ")
        .unwrap_or(text);
    let timed_out = text.ends_with(UDF_TIMEOUT);
    // A timeout's position is the stream machinery's, not the module's.
    let text = if timed_out { UDF_TIMEOUT } else { text };
    let mut message = format!("{FAILED_IN_CLIENT}: {text}");
    if timed_out {
        message += &match timeout_ms {
            Some(ms) => format!(" (the aggregation ran past its time limit, {ms} ms)"),
            None => format!(
                " (its Lua ran {} ms on one value, the limit when the request sets none)",
                crate::sandbox::engine::DEFAULT_LIMIT_MS
            ),
        };
    }
    Failure {
        kind: FailureKind::Server,
        code: -1,
        location: error_location(&message),
        message,
        logs: Vec::new(),
    }
}

/// An aggregation's failure: a stream function's error
/// (`…/module.lua:LINE: …`) comes under a query result code, not the UDF
/// one, and still points into the module.
fn stream_failure(e: aerospike::Error) -> Failure {
    let mut f = failure(e);
    if f.location.is_none() && f.kind == FailureKind::Server {
        f.location = error_location(&f.message);
    }
    f
}

/// Stops the client's half of a stream when its aggregation is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub(super) async fn execute(client: &Client, call: ExecuteCall) -> Result<Outcome, Failure> {
    let statement = call.scope.statement(Bins::All);
    let mut policy = WritePolicy {
        records_per_second: call.records_per_second.unwrap_or(0),
        ..WritePolicy::default()
    };
    policy.base_policy.max_retries = 0;
    let module = module_file(&call.module)
        .trim_end_matches(".lua")
        .to_string();
    let task = client
        .query_execute_udf(&policy, statement, &module, &call.function, &call.args)
        .await
        .map_err(|e| {
            let mut f = failure(e);
            // A rate above the server's limit comes back as a bare
            // "Parameter error"; the limit itself is server configuration
            // that no info command of the sandbox reports.
            if let (4, Some(rps)) = (f.code, call.records_per_second) {
                f.message = format!(
                    "a rate of {rps} records per second is refused ({}): a background job may \
                     ask for at most the server's background-query-max-rps, 10000 unless \
                     configured otherwise (`asudf serve --background-max-rps N` sets the \
                     sandbox's)",
                    f.message
                );
            }
            f
        })?;
    Ok(Outcome::JobStarted { id: task.task_id() })
}

pub(super) async fn job(client: &Client, id: u64) -> Result<Outcome, Failure> {
    let reply = info(client, &format!("query-show:id={id}")).await?;
    if let Some(f) = info_failure(&reply) {
        return Err(f);
    }
    let job = parse_jobs(&reply)
        .into_iter()
        .next()
        .ok_or_else(|| Failure {
            kind: FailureKind::Server,
            code: 2,
            message: format!("job {id} not found"),
            location: None,
            logs: Vec::new(),
        })?;
    Ok(Outcome::Jobs(vec![job]))
}

pub(super) async fn jobs(client: &Client) -> Result<Outcome, Failure> {
    let reply = info(client, "query-show").await?;
    if let Some(f) = info_failure(&reply) {
        return Err(f);
    }
    Ok(Outcome::Jobs(parse_jobs(&reply)))
}

pub(super) async fn abort_job(client: &Client, id: u64) -> Result<Outcome, Failure> {
    let reply = info(client, &format!("query-abort:id={id}")).await?;
    match info_failure(&reply) {
        Some(f) => Err(f),
        None => Ok(Outcome::Info(reply)),
    }
}

/// How often, and how long, index creation waits for the index to be ready.
const INDEX_POLL: std::time::Duration = std::time::Duration::from_millis(10);
const INDEX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub(super) async fn create_index(client: &Client, spec: IndexSpec) -> Result<Outcome, Failure> {
    info_name("namespace", &spec.ns)?;
    if let Some(set) = &spec.set {
        info_name("set", set)?;
    }
    info_name("bin", &spec.bin)?;
    info_name("index name", &spec.name)?;
    let kind = match spec.kind.to_ascii_lowercase().as_str() {
        "numeric" => IndexType::Numeric,
        "string" => IndexType::String,
        "blob" => IndexType::Blob,
        "geo2dsphere" => IndexType::Geo2DSphere,
        other => {
            return Err(Failure::usage(format!(
                "index type '{other}': expected numeric, string, blob or geo2dsphere"
            )));
        }
    };
    let collection = match spec.collection {
        Collection::Scalar => CollectionIndexType::Default,
        Collection::List => CollectionIndexType::List,
        Collection::MapKeys => CollectionIndexType::MapKeys,
        Collection::MapValues => CollectionIndexType::MapValues,
    };
    let task = client
        .create_index_on_bin(
            &AdminPolicy::default(),
            &spec.ns,
            spec.set.as_deref().unwrap_or(""),
            &spec.bin,
            &spec.name,
            kind,
            collection,
            None,
        )
        .await
        .map_err(failure)?;
    // The crate's `wait_till_complete` sleeps a whole second before it first
    // asks; an index on few records is ready at once, so ask sooner.
    use aerospike::Task as _;
    use aerospike::task::Status;
    let deadline = Instant::now() + INDEX_WAIT;
    loop {
        match task.query_status().await.map_err(failure)? {
            Status::Complete => break,
            Status::NotFound => {
                return Err(Failure::connection(format!(
                    "index {} is not listed after its creation",
                    spec.name
                )));
            }
            Status::InProgress if Instant::now() < deadline => {
                tokio::time::sleep(INDEX_POLL).await;
            }
            Status::InProgress => {
                return Err(Failure::connection(format!(
                    "index {} was not ready after {} s",
                    spec.name,
                    INDEX_WAIT.as_secs()
                )));
            }
        }
    }
    Ok(Outcome::IndexCreated { name: spec.name })
}

pub(super) async fn list_indexes(client: &Client, ns: Option<&str>) -> Result<Outcome, Failure> {
    let command = match ns {
        Some(ns) => {
            info_name("namespace", ns)?;
            format!("sindex-list:namespace={ns}")
        }
        None => "sindex-list".to_string(),
    };
    let reply = info(client, &command).await?;
    if let Some(f) = info_failure(&reply) {
        return Err(f);
    }
    Ok(Outcome::Indexes(parse_indexes(&reply)))
}

pub(super) async fn drop_index(client: &Client, ns: &str, name: &str) -> Result<Outcome, Failure> {
    info_name("namespace", ns)?;
    info_name("index name", name)?;
    client
        .drop_index(&AdminPolicy::default(), ns, "", name)
        .await
        .map_err(failure)?;
    Ok(Outcome::IndexDropped {
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_fields_parse_in_the_servers_order() {
        let reply = "trid=3582360353140648019:ns=test:set=wc:rps=10000:active-threads=0:status=done(ok):job-progress=100.00:run-time=22:time-since-done=80:recs-throttled=4:recs-filtered-meta=1:recs-filtered-bins=2:recs-succeeded=4:recs-failed=3:from=127.0.0.1+59624:job-type=background-udf";
        let jobs = parse_jobs(reply);
        assert_eq!(jobs.len(), 1);
        let job = &jobs[0];
        assert_eq!(job.id(), 3582360353140648019);
        assert_eq!(job.fields[1], ("ns".into(), "test".into()));
        assert!(job.is_done());
        assert_eq!(
            (job.percent(), job.succeeded(), job.failed(), job.filtered()),
            (100.0, 4, 3, 3)
        );
        assert_eq!(parse_jobs("").len(), 0);
        assert_eq!(
            parse_jobs("trid=1:status=active(ok);trid=2:status=done(ok)").len(),
            2
        );
    }

    #[test]
    fn index_list_entries_parse() {
        let reply = "ns=test:indexname=ix:set=null:bin=n:type=numeric:indextype=default:context=null:exp=null:state=RW;ns=test:indexname=tags:set=s:bin=t:type=string:indextype=list:context=null:exp=null:state=RW";
        let indexes = parse_indexes(reply);
        assert_eq!(indexes.len(), 2);
        assert_eq!(indexes[0].set, None);
        assert_eq!(indexes[1].set.as_deref(), Some("s"));
        assert_eq!(indexes[1].collection, "list");
        assert!(parse_indexes("").is_empty());
    }

    #[test]
    fn info_errors_become_failures() {
        let f = info_failure("ERROR:201:no index").unwrap();
        assert_eq!((f.code, f.message.as_str()), (201, "no index"));
        assert!(info_failure("ok").is_none());
    }
}

//! The query path, performed with the `aerospike` client: queries (records),
//! aggregations (stream UDFs), background UDF jobs, and secondary indexes.
//! Records and values are handed to a sink as they arrive, so the first
//! ones show while the rest are coming.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use aerospike::{
    AdminPolicy, Bins, Client, CollectionIndexType, IndexType, QueryPolicy, Statement, Value,
    WritePolicy,
};
use futures::{FutureExt, StreamExt};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::ops::{error_location, failure, get_module, info, module_file};
use super::{Failure, FailureKind, Outcome, RecordView};
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

/// The crate runs the client side of a stream from a process-wide package
/// table: one aggregation per module at a time, so a source registered for
/// one run is not swapped under another.
static PACKAGE_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

pub(super) async fn aggregate(
    client: &Client,
    call: AggregateCall,
    sink: &ItemSink,
) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let package = module_file(&call.module)
        .trim_end_matches(".lua")
        .to_string();
    let source = match call.source {
        Some(source) => source,
        None => match get_module(client, &call.module).await? {
            Outcome::Module { source, .. } => source,
            _ => unreachable!("get_module answers a module"),
        },
    };
    let lock = PACKAGE_LOCKS
        .lock()
        .entry(package.clone())
        .or_default()
        .clone();
    let _guard = lock.lock().await;
    aerospike::lua::register_package(&package, &source);
    let results = client
        .query_aggregate(
            &QueryPolicy::default(),
            call.scope.statement(Bins::All),
            &package,
            &call.function,
            &call.args,
        )
        .await
        .map_err(stream_failure)?;
    let _close = CloseResultsOnDrop(results.clone());
    let mut stream = results.into_stream();
    let mut count = 0u64;
    while let Some(value) = next_value(&mut stream).await {
        let value = value.map_err(stream_failure)?;
        count += 1;
        let _ = sink.send(StreamItem::Value(value));
    }
    Ok(Outcome::Streamed {
        count,
        elapsed: started.elapsed(),
    })
}

/// The next aggregation value. The crate's `ResultStream` wakes itself
/// while it is empty, which keeps a core busy for the whole aggregation
/// (taking it from an in-process sandbox running the stream); so it is
/// polled once at a time, with a pause of up to 2 ms while nothing came.
async fn next_value(
    stream: &mut aerospike::ResultStream,
) -> Option<aerospike::errors::Result<Value>> {
    let mut pause = Duration::from_micros(100);
    loop {
        if let Some(item) = stream.next().now_or_never() {
            return item;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(2));
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

struct CloseResultsOnDrop(Arc<aerospike::ResultSet>);

impl Drop for CloseResultsOnDrop {
    fn drop(&mut self) {
        self.0.close();
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
        .map_err(failure)?;
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

/// Refuses a name an info command cannot carry: `;` ends a parameter, `=`
/// and `:` split names from values (and `sindex-list`'s fields), `,` splits
/// older servers' `indexdata=BIN,TYPE`, and a tab or a line end ends the
/// request line. Sent as is, the server would read another name.
fn info_name(what: &str, name: &str) -> Result<(), Failure> {
    match name
        .chars()
        .find(|c| matches!(c, ';' | ':' | '=' | ',') || c.is_control())
    {
        Some(c) => Err(Failure::usage(format!(
            "{what} '{}' contains {c:?}, which the server's info commands cannot carry",
            name.escape_debug()
        ))),
        None => Ok(()),
    }
}

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

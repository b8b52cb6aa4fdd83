//! The one client task: it owns the `aerospike::Client` (connecting,
//! noticing a loss, reconnecting) and publishes it to the [`ClientHandle`]s.
//! A handle sends [`Request`]s, each run in its own tokio task and answered
//! by an [`Event`] with the outcome and its [`Timing`], or awaits one in the
//! caller's task. The console and every headless command go through it.

mod connect;
mod ops;
pub mod query;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aerospike::Client;
use aerospike::Value;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

pub use connect::{ClusterInfo, Target};
pub use ops::{apply_policy, failure, info_name_problem, module_file, parse_udf_list};
pub use query::{
    AggregateCall, ExecuteCall, IndexInfo, IndexSpec, JobId, JobInfo, QueryCall, Scope, StreamItem,
    no_job_started,
};

pub type RequestId = u64;

/// Where a record lives: namespace, optional set, user key.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordKey {
    pub ns: String,
    pub set: Option<String>,
    pub key: Value,
}

impl RecordKey {
    pub(crate) fn to_key(&self) -> Result<aerospike::Key, Failure> {
        aerospike::Key::new(
            self.ns.clone(),
            self.set.clone().unwrap_or_default(),
            self.key.clone(),
        )
        .map_err(|e| Failure::usage(format!("bad key: {}", e.base_message())))
    }
}

/// A record UDF call.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyCall {
    pub key: RecordKey,
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
    /// The server-side time limit; `None` = the server's own (1000 ms).
    pub timeout_ms: Option<u32>,
    /// Send the user key with the call, so the server can store it.
    pub send_key: bool,
    /// Also read the record before and after the call.
    pub with_record: bool,
    /// Also read the log lines the UDF wrote (sandbox only; costs a round trip).
    pub with_logs: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    ListModules,
    GetModule {
        name: String,
    },
    PutModule {
        name: String,
        source: String,
    },
    RemoveModule {
        name: String,
    },
    /// Shared: a run of calls (`bench`, run-N) sends the same call again.
    Apply(Arc<ApplyCall>),
    /// The same call `times` times back to back: the console's run-N. Its
    /// runs are reported as [`StreamItem::Runs`] at most every 50 ms, then
    /// it is answered as its last run, with the record (when asked) read
    /// once before the first run and once after the last, and the logs
    /// read after the last. A cancel stops it between runs (the run in
    /// flight is dropped); it is then answered as its last run done.
    ApplySeries {
        call: Arc<ApplyCall>,
        times: u32,
    },
    GetRecord {
        key: RecordKey,
    },
    PutRecord {
        key: RecordKey,
        bins: Vec<(String, Value)>,
        /// Send the user key, so the server stores it with the record.
        send_key: bool,
    },
    DeleteRecord {
        key: RecordKey,
    },
    Info {
        command: String,
    },
    /// One UDF on many keys in one batch request: [`Outcome::BatchApplied`].
    BatchApply(Box<BatchApplyCall>),
    /// Records, as [`Event::Item`]s, then [`Outcome::Streamed`].
    Query(Box<QueryCall>),
    /// A stream UDF's values, as [`Event::Item`]s, then [`Outcome::Streamed`].
    Aggregate(Box<AggregateCall>),
    /// Starts a background UDF job: [`Outcome::JobStarted`].
    Execute(Box<ExecuteCall>),
    /// One job's `query-show` entry, or every job's with `None`.
    Jobs {
        id: Option<u64>,
    },
    AbortJob {
        id: u64,
    },
    CreateIndex(IndexSpec),
    ListIndexes {
        ns: Option<String>,
    },
    DropIndex {
        ns: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub hash: String,
}

/// A record UDF applied to many keys in one batch request.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchApplyCall {
    pub keys: Vec<RecordKey>,
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
    pub send_key: bool,
}

/// One key's answer in a batch apply.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRow {
    pub key: Value,
    pub result: Result<Value, Failure>,
}

/// A record as the client read it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordView {
    pub bins: Vec<(String, Value)>,
    pub generation: u32,
    /// Seconds to live; `None` = never expires.
    pub ttl: Option<u32>,
}

/// A line a UDF logged (sandbox only: a real server writes them to its log file).
#[derive(Debug, Clone, PartialEq)]
pub struct UdfLog {
    pub level: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Modules(Vec<ModuleInfo>),
    Module {
        name: String,
        source: String,
    },
    /// Registered, and every node lists it after `propagation`.
    Registered {
        name: String,
        propagation: Duration,
    },
    Removed {
        name: String,
    },
    Applied {
        result: Value,
        logs: Vec<UdfLog>,
        before: Option<RecordView>,
        after: Option<RecordView>,
        /// The UDF call's own round trip: not the record reads around it
        /// nor the log read.
        call: Duration,
        /// How long the UDF ran in the server (sandbox only).
        server_run: Option<Duration>,
    },
    Record(Option<RecordView>),
    Written,
    Deleted {
        existed: bool,
    },
    Info(String),
    /// A batch apply's answers, one per key in the order given.
    BatchApplied(Vec<BatchRow>),
    /// A query or aggregation ended after `count` items.
    Streamed {
        count: u64,
        elapsed: Duration,
    },
    JobStarted {
        id: u64,
    },
    Jobs(Vec<JobInfo>),
    IndexCreated {
        name: String,
    },
    Indexes(Vec<IndexInfo>),
    IndexDropped {
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server answered with a result code (100 = the UDF failed).
    Server,
    /// A module failed to compile or its top level failed at registration.
    Compile,
    Connection,
    /// The client gave up waiting.
    Timeout,
    Cancelled,
    /// The request itself was invalid (bad key, bad name).
    Usage,
}

/// Why a request failed, with the place in the module when the server said.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The server's result code, or the client's negative code.
    pub code: i32,
    pub message: String,
    /// `module.lua` and line, parsed from `…/module.lua:LINE: …` or a compile error.
    pub location: Option<(String, u32)>,
    /// What the UDF logged before it failed (sandbox only).
    pub logs: Vec<UdfLog>,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Usage,
            code: 4,
            message: message.into(),
            location: None,
            logs: Vec::new(),
        }
    }
    /// What a request cancelled in flight ends with.
    pub fn cancelled() -> Failure {
        Failure {
            kind: FailureKind::Cancelled,
            code: -1,
            message: "cancelled".into(),
            location: None,
            logs: Vec::new(),
        }
    }
    pub fn connection(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Connection,
            code: -10,
            message: message.into(),
            location: None,
            logs: Vec::new(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FailureKind::Server | FailureKind::Compile => {
                write!(f, "error {}: {}", self.code, self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

/// When a request was queued by the caller, sent by the task, and answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub queued: Instant,
    pub sent: Instant,
    pub answered: Instant,
}

impl Timing {
    /// Time on the wire: sent → answered.
    pub fn round_trip(&self) -> Duration {
        self.answered - self.sent
    }
    /// Time waiting in the task before it was sent.
    pub fn queue_wait(&self) -> Duration {
        self.sent - self.queued
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    Connecting {
        target: String,
    },
    Connected(ClusterInfo),
    /// The connection failed or went away; the task keeps retrying.
    Lost {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Connection(ConnectionState),
    /// A record or value of a query-path request, before its `Done`.
    Item {
        id: RequestId,
        item: StreamItem,
    },
    Done {
        id: RequestId,
        outcome: Result<Outcome, Failure>,
        timing: Timing,
    },
}

/// A request's abort handle, queue time and "answered" flag: whoever sets
/// the flag first (the request or a cancel) sends the one answer. A series
/// has a stop instead: it answers itself, with the runs it did.
struct InFlight {
    abort: AbortHandle,
    queued: Instant,
    answered: Arc<AtomicBool>,
    stop: Option<Arc<Notify>>,
}

/// What the handle and the connection task share: the client while
/// connected, and the requests in flight.
struct Shared {
    /// The client and whether it talks to a sandbox; `None` while not connected.
    connection: connect::Published,
    in_flight: Mutex<HashMap<RequestId, InFlight>>,
    /// The newest sandbox log sequence number read, to pick out a call's logs.
    log_mark: AtomicU64,
    next_id: AtomicU64,
    events: mpsc::UnboundedSender<Event>,
    /// Where a plain [`ClientHandle::call`]'s items go: nowhere (its
    /// receiver is dropped), without making a channel per call.
    discard: query::ItemSink,
    last_key: ops::LastKey,
    /// The runtime the client task runs on, where requests run too: the
    /// console's own thread only reads, reduces and draws.
    runtime: tokio::runtime::Handle,
}

/// The UI's end of the client task. Cheap to clone; the task ends when the
/// last handle is dropped.
#[derive(Clone)]
pub struct ClientHandle {
    shared: Arc<Shared>,
    _alive: mpsc::UnboundedSender<()>,
}

impl ClientHandle {
    /// Starts a request; its answer arrives as an [`Event::Done`] with this id.
    ///
    /// The request runs in its own tokio task on the client task's runtime,
    /// spawned here rather than by the connection task: one hop less per
    /// call (measured in `benches/client.rs`).
    pub fn send(&self, request: Request) -> RequestId {
        let shared = &self.shared;
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let queued = Instant::now();
        let connection = shared.connection.read().clone();
        let answered = Arc::new(AtomicBool::new(false));
        let stop = matches!(request, Request::ApplySeries { .. }).then(Default::default);
        let task = shared.runtime.spawn(run_request(
            shared.clone(),
            id,
            request,
            queued,
            connection,
            answered.clone(),
            stop.clone(),
        ));
        let mut in_flight = shared.in_flight.lock();
        in_flight.retain(|_, r| !r.answered.load(Ordering::Acquire));
        let abort = task.abort_handle();
        in_flight.insert(
            id,
            InFlight {
                abort,
                queued,
                answered,
                stop,
            },
        );
        id
    }

    /// Performs a request and waits for its answer, in the caller's task:
    /// for callers that wait anyway (the headless commands). No event is
    /// sent for it.
    pub async fn call(&self, request: Request) -> (Result<Outcome, Failure>, Timing) {
        // Not queued anywhere: queued = sent, one clock read less per call.
        let connection = self.shared.connection.read().clone();
        let discard = &self.shared.discard;
        execute(&self.shared, connection, request, None, discard, None).await
    }

    /// [`call`](Self::call) for a query-path request: its records or values
    /// go to `items` as they arrive.
    pub async fn call_streaming(
        &self,
        request: Request,
        items: query::ItemSink,
    ) -> (Result<Outcome, Failure>, Timing) {
        let connection = self.shared.connection.read().clone();
        execute(&self.shared, connection, request, None, &items, None).await
    }

    /// The bare client while connected: for measuring the client task
    /// against the crate's own calls (`asudf bench --baseline`).
    pub fn bare_client(&self) -> Option<Arc<Client>> {
        self.shared
            .connection
            .read()
            .as_ref()
            .map(|(client, _)| client.clone())
    }

    /// Cancels a request in flight; it ends with a `Cancelled` failure (a
    /// series: with its last run done, see [`Request::ApplySeries`]).
    pub fn cancel(&self, id: RequestId) {
        let entry = self.shared.in_flight.lock().remove(&id);
        if let Some(InFlight {
            stop: Some(stop), ..
        }) = &entry
        {
            stop.notify_one();
            return;
        }
        if let Some(InFlight {
            abort,
            queued,
            answered,
            ..
        }) = entry
            && !answered.swap(true, Ordering::AcqRel)
        {
            abort.abort();
            let now = Instant::now();
            let _ = self.shared.events.send(Event::Done {
                id,
                outcome: Err(Failure::cancelled()),
                timing: Timing {
                    queued,
                    sent: now,
                    answered: now,
                },
            });
        }
    }
}

async fn run_request(
    shared: Arc<Shared>,
    id: RequestId,
    request: Request,
    queued: Instant,
    connection: Option<(Arc<Client>, bool)>,
    answered: Arc<AtomicBool>,
    stop: Option<Arc<Notify>>,
) {
    // Items become events as they arrive, in order, before the `Done`.
    let (items, mut item_rx) = mpsc::unbounded_channel();
    let forward = {
        let events = shared.events.clone();
        async move {
            while let Some(item) = item_rx.recv().await {
                let _ = events.send(Event::Item { id, item });
            }
        }
    };
    let perform = async {
        let stop = stop.as_deref();
        let answer = execute(&shared, connection, request, Some(queued), &items, stop).await;
        drop(items);
        answer
    };
    let ((outcome, timing), ()) = tokio::join!(perform, forward);
    if !answered.swap(true, Ordering::AcqRel) {
        let _ = shared.events.send(Event::Done {
            id,
            outcome,
            timing,
        });
    }
}

/// Performs one request with the published client.
async fn execute(
    shared: &Shared,
    connection: Option<(Arc<Client>, bool)>,
    request: Request,
    queued: Option<Instant>,
    items: &query::ItemSink,
    stop: Option<&Notify>,
) -> (Result<Outcome, Failure>, Timing) {
    let sent = Instant::now();
    let outcome = match &connection {
        Some((client, sandbox)) => {
            let log_mark = sandbox.then_some(&shared.log_mark);
            let last_key = &shared.last_key;
            ops::perform(client, log_mark, last_key, request, sent, items, stop).await
        }
        None => Err(Failure::connection(
            "not connected: the cluster is not answering",
        )),
    };
    let timing = Timing {
        queued: queued.unwrap_or(sent),
        sent,
        answered: Instant::now(),
    };
    (outcome, timing)
}

/// Starts the client task and waits until it first connects (or says why
/// it could not). The events that follow arrive on the receiver.
pub async fn spawn_connected(
    target: Target,
) -> Result<(ClientHandle, mpsc::UnboundedReceiver<Event>, ClusterInfo), String> {
    let (handle, mut events) = spawn(target);
    while let Some(event) = events.recv().await {
        match event {
            Event::Connection(ConnectionState::Connected(cluster)) => {
                return Ok((handle, events, cluster));
            }
            Event::Connection(ConnectionState::Lost { reason }) => return Err(reason),
            _ => {}
        }
    }
    Err("the client task ended".into())
}

/// Starts the client task for `target` on the current runtime, where its
/// requests run too. Events (connection changes and answers) arrive on the
/// returned receiver.
pub fn spawn(target: Target) -> (ClientHandle, mpsc::UnboundedReceiver<Event>) {
    let (events, event_rx) = mpsc::unbounded_channel();
    let (alive, alive_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        connection: Arc::new(RwLock::new(None)),
        in_flight: Mutex::new(HashMap::new()),
        log_mark: AtomicU64::new(0),
        next_id: AtomicU64::new(1),
        events,
        discard: mpsc::unbounded_channel().0,
        last_key: ops::LastKey::default(),
        runtime: tokio::runtime::Handle::current(),
    });
    tokio::spawn(run(target, shared.clone(), alive_rx));
    let handle = ClientHandle {
        shared,
        _alive: alive,
    };
    (handle, event_rx)
}

/// How often the task checks that the cluster is still there.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

/// The connection task: connects, watches the connection, reconnects, and
/// publishes the current client to the handles.
async fn run(target: Target, shared: Arc<Shared>, mut alive: mpsc::UnboundedReceiver<()>) {
    let events = shared.events.clone();
    let mut session = connect::Session::new(target, shared.connection.clone());
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut attempt = Some(session.attempt(&events));
    loop {
        tokio::select! {
            result = async { attempt.as_mut().expect("guarded").await }, if attempt.is_some() => {
                attempt = None;
                let result = result.unwrap_or_else(|e| Err(format!("connecting failed: {e}")));
                session.attempted(result, &events);
            }
            // Every handle dropped: nobody can send requests any more.
            None = alive.recv() => break,
            _ = health.tick(), if attempt.is_none() => {
                attempt = session.check(&events).await;
            }
        }
    }
    *shared.connection.write() = None;
    session.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `.await` level moves its callee's future into its own, whole:
    /// the apply path boxes the crate's call (a few KiB) so the levels
    /// above it (`call`, `execute`, `perform`, a caller's block) stay small.
    #[tokio::test]
    async fn an_awaited_apply_moves_no_big_future() {
        let (handle, _events) = spawn(Target::Cluster {
            hosts: vec![aerospike::Host::new("127.0.0.1", 1)],
            policy: aerospike::ClientPolicy::default(),
        });
        let call = ApplyCall {
            key: RecordKey {
                ns: "test".into(),
                set: None,
                key: Value::from(1),
            },
            module: "m".into(),
            function: "f".into(),
            args: Vec::new(),
            timeout_ms: None,
            send_key: false,
            with_record: false,
            with_logs: false,
        };
        let future = handle.call(Request::Apply(call.into()));
        let size = std::mem::size_of_val(&future);
        assert!(size < 1024, "ClientHandle::call's future is {size} bytes");
    }
}

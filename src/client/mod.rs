//! The one client task: it owns the `aerospike::Client`, takes [`Request`]s
//! over a channel and answers each with an [`Event`] carrying the outcome and
//! its [`Timing`]. The console and every headless command go through it.

mod connect;
mod ops;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aerospike::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub use connect::{ClusterInfo, Target};

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
    Apply(ApplyCall),
    GetRecord {
        key: RecordKey,
    },
    PutRecord {
        key: RecordKey,
        bins: Vec<(String, Value)>,
    },
    DeleteRecord {
        key: RecordKey,
    },
    Info {
        command: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModuleInfo {
    pub name: String,
    pub hash: String,
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
    },
    Record(Option<RecordView>),
    Written,
    Deleted {
        existed: bool,
    },
    Info(String),
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
    /// The task picked the request up and sent it.
    Started {
        id: RequestId,
    },
    Done {
        id: RequestId,
        outcome: Result<Outcome, Failure>,
        timing: Timing,
    },
}

enum Command {
    Run {
        id: RequestId,
        request: Request,
        queued: Instant,
    },
    Cancel(RequestId),
}

/// The UI's end of the client task. Cheap to clone.
#[derive(Clone)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl ClientHandle {
    /// Queues a request; its answer arrives as an [`Event::Done`] with this id.
    pub fn send(&self, request: Request) -> RequestId {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.commands.send(Command::Run {
            id,
            request,
            queued: Instant::now(),
        });
        id
    }

    /// Cancels a request in flight; it ends with a `Cancelled` failure.
    pub fn cancel(&self, id: RequestId) {
        let _ = self.commands.send(Command::Cancel(id));
    }
}

/// Starts the client task for `target`. Events (connection changes and
/// answers) arrive on the returned receiver; dropping every handle ends it.
pub fn spawn(target: Target) -> (ClientHandle, mpsc::UnboundedReceiver<Event>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(target, command_rx, events));
    let handle = ClientHandle {
        commands,
        next_id: Arc::new(std::sync::atomic::AtomicU64::new(1)),
    };
    (handle, event_rx)
}

/// How often the task checks that the cluster is still there.
const HEALTH_INTERVAL: Duration = Duration::from_millis(500);

async fn run(
    target: Target,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
) {
    let mut session = connect::Session::new(target);
    let log_mark = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<RequestId>();
    let mut in_flight: HashMap<RequestId, (AbortHandle, Instant)> = HashMap::new();
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
            command = commands.recv() => match command {
                None => break,
                Some(Command::Cancel(id)) => {
                    if let Some((abort, queued)) = in_flight.remove(&id) {
                        abort.abort();
                        let now = Instant::now();
                        let _ = events.send(Event::Done {
                            id,
                            outcome: Err(Failure {
                                kind: FailureKind::Cancelled,
                                code: -1,
                                message: "cancelled".into(),
                                location: None,
                                logs: Vec::new(),
                            }),
                            timing: Timing { queued, sent: now, answered: now },
                        });
                    }
                }
                Some(Command::Run { id, request, queued }) => {
                    let client = session.client();
                    let log_mark = session.is_sandbox().then(|| log_mark.clone());
                    let events = events.clone();
                    let finished = finished_tx.clone();
                    let task = tokio::spawn(async move {
                        let sent = Instant::now();
                        let _ = events.send(Event::Started { id });
                        let outcome = match client {
                            Some(client) => ops::perform(&client, log_mark.as_deref(), request).await,
                            None => Err(Failure::connection("not connected: the cluster is not answering")),
                        };
                        let answered = Instant::now();
                        let _ = finished.send(id);
                        let _ = events.send(Event::Done {
                            id,
                            outcome,
                            timing: Timing { queued, sent, answered },
                        });
                    });
                    in_flight.insert(id, (task.abort_handle(), queued));
                }
            },
            Some(id) = finished_rx.recv() => {
                in_flight.remove(&id);
            }
            _ = health.tick(), if attempt.is_none() => {
                attempt = session.check(&events).await;
            }
        }
    }
    session.close().await;
}

/// Runs one request through a fresh task and waits for its answer: the
/// headless commands' way of using the client task.
pub async fn call(
    handle: &ClientHandle,
    events: &mut mpsc::UnboundedReceiver<Event>,
    request: Request,
) -> (Result<Outcome, Failure>, Option<Timing>) {
    let id = handle.send(request);
    while let Some(event) = events.recv().await {
        if let Event::Done {
            id: done,
            outcome,
            timing,
        } = event
            && done == id
        {
            return (outcome, Some(timing));
        }
    }
    (Err(Failure::connection("the client task ended")), None)
}

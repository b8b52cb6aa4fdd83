//! The query path (`query-udfs.md`): a query message is decoded
//! ([`request`]), checked at job start (namespace, index, set, filter),
//! registered as a job ([`crate::sandbox::jobs`]), and its records picked
//! by the one selection step ([`select`]) for one of three consumers:
//! [`basic`] (records), [`aggregate`] (stream UDFs) and [`background`]
//! (a record UDF per record, as a job of its own). Replies go out through
//! [`reply`] as they are produced.

pub mod aggregate;
pub mod background;
pub mod basic;
pub mod reply;
pub mod request;
pub mod select;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::sandbox::engine::Sandbox;
use crate::sandbox::expr::Filter;
use crate::sandbox::jobs::{JobInfo, JobKind, Jobs};
use crate::sandbox::server::message::Message;
use crate::sandbox::sindex::{Index, Lookup};
use reply::ReplyWriter;
pub use request::{Kind, QueryRequest, is_query};
use request::{N_PARTITIONS, NAMESPACE, PARAMETER, Refusal, UNSUPPORTED};

/// No index fits the `where` clause.
pub const INDEX_NOT_FOUND: u8 = 201;
/// An aggregation or background job on a set the namespace never held.
pub const SET_NOT_FOUND: u8 = 2;
/// The server's `background-query-max-rps` default.
pub const DEFAULT_BACKGROUND_MAX_RPS: u32 = 10_000;

/// Serves query messages; shared by every connection. Cheap to clone.
#[derive(Clone)]
pub struct QueryService {
    pub sandbox: Sandbox,
    pub jobs: Arc<Jobs>,
    /// `background-query-max-rps`: the rate of a background job that asks
    /// for none, and the most one may ask for.
    pub background_max_rps: u32,
}

impl QueryService {
    pub fn new(sandbox: Sandbox, background_max_rps: u32) -> QueryService {
        QueryService {
            sandbox,
            jobs: Arc::new(Jobs::default()),
            background_max_rps,
        }
    }

    /// Runs one query message to its end (blocking), handing reply frames
    /// to `send` (false = the reader is gone). Setting `cancel` stops it.
    pub fn run(
        &self,
        msg: &Message,
        from: Option<SocketAddr>,
        cancel: Arc<AtomicBool>,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) {
        let mut out = ReplyWriter::new(send);
        let started = self.parse_and_check(msg);
        let (req, index) = match started {
            Ok(ok) => ok,
            Err(refusal) => {
                if let Some(what) = refusal.unsupported {
                    tracing::warn!("refused with result 16 (not served by the sandbox): {what}");
                }
                out.push(&reply::start_error(refusal.code));
                out.flush();
                return;
            }
        };
        let kind = match req.kind {
            Kind::Basic => JobKind::Basic,
            Kind::Aggregation => JobKind::Aggregation,
            Kind::BackgroundUdf => JobKind::BackgroundUdf,
        };
        let rps = match req.kind {
            Kind::BackgroundUdf if req.rps == 0 => self.background_max_rps,
            _ => req.rps,
        };
        let info = JobInfo {
            trid: req.trid,
            kind,
            ns: req.ns.clone(),
            set: req.set.clone(),
            sindex: index.as_ref().map(|(i, _)| i.def.name.clone()),
            n_pids: req.partitions.n_pids,
            n_digests: req.partitions.n_digests,
            rps,
            from,
            socket_timeout_ms: req.socket_timeout_ms,
            udf: req
                .udf
                .as_ref()
                .map(|u| (u.module.clone(), u.function.clone())),
        };
        let job = self.jobs.start(info, N_PARTITIONS as u32, cancel);
        match req.kind {
            Kind::Basic => basic::run(self, &req, index, &job, &mut out),
            Kind::Aggregation => aggregate::run(self, &req, index, &job, &mut out),
            Kind::BackgroundUdf => {
                // Registered: answer at once, then run on its own.
                out.last(0);
                background::spawn(self.clone(), req, index, job);
                return;
            }
        }
        self.jobs.finish(&job);
    }

    /// Decodes the request and checks what a job checks at start.
    fn parse_and_check(
        &self,
        msg: &Message,
    ) -> Result<(QueryRequest, Option<(Arc<Index>, Lookup)>), Refusal> {
        let req = QueryRequest::parse(msg)?;
        let store = self.sandbox.store();
        if !store.has_namespace(&req.ns) {
            return Err(NAMESPACE.into());
        }
        if let Some(wire) = &req.filter {
            if req.kind == Kind::Aggregation {
                return Err(Refusal {
                    code: UNSUPPORTED,
                    unsupported: Some("aggregation with a filter expression"),
                });
            }
            if let Err(e) = Filter::parse(wire) {
                let code = e.result_code();
                return Err(Refusal {
                    code,
                    unsupported: (code == UNSUPPORTED).then_some("this filter expression"),
                });
            }
        }
        let index = match &req.where_clause {
            None => None,
            Some(w) => {
                let indexes = store.indexes();
                let found = match &w.index_name {
                    Some(name) => indexes.find(&req.ns, name).filter(|i| {
                        (w.bin.is_empty() || i.def.bin == w.bin)
                            && i.def.key_type == w.key_type
                            && i.def.collection == w.collection
                    }),
                    None => indexes.fitting(
                        &req.ns,
                        req.set.as_deref(),
                        &w.bin,
                        w.collection,
                        w.key_type,
                    ),
                };
                Some((found.ok_or(INDEX_NOT_FOUND)?, w.lookup.clone()))
            }
        };
        if req.kind != Kind::Basic
            && let Some(set) = &req.set
            && !store.knows_set(&req.ns, set)
        {
            return Err(SET_NOT_FOUND.into());
        }
        if req.kind == Kind::BackgroundUdf && req.rps > self.background_max_rps {
            return Err(PARAMETER.into());
        }
        Ok((req, index))
    }
}

/// Paces a job to `rps` records a second (0 = unpaced). Sleeps only once
/// a millisecond's worth is due, so small steps do not cost a sleep each.
pub struct Throttle {
    step: Duration,
    next: Instant,
}

impl Throttle {
    pub fn new(rps: u32) -> Throttle {
        let step = if rps == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(1) / rps
        };
        Throttle {
            step,
            next: Instant::now(),
        }
    }

    pub fn wait(&mut self) {
        if self.step.is_zero() {
            return;
        }
        let now = Instant::now();
        if self.next > now + Duration::from_millis(1) {
            std::thread::sleep(self.next - now);
        }
        // Behind schedule: start again from now rather than burst.
        self.next = self.next.max(now) + self.step;
    }
}

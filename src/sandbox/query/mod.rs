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
use crate::sandbox::sindex::{Index, Lookup};
use reply::ReplyWriter;
use request::{N_PARTITIONS, NAMESPACE, PARAMETER, Refusal, UNSUPPORTED};
pub use request::{QueryRequest, is_query};

/// No index fits the `where` clause.
pub const INDEX_NOT_FOUND: u8 = 201;
/// An aggregation or background job on a set the namespace never held.
pub const SET_NOT_FOUND: u8 = 2;
/// The server's `background-query-max-rps` default.
pub const DEFAULT_BACKGROUND_MAX_RPS: u32 = 10_000;

/// The index a query reads and what it looks up in it.
pub type IndexUse = (Arc<Index>, Lookup);
/// A request that passed the start checks, with the index it reads and its
/// decoded filter expression.
type Checked = (QueryRequest, Option<IndexUse>, Option<Filter>);

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
        request: Result<QueryRequest, Refusal>,
        from: Option<SocketAddr>,
        cancel: Arc<AtomicBool>,
        send: &mut dyn FnMut(Vec<u8>) -> bool,
    ) {
        let mut out = ReplyWriter::new(send);
        let started = request.and_then(|req| self.check(req));
        let (req, index, filter) = match started {
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
        let rps = match req.kind {
            JobKind::BackgroundUdf if req.rps == 0 => self.background_max_rps,
            _ => req.rps,
        };
        let info = JobInfo {
            trid: req.trid,
            kind: req.kind,
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
            JobKind::Basic => basic::run(self, &req, index, filter, &job, &mut out),
            JobKind::Aggregation => aggregate::run(self, &req, index, &job, &mut out),
            JobKind::BackgroundUdf => {
                // Registered: answer at once, then run on its own.
                out.last(0);
                background::spawn(self.clone(), req, index, filter, job);
                return;
            }
        }
        self.jobs.finish(&job);
    }

    /// Checks what a job checks at start, giving the index it reads and its
    /// decoded filter expression.
    fn check(&self, req: QueryRequest) -> Result<Checked, Refusal> {
        let store = self.sandbox.store();
        if !store.has_namespace(&req.ns) {
            return Err(NAMESPACE.into());
        }
        let filter = match &req.filter {
            None => None,
            Some(_) if req.kind == JobKind::Aggregation => {
                return Err(Refusal {
                    code: UNSUPPORTED,
                    unsupported: Some("aggregation with a filter expression"),
                });
            }
            Some(wire) => Some(Filter::parse(wire).map_err(|e| {
                let code = e.result_code();
                Refusal {
                    code,
                    unsupported: (code == UNSUPPORTED).then_some("this filter expression"),
                }
            })?),
        };
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
        if req.kind != JobKind::Basic
            && let Some(set) = &req.set
            && !store.knows_set(&req.ns, set)
        {
            return Err(SET_NOT_FOUND.into());
        }
        if req.kind == JobKind::BackgroundUdf && req.rps > self.background_max_rps {
            return Err(PARAMETER.into());
        }
        Ok((req, index, filter))
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
        // Behind schedule: catch up at most 10 ms' worth, never burst more.
        let floor = now.checked_sub(Duration::from_millis(10)).unwrap_or(now);
        self.next = self.next.max(floor) + self.step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SandboxConfig;
    use crate::sandbox::server::message::Message;
    use crate::sandbox::server::message::{Field, MsgHeader, Op};
    use proptest::prelude::*;

    fn service() -> QueryService {
        let sandbox = Sandbox::open(SandboxConfig::default()).unwrap();
        let store = sandbox.store().clone();
        for i in 0..20 {
            let key = crate::sandbox::Value::Int(i);
            let digest = crate::sandbox::store::digest(Some("s"), &key).unwrap();
            let record = crate::sandbox::Record {
                bins: vec![("n".into(), key)],
                generation: 1,
                void_time: 0,
                last_update_ms: 0,
                set: Some("s".into()),
                key: None,
            };
            store
                .modify("test", &digest, |_| {
                    (crate::sandbox::store::Change::Put(record), ())
                })
                .unwrap();
        }
        QueryService::new(sandbox, 1_000_000)
    }

    /// Runs `msg`, returning every message body sent.
    fn replies(svc: &QueryService, msg: &Message) -> Vec<Message> {
        let mut frames = Vec::new();
        svc.run(QueryRequest::parse(msg), None, Arc::default(), &mut |f| {
            frames.push(f);
            true
        });
        let mut out = Vec::new();
        for frame in frames {
            let mut rest = &frame[8..];
            while !rest.is_empty() {
                let len = message_len(rest);
                out.push(Message::parse(&rest[..len]).expect("a whole message"));
                rest = &rest[len..];
            }
        }
        out
    }

    /// The length of the first message in `bytes` (several share a frame).
    fn message_len(bytes: &[u8]) -> usize {
        let u32_at = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let n_fields = u16::from_be_bytes([bytes[18], bytes[19]]);
        let n_ops = u16::from_be_bytes([bytes[20], bytes[21]]);
        let mut at = 22;
        for _ in 0..n_fields + n_ops {
            at += 4 + u32_at(at);
        }
        at
    }

    fn scan(set: &str) -> Message {
        Message {
            header: MsgHeader {
                info1: 1,
                info3: request::INFO3_PARTITION_DONE,
                ..MsgHeader::default()
            },
            fields: vec![
                Field {
                    ty: 0,
                    data: b"test".to_vec(),
                },
                Field {
                    ty: 1,
                    data: set.as_bytes().to_vec(),
                },
            ],
            ops: vec![],
        }
    }

    #[test]
    fn a_scan_sends_its_records_then_last() {
        let svc = service();
        let got = replies(&svc, &scan("s"));
        assert_eq!(got.len(), 21);
        assert!(
            got[..20]
                .iter()
                .all(|m| m.header.info3 == 0 && m.ops.len() == 1)
        );
        assert_eq!(got[20].header.info3, 1);
        // An unknown set is an empty stream for a basic query ...
        assert_eq!(replies(&svc, &scan("nope")).len(), 1);
        // ... and result 2 (no LAST) for a background job.
        let mut bg = scan("nope");
        bg.header.info2 = 1;
        bg.fields.push(Field {
            ty: 33,
            data: vec![2],
        });
        bg.fields.push(Field {
            ty: 30,
            data: b"m".to_vec(),
        });
        bg.fields.push(Field {
            ty: 31,
            data: b"f".to_vec(),
        });
        let got = replies(&svc, &bg);
        assert_eq!(
            (got.len(), got[0].header.result_code, got[0].header.info3),
            (1, 2, 0)
        );
        // Selecting a bin no record has sends no record, yet counts them.
        let mut select = scan("s");
        select.ops.push(Op {
            op: 1,
            particle: 0,
            name: "zz".into(),
            value: vec![],
        });
        assert_eq!(replies(&svc, &select).len(), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn arbitrary_query_messages_never_panic(
            info in any::<[u8; 3]>(),
            fields in proptest::collection::vec(
                (prop_oneof![Just(0u8), Just(1), 7..16u8, 21..27u8, 30..34u8, Just(43)],
                 proptest::collection::vec(any::<u8>(), 0..32)),
                0..8),
        ) {
            let svc = service();
            let mut msg = scan("s");
            msg.header.info1 = info[0];
            msg.header.info2 = info[1] & !1;
            msg.header.info3 = info[2];
            msg.fields.extend(fields.into_iter().map(|(ty, data)| Field { ty, data }));
            let _ = replies(&svc, &msg);
        }
    }
}

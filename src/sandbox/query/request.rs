//! Decoding a query message (`query-udfs.md` §1–§2): its kind, partitions,
//! `where` clause, bin selection and UDF fields. A request that cannot be
//! served is a result code, answered at job start.

use std::collections::HashMap;

use crate::sandbox::jobs::JobKind;
use crate::sandbox::server::message::*;
use crate::sandbox::server::particle;
use crate::sandbox::sindex::{Collection, Key, KeyType, Lookup};
use crate::sandbox::store::Digest;
use crate::sandbox::value::Value;

pub const N_PARTITIONS: usize = 4096;

pub const FIELD_QUERY_ID: u8 = 7;
pub const FIELD_SOCKET_TIMEOUT: u8 = 9;
pub const FIELD_RECORDS_PER_SECOND: u8 = 10;
pub const FIELD_PID_ARRAY: u8 = 11;
pub const FIELD_DIGEST_ARRAY: u8 = 12;
pub const FIELD_MAX_RECORDS: u8 = 13;
pub const FIELD_BVAL_ARRAY: u8 = 15;
pub const FIELD_INDEX_NAME: u8 = 21;
pub const FIELD_INDEX_RANGE: u8 = 22;
pub const FIELD_INDEX_CONTEXT: u8 = 23;
pub const FIELD_INDEX_EXPRESSION: u8 = 24;
pub const FIELD_INDEX_TYPE: u8 = 26;
pub const FIELD_UDF_OP: u8 = 33;
pub const FIELD_FILTER: u8 = 43;
pub const INFO3_PARTITION_DONE: u8 = 0x04;

// Result codes a query answers at start.
pub const PARAMETER: u8 = 4;
pub const UNSUPPORTED: u8 = 16;
pub const NAMESPACE: u8 = 20;

/// The partition a digest belongs to (low 12 bits of its first two bytes, little-endian).
pub fn partition_of(digest: &Digest) -> u16 {
    u16::from_le_bytes([digest[0], digest[1]]) & 0x0FFF
}

/// Which partitions a query reads, and where it resumes in some of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Partitions {
    wanted: Vec<bool>,
    /// Partition → the last digest (and index value) the client has.
    resume: HashMap<u16, (Digest, u64)>,
    /// As requested (for `query-show`).
    pub n_pids: usize,
    pub n_digests: usize,
}

impl Partitions {
    pub fn all() -> Partitions {
        Partitions {
            wanted: vec![true; N_PARTITIONS],
            resume: HashMap::new(),
            n_pids: N_PARTITIONS,
            n_digests: 0,
        }
    }

    pub fn wants(&self, digest: &Digest) -> bool {
        self.wanted[partition_of(digest) as usize]
    }

    pub fn count(&self) -> usize {
        self.wanted.iter().filter(|w| **w).count()
    }

    /// The client's resume point in `pid`, if any.
    pub fn resume(&self, pid: u16) -> Option<&(Digest, u64)> {
        self.resume.get(&pid)
    }

    /// From fields 11 (u16 LE ids), 12 (digests) and 15 (u64 LE values,
    /// one per digest). Neither 11 nor 12: every partition.
    pub fn parse(
        pids: Option<&[u8]>,
        digests: Option<&[u8]>,
        bvals: Option<&[u8]>,
    ) -> Result<Partitions, u8> {
        if pids.is_none() && digests.is_none() {
            return Ok(Partitions::all());
        }
        let pids = pids.unwrap_or_default();
        let digests = digests.unwrap_or_default();
        if !pids.len().is_multiple_of(2) || !digests.len().is_multiple_of(20) {
            return Err(PARAMETER);
        }
        let n_digests = digests.len() / 20;
        let bvals = match bvals {
            None => None,
            Some(b) if b.len() == n_digests * 8 => Some(b),
            Some(_) => return Err(PARAMETER),
        };
        let mut wanted = vec![false; N_PARTITIONS];
        for pair in pids.chunks_exact(2) {
            let pid = u16::from_le_bytes([pair[0], pair[1]]) as usize;
            *wanted.get_mut(pid).ok_or(PARAMETER)? = true;
        }
        let mut resume = HashMap::new();
        for (i, d) in digests.chunks_exact(20).enumerate() {
            let digest: Digest = d.try_into().expect("20 bytes");
            let pid = partition_of(&digest);
            wanted[pid as usize] = true;
            let bval = bvals.map_or(0, |b| {
                u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
            });
            resume.insert(pid, (digest, bval));
        }
        Ok(Partitions {
            wanted,
            resume,
            n_pids: pids.len() / 2,
            n_digests,
        })
    }
}

/// A `where` clause: field 22 (one range), 26 (collection), 21 (index name).
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    pub bin: String,
    pub key_type: KeyType,
    pub collection: Collection,
    pub index_name: Option<String>,
    pub lookup: Lookup,
}

impl Where {
    /// `u8 n(1) | u8 name_len | name | u8 particle | u32 len | begin | u32 len | end`.
    pub fn parse(
        range: &[u8],
        collection: Option<&[u8]>,
        name: Option<&[u8]>,
    ) -> Result<Where, u8> {
        let mut r = range;
        let mut take = |n: usize| -> Result<&[u8], u8> {
            if r.len() < n {
                return Err(PARAMETER);
            }
            let (head, tail) = r.split_at(n);
            r = tail;
            Ok(head)
        };
        if take(1)?[0] != 1 {
            return Err(PARAMETER);
        }
        let name_len = take(1)?[0] as usize;
        let bin = std::str::from_utf8(take(name_len)?).map_err(|_| PARAMETER)?;
        let particle = take(1)?[0];
        let begin_len = u32::from_be_bytes(take(4)?.try_into().expect("4")) as usize;
        let begin = take(begin_len)?;
        let end_len = u32::from_be_bytes(take(4)?.try_into().expect("4")) as usize;
        let end = take(end_len)?;
        if !r.is_empty() {
            return Err(PARAMETER);
        }
        let key_type = KeyType::of_particle(particle).ok_or(PARAMETER)?;
        let lookup = match key_type {
            KeyType::Numeric => {
                let int = |b: &[u8]| -> Result<Key, u8> {
                    Ok(Key::Int(i64::from_be_bytes(
                        b.try_into().map_err(|_| PARAMETER)?,
                    )))
                };
                Lookup::Range(int(begin)?, int(end)?)
            }
            KeyType::String | KeyType::Blob => {
                Lookup::Range(Key::Bytes(begin.to_vec()), Key::Bytes(end.to_vec()))
            }
            KeyType::Geo2dsphere => Lookup::Geo(
                std::str::from_utf8(begin)
                    .map_err(|_| PARAMETER)?
                    .to_string(),
            ),
        };
        let collection = match collection {
            None => Collection::Default,
            Some([b]) => Collection::of_wire(*b).ok_or(PARAMETER)?,
            Some(_) => return Err(PARAMETER),
        };
        let index_name = match name {
            None | Some([]) => None,
            Some(n) => Some(std::str::from_utf8(n).map_err(|_| PARAMETER)?.to_string()),
        };
        Ok(Where {
            bin: bin.to_string(),
            key_type,
            collection,
            index_name,
            lookup,
        })
    }
}

/// Which bins a basic query sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Bins {
    All,
    /// Metadata only (`INFO1_NOBINDATA`).
    None,
    /// `select(...)`: one READ op per name.
    Some(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Udf {
    pub module: String,
    pub function: String,
    pub args: Vec<Value>,
}

/// A decoded query request.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRequest {
    pub kind: JobKind,
    pub ns: String,
    pub set: Option<String>,
    pub trid: u64,
    pub socket_timeout_ms: u32,
    /// The request's total time limit in ms (0 = none).
    pub total_timeout_ms: u32,
    pub rps: u32,
    pub partitions: Partitions,
    /// 0 = no limit.
    pub max_records: u64,
    pub where_clause: Option<Where>,
    pub bins: Bins,
    pub udf: Option<Udf>,
    /// Field 43, as sent.
    pub filter: Option<Vec<u8>>,
    pub record_ttl: u32,
}

fn text(msg: &Message, field: u8) -> Result<Option<String>, u8> {
    msg.field(field)
        .map(|b| {
            std::str::from_utf8(b)
                .map(str::to_string)
                .map_err(|_| PARAMETER)
        })
        .transpose()
}

fn fixed<const N: usize>(msg: &Message, field: u8) -> Result<Option<[u8; N]>, u8> {
    msg.field(field)
        .map(|b| b.try_into().map_err(|_| PARAMETER))
        .transpose()
}

/// Whether a message is a scan or query: no digest and not a batch.
pub fn is_query(msg: &Message) -> bool {
    msg.field(FIELD_DIGEST).is_none()
        && msg.header.info1 & INFO1_BATCH == 0
        && msg.field(FIELD_BATCH_INDEX).is_none()
        && msg.field(FIELD_BATCH_WITH_SET).is_none()
}

/// Why a request is refused at start: the result code, and for 16 what
/// the sandbox does not serve (for the log).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: u8,
    pub unsupported: Option<&'static str>,
}

impl From<u8> for Refusal {
    fn from(code: u8) -> Refusal {
        Refusal {
            code,
            unsupported: None,
        }
    }
}

fn unsupported(what: &'static str) -> Refusal {
    Refusal {
        code: UNSUPPORTED,
        unsupported: Some(what),
    }
}

impl QueryRequest {
    pub fn parse(msg: &Message) -> Result<QueryRequest, Refusal> {
        let h = &msg.header;
        let ns = text(msg, FIELD_NAMESPACE)?
            .filter(|n| !n.is_empty())
            .ok_or(PARAMETER)?;
        let set = text(msg, FIELD_SET)?.filter(|s| !s.is_empty());
        let udf_fields = [
            FIELD_UDF_PACKAGE,
            FIELD_UDF_FUNCTION,
            FIELD_UDF_ARGLIST,
            FIELD_UDF_OP,
        ];
        let kind = if udf_fields.iter().any(|f| msg.field(*f).is_some()) {
            match msg.field(FIELD_UDF_OP) {
                Some([1]) => JobKind::Aggregation,
                Some([2]) => JobKind::BackgroundUdf,
                _ => return Err(PARAMETER.into()),
            }
        } else if h.info2 & INFO2_WRITE != 0 {
            return Err(unsupported("background query with operations"));
        } else {
            if h.info3 & INFO3_PARTITION_DONE == 0 {
                return Err(unsupported("query without partition tracking"));
            }
            JobKind::Basic
        };
        let udf = match kind {
            JobKind::Basic => None,
            _ => {
                let module = text(msg, FIELD_UDF_PACKAGE)?.ok_or(PARAMETER)?;
                let function = text(msg, FIELD_UDF_FUNCTION)?.ok_or(PARAMETER)?;
                // The Python client sends an empty field for no arguments.
                let args = match msg.field(FIELD_UDF_ARGLIST) {
                    None | Some([]) => Vec::new(),
                    Some(b) => particle::unpack_arglist(b).map_err(|_| PARAMETER)?,
                };
                Some(Udf {
                    module,
                    function,
                    args,
                })
            }
        };
        if msg.field(FIELD_INDEX_CONTEXT).is_some() || msg.field(FIELD_INDEX_EXPRESSION).is_some() {
            return Err(unsupported("index on a CDT context or an expression"));
        }
        let where_clause = match msg.field(FIELD_INDEX_RANGE) {
            None => None,
            Some(range) => Some(Where::parse(
                range,
                msg.field(FIELD_INDEX_TYPE),
                msg.field(FIELD_INDEX_NAME),
            )?),
        };
        let partitions = match kind {
            // The server ignores a PID array on aggregations and background jobs.
            JobKind::Basic => Partitions::parse(
                msg.field(FIELD_PID_ARRAY),
                msg.field(FIELD_DIGEST_ARRAY),
                msg.field(FIELD_BVAL_ARRAY),
            )?,
            _ => Partitions::all(),
        };
        let bins = if h.info1 & INFO1_NOBINDATA != 0 {
            Bins::None
        } else if msg.ops.is_empty() {
            Bins::All
        } else {
            if msg.ops.iter().any(|op| op.op != OP_READ) {
                return Err(unsupported("query with operations"));
            }
            Bins::Some(msg.ops.iter().map(|op| op.name.clone()).collect())
        };
        Ok(QueryRequest {
            kind,
            ns,
            set,
            trid: fixed::<8>(msg, FIELD_QUERY_ID)?.map_or(0, u64::from_be_bytes),
            socket_timeout_ms: fixed::<4>(msg, FIELD_SOCKET_TIMEOUT)?.map_or(0, u32::from_be_bytes),
            total_timeout_ms: h.transaction_ttl,
            rps: fixed::<4>(msg, FIELD_RECORDS_PER_SECOND)?.map_or(0, u32::from_be_bytes),
            partitions,
            max_records: fixed::<8>(msg, FIELD_MAX_RECORDS)?.map_or(0, u64::from_be_bytes),
            where_clause,
            bins,
            udf,
            filter: msg.field(FIELD_FILTER).map(<[u8]>::to_vec),
            record_ttl: h.record_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn parses_the_captured_equality_query() {
        // Python's where(equals('n', 2)) on set wc, PID array cut to 3 ids.
        let mut msg = Message::parse(&unhex("16010004000000000000ffffffff00000000000500000000000500746573740000000301776300000005090000753000000009074490bbd9de4b38510000001d1601016e01000000080000000000000002000000080000000000000002")).unwrap();
        msg.fields.push(Field {
            ty: FIELD_PID_ARRAY,
            data: unhex("000001000200"),
        });
        let q = QueryRequest::parse(&msg).unwrap();
        assert_eq!(q.kind, JobKind::Basic);
        assert_eq!((q.ns.as_str(), q.set.as_deref()), ("test", Some("wc")));
        assert_eq!(q.trid, 0x4490bbd9de4b3851);
        assert_eq!(q.socket_timeout_ms, 30000);
        assert_eq!(q.partitions.count(), 3);
        let w = q.where_clause.unwrap();
        assert_eq!(w.bin, "n");
        assert_eq!(w.lookup, Lookup::Range(Key::Int(2), Key::Int(2)));
        assert_eq!(q.bins, Bins::All);
    }

    #[test]
    fn kinds_and_refusals() {
        let base = || Message {
            header: MsgHeader {
                info1: INFO1_READ,
                info3: INFO3_PARTITION_DONE,
                ..MsgHeader::default()
            },
            fields: vec![Field {
                ty: FIELD_NAMESPACE,
                data: b"test".to_vec(),
            }],
            ops: vec![],
        };
        let field = |ty, data: &[u8]| Field {
            ty,
            data: data.to_vec(),
        };
        let mut agg = base();
        agg.fields.push(field(FIELD_UDF_PACKAGE, b"m"));
        agg.fields.push(field(FIELD_UDF_FUNCTION, b"f"));
        agg.fields.push(field(FIELD_UDF_ARGLIST, &[0x90]));
        assert_eq!(QueryRequest::parse(&agg).unwrap_err().code, PARAMETER);
        agg.fields.push(field(FIELD_UDF_OP, &[1]));
        assert_eq!(
            QueryRequest::parse(&agg).unwrap().kind,
            JobKind::Aggregation
        );
        // No arguments: an empty arglist field, as the Python client sends.
        agg.fields.retain(|f| f.ty != FIELD_UDF_ARGLIST);
        agg.fields.push(field(FIELD_UDF_ARGLIST, &[]));
        assert_eq!(QueryRequest::parse(&agg).unwrap().udf.unwrap().args, vec![]);
        let mut no_bit = base();
        no_bit.header.info3 = 0;
        assert_eq!(QueryRequest::parse(&no_bit).unwrap_err().code, UNSUPPORTED);
        let mut ops = base();
        ops.header.info2 = INFO2_WRITE;
        assert_eq!(QueryRequest::parse(&ops).unwrap_err().code, UNSUPPORTED);
        let mut bad_pid = base();
        bad_pid.fields.push(field(FIELD_PID_ARRAY, &[0x00, 0x10]));
        assert_eq!(QueryRequest::parse(&bad_pid).unwrap_err().code, PARAMETER);
    }

    #[test]
    fn resume_points_come_from_digests_and_bvals() {
        let mut d = [0u8; 20];
        d[0] = 0x34;
        d[1] = 0x12;
        let p = Partitions::parse(Some(&[5, 0]), Some(&d), Some(&7u64.to_le_bytes())).unwrap();
        assert_eq!(partition_of(&d), 0x234);
        assert_eq!(p.count(), 2);
        assert_eq!(p.resume(0x234), Some(&(d, 7)));
        assert!(p.resume(5).is_none());
        assert_eq!(
            Partitions::parse(None, Some(&d), Some(&[0; 4])),
            Err(PARAMETER)
        );
        assert_eq!(
            Partitions::parse(None, Some(&d[..19]), None),
            Err(PARAMETER)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_ranges_never_panic(
            range in proptest::collection::vec(any::<u8>(), 0..80),
            ty in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
        ) {
            let _ = Where::parse(&range, ty.as_deref(), None);
        }

        #[test]
        fn arbitrary_partition_fields_never_panic(
            pids in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
            digests in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..90)),
            bvals in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        ) {
            let _ = Partitions::parse(pids.as_deref(), digests.as_deref(), bvals.as_deref());
        }

        #[test]
        fn arbitrary_query_fields_never_panic(
            info in any::<[u8; 3]>(),
            fields in proptest::collection::vec((0u8..50, proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
        ) {
            let msg = Message {
                header: MsgHeader { info1: info[0], info2: info[1], info3: info[2], ..MsgHeader::default() },
                fields: fields.into_iter().map(|(ty, data)| Field { ty, data }).collect(),
                ops: vec![],
            };
            let _ = QueryRequest::parse(&msg);
        }
    }
}

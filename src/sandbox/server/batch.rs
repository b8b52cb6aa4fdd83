//! Batch-index requests (`info1` BATCH, field 41), as
//! `../shared/reference/batch-and-expressions.md` §1–§3 describes them.
//!
//! Each row becomes the single-record message its one-record command would
//! be (namespace, set, digest, the row's own fields and ops, the effective
//! filter as field 43) and goes through [`record::handle`], so a row answers
//! exactly as that command does. Its reply is re-labelled with the row's
//! index (`transaction_ttl`) and handed out in its own frame as soon as the
//! row is done; a separate LAST message ends the stream.

use std::time::{Duration, Instant};

use crate::sandbox::engine::Sandbox;
use crate::sandbox::expr::Filter;
use crate::sandbox::server::frame::{TYPE_MSG, encode_frame};
use crate::sandbox::server::message::*;
use crate::sandbox::server::record;

// Row flags.
const ROW_REPEAT: u8 = 0x01;
const ROW_INFO23: u8 = 0x02;
const ROW_GENERATION: u8 = 0x04;
const ROW_RECORD_TTL: u8 = 0x08;
const ROW_INFO4: u8 = 0x10;

/// The smallest row: index, digest, flags (a REPEAT row).
const MIN_ROW: usize = 4 + 20 + 1;
/// The server's `transaction-max-ms` default: the batch's limit when the
/// request carries none.
const DEFAULT_LIMIT_MS: u64 = 1000;
/// Result 9: what a row the batch's deadline left unrun answers.
const TIMEOUT: u8 = 9;

/// True for a message the batch path serves.
pub fn is_batch(msg: &Message) -> bool {
    msg.header.info1 & INFO1_BATCH != 0 || msg.field(FIELD_BATCH_INDEX).is_some()
}

/// One decoded row: its index in the caller's list, its digest and, unless
/// it is a REPEAT row, what it carries itself.
#[derive(Debug)]
struct Row {
    index: u32,
    digest: [u8; 20],
    own: Option<RowSpec>,
}

#[derive(Debug)]
struct RowSpec {
    header: MsgHeader,
    fields: Vec<Field>,
    ops: Vec<Op>,
}

impl RowSpec {
    fn field(&self, ty: u8) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.ty == ty)
            .map(|f| f.data.as_slice())
    }
}

/// Serves one batch request: hands every reply frame to `emit` (which
/// answers false once the reader is gone: the batch stops there). The last
/// frame is always the LAST message, or a single LAST message carrying the
/// code when the batch is refused as a whole (§2.1).
pub fn serve(
    sandbox: &Sandbox,
    msg: &Message,
    received: Instant,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) {
    match prepare(sandbox, msg) {
        Err(code) => {
            emit(last(code));
        }
        Ok(rows) => {
            if run(sandbox, msg, rows, received, emit) {
                emit(last(record::OK));
            }
        }
    }
}

/// The whole-batch checks, before any row runs: rows that decode, the
/// batch-wide filter built once, every row's namespace known, at least one
/// row. Any failure refuses the batch with one code.
fn prepare(sandbox: &Sandbox, msg: &Message) -> Result<Vec<Row>, u8> {
    let index = msg.field(FIELD_BATCH_INDEX).ok_or(record::PARAMETER)?;
    let rows = decode(index).map_err(|e| {
        tracing::debug!("batch refused: {e}");
        record::PARAMETER
    })?;
    if rows.is_empty() {
        return Err(record::PARAMETER);
    }
    if let Some(wire) = msg.field(FIELD_FILTER_EXP) {
        Filter::parse(wire).map_err(|e| e.result_code())?;
    }
    for spec in rows.iter().filter_map(|r| r.own.as_ref()) {
        let ns = spec
            .field(FIELD_NAMESPACE)
            .and_then(|n| std::str::from_utf8(n).ok());
        if !ns.is_some_and(|ns| sandbox.store().has_namespace(ns)) {
            return Err(record::PARAMETER);
        }
    }
    Ok(rows)
}

#[derive(Debug, thiserror::Error, PartialEq)]
enum BatchError {
    #[error("{0}")]
    Message(#[from] MessageError),
    #[error("{count} rows cannot fit in {left} bytes")]
    TooManyRows { count: u32, left: usize },
    #[error("row {0} repeats a row that is not there or that carries a key")]
    BadRepeat(u32),
    #[error("{0} bytes after the last row")]
    Trailing(usize),
}

/// Field 41 → rows. Counts and lengths are checked against the bytes left
/// before anything is allocated for them.
fn decode(bytes: &[u8]) -> Result<Vec<Row>, BatchError> {
    let mut r = Reader::new(bytes);
    let count = r.u32()?;
    let _parent_flags = r.u8()?;
    if count as usize > r.remaining() / MIN_ROW {
        return Err(BatchError::TooManyRows {
            count,
            left: r.remaining(),
        });
    }
    let mut rows: Vec<Row> = Vec::with_capacity(count as usize);
    // Whether the last row that carried its own fields sent a key: a key is
    // per record, so such a row cannot be repeated.
    let mut repeatable = false;
    for _ in 0..count {
        let index = r.u32()?;
        let digest: [u8; 20] = r.take(20)?.try_into().expect("20 bytes");
        let flags = r.u8()?;
        let own = if flags & ROW_REPEAT != 0 {
            if !repeatable {
                return Err(BatchError::BadRepeat(index));
            }
            None
        } else {
            let spec = row_spec(&mut r, flags)?;
            repeatable = spec.field(FIELD_KEY).is_none();
            Some(spec)
        };
        rows.push(Row { index, digest, own });
    }
    if r.remaining() != 0 {
        return Err(BatchError::Trailing(r.remaining()));
    }
    Ok(rows)
}

fn row_spec(r: &mut Reader, flags: u8) -> Result<RowSpec, MessageError> {
    let mut header = MsgHeader {
        info1: r.u8()?,
        ..MsgHeader::default()
    };
    if flags & ROW_INFO23 != 0 {
        header.info2 = r.u8()?;
        header.info3 = r.u8()?;
    }
    if flags & ROW_INFO4 != 0 {
        header.info4 = r.u8()?;
    }
    if flags & ROW_GENERATION != 0 {
        header.generation = u32::from(r.u16()?);
    }
    if flags & ROW_RECORD_TTL != 0 {
        header.record_ttl = r.u32()?;
    }
    let n_fields = r.u16()?;
    let n_ops = r.u16()?;
    let (fields, ops) = r.sections(n_fields, n_ops)?;
    Ok(RowSpec {
        header,
        fields,
        ops,
    })
}

/// Runs the rows one after another against the batch's one deadline.
/// False when the reader went away.
fn run(
    sandbox: &Sandbox,
    batch: &Message,
    rows: Vec<Row>,
    received: Instant,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> bool {
    let limit_ms = match batch.header.transaction_ttl {
        0 => DEFAULT_LIMIT_MS,
        ms => u64::from(ms),
    };
    let deadline = received + Duration::from_millis(limit_ms);
    let batch_filter = batch.field(FIELD_FILTER_EXP);
    // The single-record message of the current row; a REPEAT row reuses
    // it with its own digest (a large UDF arglist is never copied).
    let mut current = Message::default();
    for row in rows {
        if let Some(spec) = row.own {
            current = single_message(spec, batch, batch_filter);
        }
        set_digest(&mut current, row.digest);
        let mut reply = if Instant::now() < deadline {
            // Every row's UDF runs against the batch's deadline: same
            // start, same limit.
            record::handle(sandbox, &current, received)
        } else {
            // Inferred: what the server answers for rows its deadline left
            // unrun was never seen (§3); each gets a timeout, no ops.
            Message::reply(TIMEOUT, 0, 0, Vec::new())
        };
        // A row message has no info bits (never LAST, whatever the row
        // asked for), no fields, and the row's index.
        let h = &mut reply.header;
        (h.info1, h.info2, h.info3, h.info4) = (0, 0, 0, 0);
        h.transaction_ttl = row.index;
        reply.fields.clear();
        // One frame per row, sent as soon as the row is done; the writer
        // joins frames that are ready together into one socket write.
        if !emit(encode_frame(TYPE_MSG, &reply.encode())) {
            return false;
        }
    }
    true
}

/// The row as its one-record command: the row's header and fields, the
/// batch's time limit, and the effective filter (the row's own field 43
/// replaces the batch-wide one).
fn single_message(spec: RowSpec, batch: &Message, batch_filter: Option<&[u8]>) -> Message {
    let mut msg = Message {
        header: MsgHeader {
            transaction_ttl: batch.header.transaction_ttl,
            ..spec.header
        },
        fields: spec.fields,
        ops: spec.ops,
    };
    if let Some(filter) = batch_filter.filter(|_| msg.field(FIELD_FILTER_EXP).is_none()) {
        msg.fields.push(Field {
            ty: FIELD_FILTER_EXP,
            data: filter.to_vec(),
        });
    }
    msg
}

fn set_digest(msg: &mut Message, digest: [u8; 20]) {
    match msg.fields.iter_mut().find(|f| f.ty == FIELD_DIGEST) {
        // A row may carry a digest field of any length: replace it whole.
        Some(field) => field.data = digest.to_vec(),
        None => msg.fields.push(Field {
            ty: FIELD_DIGEST,
            data: digest.to_vec(),
        }),
    }
}

/// The message that ends a batch (result 0) or refuses it whole.
fn last(code: u8) -> Vec<u8> {
    let mut msg = Message::reply(code, 0, 0, Vec::new());
    msg.header.info3 = INFO3_LAST;
    encode_frame(TYPE_MSG, &msg.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SandboxConfig;
    use crate::sandbox::server::particle::to_particle;
    use crate::sandbox::store::digest;
    use crate::sandbox::value::Value;
    use proptest::prelude::*;

    fn sandbox() -> Sandbox {
        Sandbox::open(SandboxConfig::default()).unwrap()
    }

    fn key_digest(key: &str) -> [u8; 20] {
        digest(Some("bc"), &Value::Str(key.into())).unwrap()
    }

    fn write_op(name: &str, v: i64) -> Op {
        let (particle, value) = to_particle(&Value::Int(v));
        Op {
            op: OP_WRITE,
            particle,
            name: name.into(),
            value,
        }
    }

    /// A row carrying its own header and fields (flags 0x0e, as clients
    /// send writes: info2/info3, generation and record_ttl follow).
    fn own_row(
        index: u32,
        key: &str,
        info: (u8, u8),
        extra: &[(u8, &[u8])],
        ops: &[Op],
    ) -> Vec<u8> {
        let mut out = index.to_be_bytes().to_vec();
        out.extend(key_digest(key));
        out.push(ROW_INFO23 | ROW_GENERATION | ROW_RECORD_TTL);
        out.extend([info.0, info.1, 0, 0, 0, 0, 0, 0, 0]);
        let mut fields = vec![(FIELD_NAMESPACE, &b"test"[..]), (FIELD_SET, &b"bc"[..])];
        fields.extend_from_slice(extra);
        let body = Message {
            header: MsgHeader::default(),
            fields: fields
                .iter()
                .map(|(ty, data)| Field {
                    ty: *ty,
                    data: data.to_vec(),
                })
                .collect(),
            ops: ops.to_vec(),
        }
        .encode();
        // n_fields, n_ops, fields, ops: a message body after its header.
        out.extend_from_slice(&body[HEADER_SIZE - 4..]);
        out
    }

    fn repeat_row(index: u32, key: &str) -> Vec<u8> {
        let mut out = index.to_be_bytes().to_vec();
        out.extend(key_digest(key));
        out.push(ROW_REPEAT);
        out
    }

    fn batch(filter: Option<&[u8]>, rows: &[Vec<u8>]) -> Message {
        let mut index = (rows.len() as u32).to_be_bytes().to_vec();
        index.push(0x0d);
        rows.iter().for_each(|r| index.extend_from_slice(r));
        let mut fields = Vec::new();
        if let Some(f) = filter {
            fields.push(Field {
                ty: FIELD_FILTER_EXP,
                data: f.to_vec(),
            });
        }
        fields.push(Field {
            ty: FIELD_BATCH_INDEX,
            data: index,
        });
        Message {
            header: MsgHeader {
                info1: INFO1_BATCH,
                transaction_ttl: 1000,
                ..MsgHeader::default()
            },
            fields,
            ops: Vec::new(),
        }
    }

    /// Every reply message, in order (each frame holds one).
    fn serve_all(sb: &Sandbox, msg: &Message, received: Instant) -> Vec<Message> {
        let mut frames = Vec::new();
        serve(sb, msg, received, &mut |f| {
            frames.push(f);
            true
        });
        frames
            .iter()
            .map(|f| Message::parse(&f[8..]).unwrap())
            .collect()
    }

    fn codes(replies: &[Message]) -> Vec<(u32, u8)> {
        replies
            .iter()
            .map(|m| (m.header.transaction_ttl, m.header.result_code))
            .collect()
    }

    fn is_refusal(replies: &[Message], code: u8) -> bool {
        replies.len() == 1
            && replies[0].header.info3 == INFO3_LAST
            && replies[0].header.result_code == code
    }

    #[test]
    fn answers_the_captured_python_batch_read_byte_for_byte() {
        let sb = sandbox();
        for (key, a) in [("k1", 1), ("k2", 2)] {
            let put = Message {
                header: MsgHeader {
                    info2: INFO2_WRITE,
                    ..MsgHeader::default()
                },
                fields: vec![
                    Field {
                        ty: FIELD_NAMESPACE,
                        data: b"test".to_vec(),
                    },
                    Field {
                        ty: FIELD_SET,
                        data: b"bc".to_vec(),
                    },
                    Field {
                        ty: FIELD_DIGEST,
                        data: key_digest(key).to_vec(),
                    },
                ],
                ops: vec![write_op("a", a)],
            };
            assert_eq!(
                record::handle(&sb, &put, Instant::now()).header.result_code,
                0
            );
        }
        // batch_read([k1, k2, k3]), k3 missing: wire-captures.md.
        let request = hex::decode("02030000000000861608000000000000000000000000000003e8000100000000006c29000000030d0000000055f4d6d333c9053be8c353eeb0c80f890a6ceab00a03000000000000000200000000000500746573740000000301626300000001f50f6c78b28eec71e4815dfee89f9c1edb1ac680010000000265db97849f732d32c7989aaaa94f7eea8d13424a01").unwrap();
        let msg = Message::parse(&request[8..]).unwrap();
        assert!(is_batch(&msg));
        let mut frames = Vec::new();
        serve(&sb, &msg, Instant::now(), &mut |f| {
            frames.push(f);
            true
        });
        let last = frames.pop().unwrap();
        let rows: Vec<u8> = frames.iter().flat_map(|f| f[8..].to_vec()).collect();
        assert_eq!(
            hex::encode(rows),
            "160000000000000000010000000000000000000000010000000d01010001610000000000000001160000000000000000010000000000000001000000010000000d0101000161000000000000000216000000000200000000000000000000000200000000"
        );
        assert_eq!(
            hex::encode(last),
            "020300000000001616000001000000000000000000000000000000000000"
        );
    }

    #[test]
    fn repeat_rows_reuse_the_previous_rows_fields_and_ops() {
        let sb = sandbox();
        let write = (0, INFO2_WRITE | INFO2_RESPOND_ALL_OPS);
        let rows = [
            own_row(0, "k1", write, &[], &[write_op("a", 7), write_op("b", 8)]),
            repeat_row(1, "k2"),
            repeat_row(2, "k1"),
        ];
        let replies = serve_all(&sb, &batch(None, &rows), Instant::now());
        assert_eq!(codes(&replies), [(0, 0), (1, 0), (2, 0), (0, 0)]);
        assert_eq!(replies[3].header.info3, INFO3_LAST);
        // The same key twice: two writes, generation 2.
        assert_eq!(replies[2].header.generation, 2);
        // Respond-all-ops: a NULL WRITE op per written bin.
        assert_eq!(replies[1].ops.len(), 2);
        assert!(
            replies[1]
                .ops
                .iter()
                .all(|o| o.op == OP_WRITE && o.particle == 0)
        );
        let k2 = sb.store().get("test", &key_digest("k2")).unwrap();
        assert_eq!(k2.bins.len(), 2);
        assert_eq!(k2.generation, 1);
    }

    #[test]
    fn whole_batch_refusals_answer_before_any_row_runs() {
        let sb = sandbox();
        let write = (0, INFO2_WRITE);
        let good = own_row(0, "k1", write, &[], &[write_op("a", 1)]);
        let mut nons = own_row(1, "k2", write, &[], &[write_op("a", 1)]);
        // Same length: "test" → "nons".
        let at = nons.windows(4).position(|w| w == b"test").unwrap();
        nons[at..at + 4].copy_from_slice(b"nons");
        let replies = serve_all(&sb, &batch(None, &[good, nons]), Instant::now());
        assert!(is_refusal(&replies, record::PARAMETER), "{replies:?}");
        assert!(sb.store().get("test", &key_digest("k1")).is_none());

        assert!(is_refusal(
            &serve_all(&sb, &batch(None, &[]), Instant::now()),
            record::PARAMETER
        ));
        // A first row that repeats nothing, and a row repeating a keyed row.
        let repeat_first = [repeat_row(0, "k1")];
        assert!(is_refusal(
            &serve_all(&sb, &batch(None, &repeat_first), Instant::now()),
            record::PARAMETER
        ));
        let key = [3u8, b'k', b'1'];
        let keyed = [
            own_row(0, "k1", write, &[(FIELD_KEY, &key)], &[write_op("a", 1)]),
            repeat_row(1, "k1"),
        ];
        assert!(is_refusal(
            &serve_all(&sb, &batch(None, &keyed), Instant::now()),
            record::PARAMETER
        ));
        assert!(sb.store().get("test", &key_digest("k1")).is_none());
    }

    #[test]
    fn a_batch_wide_filter_that_cannot_be_used_refuses_the_batch() {
        let sb = sandbox();
        let read = (INFO1_READ | INFO1_GET_ALL, 0);
        let rows = [own_row(0, "missing", read, &[], &[]), repeat_row(1, "gone")];
        for wire in [&[0xc1u8][..], &[]] {
            let code = Filter::parse(wire).unwrap_err().result_code();
            let replies = serve_all(&sb, &batch(Some(wire), &rows), Instant::now());
            assert!(is_refusal(&replies, code), "{replies:?}");
        }
    }

    /// Awaits the expression evaluator: bytes that are no expression are a
    /// build error (4), even when every key is missing (§2.1).
    #[test]
    fn a_batch_wide_filter_the_server_cannot_build_answers_4() {
        let sb = sandbox();
        let read = (INFO1_READ | INFO1_GET_ALL, 0);
        let rows = [own_row(0, "missing", read, &[], &[]), repeat_row(1, "gone")];
        // eq(int bin a, "x") and bytes that are not msgpack.
        for wire in [&hex::decode("9301935102a161a20378").unwrap()[..], &[0xc1]] {
            let replies = serve_all(&sb, &batch(Some(wire), &rows), Instant::now());
            assert!(is_refusal(&replies, record::PARAMETER), "{replies:?}");
        }
    }

    #[test]
    fn the_effective_filter_travels_in_the_rows_message() {
        let parent = batch(Some(b"batch"), &[]);
        let spec = |own: Option<&[u8]>| RowSpec {
            header: MsgHeader::default(),
            fields: own
                .map(|f| {
                    vec![Field {
                        ty: FIELD_FILTER_EXP,
                        data: f.to_vec(),
                    }]
                })
                .unwrap_or_default(),
            ops: Vec::new(),
        };
        let filters = |m: &Message| -> Vec<Vec<u8>> {
            m.fields
                .iter()
                .filter(|f| f.ty == FIELD_FILTER_EXP)
                .map(|f| f.data.clone())
                .collect()
        };
        let inherited = single_message(spec(None), &parent, parent.field(FIELD_FILTER_EXP));
        assert_eq!(filters(&inherited), [b"batch".to_vec()]);
        assert_eq!(inherited.header.transaction_ttl, 1000);
        let own = single_message(spec(Some(b"row")), &parent, parent.field(FIELD_FILTER_EXP));
        assert_eq!(filters(&own), [b"row".to_vec()]);
        let none = single_message(spec(None), &batch(None, &[]), None);
        assert!(filters(&none).is_empty());
    }

    #[test]
    fn rows_after_the_deadline_are_not_run() {
        let sb = sandbox();
        let write = (0, INFO2_WRITE);
        let rows = [
            own_row(0, "k1", write, &[], &[write_op("a", 1)]),
            repeat_row(1, "k2"),
        ];
        let mut msg = batch(None, &rows);
        msg.header.transaction_ttl = 5;
        let long_ago = Instant::now() - Duration::from_millis(50);
        let replies = serve_all(&sb, &msg, long_ago);
        assert_eq!(codes(&replies), [(0, TIMEOUT), (1, TIMEOUT), (0, 0)]);
        assert!(sb.store().get("test", &key_digest("k1")).is_none());
    }

    #[test]
    fn a_row_reply_is_never_last() {
        let sb = sandbox();
        // A row whose info1 says BATCH: refused by the one-record path,
        // and still an ordinary row message.
        let rows = [own_row(0, "k1", (INFO1_BATCH, 0), &[], &[])];
        let replies = serve_all(&sb, &batch(None, &rows), Instant::now());
        assert_eq!(replies.len(), 2);
        assert_ne!(replies[0].header.result_code, 0);
        assert_eq!(replies[0].header.info3, 0);
        assert_eq!(replies[1].header.info3, INFO3_LAST);
    }

    #[test]
    fn each_row_is_handed_out_before_the_next_runs() {
        let sb = sandbox();
        let write = (0, INFO2_WRITE);
        let rows = [
            own_row(0, "k1", write, &[], &[write_op("a", 1)]),
            repeat_row(1, "k2"),
        ];
        let mut seen = Vec::new();
        serve(&sb, &batch(None, &rows), Instant::now(), &mut |_| {
            let has = |k| sb.store().get("test", &key_digest(k)).is_some();
            seen.push((has("k1"), has("k2")));
            true
        });
        assert_eq!(seen, [(true, false), (true, true), (true, true)]);
    }

    #[test]
    fn a_reader_that_goes_away_stops_the_batch() {
        let sb = sandbox();
        let write = (0, INFO2_WRITE);
        let rows = [
            own_row(0, "k1", write, &[], &[write_op("a", 1)]),
            repeat_row(1, "k2"),
        ];
        let mut sent = 0;
        serve(&sb, &batch(None, &rows), Instant::now(), &mut |_| {
            sent += 1;
            false
        });
        assert_eq!(sent, 1);
        assert!(sb.store().get("test", &key_digest("k1")).is_some());
        assert!(sb.store().get("test", &key_digest("k2")).is_none());
    }

    #[test]
    fn counts_and_lengths_beyond_the_bytes_are_refused_before_allocating() {
        // 2³²−1 rows in a 30-byte body.
        let mut body = u32::MAX.to_be_bytes().to_vec();
        body.push(0x0d);
        body.resize(30, 0);
        assert!(matches!(
            decode(&body),
            Err(BatchError::TooManyRows {
                count: u32::MAX,
                ..
            })
        ));
        // A row whose first field claims 2³²−1 bytes.
        let mut body = 1u32.to_be_bytes().to_vec();
        body.push(0x0d);
        body.extend(0u32.to_be_bytes());
        body.extend([0u8; 20]);
        body.push(0);
        body.push(INFO1_READ);
        body.extend([0, 1, 0, 0]);
        body.extend(u32::MAX.to_be_bytes());
        body.extend([FIELD_NAMESPACE, b't']);
        assert!(matches!(
            decode(&body),
            Err(BatchError::Message(MessageError::Truncated(_)))
        ));
        // And an op claiming more than is left.
        let mut row = own_row(0, "k1", (0, INFO2_WRITE), &[], &[write_op("a", 1)]);
        let op_at = row.len() - 8 - 1 - 4 - 4;
        row[op_at..op_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut body = 1u32.to_be_bytes().to_vec();
        body.push(0x0d);
        body.extend(row);
        assert!(decode(&body).is_err());
        // A whole batch with such a body is refused with 4.
        let sb = sandbox();
        let msg = Message {
            header: MsgHeader {
                info1: INFO1_BATCH,
                ..MsgHeader::default()
            },
            fields: vec![Field {
                ty: FIELD_BATCH_INDEX,
                data: body,
            }],
            ops: Vec::new(),
        };
        assert!(is_refusal(&serve_all(&sb, &msg, Instant::now()), 4));
    }

    proptest! {
        #[test]
        fn arbitrary_batch_index_bytes_never_panic(
            count in 0u32..6,
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut body = count.to_be_bytes().to_vec();
            body.push(0x0d);
            body.extend(tail);
            let _ = decode(&body);
        }

        #[test]
        fn mutated_valid_batches_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let write = (0, INFO2_WRITE | INFO2_RESPOND_ALL_OPS);
            let read = (INFO1_READ, 0);
            let mut index = batch(None, &[
                own_row(0, "k1", write, &[], &[write_op("a", 7)]),
                repeat_row(1, "k2"),
                own_row(2, "k1", read, &[], &[]),
            ]).fields.pop().unwrap().data;
            for (at, byte) in flips {
                let i = at.index(index.len());
                index[i] = byte;
            }
            index.truncate(cut.index(index.len() + 1));
            let sb = sandbox();
            let msg = Message {
                header: MsgHeader { info1: INFO1_BATCH, transaction_ttl: 1000, ..MsgHeader::default() },
                fields: vec![Field { ty: FIELD_BATCH_INDEX, data: index }],
                ops: Vec::new(),
            };
            let replies = serve_all(&sb, &msg, Instant::now());
            // Always ends with exactly one LAST message.
            prop_assert_eq!(replies.iter().filter(|m| m.header.info3 & INFO3_LAST != 0).count(), 1);
            prop_assert!(replies.last().unwrap().header.info3 & INFO3_LAST != 0);
        }
    }
}

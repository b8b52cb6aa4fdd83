//! Single-record commands (type 3): reads, writes, deletes, operate, UDF apply,
//! and clean refusals for batch. Scans and queries go to `sandbox::query`.

use crate::sandbox::engine::{ApplyRequest, Sandbox, UdfFailure, record_too_big};
use crate::sandbox::expr::{FILTERED_OUT, RecordFilter, Subject};
use crate::sandbox::server::message::*;
use crate::sandbox::server::particle::{self, from_particle, to_particle};
use crate::sandbox::sindex::geo::Shape;
use crate::sandbox::store::{self, Change, Digest, Record};
use crate::sandbox::value::Value;

pub const OK: u8 = 0;
pub const NOT_FOUND: u8 = 2;
pub const GENERATION_ERROR: u8 = 3;
pub const PARAMETER: u8 = 4;
pub const RECORD_EXISTS: u8 = 5;
pub const INCOMPATIBLE_TYPE: u8 = 12;
pub const RECORD_TOO_BIG: u8 = 13;
pub const UNSUPPORTED: u8 = 16;
pub const KEY_MISMATCH: u8 = 19;
pub const NAMESPACE: u8 = 20;
pub const BIN_NAME: u8 = 21;
pub const ENTERPRISE_ONLY: u8 = 25;
pub const UDF_EXECUTION: u8 = 100;
pub const GEO_INVALID_GEOJSON: u8 = 160;

const TTL_NEVER: u32 = u32::MAX;
const TTL_DONT_UPDATE: u32 = u32::MAX - 1;
/// The server refuses TTLs above 10 years.
const MAX_TTL: u32 = 10 * 365 * 24 * 3600;
const MAX_BIN_NAME: usize = 15;

fn error(code: u8) -> Message {
    Message::reply(code, 0, 0, Vec::new())
}

/// Handles one type-3 message and returns the reply.
/// `received`: when the request arrived (a UDF's time limit runs from then).
pub fn handle(sandbox: &Sandbox, msg: &Message, received: std::time::Instant) -> Message {
    let h = &msg.header;
    if h.info1 & INFO1_BATCH != 0
        || msg.field(FIELD_BATCH_INDEX).is_some()
        || msg.field(FIELD_BATCH_WITH_SET).is_some()
    {
        // Whole-batch rejection: one LAST message carrying the code.
        let mut reply = error(UNSUPPORTED);
        reply.header.info3 = INFO3_LAST;
        return reply;
    }
    let Some(digest) = msg.field(FIELD_DIGEST) else {
        // Scans and queries stream through the query path; one that ends
        // up here is not served.
        tracing::warn!(
            "refused with result 16 (not served by the sandbox): a query outside the query path"
        );
        return error(UNSUPPORTED);
    };
    let Ok(digest) = Digest::try_from(digest) else {
        return error(PARAMETER);
    };
    let Some(ns) = msg
        .field(FIELD_NAMESPACE)
        .and_then(|n| std::str::from_utf8(n).ok())
    else {
        return error(PARAMETER);
    };
    if !sandbox.store().has_namespace(ns) {
        return error(NAMESPACE);
    }
    let key = match msg.field(FIELD_KEY) {
        None => None,
        Some(k) => match k.split_first().map(|(ty, data)| from_particle(*ty, data)) {
            Some(Ok(v)) => Some(v),
            _ => return error(PARAMETER),
        },
    };
    let set = msg
        .field(FIELD_SET)
        .and_then(|s| std::str::from_utf8(s).ok())
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let target = Target {
        ns,
        digest,
        set,
        key,
        filter: RecordFilter::from_field(msg.field(FIELD_FILTER_EXP)),
    };

    // An op type the server does not know is a malformed request (4); one it
    // knows but the sandbox does not serve (CDT, bit, HLL, expression) is 16.
    if msg.ops.iter().any(|op| !known_op(op.op)) {
        return error(PARAMETER);
    }
    let udf_fields = [FIELD_UDF_PACKAGE, FIELD_UDF_FUNCTION, FIELD_UDF_ARGLIST];
    if udf_fields.iter().any(|f| msg.field(*f).is_some()) {
        return apply(sandbox, msg, target, received);
    }
    if h.info2 & (INFO2_WRITE | INFO2_DELETE) != 0 {
        return write(sandbox, msg, target);
    }
    read(sandbox, msg, &target)
}

/// The op types of an 8.1 server: 1..=5 and 7..=16 (6 is retired; the
/// string ops 17..=19 came with 8.2).
fn known_op(op: u8) -> bool {
    matches!(op, 1..=5 | 7..=16)
}

struct Target<'a> {
    ns: &'a str,
    digest: Digest,
    set: Option<String>,
    key: Option<Value>,
    /// Field 43: looked at only when the record exists.
    filter: RecordFilter,
}

impl Target<'_> {
    /// The reply instead of the command when the filter stops it: 27 with
    /// the record's generation, or the code of a filter that cannot be used.
    fn filtered(&self, record: &Record) -> Option<Message> {
        let subject = Subject {
            ns: self.ns,
            digest: &self.digest,
            record,
        };
        match self.filter.check(&subject) {
            Ok(()) => None,
            Err(FILTERED_OUT) => Some(Message::reply(
                FILTERED_OUT,
                u32::from(record.generation),
                record.void_time,
                Vec::new(),
            )),
            Err(code) => Some(error(code)),
        }
    }
}

fn bin_op(op: u8, name: &str, value: &Value) -> Op {
    let (particle, value) = to_particle(value);
    Op {
        op,
        particle,
        name: name.to_string(),
        value,
    }
}

fn read(sandbox: &Sandbox, msg: &Message, target: &Target) -> Message {
    let h = &msg.header;
    let Some(record) = sandbox.store().get(target.ns, &target.digest) else {
        return error(NOT_FOUND);
    };
    if let Some(reply) = target.filtered(&record) {
        return reply;
    }
    let mut ops = Vec::new();
    if h.info1 & INFO1_NOBINDATA == 0 {
        if h.info1 & INFO1_GET_ALL != 0 {
            ops = record
                .bins
                .iter()
                .map(|(n, v)| bin_op(OP_READ, n, v))
                .collect();
        } else {
            for op in &msg.ops {
                if op.op != OP_READ {
                    // CDT, bit, HLL and expression reads.
                    return error(UNSUPPORTED);
                }
                if op.name.is_empty() {
                    ops.extend(record.bins.iter().map(|(n, v)| bin_op(OP_READ, n, v)));
                } else if let Some((n, v)) = record.bins.iter().find(|(n, _)| *n == op.name) {
                    ops.push(bin_op(OP_READ, n, v));
                }
            }
        }
    }
    Message::reply(OK, u32::from(record.generation), record.void_time, ops)
}

/// The void time a write leaves, or `Err(PARAMETER)` for a TTL above the limit.
fn void_time_after_write(ttl: u32, current: Option<&Record>, now_ms: u64) -> Result<u32, u8> {
    match ttl {
        // Namespace default-ttl is 0: never expires.
        0 | TTL_NEVER => Ok(0),
        TTL_DONT_UPDATE => Ok(current.map(|r| r.void_time).unwrap_or(0)),
        t if t > MAX_TTL => Err(PARAMETER),
        t => Ok((now_ms / 1000) as u32 + t),
    }
}

fn next_generation(current: Option<&Record>) -> u16 {
    current.map_or(1, |r| store::next_generation(r.generation))
}

/// A write, delete, touch or operate, all under the key's lock.
fn write(sandbox: &Sandbox, msg: &Message, target: Target) -> Message {
    let h = msg.header.clone();
    // The server refuses a malformed request before it looks at the record
    // (so before the filter and the existence and generation checks).
    if let Err(code) = check_request(&h, &msg.ops) {
        return error(code);
    }
    let now = store::now_cf_ms();
    let outcome = sandbox
        .store()
        .modify(target.ns, &target.digest, |current| {
            if let Some(reply) = current.and_then(|r| target.filtered(r)) {
                return (Change::Keep, reply);
            }
            match plan_write(&h, &msg.ops, current, &target, now) {
                Ok((change, reply)) => (change, reply),
                Err(code) => (Change::Keep, error(code)),
            }
        });
    outcome.unwrap_or_else(|e| {
        tracing::error!("store write failed: {e}");
        error(1)
    })
}

/// What the server refuses from the request alone, whatever the record.
fn check_request(h: &MsgHeader, ops: &[Op]) -> Result<(), u8> {
    if h.info2 & INFO2_DELETE != 0 {
        // Refused before the record is looked at.
        return refuse_durable_delete(h);
    }
    // A write needs at least one op ("bin op(s) expected, none present").
    if ops.is_empty() {
        return Err(PARAMETER);
    }
    // Replacing drops the old bins, so an op that reads or removes them
    // (modify, touch, delete-all, bin delete) cannot go with it.
    let replace = h.info3 & (INFO3_CREATE_OR_REPLACE | INFO3_REPLACE_ONLY) != 0;
    let needs_old_bins = |op: &Op| match op.op {
        OP_INCR | OP_APPEND | OP_PREPEND | OP_TOUCH | OP_DELETE => true,
        OP_WRITE => op.particle == particle::NULL,
        _ => false,
    };
    if replace && ops.iter().any(needs_old_bins) {
        return Err(PARAMETER);
    }
    Ok(())
}

fn plan_write(
    h: &MsgHeader,
    ops: &[Op],
    current: Option<&Record>,
    target: &Target,
    now: u64,
) -> Result<(Change, Message), u8> {
    let respond_all = h.info2 & INFO2_RESPOND_ALL_OPS != 0;
    if h.info2 & INFO2_DELETE != 0 {
        if current.is_none() {
            return Err(NOT_FOUND);
        }
        check_generation(h, current)?;
        return Ok((Change::Delete, error(OK)));
    }
    // A touch, like update-only and replace-only, never creates.
    let must_exist = h.info3 & (INFO3_UPDATE_ONLY | INFO3_REPLACE_ONLY) != 0
        || ops.iter().any(|op| op.op == OP_TOUCH);
    match current {
        None if must_exist => return Err(NOT_FOUND),
        Some(_) if h.info2 & INFO2_CREATE_ONLY != 0 => return Err(RECORD_EXISTS),
        _ => {}
    }
    check_generation(h, current)?;
    let replace = h.info3 & (INFO3_CREATE_OR_REPLACE | INFO3_REPLACE_ONLY) != 0;
    let mut bins: Vec<(String, Value)> = match current {
        Some(r) if !replace => r.bins.clone(),
        _ => Vec::new(),
    };

    let mut reply_ops = Vec::new();
    for op in ops {
        if op.name.len() > MAX_BIN_NAME {
            return Err(BIN_NAME);
        }
        let value = from_particle(op.particle, &op.value).map_err(|_| PARAMETER)?;
        let slot = bins.iter().position(|(n, _)| *n == op.name);
        match op.op {
            OP_READ => {
                if op.name.is_empty() {
                    reply_ops.extend(bins.iter().map(|(n, v)| bin_op(OP_READ, n, v)));
                } else if let Some(i) = slot {
                    reply_ops.push(bin_op(OP_READ, &bins[i].0, &bins[i].1));
                } else if respond_all {
                    reply_ops.push(bin_op(OP_READ, &op.name, &Value::Nil));
                }
                continue;
            }
            OP_WRITE => match (value, slot) {
                // The server parses a client's GeoJSON and refuses what is
                // not a point or a region it knows.
                (Value::GeoJson(text), _) if Shape::parse(&text).is_err() => {
                    return Err(GEO_INVALID_GEOJSON);
                }
                (Value::Nil, Some(i)) => {
                    bins.remove(i);
                }
                (Value::Nil, None) => {}
                (v, Some(i)) => bins[i].1 = v,
                (v, None) => bins.push((op.name.clone(), v)),
            },
            OP_INCR => {
                let sum = match (slot.map(|i| &bins[i].1), &value) {
                    (None, Value::Int(_) | Value::Float(_)) => value.clone(),
                    (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a.wrapping_add(*b)),
                    (Some(Value::Float(a)), Value::Float(b)) => Value::Float(a + b),
                    (_, Value::Int(_) | Value::Float(_)) => return Err(INCOMPATIBLE_TYPE),
                    _ => return Err(PARAMETER),
                };
                set_bin(&mut bins, slot, &op.name, sum);
            }
            OP_APPEND | OP_PREPEND => {
                let prepend = op.op == OP_PREPEND;
                let joined = match (slot.map(|i| &bins[i].1), &value) {
                    (None, Value::Str(_) | Value::Bytes { .. }) => value.clone(),
                    (Some(Value::Str(a)), Value::Str(b)) => Value::Str(if prepend {
                        [b.as_slice(), a].concat()
                    } else {
                        [a.as_slice(), b].concat()
                    }),
                    (Some(Value::Bytes { ty, data: a }), Value::Bytes { data: b, .. }) => {
                        let (first, second) = if prepend { (b, a) } else { (a, b) };
                        Value::Bytes {
                            ty: *ty,
                            data: [first.as_slice(), second].concat(),
                        }
                    }
                    (_, Value::Str(_) | Value::Bytes { .. }) => return Err(INCOMPATIBLE_TYPE),
                    _ => return Err(PARAMETER),
                };
                set_bin(&mut bins, slot, &op.name, joined);
            }
            // A touch only rewrites the record (it exists: checked above).
            OP_TOUCH => continue,
            OP_DELETE => bins.clear(),
            // CDT, bit, HLL and expression ops are not supported.
            _ => return Err(UNSUPPORTED),
        }
        if respond_all {
            reply_ops.push(bin_op(op.op, &op.name, &Value::Nil));
        }
    }

    // A TTL over the limit refuses the write, even one that ends up
    // removing the record.
    let void_time = void_time_after_write(h.record_ttl, current, now)?;
    if bins.is_empty() {
        // A write that leaves no bins removes the record (2 when there was
        // none).
        if current.is_none() {
            return Err(NOT_FOUND);
        }
        refuse_durable_delete(h)?;
        return Ok((Change::Delete, Message::reply(OK, 0, 0, reply_ops)));
    }
    // The namespace's max-record-size (1 MiB by default).
    if record_too_big(&bins) {
        return Err(RECORD_TOO_BIG);
    }
    let record = Record {
        bins,
        generation: next_generation(current),
        void_time,
        last_update_ms: now,
        set: target
            .set
            .clone()
            .or_else(|| current.and_then(|r| r.set.clone())),
        key: target
            .key
            .clone()
            .or_else(|| current.and_then(|r| r.key.clone())),
    };
    let reply = Message::reply(OK, u32::from(record.generation), void_time, reply_ops);
    Ok((Change::Put(record), reply))
}

fn set_bin(bins: &mut Vec<(String, Value)>, slot: Option<usize>, name: &str, value: Value) {
    match slot {
        Some(i) => bins[i].1 = value,
        None => bins.push((name.to_string(), value)),
    }
}

/// CE has no durable delete (a tombstone is Enterprise only): a request
/// with the flag is refused with 25 where it would remove a record.
fn refuse_durable_delete(h: &MsgHeader) -> Result<(), u8> {
    if h.info2 & INFO2_DURABLE_DELETE != 0 {
        return Err(ENTERPRISE_ONLY);
    }
    Ok(())
}

/// A record that does not exist yet counts as generation 0 (the server
/// checks the one it is creating).
fn check_generation(h: &MsgHeader, current: Option<&Record>) -> Result<(), u8> {
    let have = current.map_or(0, |r| u32::from(r.generation));
    if h.info2 & INFO2_GENERATION != 0 && h.generation != have {
        return Err(GENERATION_ERROR);
    }
    if h.info2 & INFO2_GENERATION_GT != 0 && h.generation <= have {
        return Err(GENERATION_ERROR);
    }
    Ok(())
}

/// Record UDF execute (fields 30/31/32), replies per §5.2.
fn apply(
    sandbox: &Sandbox,
    msg: &Message,
    target: Target,
    received: std::time::Instant,
) -> Message {
    let h = &msg.header;
    let forbidden = h.info2 & (INFO2_GENERATION | INFO2_GENERATION_GT | INFO2_CREATE_ONLY) != 0
        || h.info3 & (INFO3_UPDATE_ONLY | INFO3_CREATE_OR_REPLACE | INFO3_REPLACE_ONLY) != 0;
    let text = |f| msg.field(f).and_then(|b| std::str::from_utf8(b).ok());
    let (Some(module), Some(function), Some(arglist)) = (
        text(FIELD_UDF_PACKAGE),
        text(FIELD_UDF_FUNCTION),
        msg.field(FIELD_UDF_ARGLIST),
    ) else {
        return error(PARAMETER);
    };
    if forbidden {
        return error(PARAMETER);
    }
    // Refused up front, whatever the UDF would do: what a CE server answers
    // a UDF that removes nothing when the flag is set is not recorded.
    if let Err(code) = refuse_durable_delete(h) {
        return error(code);
    }
    let Ok(args) = particle::unpack_arglist(arglist) else {
        return error(PARAMETER);
    };
    let outcome = sandbox.apply(ApplyRequest {
        ns: target.ns.to_string(),
        set: target.set,
        digest: target.digest,
        key: target.key,
        module: module.to_string(),
        function: function.to_string(),
        args,
        timeout_ms: h.transaction_ttl,
        received,
        ttl: h.record_ttl,
        filter: target.filter,
    });
    let (generation, void_time) = (u32::from(outcome.generation), outcome.void_time);
    match outcome.result {
        Ok(value) => Message::reply(
            OK,
            generation,
            void_time,
            vec![bin_op(OP_READ, "SUCCESS", &value)],
        ),
        Err(UdfFailure::Execution(text)) => Message::reply(
            UDF_EXECUTION,
            generation,
            void_time,
            vec![bin_op(OP_READ, "FAILURE", &Value::Str(text.into()))],
        ),
        Err(UdfFailure::Code(code)) => Message::reply(code, generation, void_time, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(info2: u8, info3: u8) -> MsgHeader {
        MsgHeader {
            info2,
            info3,
            ..MsgHeader::default()
        }
    }

    fn target() -> Target<'static> {
        Target {
            ns: "test",
            digest: [0; 20],
            set: Some("demo".into()),
            key: None,
            filter: RecordFilter::none(),
        }
    }

    fn record(bins: Vec<(&str, Value)>, generation: u16) -> Record {
        Record {
            bins: bins.into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
            generation,
            void_time: 0,
            last_update_ms: 0,
            set: None,
            key: None,
        }
    }

    fn op(op: u8, name: &str, v: Value) -> Op {
        bin_op(op, name, &v)
    }

    fn put(res: Result<(Change, Message), u8>) -> Record {
        match res {
            Ok((Change::Put(r), _)) => r,
            Ok(_) => panic!("expected a put"),
            Err(code) => panic!("expected a put, got code {code}"),
        }
    }

    #[test]
    fn policies_give_their_result_codes() {
        let cur = record(vec![("a", Value::Int(1))], 4);
        let ops = [op(OP_WRITE, "a", Value::Int(2))];
        let t = target();
        let err = |h: MsgHeader, cur: Option<&Record>| plan_write(&h, &ops, cur, &t, 0).err();
        assert_eq!(
            err(header(INFO2_WRITE | INFO2_CREATE_ONLY, 0), Some(&cur)),
            Some(RECORD_EXISTS)
        );
        assert_eq!(
            err(header(INFO2_WRITE, INFO3_UPDATE_ONLY), None),
            Some(NOT_FOUND)
        );
        assert_eq!(
            err(header(INFO2_WRITE, INFO3_REPLACE_ONLY), None),
            Some(NOT_FOUND)
        );
        let mut gen_eq = header(INFO2_WRITE | INFO2_GENERATION, 0);
        gen_eq.generation = 3;
        assert_eq!(err(gen_eq.clone(), Some(&cur)), Some(GENERATION_ERROR));
        gen_eq.generation = 4;
        assert_eq!(err(gen_eq, Some(&cur)), None);
        let mut gen_gt = header(INFO2_WRITE | INFO2_GENERATION_GT, 0);
        gen_gt.generation = 4;
        assert_eq!(err(gen_gt.clone(), Some(&cur)), Some(GENERATION_ERROR));
        gen_gt.generation = 5;
        assert_eq!(err(gen_gt, Some(&cur)), None);
        assert_eq!(
            err(header(INFO2_WRITE | INFO2_DELETE, 0), None),
            Some(NOT_FOUND)
        );
    }

    #[test]
    fn replace_drops_other_bins_and_update_merges() {
        let cur = record(vec![("a", Value::Int(1)), ("b", Value::Int(2))], 1);
        let ops = [op(OP_WRITE, "a", Value::Int(9))];
        let t = target();
        let merged = put(plan_write(&header(INFO2_WRITE, 0), &ops, Some(&cur), &t, 0));
        assert_eq!(merged.bins.len(), 2);
        assert_eq!(merged.generation, 2);
        let replaced = put(plan_write(
            &header(INFO2_WRITE, INFO3_CREATE_OR_REPLACE),
            &ops,
            Some(&cur),
            &t,
            0,
        ));
        assert_eq!(replaced.bins, vec![("a".to_string(), Value::Int(9))]);
    }

    #[test]
    fn add_and_append_check_types() {
        let cur = record(
            vec![
                ("n", Value::Int(1)),
                ("s", Value::Str("x".into())),
                ("f", Value::Float(1.5)),
            ],
            1,
        );
        let t = target();
        let run = |ops: Vec<Op>| plan_write(&header(INFO2_WRITE, 0), &ops, Some(&cur), &t, 0);
        let r = put(run(vec![
            op(OP_INCR, "n", Value::Int(4)),
            op(OP_INCR, "f", Value::Float(1.0)),
        ]));
        assert_eq!(r.bins[0].1, Value::Int(5));
        assert_eq!(r.bins[2].1, Value::Float(2.5));
        assert_eq!(
            run(vec![op(OP_INCR, "s", Value::Int(1))]).err(),
            Some(INCOMPATIBLE_TYPE)
        );
        assert_eq!(
            run(vec![op(OP_INCR, "n", Value::Float(1.0))]).err(),
            Some(INCOMPATIBLE_TYPE)
        );
        let r = put(run(vec![
            op(OP_APPEND, "s", Value::Str("y".into())),
            op(OP_PREPEND, "s", Value::Str("w".into())),
        ]));
        assert_eq!(r.bins[1].1, Value::Str("wxy".into()));
        assert_eq!(
            run(vec![op(OP_APPEND, "n", Value::Str("y".into()))]).err(),
            Some(INCOMPATIBLE_TYPE)
        );
        assert_eq!(run(vec![op(3, "l", Value::Nil)]).err(), Some(UNSUPPORTED));
        assert_eq!(
            run(vec![op(OP_WRITE, "a_very_long_bin_name", Value::Int(1))]).err(),
            Some(BIN_NAME)
        );
    }

    #[test]
    fn operate_reads_see_earlier_writes_and_nil_bins_delete() {
        let cur = record(vec![("a", Value::Int(1))], 1);
        let t = target();
        let ops = [
            op(OP_INCR, "a", Value::Int(2)),
            op(OP_READ, "a", Value::Nil),
        ];
        let (_, reply) = plan_write(&header(INFO2_WRITE, 0), &ops, Some(&cur), &t, 0).unwrap();
        assert_eq!(reply.ops, vec![op(OP_READ, "a", Value::Int(3))]);
        let ops = [op(OP_WRITE, "a", Value::Nil)];
        let res = plan_write(&header(INFO2_WRITE, 0), &ops, Some(&cur), &t, 0).unwrap();
        assert!(matches!(res.0, Change::Delete));
    }

    #[test]
    fn ttl_and_generation_rules() {
        let cur = record(vec![("a", Value::Int(1))], u16::MAX);
        assert_eq!(next_generation(Some(&cur)), 1);
        assert_eq!(next_generation(None), 1);
        assert_eq!(void_time_after_write(0, None, 5_000), Ok(0));
        assert_eq!(void_time_after_write(TTL_NEVER, None, 5_000), Ok(0));
        assert_eq!(void_time_after_write(100, None, 5_000), Ok(105));
        let mut with_ttl = cur.clone();
        with_ttl.void_time = 77;
        assert_eq!(
            void_time_after_write(TTL_DONT_UPDATE, Some(&with_ttl), 5_000),
            Ok(77)
        );
        assert_eq!(void_time_after_write(MAX_TTL + 1, None, 0), Err(PARAMETER));
    }
}

//! Runs a compiled program against one record. A value is `None` when it is
//! unknown (a missing bin, a bin of another type, a division by zero ...);
//! the logic ops treat it as the third truth value.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::Subject;
use super::build::{Arith, Cdt, CmpOp, Ins, Meta, Program, Ty};
use crate::sandbox::server::particle;
use crate::sandbox::store::{self, CITRUSLEAF_EPOCH_SECS, Record};
use crate::sandbox::value::{BLOB, Value};

type Val<'a> = Option<Cow<'a, Value>>;

/// Comparisons stop (unknown) below this depth; stored values are shallower.
const MAX_COMPARE_DEPTH: usize = 256;

/// The program's truth value: `None` when unknown. With `meta_only`, bins
/// and the key read as unknown (a background job's first, metadata stage).
pub fn run(prog: &Program, subject: &Subject, meta_only: bool) -> Option<bool> {
    let mut stack: Vec<Val> = Vec::with_capacity(8);
    let mut slots: Vec<Val> = vec![None; prog.slots];
    let record = subject.record;
    for ins in &prog.code {
        let v: Val = match ins {
            Ins::Push(v) => Some(Cow::Borrowed(v)),
            Ins::Unknown => None,
            Ins::Bin(name, ty) if !meta_only => record
                .bin(name)
                .filter(|v| has_type(v, *ty))
                .map(Cow::Borrowed),
            Ins::BinType(name) if !meta_only => {
                let ty = record.bin(name).map_or(0, particle_type);
                Some(Cow::Owned(Value::Int(i64::from(ty))))
            }
            Ins::Key(ty) if !meta_only => record
                .key
                .as_ref()
                .filter(|k| has_type(k, *ty))
                .map(Cow::Borrowed),
            Ins::Bin(..) | Ins::BinType(_) | Ins::Key(_) => None,
            Ins::Meta(m) => Some(Cow::Owned(meta(*m, subject))),
            Ins::Cmp(op) => {
                let b = pop(&mut stack);
                let a = pop(&mut stack);
                compare(*op, a.as_deref(), b.as_deref()).map(boolean)
            }
            Ins::Regex(re) => match pop(&mut stack).as_deref() {
                Some(Value::Str(s)) => Some(boolean(re.is_match(s))),
                _ => None,
            },
            Ins::InList => {
                let list = pop(&mut stack);
                let v = pop(&mut stack);
                in_list(v.as_deref(), list.as_deref()).map(boolean)
            }
            Ins::And(n) => logic(&mut stack, *n, false),
            Ins::Or(n) => logic(&mut stack, *n, true),
            Ins::Not => truth(&pop(&mut stack)).map(|b| boolean(!b)),
            Ins::Exclusive(n) => {
                let args = pop_n(&mut stack, *n);
                let truths: Option<Vec<bool>> = args.iter().map(truth).collect();
                truths.map(|t| boolean(t.iter().filter(|b| **b).count() == 1))
            }
            Ins::Arith(op, n) => {
                let args = pop_n(&mut stack, *n);
                arith(*op, &args).map(Cow::Owned)
            }
            Ins::Pow => {
                let b = pop(&mut stack);
                let a = pop(&mut stack);
                match (a.as_deref(), b.as_deref()) {
                    (Some(Value::Float(a)), Some(Value::Float(b))) => {
                        Some(Cow::Owned(Value::Float(a.powf(*b))))
                    }
                    _ => None,
                }
            }
            Ins::Mod => {
                let b = pop(&mut stack);
                let a = pop(&mut stack);
                match (a.as_deref(), b.as_deref()) {
                    (Some(Value::Int(a)), Some(Value::Int(b))) if *b != 0 => {
                        Some(Cow::Owned(Value::Int(a.wrapping_rem(*b))))
                    }
                    _ => None,
                }
            }
            Ins::Abs => match pop(&mut stack).as_deref() {
                Some(Value::Int(i)) => Some(Cow::Owned(Value::Int(i.wrapping_abs()))),
                Some(Value::Float(f)) => Some(Cow::Owned(Value::Float(f.abs()))),
                _ => None,
            },
            Ins::ToInt => match pop(&mut stack).as_deref() {
                // Truncates toward zero, as a C cast does.
                Some(Value::Float(f)) => Some(Cow::Owned(Value::Int(*f as i64))),
                _ => None,
            },
            Ins::ToFloat => match pop(&mut stack).as_deref() {
                Some(Value::Int(i)) => Some(Cow::Owned(Value::Float(*i as f64))),
                _ => None,
            },
            Ins::Min(n) | Ins::Max(n) => {
                let args = pop_n(&mut stack, *n);
                let want = if matches!(ins, Ins::Min(_)) {
                    Ordering::Less
                } else {
                    Ordering::Greater
                };
                extreme(args, want)
            }
            Ins::Cond(n) => {
                let args = pop_n(&mut stack, *n);
                cond(args)
            }
            Ins::Store(slot) => {
                slots[*slot] = pop(&mut stack);
                continue;
            }
            Ins::Load(slot) => slots[*slot].clone(),
            Ins::Cdt(cdt, ty) => {
                let v = pop(&mut stack);
                cdt_read(cdt, v).filter(|v| has_type(v, *ty))
            }
        };
        stack.push(v);
    }
    truth(&pop(&mut stack))
}

fn pop<'a>(stack: &mut Vec<Val<'a>>) -> Val<'a> {
    stack.pop().unwrap_or(None)
}

fn pop_n<'a>(stack: &mut Vec<Val<'a>>, n: usize) -> Vec<Val<'a>> {
    stack.split_off(stack.len().saturating_sub(n))
}

fn boolean<'a>(b: bool) -> Cow<'a, Value> {
    Cow::Owned(Value::Bool(b))
}

fn truth(v: &Val) -> Option<bool> {
    match v.as_deref() {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// `and` (`decisive` false) or `or` (`decisive` true) in three-valued logic:
/// one decisive operand settles it, else any unknown makes it unknown.
fn logic<'a>(stack: &mut Vec<Val<'a>>, n: usize, decisive: bool) -> Val<'a> {
    let args = pop_n(stack, n);
    let mut unknown = false;
    for a in &args {
        match truth(a) {
            Some(b) if b == decisive => return Some(boolean(decisive)),
            Some(_) => {}
            None => unknown = true,
        }
    }
    (!unknown).then(|| boolean(!decisive))
}

fn has_type(v: &Value, ty: Ty) -> bool {
    match ty {
        Ty::Any => true,
        Ty::Nil => matches!(v, Value::Nil),
        Ty::Bool => matches!(v, Value::Bool(_)),
        Ty::Int => matches!(v, Value::Int(_)),
        Ty::Float => matches!(v, Value::Float(_)),
        Ty::Str => matches!(v, Value::Str(_)),
        Ty::Blob => matches!(v, Value::Bytes { ty: BLOB, .. }),
        Ty::List => matches!(v, Value::List(_)),
        Ty::Map => matches!(v, Value::Map(_)),
        Ty::Geo => matches!(v, Value::GeoJson(_)),
        Ty::Hll => matches!(v, Value::Bytes { ty: 18, .. }),
    }
}

/// A bin's particle type, as `bin_type` reports it (0 when missing).
fn particle_type(v: &Value) -> u8 {
    match v {
        Value::Nil => particle::NULL,
        Value::Int(_) => particle::INTEGER,
        Value::Float(_) => particle::FLOAT,
        Value::Str(_) => particle::STRING,
        Value::Bytes { ty, .. } => *ty,
        Value::Bool(_) => particle::BOOL,
        Value::Map(_) => particle::MAP,
        Value::List(_) => particle::LIST,
        Value::GeoJson(_) => particle::GEOJSON,
    }
}

const NANOS_PER_MS: i64 = 1_000_000;
const EPOCH_MS: i64 = CITRUSLEAF_EPOCH_SECS as i64 * 1000;

fn meta(m: Meta, subject: &Subject) -> Value {
    let r = subject.record;
    let int = Value::Int;
    match m {
        Meta::DigestModulo(m) => {
            let d = subject.digest;
            let low = u32::from_le_bytes([d[16], d[17], d[18], d[19]]);
            int(i64::from(low) % m)
        }
        // An in-memory namespace keeps nothing on a device.
        Meta::DeviceSize => int(0),
        Meta::LastUpdate => int((r.last_update_ms as i64 + EPOCH_MS).wrapping_mul(NANOS_PER_MS)),
        Meta::SinceUpdate => int(store::now_cf_ms().saturating_sub(r.last_update_ms) as i64),
        Meta::VoidTime if r.void_time == 0 => int(-1),
        Meta::VoidTime => int((i64::from(r.void_time) * 1000 + EPOCH_MS) * NANOS_PER_MS),
        Meta::Ttl if r.void_time == 0 => int(-1),
        Meta::Ttl => int(i64::from(r.void_time.saturating_sub(store::now_cf_secs()))),
        Meta::SetName => Value::Str(r.set.clone().unwrap_or_default().into_bytes()),
        Meta::KeyExists => Value::Bool(r.key.is_some()),
        Meta::IsTombstone => Value::Bool(false),
        Meta::MemorySize | Meta::RecordSize => int(record_size(r)),
    }
}

/// An estimate of the server's flat record size, in 16-byte blocks: a
/// 32-byte header with the digest, the stored key, then per bin its name,
/// type and data. Matches the sizes probed on 8.1 for small records.
fn record_size(r: &Record) -> i64 {
    fn data_len(v: &Value) -> usize {
        let with_len = |n: usize| n + varint_len(n);
        match v {
            Value::Nil => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 8,
            Value::Str(s) => with_len(s.len()),
            Value::GeoJson(s) => with_len(s.len()),
            Value::Bytes { data, .. } => with_len(data.len()),
            Value::List(_) | Value::Map(_) => with_len(particle::pack(v).len()),
        }
    }
    let key = r.key.as_ref().map_or(0, |k| 1 + data_len(k).max(1));
    let bins: usize = r
        .bins
        .iter()
        .map(|(name, v)| 2 + name.len() + 1 + data_len(v))
        .sum();
    let size = 32 + key + 1 + bins;
    (size.div_ceil(16) * 16) as i64
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// The order of types when values of different types meet inside lists.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Str(_) => 3,
        Value::List(_) => 4,
        Value::Map(_) => 5,
        Value::Bytes { .. } => 6,
        Value::Float(_) => 7,
        Value::GeoJson(_) => 8,
    }
}

/// Msgpack order; `None` when the values cannot be compared (a map, which
/// the sandbox always holds unordered, GeoJSON, NaN, or too deep).
pub fn order(a: &Value, b: &Value, depth: usize) -> Option<Ordering> {
    if depth > MAX_COMPARE_DEPTH {
        return None;
    }
    match (a, b) {
        (Value::Map(_), _) | (_, Value::Map(_)) => None,
        (Value::GeoJson(_), _) | (_, Value::GeoJson(_)) => None,
        _ if rank(a) != rank(b) => Some(rank(a).cmp(&rank(b))),
        (Value::Nil, Value::Nil) => Some(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Str(x), Value::Str(y)) => Some(x.cmp(y)),
        (Value::Bytes { ty: t, data: x }, Value::Bytes { ty: u, data: y }) => {
            Some(t.cmp(u).then_with(|| x.cmp(y)))
        }
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                match order(p, q, depth + 1)? {
                    Ordering::Equal => {}
                    other => return Some(other),
                }
            }
            Some(x.len().cmp(&y.len()))
        }
        _ => None,
    }
}

fn compare(op: CmpOp, a: Option<&Value>, b: Option<&Value>) -> Option<bool> {
    let ord = order(a?, b?, 0)?;
    Some(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
    })
}

fn in_list(v: Option<&Value>, list: Option<&Value>) -> Option<bool> {
    let (v, Value::List(items)) = (v?, list?) else {
        return None;
    };
    let mut unknown = false;
    for item in items {
        match order(v, item, 0) {
            Some(Ordering::Equal) => return Some(true),
            Some(_) => {}
            None => unknown = true,
        }
    }
    (!unknown).then_some(false)
}

fn arith(op: Arith, args: &[Val]) -> Option<Value> {
    let values: Vec<&Value> = args.iter().map(|a| a.as_deref()).collect::<Option<_>>()?;
    let ints: Option<Vec<i64>> = values
        .iter()
        .map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    if let Some(ints) = ints {
        return int_arith(op, &ints).map(Value::Int);
    }
    let floats: Vec<f64> = values
        .iter()
        .map(|v| match v {
            Value::Float(f) => Some(*f),
            _ => None,
        })
        .collect::<Option<_>>()?;
    float_arith(op, &floats).map(Value::Float)
}

/// As the server documents them: `sub` takes the sum of the rest from the
/// first (one operand: its negation), `div` divides the first by the
/// product of the rest (one operand: its reciprocal). Integers wrap.
fn int_arith(op: Arith, xs: &[i64]) -> Option<i64> {
    let (&first, rest) = xs.split_first()?;
    let sum = rest.iter().fold(0i64, |a, x| a.wrapping_add(*x));
    let product = rest.iter().fold(1i64, |a, x| a.wrapping_mul(*x));
    let (dividend, divisor) = if rest.is_empty() {
        (1, first)
    } else {
        (first, product)
    };
    Some(match op {
        Arith::Add => first.wrapping_add(sum),
        Arith::Mul => first.wrapping_mul(product),
        Arith::Sub if rest.is_empty() => first.wrapping_neg(),
        Arith::Sub => first.wrapping_sub(sum),
        Arith::Div if divisor == 0 => return None,
        Arith::Div => dividend.wrapping_div(divisor),
    })
}

fn float_arith(op: Arith, xs: &[f64]) -> Option<f64> {
    let (&first, rest) = xs.split_first()?;
    let sum: f64 = rest.iter().sum();
    let product: f64 = rest.iter().product();
    let (dividend, divisor) = if rest.is_empty() {
        (1.0, first)
    } else {
        (first, product)
    };
    Some(match op {
        Arith::Add => first + sum,
        Arith::Mul => first * product,
        Arith::Sub if rest.is_empty() => -first,
        Arith::Sub => first - sum,
        Arith::Div if divisor == 0.0 => return None,
        Arith::Div => dividend / divisor,
    })
}

fn extreme(args: Vec<Val>, want: Ordering) -> Val {
    let mut best: Val = None;
    for a in args {
        let a = a?;
        if !matches!(*a, Value::Int(_) | Value::Float(_)) {
            return None;
        }
        best = match best {
            None => Some(a),
            Some(b) => match order(&a, &b, 0)? {
                o if o == want => Some(a),
                _ => Some(b),
            },
        };
    }
    best
}

/// The first value whose condition is true, else the default; an unknown
/// condition makes the whole cond unknown.
fn cond(args: Vec<Val>) -> Val {
    let mut it = args.into_iter();
    loop {
        let first = it.next()?;
        let Some(value) = it.next() else {
            return first; // the default
        };
        if truth(&first)? {
            return value;
        }
    }
}

fn cdt_read<'a>(cdt: &Cdt, v: Val<'a>) -> Val<'a> {
    let v = v?;
    let pick = |v: Cow<'a, Value>, f: &dyn Fn(&Value) -> Option<usize>| -> Val<'a> {
        match v {
            Cow::Borrowed(inner) => {
                let i = f(inner)?;
                element(inner, i).map(Cow::Borrowed)
            }
            Cow::Owned(inner) => {
                let i = f(&inner)?;
                element(&inner, i).cloned().map(Cow::Owned)
            }
        }
    };
    match (cdt, &*v) {
        (Cdt::ListSize, Value::List(items)) => Some(Cow::Owned(Value::Int(items.len() as i64))),
        (Cdt::MapSize, Value::Map(pairs)) => Some(Cow::Owned(Value::Int(pairs.len() as i64))),
        (Cdt::ListByIndex(i), Value::List(_)) => pick(v, &|l| {
            let Value::List(items) = l else { return None };
            let len = items.len() as i64;
            let at = if *i < 0 { len + *i } else { *i };
            (0..len).contains(&at).then_some(at as usize)
        }),
        (Cdt::MapByKey(key), Value::Map(_)) => pick(v, &|m| {
            let Value::Map(pairs) = m else { return None };
            pairs
                .iter()
                .position(|(k, _)| order(k, key, 0) == Some(Ordering::Equal))
        }),
        _ => None,
    }
}

/// A list's item or a map's value at position `i`.
fn element(v: &Value, i: usize) -> Option<&Value> {
    match v {
        Value::List(items) => items.get(i),
        Value::Map(pairs) => pairs.get(i).map(|(_, v)| v),
        _ => None,
    }
}

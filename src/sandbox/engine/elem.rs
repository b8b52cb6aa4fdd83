//! What Lua-side containers hold: values with shared, mutable containers.
//!
//! A List, Map or Bytes seen from Lua is a reference: `rec.l` twice gives
//! the same list, and `list.append` on it is visible through both. So
//! containers are `Arc<Mutex<..>>`; [`Value`] is the plain, owned form used
//! at the boundaries (bins, arguments, results).
//!
//! Locks are never held while another container is locked: readers take a
//! snapshot of the items first, so a list that contains itself cannot
//! deadlock (recursion stops at a depth limit instead).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::sandbox::value::{self, BLOB, Value};

pub(crate) type Shared<T> = Arc<Mutex<T>>;
pub(crate) type ListRef = Shared<Vec<Elem>>;
pub(crate) type MapRef = Shared<BTreeMap<MapKey, Elem>>;
pub(crate) type BytesRef = Shared<BytesData>;

/// Containers nested deeper than this print as `...` (only a cycle gets there).
pub(crate) const MAX_DEPTH: usize = 200;

#[derive(Clone, Debug)]
pub(crate) enum Elem {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Bytes(BytesRef),
    List(ListRef),
    Map(MapRef),
    Geo(Arc<str>),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct BytesData {
    pub ty: u8,
    pub data: Vec<u8>,
}

/// A map key: integers sort before strings, strings before blobs; strings
/// and blobs compare bytewise, then by length (as the server orders them).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MapKey {
    Int(i64),
    Str(Vec<u8>),
    Bytes(Vec<u8>),
}

/// Frees nested containers with a loop: dropping them recursively would
/// overflow the stack on a list a UDF nested 10,000 levels deep.
impl Drop for Elem {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        take_items(self, &mut pending);
        while let Some(mut elem) = pending.pop() {
            take_items(&mut elem, &mut pending);
        }
    }
}

/// Moves the items of a container nobody else holds into `out`.
fn take_items(elem: &mut Elem, out: &mut Vec<Elem>) {
    match elem {
        Elem::List(l) => {
            if let Some(items) = Arc::get_mut(l) {
                out.append(items.get_mut());
            }
        }
        Elem::Map(m) => {
            if let Some(entries) = Arc::get_mut(m) {
                out.extend(std::mem::take(entries.get_mut()).into_values());
            }
        }
        _ => {}
    }
}

pub(crate) fn shared<T>(value: T) -> Shared<T> {
    Arc::new(Mutex::new(value))
}

impl Elem {
    pub fn new_list(items: Vec<Elem>) -> Elem {
        Elem::List(shared(items))
    }

    pub fn new_map(entries: BTreeMap<MapKey, Elem>) -> Elem {
        Elem::Map(shared(entries))
    }

    pub fn new_bytes(ty: u8, data: Vec<u8>) -> Elem {
        Elem::Bytes(shared(BytesData { ty, data }))
    }

    /// A deep copy of a plain value.
    pub fn from_value(value: &Value) -> Elem {
        match value {
            Value::Nil => Elem::Nil,
            Value::Bool(b) => Elem::Bool(*b),
            Value::Int(i) => Elem::Int(*i),
            Value::Float(f) => Elem::Float(*f),
            Value::Str(s) => Elem::Str(s.clone()),
            Value::Bytes { ty, data } => Elem::new_bytes(*ty, data.clone()),
            Value::List(items) => Elem::new_list(items.iter().map(Elem::from_value).collect()),
            Value::Map(pairs) => Elem::new_map(
                pairs
                    .iter()
                    .filter_map(|(k, v)| Some((MapKey::from_value(k)?, Elem::from_value(v))))
                    .collect(),
            ),
            Value::GeoJson(text) => Elem::Geo(Arc::from(text.as_str())),
        }
    }

    /// A deep snapshot as a plain value; `None` when lists and maps nest
    /// deeper than a stored value may ([`value::MAX_DEPTH`]), as in a list
    /// that holds itself.
    pub fn to_value(&self) -> Option<Value> {
        self.to_value_at(1)
    }

    /// `depth`: the level this element's container would be at.
    fn to_value_at(&self, depth: usize) -> Option<Value> {
        Some(match self {
            Elem::Nil => Value::Nil,
            Elem::Bool(b) => Value::Bool(*b),
            Elem::Int(i) => Value::Int(*i),
            Elem::Float(f) => Value::Float(*f),
            Elem::Str(s) => Value::Str(s.clone()),
            Elem::Bytes(b) => {
                let b = b.lock();
                Value::Bytes {
                    ty: b.ty,
                    data: b.data.clone(),
                }
            }
            Elem::Geo(text) => Value::GeoJson(text.to_string()),
            _ if depth > value::MAX_DEPTH => return None,
            Elem::List(l) => {
                let items = l.lock().clone();
                let mut values = Vec::with_capacity(items.len());
                for item in &items {
                    values.push(item.to_value_at(depth + 1)?);
                }
                Value::List(values)
            }
            Elem::Map(m) => {
                let entries: Vec<(MapKey, Elem)> = m
                    .lock()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut pairs = Vec::with_capacity(entries.len());
                for (key, item) in &entries {
                    pairs.push((key.to_value(), item.to_value_at(depth + 1)?));
                }
                Value::Map(pairs)
            }
        })
    }

    /// The text containers print for an element (`NIL`, `"s"`, `[1, 2]`),
    /// or `None` where the server's printer gives up (empty bytes).
    pub fn render(&self, depth: usize) -> Option<String> {
        if depth > MAX_DEPTH {
            return Some("...".to_string());
        }
        Some(match self {
            Elem::Nil => "NIL".to_string(),
            Elem::Bool(b) => b.to_string(),
            Elem::Int(i) => i.to_string(),
            Elem::Float(f) => format_g16(*f),
            Elem::Str(s) => format!("\"{}\"", String::from_utf8_lossy(s)),
            Elem::Bytes(b) => {
                let b = b.lock();
                if b.data.is_empty() {
                    return None;
                }
                hex::encode_upper(&b.data)
            }
            Elem::List(l) => {
                let items = l.lock().clone();
                render_list(&items, depth)
            }
            Elem::Map(m) => {
                let entries: Vec<(MapKey, Elem)> = m
                    .lock()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                render_map(&entries, depth)
            }
            Elem::Geo(text) => format!("\"{text}\""),
        })
    }
}

/// Why [`Elem::to_value`] gave nothing, for `what` ("bin x", "the result").
pub(crate) fn too_deep(what: &str) -> String {
    format!(
        "{what} nests lists and maps deeper than {} levels, the sandbox's limit",
        value::MAX_DEPTH
    )
}

pub(crate) fn render_list(items: &[Elem], depth: usize) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        let Some(text) = item.render(depth + 1) else {
            break;
        };
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&text);
    }
    out.push(']');
    out
}

pub(crate) fn render_map(entries: &[(MapKey, Elem)], depth: usize) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in entries.iter().enumerate() {
        let Some(text) = value.render(depth + 1) else {
            break;
        };
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&key.render());
        out.push(':');
        out.push_str(&text);
    }
    out.push('}');
    out
}

impl MapKey {
    pub fn from_value(value: &Value) -> Option<MapKey> {
        match value {
            Value::Int(i) => Some(MapKey::Int(*i)),
            Value::Str(s) => Some(MapKey::Str(s.clone())),
            Value::Bytes { data, .. } => Some(MapKey::Bytes(data.clone())),
            _ => None,
        }
    }

    /// Integers, strings and plain blobs are keys; anything else is not.
    pub fn from_elem(elem: &Elem) -> Option<MapKey> {
        match elem {
            Elem::Int(i) => Some(MapKey::Int(*i)),
            Elem::Str(s) => Some(MapKey::Str(s.clone())),
            Elem::Bytes(b) => {
                let b = b.lock();
                (b.ty == BLOB).then(|| MapKey::Bytes(b.data.clone()))
            }
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            MapKey::Int(i) => Value::Int(*i),
            MapKey::Str(s) => Value::Str(s.clone()),
            MapKey::Bytes(b) => Value::Bytes {
                ty: BLOB,
                data: b.clone(),
            },
        }
    }

    pub fn to_elem(&self) -> Elem {
        match self {
            MapKey::Int(i) => Elem::Int(*i),
            MapKey::Str(s) => Elem::Str(s.clone()),
            MapKey::Bytes(b) => Elem::new_bytes(BLOB, b.clone()),
        }
    }

    fn render(&self) -> String {
        match self {
            MapKey::Int(i) => i.to_string(),
            MapKey::Str(s) => format!("\"{}\"", String::from_utf8_lossy(s)),
            MapKey::Bytes(b) => hex::encode_upper(b),
        }
    }
}

/// C's `%.16g`: 16 significant digits, trailing zeros dropped.
pub(crate) fn format_g16(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() { "-nan" } else { "nan" }.to_string();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    const PRECISION: i32 = 16;
    let sci = format!("{:.*e}", (PRECISION - 1) as usize, f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..PRECISION).contains(&exp) {
        let mantissa = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (PRECISION - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{f:.decimals$}")).to_string()
    }
}

fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A Lua string as the server keeps it: cut at the first NUL, bytes kept.
pub(crate) fn c_string(bytes: &[u8]) -> Vec<u8> {
    c_bytes(bytes).to_vec()
}

/// [`c_string`] without the copy, for callers that copy anyway.
pub(crate) fn c_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g16_matches_c() {
        assert_eq!(format_g16(5.0), "5");
        assert_eq!(format_g16(2.5), "2.5");
        assert_eq!(format_g16(1.0 / 3.0), "0.3333333333333333");
        assert_eq!(format_g16(1e300), "1e+300");
        assert_eq!(format_g16(1.5e-7), "1.5e-07");
        assert_eq!(format_g16(123456789.0), "123456789");
        assert_eq!(format_g16(-0.0), "-0");
    }

    #[test]
    fn map_keys_sort_by_type_then_value() {
        let mut keys = vec![
            MapKey::Bytes(vec![0x41]),
            MapKey::Str("b".into()),
            MapKey::Int(10),
            MapKey::Str("B".into()),
            MapKey::Int(-1),
            MapKey::Str("a".into()),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                MapKey::Int(-1),
                MapKey::Int(10),
                MapKey::Str("B".into()),
                MapKey::Str("a".into()),
                MapKey::Str("b".into()),
                MapKey::Bytes(vec![0x41]),
            ]
        );
    }

    #[test]
    fn a_list_that_holds_itself_does_not_hang() {
        let list = shared(vec![Elem::Int(1)]);
        list.lock().push(Elem::List(list.clone()));
        assert_eq!(
            Elem::List(list.clone()).to_value(),
            None,
            "too deep to store"
        );
        assert!(Elem::List(list.clone()).render(0).is_some());
        list.lock().clear(); // break the cycle so it is freed
    }
}

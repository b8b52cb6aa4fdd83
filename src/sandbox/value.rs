//! Server-side values: what a bin, a UDF argument or a UDF result holds.

/// A value as the server stores and sends it.
///
/// Integers and floats are kept apart (`5` vs `5.0`), as on servers ≥ 7.0.0.4.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string particle's bytes, as the server keeps them: Lua strings are
    /// byte strings, and the server neither checks nor fixes their UTF-8.
    Str(Vec<u8>),
    /// A blob with its particle type: 4 for a plain blob, 7–12 language blobs, 18 HLL.
    Bytes {
        ty: u8,
        data: Vec<u8>,
    },
    List(Vec<Value>),
    /// Key/value pairs in the order they are encoded.
    Map(Vec<(Value, Value)>),
    /// GeoJSON text.
    GeoJson(String),
}

/// How deep lists and maps may nest in a stored value: deeper ones are
/// refused where they would be written, so every stored value can be read
/// back, and the walks that recurse once per level (encoding, decoding,
/// comparing, dropping) stay well within a thread's stack.
pub const MAX_DEPTH: usize = 256;

/// Particle type of a string.
pub const STRING: u8 = 3;

/// Particle type of a plain blob.
pub const BLOB: u8 = 4;

/// The HyperLogLog particle type.
const HLL: u8 = 18;

impl Value {
    /// How many lists and maps deep this value nests (a scalar is 0),
    /// counted with a loop: the value may be deeper than the stack allows.
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut pending = vec![(self, 0)];
        while let Some((value, outer)) = pending.pop() {
            let inner = outer + 1;
            match value {
                Value::List(items) => pending.extend(items.iter().map(|v| (v, inner))),
                Value::Map(pairs) => {
                    pending.extend(pairs.iter().flat_map(|(k, v)| [(k, inner), (v, inner)]))
                }
                _ => continue,
            }
            deepest = deepest.max(inner);
        }
        deepest
    }

    /// A client's value as the sandbox's (maps keep their pairs' order).
    pub fn from_client(v: &aerospike::Value) -> Value {
        use aerospike::Value as C;
        let pairs = |it: &mut dyn Iterator<Item = (&C, &C)>| {
            Value::Map(
                it.map(|(k, v)| (Value::from_client(k), Value::from_client(v)))
                    .collect(),
            )
        };
        match v {
            C::Bool(b) => Value::Bool(*b),
            C::Int(i) => Value::Int(*i),
            C::Float(f) => Value::Float(f64::from(f)),
            C::String(s) => Value::Str(s.clone().into_bytes()),
            C::Blob(b) => Value::Bytes {
                ty: BLOB,
                data: b.clone(),
            },
            C::Hll(b) => Value::Bytes {
                ty: HLL,
                data: b.clone(),
            },
            C::List(items) | C::MultiResult(items) => {
                Value::List(items.iter().map(Value::from_client).collect())
            }
            C::HashMap(m) => pairs(&mut m.iter()),
            C::OrderedMap(m) => pairs(&mut m.iter()),
            C::SortedMap(m) => pairs(&mut m.iter()),
            C::KeyValueList(kv) => pairs(&mut kv.iter().map(|(k, v)| (k, v))),
            C::GeoJson(s) => Value::GeoJson(s.clone()),
            _ => Value::Nil,
        }
    }

    /// The sandbox's value as a client's; a map as the client decodes one
    /// from the wire (unordered).
    pub fn to_client(&self) -> aerospike::Value {
        use aerospike::Value as C;
        match self {
            Value::Nil => C::Nil,
            Value::Bool(b) => C::Bool(*b),
            Value::Int(i) => C::Int(*i),
            Value::Float(f) => C::from(*f),
            // The client's strings are text: bytes that are not UTF-8 are
            // shown replaced (the crate would not decode them from a server).
            Value::Str(s) => C::String(String::from_utf8_lossy(s).into_owned()),
            Value::Bytes { ty, data } if *ty == HLL => C::Hll(data.clone()),
            Value::Bytes { data, .. } => C::Blob(data.clone()),
            Value::List(items) => C::List(items.iter().map(Value::to_client).collect()),
            Value::Map(pairs) => C::HashMap(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_client(), v.to_client()))
                    .collect(),
            ),
            Value::GeoJson(s) => C::GeoJson(s.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_lists_and_maps() {
        let map = |v| Value::Map(vec![(Value::Int(1), v)]);
        assert_eq!(Value::Int(1).depth(), 0);
        assert_eq!(Value::List(vec![]).depth(), 1);
        assert_eq!(map(Value::List(vec![Value::Nil])).depth(), 2);
        let wide = Value::List(vec![Value::Int(1), map(Value::Nil), Value::List(vec![])]);
        assert_eq!(wide.depth(), 2);
    }
}

//! Values on the wire: bin particles (§4.5) and the msgpack inside list/map
//! particles and UDF argument lists (§6).

use crate::sandbox::value::Value;

pub const NULL: u8 = 0;
pub const INTEGER: u8 = 1;
pub const FLOAT: u8 = 2;
pub use crate::sandbox::value::STRING;
pub const BLOB: u8 = 4;
pub const BOOL: u8 = 17;
pub const HLL: u8 = 18;
pub const MAP: u8 = 19;
pub const LIST: u8 = 20;
pub const GEOJSON: u8 = 23;

/// Deeper nesting is refused, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("particle type {0} is not supported")]
    ParticleType(u8),
    #[error("bad {0} particle")]
    Particle(&'static str),
    #[error("msgpack truncated")]
    Truncated,
    #[error("msgpack byte {0:#04x} is not supported")]
    Unsupported(u8),
    #[error("GeoJSON is not UTF-8")]
    Utf8,
    #[error("nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("msgpack value is not a {0}")]
    NotA(&'static str),
    #[error("{0} bytes after the msgpack value")]
    Trailing(usize),
}

/// Is this a blob-like particle type carried as raw bytes?
fn is_bytes_type(ty: u8) -> bool {
    ty == BLOB || (7..=12).contains(&ty) || ty == HLL
}

/// A value as an op's particle type and value bytes.
pub fn to_particle(value: &Value) -> (u8, Vec<u8>) {
    match value {
        Value::Nil => (NULL, Vec::new()),
        Value::Bool(b) => (BOOL, vec![u8::from(*b)]),
        Value::Int(i) => (INTEGER, i.to_be_bytes().to_vec()),
        Value::Float(f) => (FLOAT, f.to_bits().to_be_bytes().to_vec()),
        Value::Str(s) => (STRING, s.clone()),
        Value::Bytes { ty, data } => (*ty, data.clone()),
        Value::List(_) => (LIST, pack(value)),
        Value::Map(_) => (MAP, pack(value)),
        Value::GeoJson(json) => {
            // flags 0, no cells: what clients send too.
            let mut out = vec![0, 0, 0];
            out.extend_from_slice(json.as_bytes());
            (GEOJSON, out)
        }
    }
}

/// An op's particle back to a value.
pub fn from_particle(ty: u8, data: &[u8]) -> Result<Value, ValueError> {
    match ty {
        NULL => Ok(Value::Nil),
        INTEGER => {
            let bytes: [u8; 8] = data
                .try_into()
                .map_err(|_| ValueError::Particle("integer"))?;
            Ok(Value::Int(i64::from_be_bytes(bytes)))
        }
        FLOAT => {
            let bytes: [u8; 8] = data.try_into().map_err(|_| ValueError::Particle("float"))?;
            Ok(Value::Float(f64::from_bits(u64::from_be_bytes(bytes))))
        }
        STRING => Ok(Value::Str(data.to_vec())),
        BOOL => match data {
            [b] => Ok(Value::Bool(*b != 0)),
            _ => Err(ValueError::Particle("bool")),
        },
        GEOJSON => {
            if data.len() < 3 {
                return Err(ValueError::Particle("geojson"));
            }
            let cells = u16::from_be_bytes([data[1], data[2]]) as usize;
            let json = data
                .get(3 + cells * 8..)
                .ok_or(ValueError::Particle("geojson"))?;
            Ok(Value::GeoJson(utf8(json)?))
        }
        LIST => {
            let v = unpack(data)?;
            matches!(v, Value::List(_))
                .then_some(v)
                .ok_or(ValueError::NotA("list"))
        }
        MAP => {
            let v = unpack(data)?;
            matches!(v, Value::Map(_))
                .then_some(v)
                .ok_or(ValueError::NotA("map"))
        }
        t if is_bytes_type(t) => Ok(Value::Bytes {
            ty: t,
            data: data.to_vec(),
        }),
        t => Err(ValueError::ParticleType(t)),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, ValueError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ValueError::Utf8)
}

// ---------------------------------------------------------------- msgpack

/// Msgpack for a value, Aerospike flavour (strings and blobs carry a leading particle type byte).
pub fn pack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    pack_into(value, &mut out);
    out
}

fn pack_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => pack_int(*i, out),
        Value::Float(f) => {
            out.push(0xcb);
            out.extend_from_slice(&f.to_bits().to_be_bytes());
        }
        Value::Str(s) => pack_typed_bytes(STRING, s, out),
        Value::Bytes { ty, data } => pack_typed_bytes(*ty, data, out),
        Value::GeoJson(s) => pack_typed_bytes(GEOJSON, s.as_bytes(), out),
        Value::List(items) => {
            pack_len(items.len(), 0x90, 0xdc, out);
            items.iter().for_each(|v| pack_into(v, out));
        }
        Value::Map(pairs) => {
            pack_len(pairs.len(), 0x80, 0xde, out);
            for (k, v) in pairs {
                pack_into(k, out);
                pack_into(v, out);
            }
        }
    }
}

/// Array/map header: fix form below 16, else the 16- or 32-bit form.
fn pack_len(len: usize, fix: u8, wide16: u8, out: &mut Vec<u8>) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(wide16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(wide16 + 1);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack_int(i: i64, out: &mut Vec<u8>) {
    if (0..128).contains(&i) || (-32..0).contains(&i) {
        out.push(i as u8);
    } else if i >= 0 {
        let u = i as u64;
        if u <= u8::MAX as u64 {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= u16::MAX as u64 {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= u32::MAX as u64 {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if i >= i8::MIN as i64 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= i16::MIN as i64 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= i32::MIN as i64 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

/// A msgpack str whose payload is the particle type byte + the bytes.
fn pack_typed_bytes(ty: u8, data: &[u8], out: &mut Vec<u8>) {
    let len = data.len() + 1;
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= u8::MAX as usize {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= u16::MAX as usize {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.push(ty);
    out.extend_from_slice(data);
}

/// Decodes exactly one msgpack value filling `bytes`.
pub fn unpack(bytes: &[u8]) -> Result<Value, ValueError> {
    let mut d = Decoder { bytes, pos: 0 };
    let v = d.value(0)?.unwrap_or(Value::Nil);
    match bytes.len() - d.pos {
        0 => Ok(v),
        n => Err(ValueError::Trailing(n)),
    }
}

/// Decodes a UDF argument list (a msgpack array).
pub fn unpack_arglist(bytes: &[u8]) -> Result<Vec<Value>, ValueError> {
    match unpack(bytes)? {
        Value::List(items) => Ok(items),
        _ => Err(ValueError::NotA("list")),
    }
}

struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ValueError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(ValueError::Truncated)?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn uint(&mut self, n: usize) -> Result<u64, ValueError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn peek_is_ext(&self) -> bool {
        matches!(self.bytes.get(self.pos), Some(0xc7..=0xc9 | 0xd4..=0xd8))
    }

    /// One value; `None` for an ext value (metadata or comparison sentinels), which we skip.
    fn value(&mut self, depth: usize) -> Result<Option<Value>, ValueError> {
        if depth > MAX_DEPTH {
            return Err(ValueError::TooDeep);
        }
        let b = self.take(1)?[0];
        let v = match b {
            0x00..=0x7f => Value::Int(i64::from(b)),
            0xe0..=0xff => Value::Int(i64::from(b as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xcc => Value::Int(self.uint(1)? as i64),
            0xcd => Value::Int(self.uint(2)? as i64),
            0xce => Value::Int(self.uint(4)? as i64),
            // u64 beyond i64::MAX wraps, as the server stores 64-bit signed integers.
            0xcf => Value::Int(self.uint(8)? as i64),
            0xd0 => Value::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Value::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Value::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xd3 => Value::Int(self.uint(8)? as i64),
            0xca => Value::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => self.typed_bytes((b & 0x1f) as usize)?,
            0xd9 | 0xc4 => {
                let n = self.uint(1)? as usize;
                self.typed_bytes(n)?
            }
            0xda | 0xc5 => {
                let n = self.uint(2)? as usize;
                self.typed_bytes(n)?
            }
            0xdb | 0xc6 => {
                let n = self.uint(4)? as usize;
                self.typed_bytes(n)?
            }
            0x90..=0x9f => self.list((b & 0x0f) as usize, depth)?,
            0xdc => {
                let n = self.uint(2)? as usize;
                self.list(n, depth)?
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.list(n, depth)?
            }
            0x80..=0x8f => self.map((b & 0x0f) as usize, depth)?,
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(n, depth)?
            }
            0xd4..=0xd8 => {
                let n = 1usize << (b - 0xd4);
                self.take(1 + n)?;
                return Ok(None);
            }
            0xc7..=0xc9 => {
                let width = 1usize << (b - 0xc7);
                let n = self.uint(width)? as usize;
                self.take(1 + n)?;
                return Ok(None);
            }
            other => return Err(ValueError::Unsupported(other)),
        };
        Ok(Some(v))
    }

    fn typed_bytes(&mut self, n: usize) -> Result<Value, ValueError> {
        let payload = self.take(n)?;
        let Some((&ty, data)) = payload.split_first() else {
            return Ok(Value::Str(Vec::new()));
        };
        Ok(match ty {
            STRING => Value::Str(data.to_vec()),
            GEOJSON => Value::GeoJson(utf8(data)?),
            _ => Value::Bytes {
                ty,
                data: data.to_vec(),
            },
        })
    }

    fn list(&mut self, count: usize, depth: usize) -> Result<Value, ValueError> {
        let mut items = Vec::with_capacity(count.min(1024));
        for i in 0..count {
            let leading_ext = i == 0 && self.peek_is_ext();
            match self.value(depth + 1)? {
                Some(v) => items.push(v),
                // Order metadata in the first slot is dropped; another ext reads as nil.
                None if leading_ext => {}
                None => items.push(Value::Nil),
            }
        }
        Ok(Value::List(items))
    }

    fn map(&mut self, count: usize, depth: usize) -> Result<Value, ValueError> {
        let mut pairs = Vec::with_capacity(count.min(1024));
        for i in 0..count {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?.unwrap_or(Value::Nil);
            match key {
                Some(k) => pairs.push((k, value)),
                // The order-metadata pair (ext key, nil value) is dropped.
                None if i == 0 => {}
                None => pairs.push((Value::Nil, value)),
            }
        }
        Ok(Value::Map(pairs))
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
    fn captured_arglists_decode() {
        assert_eq!(
            unpack_arglist(&unhex("92a603636f756e7405")).unwrap(),
            vec![Value::Str("count".into()), Value::Int(5)]
        );
        // 1, 2.5, bytes 01 02, [1, "a"], {"k": 1}
        let args =
            unpack_arglist(&unhex("9501cb4004000000000000a30401029201a2036181a2036b01")).unwrap();
        assert_eq!(
            args,
            vec![
                Value::Int(1),
                Value::Float(2.5),
                Value::Bytes {
                    ty: BLOB,
                    data: vec![1, 2]
                },
                Value::List(vec![Value::Int(1), Value::Str("a".into())]),
                Value::Map(vec![(Value::Str("k".into()), Value::Int(1))]),
            ]
        );
        assert_eq!(unpack_arglist(&[0x90]).unwrap(), vec![]);
        assert!(unpack_arglist(&[0x01]).is_err());
    }

    #[test]
    fn order_metadata_is_skipped() {
        // ordered list: [ext c7 00 01, 7]
        assert_eq!(
            unpack(&unhex("92c7000107")).unwrap(),
            Value::List(vec![Value::Int(7)])
        );
        // K-ordered map: {ext: nil, 1: 2}
        assert_eq!(
            unpack(&unhex("82c70001c00102")).unwrap(),
            Value::Map(vec![(Value::Int(1), Value::Int(2))])
        );
    }

    #[test]
    fn integers_use_the_smallest_form() {
        assert_eq!(pack(&Value::Int(5)), vec![0x05]);
        assert_eq!(pack(&Value::Int(-1)), vec![0xff]);
        assert_eq!(pack(&Value::Int(200)), vec![0xcc, 200]);
        assert_eq!(pack(&Value::Int(-100)), vec![0xd0, 0x9c]);
        assert_eq!(pack(&Value::Int(70000)), vec![0xce, 0, 1, 0x11, 0x70]);
        assert_eq!(pack(&Value::Int(i64::MIN))[0], 0xd3);
    }

    #[test]
    fn strings_carry_their_type_byte() {
        assert_eq!(pack(&Value::Str("x".into())), vec![0xa2, 0x03, b'x']);
        let long = "y".repeat(40);
        assert_eq!(&pack(&Value::Str(long.into()))[..3], &[0xd9, 41, 0x03]);
        // bin-family headers decode the same way
        assert_eq!(
            unpack(&[0xc4, 2, 4, 9]).unwrap(),
            Value::Bytes {
                ty: BLOB,
                data: vec![9]
            }
        );
    }

    #[test]
    fn particles_match_the_wire_layouts() {
        assert_eq!(
            to_particle(&Value::Int(5)),
            (INTEGER, vec![0, 0, 0, 0, 0, 0, 0, 5])
        );
        assert_eq!(to_particle(&Value::Nil), (NULL, vec![]));
        assert_eq!(to_particle(&Value::Bool(true)), (BOOL, vec![1]));
        let geo = r#"{"type":"Point","coordinates":[1,2]}"#;
        let (ty, bytes) = to_particle(&Value::GeoJson(geo.into()));
        assert_eq!((ty, &bytes[..3]), (GEOJSON, &[0u8, 0, 0][..]));
        // a client particle with one cell id before the text
        let mut with_cell = vec![0, 0, 1];
        with_cell.extend_from_slice(&[7; 8]);
        with_cell.extend_from_slice(geo.as_bytes());
        assert_eq!(
            from_particle(GEOJSON, &with_cell).unwrap(),
            Value::GeoJson(geo.into())
        );
        assert!(from_particle(INTEGER, &[1, 2]).is_err());
        assert!(from_particle(LIST, &[0x05]).is_err());
        assert!(from_particle(99, &[]).is_err());
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>()
                .prop_filter("nan != nan", |f| !f.is_nan())
                .prop_map(Value::Float),
            // Any bytes: string particles need not be UTF-8.
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Str),
            proptest::collection::vec(any::<u8>(), 0..40)
                .prop_map(|data| Value::Bytes { ty: BLOB, data }),
            ".{0,20}".prop_map(Value::GeoJson),
        ];
        leaf.prop_recursive(4, 64, 20, |inner| {
            let key = prop_oneof![
                any::<i64>().prop_map(Value::Int),
                proptest::collection::vec(any::<u8>(), 0..10).prop_map(Value::Str),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..20).prop_map(Value::List),
                proptest::collection::vec((key, inner), 0..20).prop_map(Value::Map),
            ]
        })
    }

    proptest! {
        #[test]
        fn msgpack_round_trip(v in value_strategy()) {
            prop_assert_eq!(unpack(&pack(&v)).unwrap(), v);
        }

        #[test]
        fn particle_round_trip(v in value_strategy()) {
            let (ty, bytes) = to_particle(&v);
            prop_assert_eq!(from_particle(ty, &bytes).unwrap(), v);
        }

        #[test]
        fn arbitrary_msgpack_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = unpack(&bytes);
        }

        #[test]
        fn arbitrary_particles_never_panic(ty in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = from_particle(ty, &bytes);
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let bytes = vec![0x91; 10_000];
        assert_eq!(unpack(&bytes), Err(ValueError::TooDeep));
    }
}

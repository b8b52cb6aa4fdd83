//! A bounded msgpack reader for field 43: every length is checked against
//! the bytes that remain before anything is allocated for it.

use super::FilterError;
use crate::sandbox::value::Value;

/// Literals (quoted lists, map literals, CDT keys) nested deeper than this
/// are refused with 4, the same bound the store puts on bin values.
pub const MAX_LITERAL_DEPTH: usize = 128;

/// Particle type bytes that lead a msgpack str.
const STRING: u8 = 3;
const BLOB: u8 = 4;
const GEOJSON: u8 = 23;

/// One msgpack item's header; containers give their element count only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A str or bin payload (particle byte included, when there is one).
    Bytes(&'a [u8]),
    Array(usize),
    Map(usize),
    /// An ext value (order metadata or a comparison sentinel), already skipped.
    Ext,
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn malformed(what: &str) -> FilterError {
    FilterError::Build(format!("malformed expression: {what}"))
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FilterError> {
        if n > self.remaining() {
            return Err(malformed("truncated"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, FilterError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A count of `per` bytes at least each, refused when the rest cannot hold it.
    fn count(&mut self, width: usize, per: usize) -> Result<usize, FilterError> {
        let n = usize::try_from(self.uint(width)?).unwrap_or(usize::MAX);
        self.fits(n, per)
    }

    fn fits(&self, n: usize, per: usize) -> Result<usize, FilterError> {
        if n.saturating_mul(per) > self.remaining() {
            return Err(malformed("a length is larger than the bytes that follow"));
        }
        Ok(n)
    }

    pub fn head(&mut self) -> Result<Head<'a>, FilterError> {
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Head::Int(i64::from(b)),
            0xe0..=0xff => Head::Int(i64::from(b as i8)),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xcc => Head::Int(self.uint(1)? as i64),
            0xcd => Head::Int(self.uint(2)? as i64),
            0xce => Head::Int(self.uint(4)? as i64),
            // Beyond i64::MAX wraps, as the server's integers are signed 64-bit.
            0xcf | 0xd3 => Head::Int(self.uint(8)? as i64),
            0xd0 => Head::Int(i64::from(self.uint(1)? as u8 as i8)),
            0xd1 => Head::Int(i64::from(self.uint(2)? as u16 as i16)),
            0xd2 => Head::Int(i64::from(self.uint(4)? as u32 as i32)),
            0xca => Head::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Head::Float(f64::from_bits(self.uint(8)?)),
            0xa0..=0xbf => Head::Bytes(self.take(usize::from(b & 0x1f))?),
            0xd9 | 0xc4 => {
                let n = self.count(1, 1)?;
                Head::Bytes(self.take(n)?)
            }
            0xda | 0xc5 => {
                let n = self.count(2, 1)?;
                Head::Bytes(self.take(n)?)
            }
            0xdb | 0xc6 => {
                let n = self.count(4, 1)?;
                Head::Bytes(self.take(n)?)
            }
            0x90..=0x9f => Head::Array(self.fits(usize::from(b & 0x0f), 1)?),
            0xdc => Head::Array(self.count(2, 1)?),
            0xdd => Head::Array(self.count(4, 1)?),
            0x80..=0x8f => Head::Map(self.fits(usize::from(b & 0x0f), 2)?),
            0xde => Head::Map(self.count(2, 2)?),
            0xdf => Head::Map(self.count(4, 2)?),
            0xd4..=0xd8 => {
                self.take(1 + (1usize << (b - 0xd4)))?;
                Head::Ext
            }
            0xc7..=0xc9 => {
                let n = self.count(1usize << (b - 0xc7), 1)?;
                self.take(1 + n)?;
                Head::Ext
            }
            other => return Err(malformed(&format!("byte {other:#04x}"))),
        })
    }

    /// A plain msgpack str (bin, variable and regex names carry no particle byte).
    pub fn name(&mut self) -> Result<String, FilterError> {
        match self.head()? {
            Head::Bytes(b) => {
                String::from_utf8(b.to_vec()).map_err(|_| malformed("name not UTF-8"))
            }
            _ => Err(malformed("expected a name")),
        }
    }

    pub fn int(&mut self) -> Result<i64, FilterError> {
        match self.head()? {
            Head::Int(i) => Ok(i),
            _ => Err(malformed("expected an integer")),
        }
    }

    /// One literal value whose header was already read.
    pub fn literal(&mut self, head: Head<'a>, depth: usize) -> Result<Value, FilterError> {
        if depth > MAX_LITERAL_DEPTH {
            return Err(FilterError::Build(format!(
                "literal nested deeper than {MAX_LITERAL_DEPTH} levels"
            )));
        }
        Ok(match head {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::Int(i) => Value::Int(i),
            Head::Float(f) => Value::Float(f),
            Head::Bytes(b) => typed_bytes(b)?,
            Head::Array(n) => {
                let mut items = Vec::with_capacity(n.min(16));
                for i in 0..n {
                    match self.head()? {
                        // Order metadata in the first slot.
                        Head::Ext if i == 0 => {}
                        Head::Ext => return Err(ext_refused()),
                        h => items.push(self.literal(h, depth + 1)?),
                    }
                }
                Value::List(items)
            }
            Head::Map(n) => {
                let mut pairs = Vec::with_capacity(n.min(16));
                for i in 0..n {
                    let key = match self.head()? {
                        // The order-metadata pair (ext key, nil value).
                        Head::Ext if i == 0 => None,
                        Head::Ext => return Err(ext_refused()),
                        k => Some(self.literal(k, depth + 1)?),
                    };
                    let value = self.head()?;
                    let value = self.literal(value, depth + 1)?;
                    if let Some(key) = key {
                        pairs.push((key, value));
                    }
                }
                Value::Map(pairs)
            }
            Head::Ext => return Err(ext_refused()),
        })
    }
}

fn ext_refused() -> FilterError {
    FilterError::unsupported("msgpack ext values (wildcard, infinity) in a literal")
}

/// A str payload: its first byte is the particle type.
fn typed_bytes(b: &[u8]) -> Result<Value, FilterError> {
    let Some((&ty, data)) = b.split_first() else {
        return Ok(Value::Str(Vec::new()));
    };
    Ok(match ty {
        STRING => Value::Str(data.to_vec()),
        GEOJSON => Value::GeoJson(
            String::from_utf8(data.to_vec()).map_err(|_| malformed("GeoJSON not UTF-8"))?,
        ),
        _ => Value::Bytes {
            ty,
            data: data.to_vec(),
        },
    })
}

/// Is `value` a plain blob literal (particle 4)?
pub fn is_blob(value: &Value) -> bool {
    matches!(value, Value::Bytes { ty: BLOB, .. })
}

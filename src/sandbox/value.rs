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
    Str(String),
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

/// Particle type of a plain blob.
pub const BLOB: u8 = 4;

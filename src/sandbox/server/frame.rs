//! The 8-byte proto header that frames every message, and type-4 inflation.

use std::io::Read;

/// Protocol version byte in every header.
pub const PROTO_VERSION: u8 = 2;
/// Larger bodies are refused (the C client's limit).
pub const MAX_BODY: u64 = 128 << 20;

pub const TYPE_INFO: u8 = 1;
pub const TYPE_ADMIN: u8 = 2;
pub const TYPE_MSG: u8 = 3;
pub const TYPE_COMPRESSED: u8 = 4;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("unsupported proto version {0}")]
    Version(u8),
    #[error("unsupported proto type {0}")]
    Type(u8),
    #[error("body of {0} bytes exceeds the 128 MiB limit")]
    TooLarge(u64),
    #[error("compressed message: {0}")]
    Compressed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtoHeader {
    pub ty: u8,
    pub body_len: u64,
}

/// Parses and validates a header (version 2, types 1–4, body ≤ 128 MiB).
pub fn parse_header(bytes: [u8; 8]) -> Result<ProtoHeader, FrameError> {
    if bytes[0] != PROTO_VERSION {
        return Err(FrameError::Version(bytes[0]));
    }
    let ty = bytes[1];
    if !(TYPE_INFO..=TYPE_COMPRESSED).contains(&ty) {
        return Err(FrameError::Type(ty));
    }
    let body_len = u64::from_be_bytes(bytes) & 0xFFFF_FFFF_FFFF;
    if body_len > MAX_BODY {
        return Err(FrameError::TooLarge(body_len));
    }
    Ok(ProtoHeader { ty, body_len })
}

pub fn encode_header(ty: u8, body_len: usize) -> [u8; 8] {
    let word = (u64::from(PROTO_VERSION) << 56) | (u64::from(ty) << 48) | body_len as u64;
    word.to_be_bytes()
}

/// A whole frame: header + body.
pub fn encode_frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&encode_header(ty, body.len()));
    out.extend_from_slice(body);
    out
}

/// Inflates a type-4 body (8-byte uncompressed length + zlib data) and
/// returns the body of the type-3 message inside it.
pub fn inflate(body: &[u8]) -> Result<Vec<u8>, FrameError> {
    let err = |s: &str| FrameError::Compressed(s.to_string());
    if body.len() < 8 {
        return Err(err("shorter than its length prefix"));
    }
    let declared = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    if !(8..=MAX_BODY + 8).contains(&declared) {
        return Err(err("bad uncompressed length"));
    }
    let mut inner = Vec::new();
    flate2::read::ZlibDecoder::new(&body[8..])
        .take(declared + 1)
        .read_to_end(&mut inner)
        .map_err(|e| FrameError::Compressed(e.to_string()))?;
    if inner.len() as u64 != declared {
        return Err(err("uncompressed length does not match"));
    }
    let header = parse_header(inner[..8].try_into().expect("8 bytes"))?;
    if header.ty != TYPE_MSG || header.body_len + 8 != declared {
        return Err(err("inner message is not a complete type-3 message"));
    }
    inner.drain(..8);
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    #[test]
    fn header_round_trip() {
        let h = encode_header(TYPE_INFO, 0x2d);
        assert_eq!(h, [2, 1, 0, 0, 0, 0, 0, 0x2d]);
        assert_eq!(
            parse_header(h),
            Ok(ProtoHeader {
                ty: 1,
                body_len: 0x2d
            })
        );
    }

    #[test]
    fn header_rejects_bad_version_type_and_size() {
        assert_eq!(
            parse_header([3, 1, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::Version(3))
        );
        assert_eq!(
            parse_header([2, 5, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::Type(5))
        );
        assert_eq!(
            parse_header([2, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::Type(0))
        );
        let big = encode_header(TYPE_MSG, (MAX_BODY + 1) as usize);
        assert_eq!(parse_header(big), Err(FrameError::TooLarge(MAX_BODY + 1)));
        assert!(parse_header(encode_header(TYPE_MSG, MAX_BODY as usize)).is_ok());
    }

    fn compress(inner_frame: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(inner_frame).unwrap();
        let mut body = (inner_frame.len() as u64).to_be_bytes().to_vec();
        body.extend(enc.finish().unwrap());
        body
    }

    #[test]
    fn inflates_a_compressed_message() {
        let inner_body = vec![22u8; 40];
        let body = compress(&encode_frame(TYPE_MSG, &inner_body));
        assert_eq!(inflate(&body).unwrap(), inner_body);
    }

    #[test]
    fn inflate_rejects_wrong_inner_type_and_length() {
        let body = compress(&encode_frame(TYPE_INFO, b"node\n"));
        assert!(inflate(&body).is_err());
        let mut body = compress(&encode_frame(TYPE_MSG, &[0u8; 30]));
        body[7] += 1;
        assert!(inflate(&body).is_err());
        assert!(inflate(&[0, 0, 0]).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(bytes in any::<[u8; 8]>()) {
            let _ = parse_header(bytes);
        }

        #[test]
        fn arbitrary_compressed_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = inflate(&bytes);
        }
    }
}

//! AS_MSG (type 3): the 22-byte header, fields and operations.

pub const HEADER_SIZE: usize = 22;

// info1
pub const INFO1_READ: u8 = 0x01;
pub const INFO1_GET_ALL: u8 = 0x02;
pub const INFO1_BATCH: u8 = 0x08;
pub const INFO1_NOBINDATA: u8 = 0x20;
// info2
pub const INFO2_WRITE: u8 = 0x01;
pub const INFO2_DELETE: u8 = 0x02;
pub const INFO2_GENERATION: u8 = 0x04;
pub const INFO2_GENERATION_GT: u8 = 0x08;
pub const INFO2_DURABLE_DELETE: u8 = 0x10;
pub const INFO2_CREATE_ONLY: u8 = 0x20;
pub const INFO2_RESPOND_ALL_OPS: u8 = 0x80;
// info3
pub const INFO3_LAST: u8 = 0x01;
pub const INFO3_UPDATE_ONLY: u8 = 0x08;
pub const INFO3_CREATE_OR_REPLACE: u8 = 0x10;
pub const INFO3_REPLACE_ONLY: u8 = 0x20;

// field types
pub const FIELD_NAMESPACE: u8 = 0;
pub const FIELD_SET: u8 = 1;
pub const FIELD_KEY: u8 = 2;
pub const FIELD_DIGEST: u8 = 4;
pub const FIELD_UDF_PACKAGE: u8 = 30;
pub const FIELD_UDF_FUNCTION: u8 = 31;
pub const FIELD_UDF_ARGLIST: u8 = 32;
pub const FIELD_BATCH_INDEX: u8 = 41;
pub const FIELD_BATCH_WITH_SET: u8 = 42;
pub const FIELD_FILTER_EXP: u8 = 43;

// op types
pub const OP_READ: u8 = 1;
pub const OP_WRITE: u8 = 2;
pub const OP_INCR: u8 = 5;
pub const OP_APPEND: u8 = 9;
pub const OP_PREPEND: u8 = 10;
pub const OP_TOUCH: u8 = 11;
pub const OP_DELETE: u8 = 14;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    #[error("header size {0} is below 22")]
    HeaderSize(u8),
    #[error("zero-length field or op at byte {0}")]
    ZeroLength(usize),
    #[error("bin name is not UTF-8")]
    BinName,
    #[error("{0} bytes left over after the last op")]
    Trailing(usize),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsgHeader {
    pub info1: u8,
    pub info2: u8,
    pub info3: u8,
    pub info4: u8,
    pub result_code: u8,
    pub generation: u32,
    pub record_ttl: u32,
    pub transaction_ttl: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub ty: u8,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub op: u8,
    pub particle: u8,
    pub name: String,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub header: MsgHeader,
    pub fields: Vec<Field>,
    pub ops: Vec<Op>,
}

/// A bounds-checked cursor over message bytes (also used for batch rows).
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(MessageError::Truncated(self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, MessageError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, MessageError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    /// `n_fields` fields, then `n_ops` ops: the layout shared by a message
    /// and a batch row. Every length is checked against the bytes left
    /// before anything is copied.
    pub(crate) fn sections(
        &mut self,
        n_fields: u16,
        n_ops: u16,
    ) -> Result<(Vec<Field>, Vec<Op>), MessageError> {
        let r = self;
        let mut fields = Vec::new();
        for _ in 0..n_fields {
            let at = r.pos;
            let size = r.u32()? as usize;
            if size == 0 {
                return Err(MessageError::ZeroLength(at));
            }
            let ty = r.u8()?;
            let data = r.take(size - 1)?.to_vec();
            fields.push(Field { ty, data });
        }
        let mut ops = Vec::new();
        for _ in 0..n_ops {
            let at = r.pos;
            let size = r.u32()? as usize;
            if size < 4 {
                return Err(MessageError::ZeroLength(at));
            }
            let op = r.u8()?;
            let particle = r.u8()?;
            let _flags = r.u8()?;
            let name_len = r.u8()? as usize;
            let name = r.take(name_len)?;
            let name = std::str::from_utf8(name).map_err(|_| MessageError::BinName)?;
            let value_len = (size - 4)
                .checked_sub(name_len)
                .ok_or(MessageError::Truncated(at))?;
            let value = r.take(value_len)?.to_vec();
            ops.push(Op {
                op,
                particle,
                name: name.to_string(),
                value,
            });
        }
        Ok((fields, ops))
    }
}

impl Message {
    /// Parses a message body (the bytes after the proto header).
    pub fn parse(body: &[u8]) -> Result<Message, MessageError> {
        let mut r = Reader::new(body);
        let header_sz = r.u8()?;
        if (header_sz as usize) < HEADER_SIZE {
            return Err(MessageError::HeaderSize(header_sz));
        }
        let header = MsgHeader {
            info1: r.u8()?,
            info2: r.u8()?,
            info3: r.u8()?,
            info4: r.u8()?,
            result_code: r.u8()?,
            generation: r.u32()?,
            record_ttl: r.u32()?,
            transaction_ttl: r.u32()?,
        };
        let n_fields = r.u16()?;
        let n_ops = r.u16()?;
        // A longer header than ours: skip what we do not know.
        r.take(header_sz as usize - HEADER_SIZE)?;

        let (fields, ops) = r.sections(n_fields, n_ops)?;
        if r.pos != body.len() {
            return Err(MessageError::Trailing(body.len() - r.pos));
        }
        Ok(Message {
            header,
            fields,
            ops,
        })
    }

    /// The body bytes (without the proto header).
    pub fn encode(&self) -> Vec<u8> {
        let h = &self.header;
        let mut out = Vec::with_capacity(HEADER_SIZE + 64);
        out.extend_from_slice(&[
            HEADER_SIZE as u8,
            h.info1,
            h.info2,
            h.info3,
            h.info4,
            h.result_code,
        ]);
        out.extend_from_slice(&h.generation.to_be_bytes());
        out.extend_from_slice(&h.record_ttl.to_be_bytes());
        out.extend_from_slice(&h.transaction_ttl.to_be_bytes());
        out.extend_from_slice(&(self.fields.len() as u16).to_be_bytes());
        out.extend_from_slice(&(self.ops.len() as u16).to_be_bytes());
        for f in &self.fields {
            out.extend_from_slice(&(f.data.len() as u32 + 1).to_be_bytes());
            out.push(f.ty);
            out.extend_from_slice(&f.data);
        }
        for op in &self.ops {
            let size = 4 + op.name.len() + op.value.len();
            out.extend_from_slice(&(size as u32).to_be_bytes());
            out.extend_from_slice(&[op.op, op.particle, 0, op.name.len() as u8]);
            out.extend_from_slice(op.name.as_bytes());
            out.extend_from_slice(&op.value);
        }
        out
    }

    /// The data of the first field of this type.
    pub fn field(&self, ty: u8) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.ty == ty)
            .map(|f| f.data.as_slice())
    }

    /// A reply carrying only a result code.
    pub fn reply(result_code: u8, generation: u32, void_time: u32, ops: Vec<Op>) -> Message {
        Message {
            header: MsgHeader {
                result_code,
                generation,
                record_ttl: void_time,
                ..MsgHeader::default()
            },
            fields: Vec::new(),
            ops,
        }
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
    fn parses_a_captured_apply_request() {
        // The official client's `counter.increment("count", 5)` from the capture.
        let frame = unhex(
            "02030000000000691600010000000000000000000000000003e800060000000000050074657374000000050164656d6f00000015048182edcb3e87c46f19442d648bea176a8f05c019000000081e636f756e7465720000000a1f696e6372656d656e740000000a2092a603636f756e7405",
        );
        let msg = Message::parse(&frame[8..]).unwrap();
        assert_eq!(msg.header.info2, INFO2_WRITE);
        assert_eq!(msg.header.transaction_ttl, 1000);
        assert_eq!(msg.field(FIELD_NAMESPACE), Some(&b"test"[..]));
        assert_eq!(msg.field(FIELD_SET), Some(&b"demo"[..]));
        assert_eq!(msg.field(FIELD_DIGEST).unwrap().len(), 20);
        assert_eq!(msg.field(FIELD_UDF_PACKAGE), Some(&b"counter"[..]));
        assert_eq!(msg.field(FIELD_UDF_FUNCTION), Some(&b"increment"[..]));
        assert_eq!(
            msg.field(FIELD_UDF_ARGLIST),
            Some(&unhex("92a603636f756e7405")[..])
        );
        assert!(msg.ops.is_empty());
        assert_eq!(msg.encode(), frame[8..]);
    }

    #[test]
    fn encodes_the_captured_success_reply() {
        let reply = Message::reply(
            0,
            1,
            0,
            vec![Op {
                op: OP_READ,
                particle: 1,
                name: "SUCCESS".into(),
                value: 5i64.to_be_bytes().to_vec(),
            }],
        );
        let frame = crate::sandbox::server::frame::encode_frame(3, &reply.encode());
        assert_eq!(
            hex::encode(frame),
            "020300000000002d160000000000000000010000000000000000000000010000001301010007535543434553530000000000000005"
        );
    }

    #[test]
    fn parses_the_put_example_with_an_op() {
        let body = unhex("1600010000000000000000000000000003e800030001000000050074657374000000050164656d6f0000001504ec91192d4b7f8ce35d5d78d34bca65cbaaaac9600000000d0201000161 0000000000000001".replace(' ', "").as_str());
        let msg = Message::parse(&body).unwrap();
        assert_eq!(
            msg.ops,
            vec![Op {
                op: OP_WRITE,
                particle: 1,
                name: "a".into(),
                value: 1i64.to_be_bytes().to_vec()
            }]
        );
        assert_eq!(msg.encode(), body);
    }

    #[test]
    fn rejects_truncated_and_trailing_bytes() {
        let body = Message::reply(0, 1, 0, vec![]).encode();
        assert!(Message::parse(&body[..21]).is_err());
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(Message::parse(&longer), Err(MessageError::Trailing(1)));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::parse(&bytes);
        }

        #[test]
        fn arbitrary_tails_after_a_valid_header_never_panic(
            counts in any::<[u8; 4]>(),
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut body = vec![22u8; 1];
            body.extend_from_slice(&[0u8; 17]);
            body.extend_from_slice(&counts);
            body.extend(tail);
            let _ = Message::parse(&body);
        }

        #[test]
        fn encode_parse_round_trip(
            result in any::<u8>(), generation in any::<u32>(), ttl in any::<u32>(),
            fields in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
            ops in proptest::collection::vec((any::<u8>(), any::<u8>(), "[a-z]{0,15}", proptest::collection::vec(any::<u8>(), 0..40)), 0..5),
        ) {
            let msg = Message {
                header: MsgHeader { result_code: result, generation, record_ttl: ttl, ..MsgHeader::default() },
                fields: fields.into_iter().map(|(ty, data)| Field { ty, data }).collect(),
                ops: ops.into_iter().map(|(op, particle, name, value)| Op { op, particle, name, value }).collect(),
            };
            prop_assert_eq!(Message::parse(&msg.encode()).unwrap(), msg);
        }
    }
}

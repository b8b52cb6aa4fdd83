//! Reply frames of a query stream (`query-udfs.md` §3.1, §4.2, §4.3):
//! messages packed into proto frames that go out as they fill, so a slow
//! reader holds back the producer instead of growing a buffer.

use crate::sandbox::server::frame::{TYPE_MSG, encode_header};
use crate::sandbox::server::message::*;
use crate::sandbox::server::particle::to_particle;
use crate::sandbox::store::{Digest, Record};
use crate::sandbox::value::Value;

use super::request::Bins;

/// A frame is sent once it holds this many bytes (the server uses 1 MiB;
/// smaller keeps the sandbox's memory flat with a slow reader).
pub const CHUNK: usize = 128 << 10;
const FIELD_BVAL_ARRAY: u8 = 15;

/// Packs messages into frames and hands each full frame to `send`, which
/// answers false when the reader is gone.
pub struct ReplyWriter<'a> {
    buf: Vec<u8>,
    send: &'a mut dyn FnMut(Vec<u8>) -> bool,
    /// Bytes handed to `send` so far.
    pub sent: u64,
    gone: bool,
}

impl<'a> ReplyWriter<'a> {
    pub fn new(send: &'a mut dyn FnMut(Vec<u8>) -> bool) -> ReplyWriter<'a> {
        ReplyWriter {
            buf: Vec::new(),
            send,
            sent: 0,
            gone: false,
        }
    }

    /// Adds one message body; false once the reader is gone.
    pub fn push(&mut self, body: &[u8]) -> bool {
        if self.gone {
            return false;
        }
        if self.buf.is_empty() {
            self.buf.reserve(CHUNK.min(body.len() * 8).max(256) + 8);
            self.buf.extend_from_slice(&[0; 8]);
        }
        self.buf.extend_from_slice(body);
        if self.buf.len() >= CHUNK {
            return self.flush();
        }
        true
    }

    /// Appends a message written by `write` (which answers false to add
    /// nothing); false once the reader is gone.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>) -> bool) -> bool {
        if self.gone {
            return false;
        }
        if self.buf.is_empty() {
            self.buf.reserve(CHUNK + 8);
            self.buf.extend_from_slice(&[0; 8]);
        }
        if write(&mut self.buf) && self.buf.len() >= CHUNK {
            return self.flush();
        }
        true
    }

    /// Sends what is buffered as one frame.
    pub fn flush(&mut self) -> bool {
        if self.gone {
            return false;
        }
        if self.buf.len() <= 8 {
            return true;
        }
        let mut frame = std::mem::take(&mut self.buf);
        let header = encode_header(TYPE_MSG, frame.len() - 8);
        frame[..8].copy_from_slice(&header);
        self.sent += frame.len() as u64;
        if !(self.send)(frame) {
            self.gone = true;
        }
        !self.gone
    }

    /// Flushes, then ends the stream with its own LAST message.
    pub fn last(&mut self, result_code: u8) -> bool {
        if !self.flush() {
            return false;
        }
        self.push(&end_message(result_code)) && self.flush()
    }
}

/// The LAST message that ends a stream.
pub fn end_message(result_code: u8) -> Vec<u8> {
    let mut msg = Message::reply(result_code, 0, 0, Vec::new());
    msg.header.info3 = INFO3_LAST;
    msg.encode()
}

/// An error at job start: one message, no LAST (§1.1).
pub fn start_error(result_code: u8) -> Vec<u8> {
    Message::reply(result_code, 0, 0, Vec::new()).encode()
}

fn bin_op(name: &str, value: &Value) -> Op {
    let (particle, value) = to_particle(value);
    Op {
        op: OP_READ,
        particle,
        name: name.to_string(),
        value,
    }
}

/// A record of a basic query, or None when a selection leaves it no bin
/// (the server then does not send it).
pub fn record_message(
    ns: &str,
    digest: &Digest,
    record: &Record,
    bins: &Bins,
    bval: Option<u64>,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write_record(&mut out, ns, digest, record, bins, bval).then_some(out)
}

/// Appends a record message to `out` (false, appending nothing, when a
/// selection leaves it no bin). Written in place: a scan's cost per record.
pub fn write_record(
    out: &mut Vec<u8>,
    ns: &str,
    digest: &Digest,
    record: &Record,
    bins: &Bins,
    bval: Option<u64>,
) -> bool {
    let wanted = |name: &str| match bins {
        Bins::All => true,
        Bins::None => false,
        Bins::Some(names) => names.iter().any(|n| n == name),
    };
    let n_ops = record.bins.iter().filter(|(n, _)| wanted(n)).count();
    if n_ops == 0 && matches!(bins, Bins::Some(_)) {
        return false;
    }
    let key = record.key.as_ref().map(to_particle);
    let n_fields = 2
        + usize::from(record.set.is_some())
        + usize::from(key.is_some())
        + usize::from(bval.is_some());
    out.extend_from_slice(&[HEADER_SIZE as u8, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&u32::from(record.generation).to_be_bytes());
    out.extend_from_slice(&record.void_time.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(n_fields as u16).to_be_bytes());
    out.extend_from_slice(&(n_ops as u16).to_be_bytes());
    let field = |out: &mut Vec<u8>, ty: u8, parts: &[&[u8]]| {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        out.extend_from_slice(&(len as u32 + 1).to_be_bytes());
        out.push(ty);
        for p in parts {
            out.extend_from_slice(p);
        }
    };
    field(out, FIELD_NAMESPACE, &[ns.as_bytes()]);
    field(out, FIELD_DIGEST, &[digest]);
    if let Some(set) = &record.set {
        field(out, FIELD_SET, &[set.as_bytes()]);
    }
    if let Some((particle, bytes)) = &key {
        field(out, FIELD_KEY, &[&[*particle], bytes]);
    }
    if let Some(bval) = bval {
        field(out, FIELD_BVAL_ARRAY, &[&bval.to_le_bytes()]);
    }
    for (name, value) in record.bins.iter().filter(|(n, _)| wanted(n)) {
        let head = |out: &mut Vec<u8>, particle: u8, len: usize| {
            out.extend_from_slice(&((4 + name.len() + len) as u32).to_be_bytes());
            out.extend_from_slice(&[OP_READ, particle, 0, name.len() as u8]);
            out.extend_from_slice(name.as_bytes());
        };
        match value {
            // The common small values without a temporary buffer.
            Value::Int(i) => {
                head(out, 1, 8);
                out.extend_from_slice(&i.to_be_bytes());
            }
            Value::Str(text) => {
                head(out, 3, text.len());
                out.extend_from_slice(text);
            }
            other => {
                let (particle, bytes) = to_particle(other);
                head(out, particle, bytes.len());
                out.extend_from_slice(&bytes);
            }
        }
    }
    true
}

/// One value of an aggregation: bin `SUCCESS`.
pub fn value_message(value: &Value) -> Vec<u8> {
    Message::reply(0, 0, 0, vec![bin_op("SUCCESS", value)]).encode()
}

/// A stream UDF's failure: bin `FAILURE` with the text.
pub fn failure_message(text: &str) -> Vec<u8> {
    Message::reply(0, 0, 0, vec![bin_op("FAILURE", &Value::Str(text.into()))]).encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::server::frame::encode_frame;

    #[test]
    fn frames_match_the_captures() {
        assert_eq!(
            hex::encode(encode_frame(TYPE_MSG, &end_message(0))),
            "020300000000001616000001000000000000000000000000000000000000"
        );
        assert_eq!(
            hex::encode(encode_frame(TYPE_MSG, &end_message(1))),
            "020300000000001616000001000100000000000000000000000000000000"
        );
        assert_eq!(
            hex::encode(encode_frame(TYPE_MSG, &start_error(201))),
            format!("{}{}", "02030000000000161600000000c9", "00".repeat(16))
        );
        assert_eq!(
            hex::encode(encode_frame(
                TYPE_MSG,
                &failure_message("UDF: Execution Error 2 : function not found")
            )),
            "02030000000000501600000000000000000000000000000000000000000100000036010300074641494c5552455544463a20457865637574696f6e204572726f722032203a2066756e6374696f6e206e6f7420666f756e64"
        );
        assert_eq!(
            hex::encode(encode_frame(TYPE_MSG, &value_message(&Value::Int(1)))),
            "020300000000002d160000000000000000000000000000000000000000010000001301010007535543434553530000000000000001"
        );
    }

    #[test]
    fn records_carry_set_key_and_bval() {
        let digest: Digest = hex::decode("420874ebe63e378260f4c49fd3f289ebab0aeb08")
            .unwrap()
            .try_into()
            .unwrap();
        let record = Record {
            bins: vec![("n".into(), Value::Int(2))],
            generation: 1,
            void_time: 0,
            last_update_ms: 0,
            set: Some("wc".into()),
            key: None,
        };
        let body = record_message("test", &digest, &record, &Bins::All, Some(2)).unwrap();
        assert_eq!(
            hex::encode(encode_frame(TYPE_MSG, &body)),
            "020300000000005d160000000000000000010000000000000000000400010000000500746573740000001504420874ebe63e378260f4c49fd3f289ebab0aeb0800000003017763000000090f02000000000000000000000d010100016e0000000000000002"
        );
        assert!(
            record_message(
                "test",
                &digest,
                &record,
                &Bins::Some(vec!["x".into()]),
                None
            )
            .is_none()
        );
        let bare = record_message("test", &digest, &record, &Bins::None, None).unwrap();
        assert_eq!(Message::parse(&bare).unwrap().ops.len(), 0);
    }

    #[test]
    fn frames_fill_up_then_go_out() {
        let mut frames = Vec::new();
        let mut send = |f: Vec<u8>| {
            frames.push(f);
            true
        };
        let mut w = ReplyWriter::new(&mut send);
        let body = vec![7u8; 1000];
        // One more than fills a frame, then one that waits for the end.
        for _ in 0..(CHUNK / 1000 + 2) {
            assert!(w.push(&body));
        }
        assert!(w.last(0));
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].len(), 8 + (CHUNK / 1000 + 1) * 1000);
        assert_eq!(frames[2], encode_frame(TYPE_MSG, &end_message(0)));
    }

    #[test]
    fn a_gone_reader_stops_the_writer() {
        let mut send = |_: Vec<u8>| false;
        let mut w = ReplyWriter::new(&mut send);
        assert!(w.push(&[1]));
        assert!(!w.flush());
        assert!(!w.push(&[1]));
    }
}

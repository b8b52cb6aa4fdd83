//! Raw wire frames for tests that speak to the sandbox without a client.
#![allow(dead_code)] // each test target uses part of the shared support

use asudf::sandbox::server::frame::{TYPE_MSG, encode_frame};
use asudf::sandbox::server::message::{Field, Message, MsgHeader};

/// A query of a whole set in namespace `test` as the Python client sends
/// it (the whole partition space), with `extra` fields and `info2`.
pub fn query_body(set: &str, trid: u64, extra: Vec<Field>, info2: u8) -> Vec<u8> {
    let mut fields = vec![
        Field {
            ty: 0,
            data: b"test".to_vec(),
        },
        Field {
            ty: 1,
            data: set.as_bytes().to_vec(),
        },
        Field {
            ty: 9,
            data: 30_000u32.to_be_bytes().to_vec(),
        },
        Field {
            ty: 7,
            data: trid.to_be_bytes().to_vec(),
        },
    ];
    fields.extend(extra);
    let msg = Message {
        header: MsgHeader {
            info1: 1,
            info2,
            info3: 4,
            ..MsgHeader::default()
        },
        fields,
        ops: vec![],
    };
    encode_frame(TYPE_MSG, &msg.encode())
}

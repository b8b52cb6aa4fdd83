//! Admin messages (type 2): login and session authentication.
//!
//! Without a configured user every admin command answers 52 (security not
//! enabled), which clients take as "no login needed". With one, LOGIN checks
//! the user and the bcrypt credential every client computes with the fixed
//! Aerospike salt, and answers a session token that AUTHENTICATE accepts.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::sandbox::server::frame::{TYPE_ADMIN, encode_frame};

pub const AUTHENTICATE: u8 = 0;
pub const LOGIN: u8 = 20;

pub const FIELD_USER: u8 = 0;
pub const FIELD_CREDENTIAL: u8 = 3;
pub const FIELD_SESSION_TOKEN: u8 = 5;
pub const FIELD_SESSION_TTL: u8 = 6;

pub const OK: u8 = 0;
pub const SECURITY_NOT_SUPPORTED: u8 = 51;
pub const SECURITY_NOT_ENABLED: u8 = 52;
pub const INVALID_USER: u8 = 60;
pub const INVALID_CREDENTIAL: u8 = 65;
pub const NOT_AUTHENTICATED: u8 = 80;

/// Session lifetime announced to clients.
const SESSION_TTL_SECS: u32 = 24 * 3600;

/// The bcrypt salt all Aerospike clients hash passwords with.
const CLIENT_SALT: [u8; 16] = [
    244, 107, 11, 190, 207, 254, 141, 27, 6, 103, 216, 79, 109, 193, 216, 169,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed admin message")]
pub struct AdminError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminRequest {
    pub command: u8,
    pub fields: Vec<(u8, Vec<u8>)>,
}

impl AdminRequest {
    /// Parses a body: 16-byte header, then `u32 len | u8 id | data` fields.
    pub fn parse(body: &[u8]) -> Result<AdminRequest, AdminError> {
        if body.len() < 16 {
            return Err(AdminError);
        }
        let command = body[2];
        let count = body[3];
        let mut rest = &body[16..];
        let mut fields = Vec::new();
        for _ in 0..count {
            if rest.len() < 5 {
                return Err(AdminError);
            }
            let len = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            if len == 0 || rest.len() - 4 < len {
                return Err(AdminError);
            }
            fields.push((rest[4], rest[5..4 + len].to_vec()));
            rest = &rest[4 + len..];
        }
        Ok(AdminRequest { command, fields })
    }

    fn field(&self, id: u8) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, d)| d.as_slice())
    }
}

/// A whole reply frame: header with the result code, then fields.
pub fn reply(result: u8, fields: &[(u8, &[u8])]) -> Vec<u8> {
    let mut body = vec![0u8; 16];
    body[1] = result;
    body[3] = fields.len() as u8;
    for (id, data) in fields {
        body.extend_from_slice(&(data.len() as u32 + 1).to_be_bytes());
        body.push(*id);
        body.extend_from_slice(data);
    }
    encode_frame(TYPE_ADMIN, &body)
}

/// The one user a sandbox can require, and the sessions it handed out.
#[derive(Clone)]
pub struct Auth {
    user: String,
    credential: String,
    sessions: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Auth {
    pub fn new(user: &str, password: &str) -> std::io::Result<Auth> {
        Ok(Auth {
            user: user.to_string(),
            credential: client_credential(password)?,
            sessions: Arc::default(),
        })
    }

    /// Handles one admin request; returns the reply and whether the connection is now authenticated.
    pub fn handle(&self, req: &AdminRequest) -> (Vec<u8>, bool) {
        let user_ok = req.field(FIELD_USER) == Some(self.user.as_bytes());
        match req.command {
            LOGIN => {
                if !user_ok {
                    return (reply(INVALID_USER, &[]), false);
                }
                if req.field(FIELD_CREDENTIAL) != Some(self.credential.as_bytes()) {
                    return (reply(INVALID_CREDENTIAL, &[]), false);
                }
                let token = new_token();
                self.sessions.lock().insert(token.clone());
                let ttl = SESSION_TTL_SECS.to_be_bytes();
                let fields: [(u8, &[u8]); 2] =
                    [(FIELD_SESSION_TOKEN, &token), (FIELD_SESSION_TTL, &ttl)];
                (reply(OK, &fields), true)
            }
            AUTHENTICATE => {
                let known = req
                    .field(FIELD_SESSION_TOKEN)
                    .is_some_and(|t| self.sessions.lock().contains(t));
                if user_ok && known {
                    (reply(OK, &[]), true)
                } else {
                    (reply(INVALID_CREDENTIAL, &[]), false)
                }
            }
            // User and role administration is not offered by the sandbox.
            _ => (reply(SECURITY_NOT_SUPPORTED, &[]), false),
        }
    }
}

/// What a client sends as CREDENTIAL for this password.
pub fn client_credential(password: &str) -> std::io::Result<String> {
    bcrypt::hash_with_salt(password, 10, CLIENT_SALT)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// 32 unpredictable bytes: SipHash keyed from the OS random source, over a counter and the clock.
fn new_token() -> Vec<u8> {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut out = Vec::with_capacity(32);
    for i in 0..4u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        out.extend_from_slice(&h.finish().to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(command: u8, fields: &[(u8, &[u8])]) -> AdminRequest {
        let frame = reply(0, fields);
        let mut body = frame[8..].to_vec();
        body[2] = command;
        AdminRequest::parse(&body).unwrap()
    }

    #[test]
    fn credential_matches_the_client_hash_format() {
        let c = client_credential("secret").unwrap();
        assert!(c.starts_with("$2a$10$7EqJtq98hPqEX7fNZaFWoO"), "{c}");
    }

    #[test]
    fn login_then_authenticate_with_the_token() {
        let auth = Auth::new("admin", "pw").unwrap();
        let cred = client_credential("pw").unwrap();
        let (frame, ok) = auth.handle(&request(
            LOGIN,
            &[(FIELD_USER, b"admin"), (FIELD_CREDENTIAL, cred.as_bytes())],
        ));
        assert!(ok);
        assert_eq!(frame[9], OK);
        let fields = AdminRequest::parse(&frame[8..]).unwrap().fields;
        let token = fields
            .iter()
            .find(|(id, _)| *id == FIELD_SESSION_TOKEN)
            .unwrap()
            .1
            .clone();
        assert_eq!(token.len(), 32);
        let (frame, ok) = auth.handle(&request(
            AUTHENTICATE,
            &[(FIELD_USER, b"admin"), (FIELD_SESSION_TOKEN, &token)],
        ));
        assert!(ok && frame[9] == OK);
        let (frame, ok) = auth.handle(&request(
            AUTHENTICATE,
            &[(FIELD_USER, b"admin"), (FIELD_SESSION_TOKEN, b"forged")],
        ));
        assert!(!ok && frame[9] == INVALID_CREDENTIAL);
    }

    #[test]
    fn wrong_password_and_user_are_refused() {
        let auth = Auth::new("admin", "pw").unwrap();
        let wrong = client_credential("nope").unwrap();
        let (frame, ok) = auth.handle(&request(
            LOGIN,
            &[(FIELD_USER, b"admin"), (FIELD_CREDENTIAL, wrong.as_bytes())],
        ));
        assert!(!ok && frame[9] == INVALID_CREDENTIAL);
        let right = client_credential("pw").unwrap();
        let (frame, ok) = auth.handle(&request(
            LOGIN,
            &[(FIELD_USER, b"root"), (FIELD_CREDENTIAL, right.as_bytes())],
        ));
        assert!(!ok && frame[9] == INVALID_USER);
    }

    proptest! {
        #[test]
        fn arbitrary_admin_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = AdminRequest::parse(&bytes);
        }
    }
}

//! The embedded sandbox: an Aerospike-compatible server in this process.
//!
//! - [`value`]: the server-side data model (what bins, arguments and results hold).
//! - [`store`]: namespaces → records by digest, persisted to a directory when given.
//! - [`engine`]: the Lua 5.4 UDF runtime, the module registry and the
//!   [`Sandbox`] facade that the wire server and tests call.
//! - `server`: the wire protocol listener.
//! - [`expr`]: filter expressions (field 43), evaluated per record.

pub mod engine;
pub mod expr;
pub mod jobs;
pub mod local;
pub mod query;
pub mod server;
pub mod sindex;
pub mod store;
pub mod value;

pub use engine::{
    ApplyOutcome, ApplyRequest, CallLog, LogLevel, LogLine, LuaLibs, Sandbox, SandboxConfig,
    UdfFailure,
};
pub use store::{Digest, Record, Store};
pub use value::Value;

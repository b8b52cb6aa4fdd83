//! asudf: an interactive console for Aerospike Lua UDFs, with an embedded
//! Aerospike-compatible sandbox server.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod lint;
pub mod samples;
pub mod sandbox;
pub mod testing;
pub mod text;
pub mod tui;
pub mod value;
pub mod where_clause;

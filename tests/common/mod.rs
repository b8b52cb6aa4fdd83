//! Shared test support.

pub mod cases;

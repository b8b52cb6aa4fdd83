//! Shared test support.

pub mod cases;
pub mod served;

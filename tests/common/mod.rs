//! Shared test support.

pub mod cases;
pub mod console;
pub mod frames;
pub mod live;
pub mod process;
pub mod served;
pub mod tmux;

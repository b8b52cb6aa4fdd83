//! The four panes: each holds its state and draws itself.

pub mod apply;
pub mod editor;
pub mod indexes;
pub mod jobs;
pub mod modules;
pub mod results;
pub mod runs;
pub mod samples;

//! Everything that can happen to the console: the reducer's input.

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{KeyEvent, MouseEvent};

use crate::client::Event;
use crate::tui::save::{SaveError, Saving};

/// A request's tag: the console's own id for a request it asked to send.
pub type Tag = u64;

// A client answer is the big variant; there is one per request, moved a
// few times, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// Drives spinners, elapsed times, debounced recovery writes and periodic refresh.
    Tick(Instant),
    /// A client event, its request id already mapped to the console's tag.
    Client(Event),
    FileLoaded {
        path: PathBuf,
        result: Result<String, String>,
    },
    FileSaved {
        path: PathBuf,
        /// As the `Effect::SaveFile` gave it.
        saving: Saving,
        result: Result<(), SaveError>,
    },
    /// Whether something is at `path`, as `Effect::CheckExists` asked.
    FileChecked {
        path: PathBuf,
        exists: bool,
    },
    /// The console must end now, asking nothing (a signal, or its terminal
    /// went away); an unsaved buffer's recovery copy is written first.
    Ended,
    /// A lint asked for by `Effect::Lint` is done.
    Linted {
        seq: u64,
        diagnostics: Vec<crate::lint::Diagnostic>,
    },
}

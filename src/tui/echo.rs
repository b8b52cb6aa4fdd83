//! A character typed in the editor shows the moment it is read, before the
//! console handles it and draws its frame (as "zero-latency typing" in
//! some editors): after each frame, while the console waits, it offers the
//! terminal's reader a plan for where a typed character would show. The
//! reader, woken by the key on its own thread, writes the character and
//! the cells it moves at once (a read and a write), then passes the key on.
//! The frame after draws the row as the edit leaves it, colours and all.
//!
//! The plan is withdrawn whenever the console wakes, so the reader writes
//! only while the console writes nothing; the console then takes what was
//! written into the screen it diffs against ([`Screen::echoed`]).
//!
//! [`Screen::echoed`]: crate::tui::screen::Screen::echoed

use std::io::Write;
use std::sync::{Mutex, MutexGuard};

use ratatui::layout::Position;

/// Where a typed character shows: at `at` (the cursor), the cells up to
/// `end` moved a column right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub at: Position,
    pub end: u16,
    /// The buffer row typed in.
    pub row: usize,
}

/// The terminal's bytes for a character typed at `echo`: `before`, the
/// character, `after`; for a terminal of `size` (columns, rows) only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoPlan {
    pub echo: Echo,
    size: (u16, u16),
    before: Vec<u8>,
    after: Vec<u8>,
}

impl EchoPlan {
    /// From the bytes drawn with `placeholder` where the character goes.
    pub fn new(echo: Echo, size: (u16, u16), bytes: &[u8], placeholder: u8) -> Option<EchoPlan> {
        let split = bytes.iter().position(|&b| b == placeholder)?;
        Some(EchoPlan {
            echo,
            size,
            before: bytes[..split].to_vec(),
            after: bytes[split + 1..].to_vec(),
        })
    }

    /// The bytes that show `typed` (one byte of printable ASCII).
    pub fn bytes(&self, typed: u8) -> Vec<u8> {
        [&self.before[..], &[typed], &self.after[..]].concat()
    }
}

/// The plan on offer and what the reader wrote by it, shared by the
/// console's loop and the terminal's reader.
#[derive(Debug, Default)]
pub struct Echoes(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    plan: Option<EchoPlan>,
    written: Option<(Echo, char)>,
}

impl Echoes {
    fn state(&self) -> MutexGuard<'_, State> {
        // The state is whole after any panic (plain assignments).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers `plan` until the console next wakes.
    pub fn offer(&self, plan: Option<EchoPlan>) {
        self.state().plan = plan;
    }

    /// Takes the plan back (the console is about to handle something and
    /// may write); gives what the reader wrote by it, if it did.
    pub fn withdraw(&self) -> Option<(Echo, char)> {
        let mut state = self.state();
        state.plan = None;
        state.written.take()
    }

    /// On the reader's thread: writes `typed` by the plan on offer, if
    /// there is one, made for a terminal of the `size` it has now (a resize
    /// the console has not yet drawn moves everything), and `typed` is a
    /// printable ASCII character. True when written. The plan is used up:
    /// one character a wait.
    /// `size` is asked only when a plan is on offer.
    pub fn write(
        &self,
        typed: u8,
        size: impl FnOnce() -> Option<(u16, u16)>,
        out: &mut impl Write,
    ) -> bool {
        if !(typed.is_ascii_graphic() || typed == b' ') {
            return false;
        }
        let mut state = self.state();
        let Some(plan) = state.plan.take() else {
            return false;
        };
        if size() != Some(plan.size) {
            return false;
        }
        // Counted as written even when the write fails part way: the frame
        // after draws the row whole either way.
        let _ = out.write_all(&plan.bytes(typed)).and_then(|_| out.flush());
        state.written = Some((plan.echo, typed as char));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: (u16, u16) = (80, 24);

    fn plan() -> EchoPlan {
        let echo = Echo {
            at: Position::new(3, 1),
            end: 9,
            row: 0,
        };
        EchoPlan::new(echo, SIZE, b"<move>\0bc<cursor>", 0).unwrap()
    }

    #[test]
    fn a_plan_writes_the_typed_character_where_its_placeholder_was() {
        assert_eq!(plan().bytes(b'x'), b"<move>xbc<cursor>");
        assert_eq!(EchoPlan::new(plan().echo, SIZE, b"no placeholder", 0), None);
    }

    #[test]
    fn a_plan_is_written_once_and_only_while_offered() {
        let echoes = Echoes::default();
        let mut out = Vec::new();
        assert!(
            !echoes.write(b'x', || Some(SIZE), &mut out),
            "nothing offered"
        );
        echoes.offer(Some(plan()));
        assert!(
            !echoes.write(b'\t', || Some(SIZE), &mut out),
            "not printable"
        );
        assert!(
            !echoes.write(0x1b, || Some(SIZE), &mut out),
            "not printable"
        );
        assert!(
            !echoes.write(b'x', || Some((80, 25)), &mut out),
            "another size"
        );
        // A plan for another size is stale: gone until the next offer.
        assert!(!echoes.write(b'x', || Some(SIZE), &mut out), "used up");
        echoes.offer(Some(plan()));
        assert!(echoes.write(b'x', || Some(SIZE), &mut out));
        assert!(!echoes.write(b'y', || Some(SIZE), &mut out), "used up");
        assert_eq!(out, b"<move>xbc<cursor>");
        assert_eq!(echoes.withdraw(), Some((plan().echo, 'x')));
        assert_eq!(echoes.withdraw(), None, "taken");
        echoes.offer(Some(plan()));
        assert_eq!(echoes.withdraw(), None, "offered, not written");
        assert!(!echoes.write(b'x', || Some(SIZE), &mut out), "withdrawn");
    }
}

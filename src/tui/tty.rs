//! Terminal input, read and parsed on the console's own thread.
//!
//! The runtime's I/O driver, on the console's thread, watches the terminal
//! (and SIGWINCH) for readiness; a key is then read, handled and drawn on
//! one thread, as in vim. Each readiness reads everything the terminal has:
//! the runtime's readiness is edge-triggered, so bytes left unread (a paste
//! of more than one read without bracketed paste) would otherwise wait for
//! the next key. crossterm's own reader reads one 1 KiB chunk per readiness,
//! which is why the console reads and parses here ([`Decoder`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use crossterm::event::Event;
use futures::Stream;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The terminal's events as a stream; must be made inside a runtime.
pub struct TtyInput {
    tty: AsyncFd<OwnedFd>,
    resized: Signal,
    decoder: Decoder,
    events: VecDeque<Event>,
}

impl TtyInput {
    pub fn new() -> io::Result<TtyInput> {
        // Standard input when it is the terminal, else /dev/tty (as the
        // raw mode crossterm sets). A copy of the descriptor is watched.
        let tty: OwnedFd = if io::stdin().is_terminal() {
            io::stdin().as_fd().try_clone_to_owned()?
        } else {
            File::open("/dev/tty")?.into()
        };
        // SAFETY: the AsyncFd owns the descriptor, which stays open and the
        // same until the AsyncFd is dropped.
        let tty = unsafe { AsyncFd::register_with_interest(tty, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(TtyInput {
            tty,
            resized: signal(SignalKind::window_change())?,
            decoder: Decoder::default(),
            events: VecDeque::new(),
        })
    }
}

impl Stream for TtyInput {
    type Item = io::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.events.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Poll::Ready(signal) = this.resized.poll_recv(cx) {
                if signal.is_none() {
                    return Poll::Ready(None);
                }
                match crossterm::terminal::size() {
                    Ok((width, height)) => this.events.push_back(Event::Resize(width, height)),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
                continue;
            }
            let mut guard = match this.tty.poll_read_ready(cx) {
                Poll::Ready(Ok(guard)) => guard,
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e))),
                Poll::Pending => return Poll::Pending,
            };
            match read_available(guard.get_inner().as_raw_fd()) {
                // Nothing there: readiness seen before this point is spent
                // (tokio keeps any newer).
                Ok(Some(bytes)) if bytes.is_empty() => guard.clear_ready(),
                Ok(Some(bytes)) => this.decoder.feed(&bytes, &mut this.events),
                // The terminal is gone.
                Ok(None) => return Poll::Ready(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// Everything the terminal has to read now, without blocking (the
/// descriptor stays blocking: it is shared with the shell's standard input);
/// `None` at its end.
fn read_available(fd: std::os::fd::RawFd) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    loop {
        let mut waiting: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int to the pointer given.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut waiting) } < 0 {
            return Err(io::Error::last_os_error());
        }
        if waiting <= 0 {
            return Ok(Some(bytes));
        }
        let start = bytes.len();
        bytes.resize(start + waiting as usize, 0);
        // SAFETY: reads at most `waiting` bytes into the space just made.
        let read = unsafe { libc::read(fd, bytes[start..].as_mut_ptr().cast(), waiting as usize) };
        if read < 0 {
            return Err(io::Error::last_os_error());
        }
        if read == 0 {
            return Ok(None);
        }
        bytes.truncate(start + read as usize);
    }
}

/// Turns the terminal's bytes into events: keys, mouse, pastes. A sequence
/// split between two reads is completed by the second.
#[derive(Default)]
pub struct Decoder {
    /// The start of a sequence not yet complete.
    partial: Vec<u8>,
}

impl Decoder {
    /// Parses `bytes`, everything there was to read, and appends the events
    /// they complete.
    pub fn feed(&mut self, bytes: &[u8], events: &mut VecDeque<Event>) {
        for (i, &byte) in bytes.iter().enumerate() {
            self.partial.push(byte);
            // An Esc with bytes right behind it starts a sequence; one that
            // ends what the terminal sent is the Esc key.
            if self.partial == [0x1b] && i + 1 < bytes.len() {
                continue;
            }
            match terminput::Event::parse_from(&self.partial) {
                Ok(None) => {}
                Ok(Some(event)) => {
                    self.partial.clear();
                    // Events the console has no use for (such as media
                    // keys) have no crossterm form: dropped.
                    if let Ok(event) = terminput_crossterm::to_crossterm(event) {
                        events.push_back(event);
                    }
                }
                // Not a sequence the console knows: dropped, and what
                // follows is read afresh.
                Err(_) => self.partial.clear(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn decode(reads: &[&[u8]]) -> Vec<Event> {
        let mut decoder = Decoder::default();
        let mut events = VecDeque::new();
        for read in reads {
            decoder.feed(read, &mut events);
        }
        events.into()
    }

    fn key(code: KeyCode) -> Event {
        Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn keys_and_sequences_in_one_read_are_all_events() {
        assert_eq!(
            decode(&[b"ab\x1b[A\r\x7f"]),
            [
                key(KeyCode::Char('a')),
                key(KeyCode::Char('b')),
                key(KeyCode::Up),
                key(KeyCode::Enter),
                key(KeyCode::Backspace)
            ]
        );
    }

    #[test]
    fn a_sequence_split_between_reads_is_one_event() {
        assert_eq!(
            decode(&[b"\x1b[1;5", b"C"]),
            [Event::Key(KeyEvent::new(
                KeyCode::Right,
                KeyModifiers::CONTROL
            ))]
        );
        assert_eq!(decode(&[b"\xc3", b"\xa9"]), [key(KeyCode::Char('é'))]);
        assert_eq!(
            decode(&[b"\x1b[200~one\rtw", b"o\x1b[201~x"]),
            [Event::Paste("one\rtwo".into()), key(KeyCode::Char('x'))]
        );
    }

    #[test]
    fn an_esc_ending_a_read_is_the_esc_key() {
        assert_eq!(decode(&[b"\x1b"]), [key(KeyCode::Esc)]);
        assert_eq!(
            decode(&[b"\x1bx"]),
            [Event::Key(KeyEvent::new(
                KeyCode::Char('x'),
                KeyModifiers::ALT
            ))]
        );
    }

    #[test]
    fn an_unknown_sequence_is_dropped_and_what_follows_kept() {
        assert_eq!(decode(&[b"\x1b[?1;2c", b"q"]), [key(KeyCode::Char('q'))]);
    }

    /// More than crossterm's one 1 KiB read, in one read: every key comes
    /// out (the console's reader reads all there is, see [`read_available`]).
    #[test]
    fn a_long_unbracketed_paste_is_every_key() {
        let text = "x".repeat(3000);
        let events = decode(&[text.as_bytes()]);
        assert_eq!(events.len(), 3000);
        assert!(events.iter().all(|e| *e == key(KeyCode::Char('x'))));
    }
}

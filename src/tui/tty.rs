//! Terminal input, read and parsed on a thread of its own.
//!
//! The reader blocks in `poll` on the terminal, so a key wakes it directly
//! (not through the runtime's I/O driver and a task's wake-up), and it can
//! show a typed character at once by the plan the console offers
//! ([`echo`](crate::tui::echo)). It passes the events on to the console's
//! loop, which takes the window's new sizes (SIGWINCH) here too. Each
//! wake-up reads everything the terminal has: crossterm's own reader reads
//! one 1 KiB chunk at a time, which is why the console reads and parses
//! here ([`Decoder`]).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use futures::Stream;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::tui::echo::Echoes;

/// The terminal's events as a stream; must be made inside a runtime.
pub struct TtyInput {
    events: UnboundedReceiver<io::Result<Event>>,
    resized: Signal,
    /// Closed to stop the reader.
    stop: Option<std::io::PipeWriter>,
    reader: Option<JoinHandle<()>>,
}

impl TtyInput {
    /// Starts the reader, which writes typed characters by `echoes`.
    pub fn new(echoes: Arc<Echoes>) -> io::Result<TtyInput> {
        // Standard input when it is the terminal, else /dev/tty (as the
        // raw mode crossterm sets). The reader reads a copy of it.
        let tty: OwnedFd = if io::stdin().is_terminal() {
            io::stdin().as_fd().try_clone_to_owned()?
        } else {
            File::open("/dev/tty")?.into()
        };
        let (stopped, stop) = std::io::pipe()?;
        let (sender, events) = unbounded_channel();
        let reader = std::thread::Builder::new()
            .name("terminal".into())
            .spawn(move || read_terminal(&tty, &stopped, &echoes, &sender))?;
        Ok(TtyInput {
            events,
            resized: signal(SignalKind::window_change())?,
            stop: Some(stop),
            reader: Some(reader),
        })
    }
}

impl Drop for TtyInput {
    /// Stops the reader before the console gives the terminal back, so it
    /// reads no key meant for what runs after.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Stream for TtyInput {
    type Item = io::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Poll::Ready(signal) = this.resized.poll_recv(cx) {
            return Poll::Ready(signal.map(|()| {
                crossterm::terminal::size().map(|(width, height)| Event::Resize(width, height))
            }));
        }
        // `None` when the reader ended: the terminal is gone.
        this.events.poll_recv(cx)
    }
}

/// The terminal's columns and rows.
fn window_size(tty: &OwnedFd) -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer given.
    (unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } == 0)
        .then_some((size.ws_col, size.ws_row))
}

/// The reader's loop: waits for the terminal (or `stopped` to close),
/// reads and parses what it has, shows a lone typed character by the plan
/// on offer, and sends the events on. Ends with the terminal, the console
/// or `stopped`.
fn read_terminal(
    tty: &OwnedFd,
    stopped: &std::io::PipeReader,
    echoes: &Echoes,
    events: &UnboundedSender<io::Result<Event>>,
) {
    let mut decoder = Decoder::default();
    let mut parsed = VecDeque::new();
    loop {
        let mut fds = [tty.as_raw_fd(), stopped.as_raw_fd()].map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: poll reads and writes the two entries of the array.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let _ = events.send(Err(error));
            return;
        }
        if fds[1].revents != 0 {
            return;
        }
        let bytes = match read_available(tty.as_raw_fd()) {
            Ok(Some(bytes)) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = events.send(Err(e));
                return;
            }
            Ok(None) => return,
        };
        if bytes.is_empty() {
            // Readable with nothing to read: hung up.
            if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                return;
            }
            continue;
        }
        let whole = decoder.partial.is_empty();
        decoder.feed(&bytes, &mut parsed);
        // One key alone, not the end of a sequence begun earlier.
        if let (&[typed], true) = (&bytes[..], whole)
            && parsed.len() == 1
            && matches!(parsed[0], Event::Key(KeyEvent { code: KeyCode::Char(c), modifiers, .. })
                if c == typed as char && (modifiers - KeyModifiers::SHIFT).is_empty())
        {
            echoes.write(typed, || window_size(tty), &mut io::stdout().lock());
        }
        for event in parsed.drain(..) {
            if events.send(Ok(event)).is_err() {
                return;
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

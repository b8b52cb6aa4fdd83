//! Terminal input, read on the console's own thread.
//!
//! crossterm's `EventStream` waits for input on a thread of its own and
//! wakes the console's thread for each key: two thread hops before a key is
//! handled. Here the runtime's I/O driver, on the console's thread, watches
//! the terminal (and SIGWINCH) for readiness, and crossterm's reader parses
//! what is there without blocking, so a key is read, handled and drawn on
//! one thread, as in vim.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crossterm::event::Event;
use futures::Stream;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The terminal's events as a stream; must be made inside a runtime.
pub struct TtyInput {
    readable: AsyncFd<OwnedFd>,
    /// crossterm turns SIGWINCH into a resize event in its reader; this only
    /// wakes the stream so that the reader is asked.
    resized: Signal,
}

impl TtyInput {
    pub fn new() -> io::Result<TtyInput> {
        // The terminal crossterm reads: standard input when it is one,
        // else /dev/tty. A copy of the descriptor is watched.
        let tty: OwnedFd = if io::stdin().is_terminal() {
            io::stdin().as_fd().try_clone_to_owned()?
        } else {
            File::open("/dev/tty")?.into()
        };
        // SAFETY: the AsyncFd owns the descriptor, which stays open and the
        // same until the AsyncFd is dropped.
        let readable = unsafe { AsyncFd::register_with_interest(tty, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(TtyInput {
            readable,
            resized: signal(SignalKind::window_change())?,
        })
    }
}

impl Stream for TtyInput {
    type Item = io::Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            // What crossterm has parsed already, or can read now.
            match crossterm::event::poll(Duration::ZERO) {
                Ok(true) => return Poll::Ready(Some(crossterm::event::read())),
                Ok(false) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            let mut woken = false;
            if let Poll::Ready(ready) = self.readable.poll_read_ready(cx) {
                match ready {
                    // Nothing was there to read just now: readiness seen
                    // before this point is spent (tokio keeps any newer).
                    Ok(mut guard) => guard.clear_ready(),
                    Err(e) => return Poll::Ready(Some(Err(e))),
                }
                woken = true;
            }
            if let Poll::Ready(signal) = self.resized.poll_recv(cx) {
                if signal.is_none() {
                    return Poll::Ready(None);
                }
                woken = true;
            }
            if !woken {
                return Poll::Pending;
            }
        }
    }
}

//! A header timeout for every request of a keep-alive connection, not just its first.
//!
//! actix times the headers of a connection's first request only (`HEADER_READ_TIMEOUT`). On
//! a keep-alive connection, the first byte of the next request stops the keep-alive timer and
//! nothing times the rest: a client that then sends its headers a byte at a time holds the
//! connection, and a worker's share of memory, forever.
//!
//! [`HeadClock`] is shared by the connection ([`super::linger::Lingering`] reads through it)
//! and the body middleware (which says when a request has been parsed and when it is done).
//! Bytes that arrive while no request is being served, after the first one, start the clock;
//! the middleware seeing the request stops it. If it runs out first, the connection reads
//! end-of-stream: actix closes it (with the lingering close). HTTP/1.1 only: HTTP/2 sends
//! frames (pings, window updates) between requests, and the h2 codec bounds its own framing.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Context;
use std::time::Duration;

/// Per-connection request bookkeeping (one worker thread: `Rc` and `Cell`).
#[derive(Clone, Default)]
pub struct HeadClock(Rc<State>);

#[derive(Default)]
struct State {
    /// Requests the middleware is serving now.
    in_flight: Cell<usize>,
    /// Requests served to the end on this connection.
    served: Cell<usize>,
    /// Bytes of a next request have arrived and its headers are not parsed yet.
    head_pending: Cell<bool>,
}

impl HeadClock {
    /// The middleware has a parsed request: its headers are complete.
    pub fn request_started(&self) {
        self.0.in_flight.set(self.0.in_flight.get() + 1);
        self.0.head_pending.set(false);
    }

    /// The middleware is done with a request.
    pub fn request_finished(&self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
        self.0.served.set(self.0.served.get() + 1);
    }

    /// Bytes arrived: between requests (after the first) they begin a new request's headers.
    fn bytes_read(&self) {
        if self.0.in_flight.get() == 0 && self.0.served.get() > 0 {
            self.0.head_pending.set(true);
        }
    }
}

/// The connection's side: notes reads and says when the pending headers are overdue.
///
/// The timer is allocated once per connection and re-armed for each request: a fresh
/// `Sleep` per request cost an allocation plus an insertion into and a removal from the
/// runtime's timer wheel, on every request of every keep-alive connection (issue 18).
/// Re-arming a registered timer to a later instant is one atomic store; the wheel moves it
/// when its old instant comes.
pub struct HeadDeadline {
    clock: HeadClock,
    timeout: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The deadline times the pending headers (not the stale instant of a past request).
    armed: bool,
}

impl HeadDeadline {
    pub fn new(clock: HeadClock, timeout: Duration) -> Self {
        HeadDeadline {
            clock,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    pub fn clock(&self) -> &HeadClock {
        &self.clock
    }

    /// Call after a read that returned bytes.
    pub fn bytes_read(&mut self) {
        self.clock.bytes_read();
        if self.clock.0.head_pending.get() && !self.armed {
            let due = tokio::time::Instant::now() + self.timeout;
            match &mut self.deadline {
                Some(deadline) => deadline.as_mut().reset(due),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(due))),
            }
            self.armed = true;
        }
    }

    /// Call when a read is pending: whether the pending headers have run out of time (the
    /// waker is registered for the deadline otherwise).
    pub fn overdue(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.clock.0.head_pending.get() {
            // Disarmed, not dropped: if it fires anyway, its wake-up finds nothing overdue.
            self.armed = false;
            return false;
        }
        match &mut self.deadline {
            Some(deadline) if self.armed => deadline.as_mut().poll(cx).is_ready(),
            _ => false,
        }
    }
}

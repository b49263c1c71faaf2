//! `Lingering<IO>`: every accepted connection, closed with a lingering close.
//!
//! When the server answers before it has read the whole request (a 401 decided from the
//! headers, a 413 from `Content-Length`, a body that trickled past `BODY_READ_TIMEOUT`), the
//! client's unread bytes are still on their way. Closing a socket with unread input makes the
//! kernel send a RST, and a RST makes the client's kernel throw away the response it has
//! received but not yet read: the client sees "connection reset" instead of the status.
//!
//! So closing takes two steps, like Apache's and nginx's lingering close: shut down the write
//! side (under TLS after rustls' `close_notify`), so the client reads the whole response and
//! then end-of-stream; then read and discard what the client still sends until it closes its
//! side, for at most [`LINGER_TIME`] and [`LINGER_BYTES`]. Only then is the socket closed.

use super::head_clock::{HeadClock, HeadDeadline};
use actix_web::rt::net::TcpStream;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest a closing connection keeps reading what its client still sends.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// The most a closing connection reads (and discards) before it closes anyway.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// A stream with a TCP socket at the bottom, which the lingering close reads directly once
/// the protocol above it (TLS) has said its last word.
pub trait OverTcp: AsyncRead + AsyncWrite + Unpin {
    fn tcp_mut(&mut self) -> &mut TcpStream;
}

impl OverTcp for TcpStream {
    fn tcp_mut(&mut self) -> &mut TcpStream {
        self
    }
}

impl OverTcp for actix_tls::accept::rustls_0_23::TlsStream<TcpStream> {
    fn tcp_mut(&mut self) -> &mut TcpStream {
        self.get_mut().0
    }
}

/// An accepted connection (plain or TLS) whose shutdown is a lingering close.
pub struct Lingering<IO> {
    io: IO,
    closing: Closing,
    /// HTTP/1.1 connections: the header timeout of requests after the first.
    head: Option<HeadDeadline>,
}

enum Closing {
    Open,
    /// The write side is shut; discarding input until end-of-stream or a bound.
    Discarding {
        deadline: Pin<Box<tokio::time::Sleep>>,
        discarded: usize,
    },
    Closed,
}

impl<IO: OverTcp> Lingering<IO> {
    pub fn new(io: IO) -> Self {
        Lingering {
            io,
            closing: Closing::Open,
            head: None,
        }
    }

    /// Times the headers of every request after the first (`head_clock.rs`; HTTP/1.1).
    pub fn with_head_timeout(mut self, timeout: Duration) -> Self {
        // Zero means "no timeout", as for actix's own header timer.
        if !timeout.is_zero() {
            self.head = Some(HeadDeadline::new(HeadClock::default(), timeout));
        }
        self
    }

    /// The clock the body middleware drives, when headers are timed.
    pub fn head_clock(&self) -> Option<HeadClock> {
        self.head.as_ref().map(|head| head.clock().clone())
    }

    /// The wrapped stream (what actix's own listeners would have handed `on_connect`).
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// Discards input until the client closes, an error or a bound; then the socket may be
    /// closed without a RST destroying the response.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Closing::Discarding {
            deadline,
            discarded,
        } = &mut self.closing
        else {
            return Poll::Ready(());
        };
        let tcp = self.io.tcp_mut();
        let mut scratch = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *tcp).poll_read(cx, &mut buf) {
                // End of stream: the client has read the answer and closed.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {
                    *discarded += buf.filled().len();
                    if *discarded >= LINGER_BYTES {
                        return Poll::Ready(());
                    }
                }
                // Reset by the client: nothing is left to protect.
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return deadline.as_mut().poll(cx),
            }
        }
    }
}

impl<IO: OverTcp> AsyncRead for Lingering<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Some(head) = &mut this.head {
            match read {
                Poll::Ready(Ok(())) if buf.filled().len() > before => head.bytes_read(),
                // Headers overdue: end of stream, and actix closes the connection.
                Poll::Pending if head.overdue(cx) => {
                    tracing::info!("request headers did not arrive in time: closing");
                    return Poll::Ready(Ok(()));
                }
                _ => {}
            }
        }
        read
    }
}

impl<IO: OverTcp> AsyncWrite for Lingering<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Closing::Open = this.closing {
            // TLS: close_notify, then the TCP write side (FIN).
            if let Err(error) = ready!(Pin::new(&mut this.io).poll_shutdown(cx)) {
                // Already reset or closed by the peer: nothing to linger for.
                this.closing = Closing::Closed;
                return Poll::Ready(Err(error));
            }
            this.closing = Closing::Discarding {
                deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
                discarded: 0,
            };
        }
        ready!(this.poll_discard(cx));
        this.closing = Closing::Closed;
        Poll::Ready(Ok(()))
    }
}

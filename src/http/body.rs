//! The request-body middleware of every route: a deadline on reading the body, and what
//! happens to a body the handler did not read.
//!
//! - **Body read timeout.** The handler reads the body through [`TimedBody`]; when it has not
//!   arrived in full within `BODY_READ_TIMEOUT` of the request's headers, the read fails, the
//!   answer becomes a 408 in the JSON error shape, the connection is closed after it, and
//!   `coordination_engine_body_read_timeouts_total` counts it.
//! - **Early answers.** A response decided before the body was read (401 from the token check,
//!   415, 404 or 405 on a POST, 413 from `Content-Length`) would otherwise be followed by a
//!   close with unread input, which loses the response to a TCP reset. Here the rest of the
//!   body is read and discarded first (up to [`DRAIN_LIMIT`], within the same deadline), so
//!   the connection stays usable. A body that cannot be drained (larger, or too slow) gets
//!   `Connection: close`, and the lingering close in `linger.rs` delivers the answer (under
//!   HTTP/2: a `NO_ERROR` reset of the upload after the answer).
//! - **Graceful shutdown.** Once [`Draining`] is set, every response carries
//!   `Connection: close`, so keep-alive clients go elsewhere and the process can exit.

use super::head_clock::HeadClock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use actix_http::ConnectionType;
use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_util::Stream;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// The most of a body the handler did not read that is read and discarded before answering.
/// Above every route's own limit (10 MiB at most), so a body that is merely over its route's
/// limit is drained too: under HTTP/2 that is what lets every client read the 413 (curl 7.88
/// reports a stream error for the RFC's alternative, a `NO_ERROR` reset of the upload).
/// Costs bandwidth, never memory.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// How long a request body may take to arrive (`BODY_READ_TIMEOUT`).
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// Set when a graceful shutdown has begun: every response then closes its connection.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What has become of the body so far (shared by the handler's stream and the middleware).
struct BodyState {
    payload: Payload,
    /// When the body must have arrived.
    due: tokio::time::Instant,
    /// The timer, started only when the client makes us wait: a body already in the buffer
    /// (most of them) costs no timer (issue 18).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    read: usize,
    finished: bool,
    timed_out: bool,
}

impl BodyState {
    /// The next chunk, or the end, or an error; a timeout once the deadline has passed while
    /// the client still owes bytes.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, PayloadError>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.timed_out {
            return Poll::Ready(Some(Err(timeout_error())));
        }
        match Pin::new(&mut self.payload).poll_next(cx) {
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(chunk))) => {
                self.read = self.read.saturating_add(chunk.len());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Pending => match self
                .deadline
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(self.due)))
                .as_mut()
                .poll(cx)
            {
                Poll::Ready(()) => {
                    self.timed_out = true;
                    Poll::Ready(Some(Err(timeout_error())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

fn timeout_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive within BODY_READ_TIMEOUT",
    ))
}

/// The body as the handler sees it: the client's payload under the deadline.
struct TimedBody(Rc<RefCell<BodyState>>);

impl Stream for TimedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_chunk(cx)
    }
}

/// How draining an unread body ended.
enum Drained {
    /// The client sent it all: the connection is clean.
    Finished,
    /// More than the route accepts, or a read error: the connection must close.
    Abandoned,
    TimedOut,
}

/// Reads and discards the rest of the body, at most up to `limit` bytes in total.
async fn drain(state: &Rc<RefCell<BodyState>>, limit: usize) -> Drained {
    std::future::poll_fn(|cx| {
        let mut state = state.borrow_mut();
        loop {
            if state.read > limit {
                return Poll::Ready(Drained::Abandoned);
            }
            match state.poll_chunk(cx) {
                Poll::Ready(None) => return Poll::Ready(Drained::Finished),
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(Some(Err(_))) if state.timed_out => {
                    return Poll::Ready(Drained::TimedOut);
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Drained::Abandoned),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await
}

/// The middleware (wrapped around every app that takes request bodies).
pub async fn guard_body(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Headers parsed: stop the connection's header clock until this request is done.
    let _serving = req.conn_data::<HeadClock>().cloned().map(Serving::start);
    let timeout = req
        .app_data::<BodyReadTimeout>()
        .map_or(Duration::from_secs(10), |t| t.0);
    let declared = declared_length(&req);
    let state = match req.take_payload() {
        // No body at all (a GET): nothing to time or drain.
        Payload::None => None,
        payload => {
            let state = Rc::new(RefCell::new(BodyState {
                payload,
                due: tokio::time::Instant::now() + timeout,
                deadline: None,
                read: 0,
                finished: false,
                timed_out: false,
            }));
            req.set_payload(Payload::Stream {
                payload: Box::pin(TimedBody(state.clone())),
            });
            Some(state)
        }
    };

    let mut response = next.call(req).await?;
    // Asked after the handler: a request that began before the shutdown ends after it.
    let mut close = response
        .request()
        .app_data::<Draining>()
        .is_some_and(|d| d.is_draining());
    if let Some(state) = state {
        let (finished, timed_out) = {
            let state = state.borrow();
            (state.finished, state.timed_out)
        };
        let outcome = if timed_out {
            Drained::TimedOut
        } else if finished {
            Drained::Finished
        } else if declared.is_some_and(|length| length > DRAIN_LIMIT) {
            // Too much to drain; do not wait for it.
            Drained::Abandoned
        } else {
            drain(&state, DRAIN_LIMIT).await
        };
        let unread = !matches!(outcome, Drained::Finished);
        match outcome {
            Drained::Finished => {}
            Drained::Abandoned => close = true,
            Drained::TimedOut => {
                close = true;
                response = body_timed_out(response, timeout, timed_out);
            }
        }
        if unread {
            response = response.map_body(|_, body| {
                BoxBody::new(HoldsRequestBody {
                    body,
                    _request_body: state,
                })
            });
        }
    }
    if close {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// The body stopped arriving: counted, and the handler's own answer to the failed read
/// (`read_timed_out`) becomes a 408; an answer decided before the body was needed (a 401, a
/// 404) stands.
fn body_timed_out(
    response: ServiceResponse<BoxBody>,
    timeout: Duration,
    read_timed_out: bool,
) -> ServiceResponse<BoxBody> {
    if let Some(metrics) = response.request().app_data::<web::Data<Metrics>>() {
        metrics.body_read_timeouts.inc();
    }
    if !read_timed_out {
        return response;
    }
    tracing::info!(
        timeout = ?timeout,
        "request body did not arrive in time: 408 and close"
    );
    response.into_response(actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "The request body did not arrive within {} (BODY_READ_TIMEOUT).",
            crate::config::format_duration(timeout)
        ),
    )))
}

/// Tells the connection's header clock that a request is being served, until dropped.
struct Serving(HeadClock);

impl Serving {
    fn start(clock: HeadClock) -> Self {
        clock.request_started();
        Serving(clock)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps the unread request body alive until the response has been
/// sent. Under HTTP/2, dropping a request body that is still arriving resets the stream:
/// before the response is complete that is `CANCEL`, which clients report as an error instead
/// of the status; after it, `NO_ERROR`, which tells the client to stop sending and read the
/// answer (RFC 9113 §8.1).
struct HoldsRequestBody {
    body: BoxBody,
    _request_body: Rc<RefCell<BodyState>>,
}

impl MessageBody for HoldsRequestBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The declared `Content-Length`, when present and valid.
fn declared_length(req: &ServiceRequest) -> Option<usize> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

//! A budget for the request bodies being read at once on token-less routes
//! (`/webhooks/validate`, the compatibility listener): anyone who can reach them can make the
//! server hold a body in memory while it arrives, so together they get at most
//! `TOKENLESS_BODY_BUDGET` bytes (64 MiB by default), across connections and workers.
//!
//! A request is charged its declared `Content-Length` (a chunked body: the most its route
//! accepts), capped at the budget so a lone request always fits. When the charge does not fit,
//! the answer is a 503 JSON with `Retry-After`, decided before the body is read: the body
//! middleware (`body.rs`) then drains it or closes with a lingering close, as for a 401. The
//! charge is returned once the handler has answered, i.e. when the body is no longer held.

use crate::error::ApiError;
use crate::metrics::Metrics;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, RETRY_AFTER, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The default of `TOKENLESS_BODY_BUDGET`.
pub const DEFAULT_TOKENLESS_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// The shared budget (one per process, cloned into every worker's app).
#[derive(Clone, Debug)]
pub struct BodyBudget {
    capacity: usize,
    in_use: Arc<AtomicUsize>,
}

/// What a chunked body (no `Content-Length`) on an app is charged: its largest route limit.
#[derive(Clone, Copy, Debug)]
pub struct UndeclaredCharge(pub usize);

impl BodyBudget {
    pub fn new(capacity: usize) -> Self {
        BodyBudget {
            capacity,
            in_use: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes `bytes` (capped at the capacity) from the budget, if they fit.
    fn try_reserve(&self, bytes: usize) -> Option<Reservation> {
        let bytes = bytes.min(self.capacity);
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes)
                    .filter(|total| *total <= self.capacity)
            })
            .ok()?;
        Some(Reservation {
            in_use: self.in_use.clone(),
            bytes,
        })
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }
}

/// Bytes taken from the budget, returned when dropped.
struct Reservation {
    in_use: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.in_use.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// What the request will make the server hold: its declared length, or for a chunked body
/// the app's largest route limit; nothing without a body.
fn charge(req: &ServiceRequest) -> usize {
    let headers = req.headers();
    if let Some(length) = headers.get(CONTENT_LENGTH) {
        return length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return req
            .app_data::<UndeclaredCharge>()
            .map_or(DEFAULT_TOKENLESS_BODY_BUDGET, |c| c.0);
    }
    0
}

/// The middleware: wrapped inside `guard_body` around the token-less routes.
pub async fn limit_bodies(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(budget) = req.app_data::<BodyBudget>().cloned() else {
        return next.call(req).await;
    };
    let bytes = charge(&req);
    if bytes == 0 {
        return next.call(req).await;
    }
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let Some(reservation) = budget.try_reserve(bytes) else {
        if let Some(metrics) = &metrics {
            metrics.body_budget_rejections.inc();
        }
        tracing::info!(
            bytes,
            in_use = budget.in_use(),
            "token-less request bodies over TOKENLESS_BODY_BUDGET: 503"
        );
        let error = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Too many request bodies are being received at once (TOKENLESS_BODY_BUDGET); retry shortly.",
        );
        let mut response = actix_web::ResponseError::error_response(&error);
        response.headers_mut().insert(
            RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
        return Ok(req.into_response(response));
    };
    let gauge = metrics.map(|m| m.body_budget_in_use.clone());
    if let Some(gauge) = &gauge {
        gauge.add(reservation.bytes as i64);
    }
    let response = next.call(req).await;
    if let Some(gauge) = &gauge {
        gauge.sub(reservation.bytes as i64);
    }
    drop(reservation);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_fit_the_capacity_and_are_returned_when_dropped() {
        let budget = BodyBudget::new(10);
        let first = budget.try_reserve(6).expect("fits");
        assert!(budget.try_reserve(5).is_none(), "6 + 5 > 10");
        let second = budget.try_reserve(4).expect("6 + 4 fits");
        assert_eq!(budget.in_use(), 10);
        drop(first);
        drop(second);
        assert_eq!(budget.in_use(), 0);
        // Over the capacity alone: charged the capacity, so it still fits an empty budget.
        let lone = budget.try_reserve(100).expect("capped");
        assert_eq!(budget.in_use(), 10);
        drop(lone);
    }
}

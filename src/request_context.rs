//! The outermost middleware: request id, one tracing span per request, HTTP metrics, and the
//! guarantee that every error response has the JSON error shape (actix's own 404/405/413
//! included).

use crate::error::{ApiError, REQUEST_ID};
use crate::metrics::Metrics;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{Histogram, IntCounter};
use std::borrow::Cow;
use std::cell::{OnceCell, RefCell};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Route label of requests that matched no route (bounded cardinality: never the raw path).
const UNMATCHED_ROUTE: &str = "unmatched";

/// A caller-supplied id is kept when it is short and printable; otherwise we make one.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| new_request_id().to_string())
}

/// A UUIDv7 (time-ordered, 74 random bits) whose random bits come from the thread's userspace
/// CSPRNG (`rand::rng()`, seeded from the OS once per thread and reseeded every 64 KiB), not
/// from a `getrandom` syscall per request as `Uuid::now_v7` does (issue 18). Unique and
/// unguessable enough to correlate logs, which is all a request id is for.
pub fn new_request_id() -> uuid::Uuid {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random::<[u8; 10]>()).into_uuid()
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(&req);
    let started = Instant::now();
    let method = method_label(req.method());
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.path(),
        status = tracing::field::Empty,
    );
    // Never clone the HttpRequest before routing: actix needs to own it uniquely.
    // Our handlers, extractors and middleware turn errors into responses, so `Err` here is
    // only an actix-internal failure; actix renders it, and it is counted below.
    let result = REQUEST_ID
        .scope(
            id.clone(),
            async move {
                next.call(req)
                    .await
                    .map(|response| ensure_json_error(response.map_into_boxed_body()))
            }
            .instrument(span.clone()),
        )
        .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            let status = error.as_response_error().status_code().as_u16().to_string();
            if let Some(metrics) = &metrics {
                metrics
                    .http_requests
                    .with_label_values(&[UNMATCHED_ROUTE, method, &status])
                    .inc();
            }
            return Err(error);
        }
    };

    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let route = count_request(
        &response,
        metrics.as_ref().map(|m| m.get_ref()),
        method,
        elapsed,
    );
    span.record("status", status);
    let _entered = span.enter();
    let micros = elapsed.as_micros() as u64;
    if route == "/health" || route == "/ready" {
        tracing::debug!(status, micros, route = %route, "request served");
    } else {
        tracing::info!(status, micros, route = %route, "request served");
    }
    Ok(response)
}

/// Counts a served request in its route's series; returns the route label.
fn count_request(
    response: &ServiceResponse<BoxBody>,
    metrics: Option<&Metrics>,
    method: &'static str,
    elapsed: Duration,
) -> Cow<'static, str> {
    let request = response.request();
    if let Some(series) = request.app_data::<RouteSeries>() {
        debug_assert_eq!(request.match_pattern().as_deref(), Some(series.route));
        if let Some(metrics) = metrics {
            series.count(metrics, method, response.status().as_u16(), elapsed);
        }
        return Cow::Borrowed(series.route);
    }
    let route = request
        .match_pattern()
        .map_or(Cow::Borrowed(UNMATCHED_ROUTE), Cow::Owned);
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[&route, method, response.status().as_str()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[&route])
            .observe(elapsed.as_secs_f64());
    }
    route
}

/// The `method` label: the standard methods by name, any other token as `other`. The method
/// is the client's choice, and a label value per invented method would grow the registry
/// without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The HTTP series of one busy route (the webhooks), attached to its resource as app data
/// and resolved once per worker: the route label without walking the route map again, and
/// the series without hashing their labels under the registry's lock, on every request
/// (issue 18). Other routes are looked up per request.
pub struct RouteSeries {
    /// The route's full pattern, as `match_pattern` gives it (checked in debug builds).
    route: &'static str,
    /// `(method, status)` series seen by this worker; a handful per route.
    counters: RefCell<Vec<(&'static str, u16, IntCounter)>>,
    duration: OnceCell<Histogram>,
}

/// Distinct `(method, status)` pairs a route caches; further pairs are looked up per request.
const ROUTE_SERIES_CACHED: usize = 16;

impl RouteSeries {
    pub fn new(route: &'static str) -> Self {
        RouteSeries {
            route,
            counters: RefCell::new(Vec::new()),
            duration: OnceCell::new(),
        }
    }

    fn count(&self, metrics: &Metrics, method: &'static str, status: u16, elapsed: Duration) {
        let mut counters = self.counters.borrow_mut();
        match counters
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            Some((_, _, counter)) => counter.inc(),
            None => {
                let counter = metrics.http_requests.with_label_values(&[
                    self.route,
                    method,
                    &status.to_string(),
                ]);
                counter.inc();
                if counters.len() < ROUTE_SERIES_CACHED {
                    counters.push((method, status, counter));
                }
            }
        }
        self.duration
            .get_or_init(|| metrics.http_duration.with_label_values(&[self.route]))
            .observe(elapsed.as_secs_f64());
    }
}

/// Replaces a non-JSON error body (from actix or a library) with the error shape.
/// Must run inside the `REQUEST_ID` scope so the body carries the id.
fn ensure_json_error(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let error = ApiError::from_status(status);
    let body = error.body_json();
    response
        .map_body(|head, _old| {
            head.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if status == actix_web::http::StatusCode::UNAUTHORIZED {
                head.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            BoxBody::new(body)
        })
        .map_into_boxed_body()
}

#[cfg(test)]
mod tests {
    use super::new_request_id;

    #[test]
    fn request_ids_are_distinct_time_ordered_uuids() {
        let ids: Vec<uuid::Uuid> = (0..10_000).map(|_| new_request_id()).collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, _) = id.get_timestamp().expect("v7 has a timestamp").to_unix();
            assert!(now.abs_diff(secs) <= 5, "{id}: {secs} vs {now}");
        }
    }
}

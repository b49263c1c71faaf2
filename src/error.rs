//! The one error body of every HTTP error (SPEC §3):
//! `{"error":{"code","message","details"?},"request_id"}`.

use crate::clip::{MESSAGE_MAX, clip};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

tokio::task_local! {
    /// The request id of the request being served, set by the request middleware so that
    /// errors built deep inside handlers and extractors can carry it.
    pub static REQUEST_ID: String;
}

/// The current request's id, or an empty string outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// An HTTP error with a stable, snake_case `code` clients can match on.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
    request_id: String,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
}

impl ApiError {
    /// The message is clipped at [`MESSAGE_MAX`] bytes: it may quote caller text.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MESSAGE_MAX {
            message = clip(&message, MESSAGE_MAX).into_owned();
        }
        ApiError {
            status,
            code,
            message,
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The generic error for a status produced outside our handlers (actix's own 404/405…).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, message) = match status.as_u16() {
            400 => ("bad_request", "The request could not be parsed."),
            401 => ("unauthorized", "Authentication is required."),
            403 => ("forbidden", "The caller is not allowed to do this."),
            404 => ("not_found", "No route matches this path."),
            405 => (
                "method_not_allowed",
                "This route does not accept this method.",
            ),
            406 => (
                "not_acceptable",
                "The requested representation is not available.",
            ),
            408 => ("request_timeout", "The request took too long to arrive."),
            409 => ("conflict", "The request conflicts with the current state."),
            411 => ("length_required", "A Content-Length header is required."),
            413 => (
                "payload_too_large",
                "The request body is larger than this route accepts.",
            ),
            415 => (
                "unsupported_media_type",
                "The Content-Type is not supported here.",
            ),
            422 => (
                "unprocessable_entity",
                "The request is well-formed but invalid.",
            ),
            429 => ("too_many_requests", "Too many requests; retry later."),
            503 => ("unavailable", "The service is temporarily unavailable."),
            s if s >= 500 => ("internal", "An internal error occurred."),
            _ => ("http_error", "The request failed."),
        };
        Self::new(status, code, message)
    }

    /// The JSON body, with the current request's id.
    pub fn body_json(&self) -> String {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                details: self.details.as_ref(),
            },
            request_id: current_request_id(),
        };
        serde_json::to_string(&body).expect("the error body is always serialisable")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(seconds) = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_seconds"))
            .and_then(Value::as_u64)
        {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.body(self.body_json())
    }
}

/// Maps query-string parse errors onto the error shape.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::bad_request(format!("Invalid query string: {err}")).into()
}

/// Maps path-segment parse errors onto the error shape.
pub fn path_error(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::not_found(format!("Invalid path parameter: {err}")).into()
}

/// Maps raw-body (`web::Bytes`) errors onto the error shape.
pub fn payload_error(err: actix_web::error::PayloadError) -> ApiError {
    use actix_web::error::PayloadError as E;
    match err {
        E::Overflow => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The body is larger than this route accepts.",
        ),
        other => ApiError::bad_request(format!("Cannot read the body: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_carries_the_request_id_in_scope() {
        let body = REQUEST_ID
            .scope("req-1".to_string(), async {
                ApiError::not_found("gone").body_json()
            })
            .await;
        let value: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(value["request_id"], "req-1");
        assert_eq!(value["error"]["code"], "not_found");
        assert_eq!(value["error"]["message"], "gone");
        assert!(value["error"].get("details").is_none());
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let response = ApiError::unauthorized("no").error_response();
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
    }
}

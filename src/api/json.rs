//! `JsonBody<T>`: the JSON extractor of every API route.
//!
//! Unlike `web::Json`, a shape error names the offending field path (`labels.team`,
//! `resources[2].kind`), which is what a caller needs to fix the request:
//! 415 without `Content-Type: application/json`, 413 over the route's limit,
//! 400 when the bytes are not JSON, 422 when the JSON has the wrong shape.

use super::validate::invalid;
use crate::error::{ApiError, payload_error};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;

pub struct JsonBody<T>(pub T);

impl<T> JsonBody<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Whether the request declares a JSON body (`application/json`, `application/*+json`).
fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        })
}

/// Parses `bytes` as `T`, naming the field on a shape error.
///
/// The body is parsed without tracking the path first: that is every well-formed request, and
/// tracking costs a few percent of the webhook's time (issue 18). Only a body that fails is
/// parsed again with the path tracked, which gives the error the field's name; both parses
/// stop at the same byte with the same error, so the answer is what it always was.
///
/// `T` may borrow from `bytes` (the webhook's review does). A body that is valid UTF-8 as a
/// whole (checked once, quickly) is parsed as text, so its strings are not checked again one
/// by one; any other body takes the byte parser, whose error names the bad byte's position.
pub fn parse<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, ApiError> {
    let parsed = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    };
    match parsed {
        Ok(value) => Ok(value),
        Err(fast) => Err(explain_failure::<T>(bytes).unwrap_or_else(|| not_json(&fast))),
    }
}

fn not_json(error: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!("The body is not valid JSON: {error}"))
}

/// The error of a body that failed to parse, with the path of the offending field (`None` if,
/// against expectation, the tracked parse succeeds).
fn explain_failure<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Option<ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(_) => deserializer.end().err().map(|e| not_json(&e)),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_data() {
                let field = if path == "." {
                    "body".to_string()
                } else {
                    path
                };
                Some(invalid(&field, inner.to_string()))
            } else {
                Some(not_json(&inner))
            }
        }
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Send the body as Content-Type: application/json.",
                ));
            }
            let bytes =
                bytes
                    .await
                    .map_err(|e| match e.as_error::<actix_web::error::PayloadError>() {
                        Some(actix_web::error::PayloadError::Overflow) => {
                            payload_error(actix_web::error::PayloadError::Overflow)
                        }
                        _ => ApiError::bad_request(format!("Cannot read the body: {e}")),
                    })?;
            parse(&bytes).map(JsonBody)
        })
    }
}

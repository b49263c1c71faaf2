//! Field validation for request bodies: every failure is a 422 naming the field. The checks
//! themselves are pure and live in `crate::validate`.

use crate::clip::shown;
use crate::error::ApiError;
pub use crate::validate::{
    FieldError, bounded, bounded_map, is_dns_label, is_dns_subdomain, kubernetes_kind,
    kubernetes_name, object_name, required_text,
};
use actix_web::http::StatusCode;

/// A 422 for `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    // The field may be a path of caller-chosen map keys.
    let field = shown(field);
    let message = message.into();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        format!("{field}: {message}"),
    )
    .with_details(serde_json::json!({ "field": field }))
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        invalid(&error.field, error.message)
    }
}

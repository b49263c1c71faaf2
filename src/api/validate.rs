//! Field validation for request bodies: every failure is a 422 naming the field.

use crate::error::ApiError;
use actix_web::http::StatusCode;

/// A 422 for `field`.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        format!("{field}: {message}"),
    )
    .with_details(serde_json::json!({ "field": field }))
}

/// A required, non-blank string of at most `max` characters.
pub fn required_text(field: &str, value: Option<String>, max: usize) -> Result<String, ApiError> {
    let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
    if value.is_empty() {
        return Err(invalid(field, "is required"));
    }
    bounded(field, value, max)
}

/// A string of at most `max` characters.
pub fn bounded(field: &str, value: String, max: usize) -> Result<String, ApiError> {
    let length = value.chars().count();
    if length > max {
        Err(invalid(
            field,
            format!("is {length} characters long; the maximum is {max}"),
        ))
    } else {
        Ok(value)
    }
}

/// An optional Kubernetes object name (a DNS subdomain: lowercase letters, digits, `-`, `.`;
/// at most 253 characters). Such a name holds no PromQL or regex metacharacter but `.`.
pub fn object_name(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    {
        Some(v)
            if v.len() > 253
                || !v.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                }) =>
        {
            Err(invalid(field, "is not a Kubernetes object name"))
        }
        other => Ok(other),
    }
}

/// An RFC 1123 label, as Kubernetes requires of namespace names.
pub fn is_dns_label(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// At most `max_entries`, every entry within the lengths.
pub fn bounded_map(
    field: &str,
    map: &std::collections::BTreeMap<String, String>,
    max_entries: usize,
) -> Result<(), ApiError> {
    if map.len() > max_entries {
        return Err(invalid(
            field,
            format!("has {} entries; the maximum is {max_entries}", map.len()),
        ));
    }
    for (key, value) in map {
        if key.is_empty() || key.len() > 317 {
            return Err(invalid(
                field,
                format!("key {key:?} must have 1 to 317 characters"),
            ));
        }
        if value.len() > 4096 {
            return Err(invalid(
                field,
                format!("value of {key:?} is longer than 4096 bytes"),
            ));
        }
    }
    Ok(())
}

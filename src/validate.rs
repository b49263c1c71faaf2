//! Field validation of outside input (request bodies, trigger and incident payloads): every
//! failure names the field. Pure; the API maps a [`FieldError`] to a 422.

/// `field` is invalid, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// As named by the caller (it may be a path of caller-chosen map keys: clip it before
    /// showing it).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A required, non-blank string of at most `max` characters.
pub fn required_text(field: &str, value: Option<String>, max: usize) -> Result<String, FieldError> {
    let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    bounded(field, value, max)
}

/// A string of at most `max` characters.
pub fn bounded(field: &str, value: String, max: usize) -> Result<String, FieldError> {
    let length = value.chars().count();
    if length > max {
        Err(FieldError::new(
            field,
            format!("is {length} characters long; the maximum is {max}"),
        ))
    } else {
        Ok(value)
    }
}

/// An optional Kubernetes object name (a DNS subdomain: lowercase letters, digits, `-`, `.`;
/// at most 253 characters). Such a name holds no PromQL or regex metacharacter but `.`.
pub fn object_name(field: &str, value: Option<String>) -> Result<Option<String>, FieldError> {
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
            Err(FieldError::new(field, "is not a Kubernetes object name"))
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

/// A DNS-1123 subdomain, as Kubernetes requires of most object names (pods, nodes,
/// deployments): at most 253 characters, dot-separated labels of lowercase letters, digits and
/// `-`, each starting and ending with a letter or digit.
pub fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// A required Kubernetes object name (DNS-1123 subdomain), checked before it reaches any
/// API path.
pub fn kubernetes_name(field: &str, value: String) -> Result<String, FieldError> {
    let value = required_text(field, Some(value), 253)?;
    if is_dns_subdomain(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not a Kubernetes object name (DNS-1123: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)"
            ),
        ))
    }
}

/// A required Kubernetes kind: letters and digits, starting with a letter.
pub fn kubernetes_kind(field: &str, value: String) -> Result<String, FieldError> {
    let value = required_text(field, Some(value), 63)?;
    let mut chars = value.chars();
    if chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
    {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            format!("{value:?} is not a Kubernetes kind (letters and digits)"),
        ))
    }
}

/// At most `max_entries`, every entry within the lengths.
pub fn bounded_map(
    field: &str,
    map: &std::collections::BTreeMap<String, String>,
    max_entries: usize,
) -> Result<(), FieldError> {
    if map.len() > max_entries {
        return Err(FieldError::new(
            field,
            format!("has {} entries; the maximum is {max_entries}", map.len()),
        ));
    }
    for (key, value) in map {
        if key.is_empty() || key.len() > 317 {
            return Err(FieldError::new(
                field,
                format!("key {key:?} must have 1 to 317 characters"),
            ));
        }
        if value.len() > 4096 {
            return Err(FieldError::new(
                field,
                format!("value of {key:?} is longer than 4096 bytes"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subdomains_are_what_kubernetes_accepts_as_names() {
        for good in ["worker-1", "a", "ip-10-0-1-2.ec2.internal", "api-7d9f"] {
            assert!(is_dns_subdomain(good), "{good}");
        }
        let long = format!("{}.{}", "a".repeat(63), "b".repeat(190));
        for bad in [
            "", "Worker", "-a", "a-", "a..b", ".a", "a/b", "../etc", "a b", "a_b", &long,
        ] {
            assert!(!is_dns_subdomain(bad), "{bad:?}");
        }
        assert!(kubernetes_kind("k", "ClusterOperator".into()).is_ok());
        assert!(kubernetes_kind("k", "pods/exec".into()).is_err());
    }
}

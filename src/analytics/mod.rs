//! Analytics over Prometheus (SPEC §7): disk-exhaustion and memory-leak forecasts (linear fits
//! over range queries), right-sizing (p95 usage against requests and limits), capacity trends.
//! Every number comes from a query; a source that is not configured is a 503 naming the
//! setting, never a made-up value.

pub mod anomaly;
pub mod anomaly_request;
pub mod capacity;
pub mod disk;
pub mod fit;
pub mod leak;
pub mod metrics_catalog;
pub mod prometheus;
pub mod rightsizing;
pub mod usage;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// The source is not configured: the setting to set.
    #[error("{0} is not set: this route needs it")]
    NotConfigured(&'static str),
    #[error("{0}")]
    Unreachable(String),
    /// The source answered, but not with what we asked for.
    #[error("{0}")]
    Upstream(String),
}

impl From<AnalyticsError> for ApiError {
    fn from(error: AnalyticsError) -> Self {
        use actix_web::http::StatusCode;
        match &error {
            AnalyticsError::NotConfigured(setting) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                error.to_string(),
            )
            .with_details(serde_json::json!({ "setting": setting })),
            AnalyticsError::Unreachable(_) => ApiError::unavailable(error.to_string()),
            AnalyticsError::Upstream(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", error.to_string())
            }
        }
    }
}

/// The node a node-exporter series belongs to: its `node` label, else `instance` without the
/// port.
pub fn node_of(labels: &std::collections::BTreeMap<String, String>) -> String {
    if let Some(node) = labels.get("node").filter(|n| !n.is_empty()) {
        return node.clone();
    }
    let instance = labels
        .get("instance")
        .map(String::as_str)
        .unwrap_or_default();
    match instance.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => instance.to_string(),
    }
}

/// A PromQL label matcher `key="value"` with the value escaped (callers' input never reaches
/// PromQL unescaped).
pub fn matcher(key: &str, value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| match c {
            '\\' => vec!['\\', '\\'],
            '"' => vec!['\\', '"'],
            '\n' => vec!['\\', 'n'],
            c => vec![c],
        })
        .collect();
    format!("{key}=\"{escaped}\"")
}

/// The date `days` from now, `YYYY-MM-DD`.
pub fn date_in(days: f64) -> String {
    let seconds = (days * 86_400.0).clamp(0.0, 3.0e9) as i64;
    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
        .format("%Y-%m-%d")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_escape_what_would_break_out_of_the_string() {
        assert_eq!(matcher("namespace", "shop"), r#"namespace="shop""#);
        assert_eq!(
            matcher("pod", "a\"}) or vector(1) #\\"),
            r#"pod="a\"}) or vector(1) #\\""#
        );
    }

    #[test]
    fn the_node_comes_from_node_or_instance() {
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            node_of(&labels(&[("instance", "worker-1:9100")])),
            "worker-1"
        );
        assert_eq!(node_of(&labels(&[("instance", "worker-1")])), "worker-1");
        assert_eq!(
            node_of(&labels(&[
                ("instance", "10.0.0.1:9100"),
                ("node", "worker-2")
            ])),
            "worker-2"
        );
    }
}

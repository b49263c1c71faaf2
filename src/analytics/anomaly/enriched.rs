//! The enriched signals that come with every answer: CPU throttling, the HTTP error rate and
//! p99 latency over the scope.

use super::EnrichedSignals;
use crate::analytics::AnalyticsError;
use crate::analytics::prometheus::Prometheus;
use std::time::Duration;

async fn scalar(prometheus: &Prometheus, query: String) -> Result<Option<f64>, AnalyticsError> {
    Ok(prometheus
        .instant(&query)
        .await?
        .first()
        .map(|s| s.value)
        .filter(|v| v.is_finite()))
}

pub(super) async fn enriched(
    prometheus: &Prometheus,
    selector: &str,
    range: Duration,
) -> Result<EnrichedSignals, AnalyticsError> {
    let w = format!("{}s", range.as_secs());
    let throttle = scalar(
        prometheus,
        format!(
            "sum(increase(container_cpu_cfs_throttled_periods_total{{{selector}}}[{w}])) / sum(increase(container_cpu_cfs_periods_total{{{selector}}}[{w}]))"
        ),
    )
    .await?;
    let errors = scalar(
        prometheus,
        format!(
            "sum(rate(http_requests_total{{{}code=~\"5..\"}}[5m])) / sum(rate(http_requests_total{{{selector}}}[5m]))",
            if selector.is_empty() { String::new() } else { format!("{selector},") }
        ),
    )
    .await?;
    let p99 = scalar(
        prometheus,
        format!(
            "1000 * histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{selector}}}[5m])))"
        ),
    )
    .await?;
    Ok(EnrichedSignals {
        cpu_throttle_rate: throttle,
        http_error_rate: errors,
        http_response_time_p99_ms: p99,
        throttling_detected: throttle.is_some_and(|t| t > 0.25),
        http_degraded: errors.is_some_and(|e| e > 0.05) || p99.is_some_and(|p| p > 1000.0),
    })
}

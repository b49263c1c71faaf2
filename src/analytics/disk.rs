//! `GET /api/v1/predict/disk-exhaustion`: a least-squares fit of each filesystem's available
//! bytes (node-exporter) over the window; days until full at the fitted fill rate.

use super::fit::linear;
use super::prometheus::Prometheus;
use super::{AnalyticsError, date_in, node_of};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// Real filesystems only: no tmpfs, overlay layers or squashfs images.
const AVAILABLE: &str =
    r#"node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs|nsfs"}"#;
const SIZE: &str = r#"node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs|ramfs|nsfs"}"#;

#[derive(Debug, Serialize, ToSchema)]
pub struct DiskForecast {
    pub node: String,
    pub mountpoint: String,
    /// `critical` (≤ 7 days), `warning` (≤ 30), `ok` (filling, later), `none` (not filling).
    pub urgency: String,
    /// `YYYY-MM-DD`, empty when not filling.
    pub projected_full_date: String,
    pub available_bytes: f64,
    pub total_bytes: f64,
    pub used_percent: f64,
    /// Bytes per day the filesystem fills by (negative: it empties).
    pub daily_fill_rate_bytes: f64,
    /// Whole days until full; -1 when not filling.
    pub days_until_full: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DiskExhaustion {
    pub status: &'static str,
    pub results: Vec<DiskForecast>,
    pub critical_count: i64,
    pub warning_count: i64,
}

pub fn urgency(days: Option<f64>) -> &'static str {
    match days {
        None => "none",
        Some(d) if d <= 7.0 => "critical",
        Some(d) if d <= 30.0 => "warning",
        Some(_) => "ok",
    }
}

/// Forecasts every filesystem (filtered by node and mountpoint when given), soonest full first.
pub async fn forecast(
    prometheus: &Prometheus,
    node: Option<&str>,
    mountpoint: Option<&str>,
    window: Duration,
) -> Result<DiskExhaustion, AnalyticsError> {
    let step = Duration::from_secs((window.as_secs() / 240).max(60));
    let available = prometheus.range(AVAILABLE, window, step).await?;
    let sizes = prometheus.instant(SIZE).await?;
    let mut results = Vec::new();
    for series in available {
        let series_node = node_of(&series.labels);
        let mount = series.label("mountpoint").to_string();
        if node.is_some_and(|n| n != series_node) || mountpoint.is_some_and(|m| m != mount) {
            continue;
        }
        let (Some(line), Some(&(_, now_available))) =
            (linear(&series.points), series.points.last())
        else {
            continue;
        };
        let total = sizes
            .iter()
            .find(|s| {
                node_of(&s.labels) == series_node
                    && s.labels.get("mountpoint") == Some(&mount)
                    && s.labels.get("device") == series.labels.get("device")
            })
            .map(|s| s.value)
            .unwrap_or(0.0);
        let fill_per_day = -line.slope * 86_400.0;
        let days = (fill_per_day > 0.0).then(|| now_available / fill_per_day);
        results.push(DiskForecast {
            node: series_node,
            mountpoint: mount,
            urgency: urgency(days).into(),
            projected_full_date: days.map(date_in).unwrap_or_default(),
            available_bytes: now_available,
            total_bytes: total,
            used_percent: if total > 0.0 {
                ((total - now_available) / total * 100.0).clamp(0.0, 100.0)
            } else {
                0.0
            },
            daily_fill_rate_bytes: fill_per_day,
            days_until_full: days.map(|d| d.floor() as i64).unwrap_or(-1),
        });
    }
    results.sort_by_key(|r| {
        if r.days_until_full < 0 {
            i64::MAX
        } else {
            r.days_until_full
        }
    });
    let count = |u: &str| results.iter().filter(|r| r.urgency == u).count() as i64;
    Ok(DiskExhaustion {
        status: "success",
        critical_count: count("critical"),
        warning_count: count("warning"),
        results,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn urgency_by_days() {
        use super::urgency;
        assert_eq!(urgency(Some(3.5)), "critical");
        assert_eq!(urgency(Some(7.0)), "critical");
        assert_eq!(urgency(Some(12.0)), "warning");
        assert_eq!(urgency(Some(90.0)), "ok");
        assert_eq!(urgency(None), "none");
    }
}

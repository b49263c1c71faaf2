//! `GET /api/v1/predict/memory-leak`: a least-squares fit of each container's working-set
//! memory over the window. A leak is steady growth: a good fit (r² ≥ 0.8) of more than 1 % of
//! the current size (and 1 MiB) per day.

use super::AnalyticsError;
use super::fit::linear;
use super::matcher;
use super::prometheus::Prometheus;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct LeakResult {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub current_memory_bytes: f64,
    pub daily_growth_bytes: f64,
    pub growth_r_squared: f64,
    pub confidence: f64,
    pub leak_detected: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryLeaks {
    pub status: &'static str,
    pub namespace: String,
    pub results: Vec<LeakResult>,
    pub leak_count: i64,
}

/// Whether a fitted growth is a leak.
pub fn is_leak(daily_growth: f64, current: f64, r_squared: f64) -> bool {
    r_squared >= 0.8 && daily_growth > (current * 0.01).max(1_048_576.0)
}

/// Growing containers (all of them when `namespace` is `None`), leaks first, at most 100.
pub async fn detect(
    prometheus: &Prometheus,
    namespace: Option<&str>,
    window: Duration,
) -> Result<MemoryLeaks, AnalyticsError> {
    let mut selector = vec![
        r#"container!="""#.to_string(),
        r#"container!="POD""#.to_string(),
    ];
    if let Some(ns) = namespace {
        selector.push(matcher("namespace", ns));
    }
    let query = format!(
        "sum by (namespace, pod, container) (container_memory_working_set_bytes{{{}}})",
        selector.join(",")
    );
    let step = Duration::from_secs((window.as_secs() / 240).max(60));
    let mut results: Vec<LeakResult> = prometheus
        .range(&query, window, step)
        .await?
        .into_iter()
        .filter_map(|series| {
            let line = linear(&series.points)?;
            let (_, current) = *series.points.last()?;
            let daily_growth = line.slope * 86_400.0;
            (daily_growth > 0.0).then(|| LeakResult {
                namespace: series.label("namespace").into(),
                pod: series.label("pod").into(),
                container: series.label("container").into(),
                current_memory_bytes: current,
                daily_growth_bytes: daily_growth,
                growth_r_squared: line.r_squared,
                confidence: line.r_squared,
                leak_detected: is_leak(daily_growth, current, line.r_squared),
            })
        })
        .collect();
    results.sort_by(|a, b| {
        b.leak_detected
            .cmp(&a.leak_detected)
            .then(b.daily_growth_bytes.total_cmp(&a.daily_growth_bytes))
    });
    results.truncate(100);
    Ok(MemoryLeaks {
        status: "success",
        namespace: namespace.unwrap_or_default().into(),
        leak_count: results.iter().filter(|r| r.leak_detected).count() as i64,
        results,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_leak_is_steady_and_significant_growth() {
        use super::is_leak;
        let mib = 1_048_576.0;
        assert!(is_leak(100.0 * mib, 300.0 * mib, 0.95));
        assert!(!is_leak(100.0 * mib, 300.0 * mib, 0.5), "noisy");
        assert!(!is_leak(0.5 * mib, 10.0 * mib, 0.99), "under 1 MiB a day");
        assert!(!is_leak(10.0 * mib, 4096.0 * mib, 0.99), "under 1 % a day");
    }
}

//! `GET /api/v1/recommendations/rightsizing`: p95 CPU and memory usage of each container over
//! the window, against its requests and limits (kube-state-metrics), with CFS throttling.
//! Over-provisioned: p95 below half the request. Under-provisioned: p95 above the request,
//! memory near its limit, or CPU throttled more than 25 % of periods. Recommendations: p95 plus
//! 20 % headroom for the request; the limit keeps the current limit/request ratio (2× without
//! one).

use super::prometheus::{Prometheus, Sample};
use super::{AnalyticsError, matcher};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendation {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub current_cpu_request: String,
    pub current_cpu_limit: String,
    pub recommended_cpu_request: String,
    pub recommended_cpu_limit: String,
    pub current_memory_request: String,
    pub current_memory_limit: String,
    pub recommended_memory_request: String,
    pub recommended_memory_limit: String,
    /// `over-provisioned`, `under-provisioned`, `right-sized`, or `no-request`.
    pub cpu_sizing: String,
    pub memory_sizing: String,
    pub p95_cpu_usage_cores: f64,
    pub p95_memory_usage_bytes: f64,
    /// Throttled CFS periods over the window, percent; null without CFS metrics.
    pub throttle_rate_pct: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RightSizing {
    pub status: &'static str,
    pub namespace: String,
    pub analysis_window: String,
    pub recommendations: Vec<Recommendation>,
    pub over_provisioned_count: i64,
    pub under_provisioned_count: i64,
    pub right_sized_count: i64,
}

type Key = (String, String, String);

fn key(sample: &Sample) -> Key {
    let label = |k: &str| sample.labels.get(k).cloned().unwrap_or_default();
    (label("namespace"), label("pod"), label("container"))
}

fn by_key(samples: Vec<Sample>) -> BTreeMap<Key, f64> {
    samples.into_iter().map(|s| (key(&s), s.value)).collect()
}

/// `250m`, `2` (cores) for CPU.
pub fn cpu_quantity(cores: f64) -> String {
    let millis = (cores * 1000.0).ceil().max(1.0) as i64;
    if millis % 1000 == 0 {
        format!("{}", millis / 1000)
    } else {
        format!("{millis}m")
    }
}

/// `256Mi`, `2Gi` for memory (rounded up to the MiB).
pub fn memory_quantity(bytes: f64) -> String {
    let mib = (bytes / 1_048_576.0).ceil().max(1.0) as i64;
    if mib % 1024 == 0 {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// The sizing verdict of one resource.
pub fn sizing(p95: f64, request: Option<f64>, limit: Option<f64>, throttled: bool) -> &'static str {
    let Some(request) = request.filter(|r| *r > 0.0) else {
        return "no-request";
    };
    if p95 > request || throttled || limit.is_some_and(|l| l > 0.0 && p95 > 0.9 * l) {
        "under-provisioned"
    } else if p95 < 0.5 * request {
        "over-provisioned"
    } else {
        "right-sized"
    }
}

pub async fn recommend(
    prometheus: &Prometheus,
    namespace: Option<&str>,
    pod: Option<&str>,
    window: Duration,
    window_text: &str,
) -> Result<RightSizing, AnalyticsError> {
    let usage = Usage::query(prometheus, &container_selector(namespace, pod), window).await?;
    let recommendations: Vec<Recommendation> = usage
        .cpu
        .iter()
        .map(|(k, p95_cpu)| usage.recommendation(k, *p95_cpu))
        .collect();
    let count = |verdict: &str| {
        recommendations
            .iter()
            .filter(|r| r.cpu_sizing == verdict || r.memory_sizing == verdict)
            .count() as i64
    };
    Ok(RightSizing {
        status: "success",
        namespace: namespace.unwrap_or_default().into(),
        analysis_window: window_text.into(),
        over_provisioned_count: count("over-provisioned"),
        under_provisioned_count: count("under-provisioned"),
        right_sized_count: recommendations
            .iter()
            .filter(|r| r.cpu_sizing == "right-sized" && r.memory_sizing == "right-sized")
            .count() as i64,
        recommendations,
    })
}

/// Real containers (not the pod-level `container=""` sums, nor the pause container) of the
/// scope.
fn container_selector(namespace: Option<&str>, pod: Option<&str>) -> String {
    let mut matchers = vec![
        r#"container!="""#.to_string(),
        r#"container!="POD""#.to_string(),
    ];
    if let Some(ns) = namespace {
        matchers.push(matcher("namespace", ns));
    }
    if let Some(pod) = pod {
        matchers.push(matcher("pod", pod));
    }
    matchers.join(",")
}

/// Per container: p95 usage over the window, requests and limits, CFS throttled fraction.
struct Usage {
    cpu: BTreeMap<Key, f64>,
    memory: BTreeMap<Key, f64>,
    cpu_request: BTreeMap<Key, f64>,
    cpu_limit: BTreeMap<Key, f64>,
    memory_request: BTreeMap<Key, f64>,
    memory_limit: BTreeMap<Key, f64>,
    throttle: BTreeMap<Key, f64>,
}

impl Usage {
    async fn query(
        prometheus: &Prometheus,
        selector: &str,
        window: Duration,
    ) -> Result<Usage, AnalyticsError> {
        let w = format!("{}s", window.as_secs());
        let by = "sum by (namespace, pod, container)";
        let per_container = |query: String| async move {
            Ok::<_, AnalyticsError>(by_key(prometheus.instant(&query).await?))
        };
        let resource = |metric: &str, resource: &str| {
            format!(
                "{by} ({metric}{{{selector},{}}})",
                matcher("resource", resource)
            )
        };
        Ok(Usage {
            cpu: per_container(format!(
                "quantile_over_time(0.95, ({by} (rate(container_cpu_usage_seconds_total{{{selector}}}[5m])))[{w}:5m])"
            ))
            .await?,
            memory: per_container(format!(
                "quantile_over_time(0.95, ({by} (container_memory_working_set_bytes{{{selector}}}))[{w}:5m])"
            ))
            .await?,
            cpu_request: per_container(resource("kube_pod_container_resource_requests", "cpu"))
                .await?,
            cpu_limit: per_container(resource("kube_pod_container_resource_limits", "cpu")).await?,
            memory_request: per_container(resource(
                "kube_pod_container_resource_requests",
                "memory",
            ))
            .await?,
            memory_limit: per_container(resource("kube_pod_container_resource_limits", "memory"))
                .await?,
            throttle: per_container(format!(
                "{by} (increase(container_cpu_cfs_throttled_periods_total{{{selector}}}[{w}])) / {by} (increase(container_cpu_cfs_periods_total{{{selector}}}[{w}]))"
            ))
            .await?,
        })
    }

    /// One container's current and recommended requests and limits, and its verdicts.
    fn recommendation(&self, k: &Key, p95_cpu: f64) -> Recommendation {
        let p95_memory = self.memory.get(k).copied().unwrap_or(0.0);
        let throttle_rate = self.throttle.get(k).copied().filter(|t| t.is_finite());
        let (creq, clim) = (
            self.cpu_request.get(k).copied(),
            self.cpu_limit.get(k).copied(),
        );
        let (mreq, mlim) = (
            self.memory_request.get(k).copied(),
            self.memory_limit.get(k).copied(),
        );
        let rec_cpu = (p95_cpu * 1.2).max(0.01);
        let rec_memory = (p95_memory * 1.2).max(16.0 * 1_048_576.0);
        Recommendation {
            namespace: k.0.clone(),
            pod: k.1.clone(),
            container: k.2.clone(),
            current_cpu_request: show(creq, cpu_quantity),
            current_cpu_limit: show(clim, cpu_quantity),
            recommended_cpu_request: cpu_quantity(rec_cpu),
            recommended_cpu_limit: cpu_quantity(rec_cpu * limit_ratio(creq, clim)),
            current_memory_request: show(mreq, memory_quantity),
            current_memory_limit: show(mlim, memory_quantity),
            recommended_memory_request: memory_quantity(rec_memory),
            recommended_memory_limit: memory_quantity(rec_memory * limit_ratio(mreq, mlim)),
            cpu_sizing: sizing(p95_cpu, creq, clim, throttle_rate.is_some_and(|t| t > 0.25)).into(),
            memory_sizing: sizing(p95_memory, mreq, mlim, false).into(),
            p95_cpu_usage_cores: p95_cpu,
            p95_memory_usage_bytes: p95_memory,
            throttle_rate_pct: throttle_rate.map(|t| t * 100.0),
        }
    }
}

/// The current limit/request ratio, kept by the recommended limit (2× without one).
fn limit_ratio(request: Option<f64>, limit: Option<f64>) -> f64 {
    match (request, limit) {
        (Some(r), Some(l)) if r > 0.0 => (l / r).max(1.0),
        _ => 2.0,
    }
}

/// A current quantity, or empty when the container sets none.
fn show(value: Option<f64>, quantity: fn(f64) -> String) -> String {
    value.map(quantity).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_like_kubernetes_ones() {
        assert_eq!(cpu_quantity(0.25), "250m");
        assert_eq!(cpu_quantity(2.0), "2");
        assert_eq!(cpu_quantity(0.0001), "1m");
        assert_eq!(memory_quantity(256.0 * 1_048_576.0), "256Mi");
        assert_eq!(memory_quantity(2.0 * 1_073_741_824.0), "2Gi");
        assert_eq!(memory_quantity(1.5), "1Mi");
    }

    #[test]
    fn sizing_verdicts() {
        assert_eq!(sizing(0.1, Some(2.0), Some(4.0), false), "over-provisioned");
        assert_eq!(
            sizing(0.5, Some(0.1), Some(1.0), false),
            "under-provisioned"
        );
        assert_eq!(
            sizing(0.08, Some(0.1), Some(0.2), true),
            "under-provisioned"
        );
        assert_eq!(
            sizing(0.95, Some(1.0), Some(1.0), false),
            "under-provisioned"
        );
        assert_eq!(sizing(0.7, Some(1.0), None, false), "right-sized");
        assert_eq!(sizing(0.7, None, None, false), "no-request");
    }
}

//! `GET /api/v1/capacity/trends`: memory working set of a namespace (or the cluster) over the
//! last 7 days, fitted; against the namespace's `limits.memory` quota, or the cluster's
//! allocatable memory without one: days until 85 % and 100 %.

use super::fit::linear;
use super::prometheus::{Prometheus, Sample};
use super::{AnalyticsError, date_in, matcher};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CapacityTrend {
    /// `success`, or `insufficient_data` (no usage series, or no capacity to compare with).
    pub status: &'static str,
    pub namespace: String,
    pub resource: &'static str,
    pub current_usage_bytes: f64,
    pub capacity_bytes: f64,
    /// `resourcequota` or `cluster_allocatable`.
    pub capacity_source: &'static str,
    pub daily_growth_bytes: f64,
    /// Whole days until 85 % of the capacity (0: already there; -1: not growing).
    pub days_until_85_percent: i64,
    /// Whole days until 100 % (-1: not growing).
    pub forecasted_exhaustion_days: i64,
    pub projected_exhaustion_date: String,
    /// Pods to add over the next 30 days to keep the same usage per pod (0 when not growing).
    pub recommended_replica_increase: i64,
    /// r² of the fit.
    pub confidence: f64,
}

/// Days until `usage` reaches `level` at `per_day` growth.
pub fn days_until(usage: f64, level: f64, per_day: f64) -> i64 {
    if usage >= level {
        0
    } else if per_day <= 0.0 {
        -1
    } else {
        ((level - usage) / per_day).floor() as i64
    }
}

pub async fn trend(
    prometheus: &Prometheus,
    namespace: Option<&str>,
) -> Result<CapacityTrend, AnalyticsError> {
    let scope = namespace.map(|ns| matcher("namespace", ns));
    let selector = [Some(r#"container!="""#.to_string()), scope.clone()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(",");
    let usage = prometheus
        .range(
            &format!("sum(container_memory_working_set_bytes{{{selector}}})"),
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(1800),
        )
        .await?;
    let (capacity, source) = capacity(prometheus, scope.as_deref()).await?;
    let pods = first_value(
        prometheus
            .instant(&format!(
                "count(kube_pod_info{{{}}})",
                scope.unwrap_or_default()
            ))
            .await?,
    )
    .unwrap_or(0.0);
    let namespace = namespace.unwrap_or_default().to_string();
    let fitted = usage
        .first()
        .and_then(|s| Some((linear(&s.points)?, s.points.last()?.1)));
    let Some((line, current)) = fitted.filter(|_| capacity > 0.0) else {
        return Ok(insufficient_data(namespace, capacity, source));
    };
    let per_day = line.slope * 86_400.0;
    let exhaustion = days_until(current, capacity, per_day);
    let replicas = if per_day > 0.0 && current > 0.0 {
        (pods * (per_day * 30.0) / current).ceil() as i64
    } else {
        0
    };
    Ok(CapacityTrend {
        status: "success",
        namespace,
        resource: "memory",
        current_usage_bytes: current,
        capacity_bytes: capacity,
        capacity_source: source,
        daily_growth_bytes: per_day,
        days_until_85_percent: days_until(current, 0.85 * capacity, per_day),
        forecasted_exhaustion_days: exhaustion,
        projected_exhaustion_date: if exhaustion >= 0 {
            date_in(exhaustion as f64)
        } else {
            String::new()
        },
        recommended_replica_increase: replicas,
        confidence: line.r_squared,
    })
}

/// The memory to compare with: the namespace's `limits.memory` quota, or else the cluster's
/// allocatable memory (0 when neither is known), and which of the two it is.
async fn capacity(
    prometheus: &Prometheus,
    scope: Option<&str>,
) -> Result<(f64, &'static str), AnalyticsError> {
    let quota = match scope {
        Some(scope) => first_value(
            prometheus
                .instant(&format!(
                    r#"min(kube_resourcequota{{{scope},resource="limits.memory",type="hard"}})"#
                ))
                .await?,
        ),
        None => None,
    };
    Ok(match quota {
        Some(q) => (q, "resourcequota"),
        None => (
            first_value(
                prometheus
                    .instant(r#"sum(kube_node_status_allocatable{resource="memory"})"#)
                    .await?,
            )
            .unwrap_or(0.0),
            "cluster_allocatable",
        ),
    })
}

fn first_value(samples: Vec<Sample>) -> Option<f64> {
    samples.first().map(|s| s.value)
}

/// The answer without a usage series to fit or a capacity to compare with.
fn insufficient_data(namespace: String, capacity: f64, source: &'static str) -> CapacityTrend {
    CapacityTrend {
        status: "insufficient_data",
        namespace,
        resource: "memory",
        current_usage_bytes: 0.0,
        capacity_bytes: capacity,
        capacity_source: source,
        daily_growth_bytes: 0.0,
        days_until_85_percent: -1,
        forecasted_exhaustion_days: -1,
        projected_exhaustion_date: String::new(),
        recommended_replica_increase: 0,
        confidence: 0.0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_until_a_level() {
        use super::days_until;
        assert_eq!(days_until(50.0, 85.0, 5.0), 7);
        assert_eq!(days_until(90.0, 85.0, 5.0), 0);
        assert_eq!(days_until(50.0, 85.0, 0.0), -1);
        assert_eq!(days_until(50.0, 85.0, -1.0), -1);
    }
}

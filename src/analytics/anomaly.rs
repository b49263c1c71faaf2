//! `POST /api/v1/anomalies/analyze`: each requested metric (a name of the catalog in
//! `metrics_catalog`, or a raw series) per pod over the time range, as a feature vector
//! `[last, mean, stddev, z]` scored by the anomaly-detector (or, when no model is configured or
//! it is down, by the z-score alone: `min(1, |z| / 5)`, so 0.3 ≈ 1.5σ and 0.7 ≈ 3.5σ). CPU and
//! CPU throttling also yield throttling anomalies (CFS throttled periods at or above the
//! threshold), and the enriched signals (throttling, HTTP errors and p99) come with the answer.
//! A metric with no series in the scope is named in the answer's `message`, not refused.

use super::metrics_catalog::{Metric, QueryContext};
use super::prometheus::{Prometheus, Series};
use super::{AnalyticsError, matcher};
use crate::ml::Models;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

/// What to analyse, already validated.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub deployment: Option<String>,
    /// `key=value` pairs (kube-state-metrics pod labels).
    pub labels: Vec<(String, String)>,
}

impl Scope {
    fn selector(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ns) = &self.namespace {
            out.push(matcher("namespace", ns));
        }
        if let Some(pod) = &self.pod {
            out.push(matcher("pod", pod));
        }
        if let Some(deployment) = &self.deployment {
            // Validated object names: `.` is the only regex metacharacter they can hold.
            out.push(format!("pod=~\"{}-.*\"", deployment.replace('.', "\\\\.")));
        }
        out
    }

    /// The scope in words, for messages.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ns) = &self.namespace {
            parts.push(format!("namespace {ns}"));
        }
        if let Some(pod) = &self.pod {
            parts.push(format!("pod {pod}"));
        }
        if let Some(deployment) = &self.deployment {
            parts.push(format!("deployment {deployment}"));
        }
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("pods labelled {}", labels.join(",")));
        }
        if parts.is_empty() {
            "the whole cluster".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Restricts a `(namespace, pod)` vector to pods with the selector's labels.
    fn with_labels(&self, query: String) -> String {
        if self.labels.is_empty() {
            return query;
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let key: String = k
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                matcher(&format!("label_{key}"), v)
            })
            .collect();
        format!(
            "({query}) * on (namespace, pod) group_left() max by (namespace, pod) (kube_pod_labels{{{}}})",
            labels.join(",")
        )
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Anomaly {
    pub metric: String,
    /// `spike`, `drop` or `throttling`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `critical`, `high`, `medium`, `low`.
    pub severity: String,
    pub timestamp: String,
    pub model: String,
    /// Starts with `namespace/pod` (the MCP server's get-throttled-pods splits it there).
    pub explanation: String,
    pub recommended_action: String,
    pub anomaly_score: f64,
    pub confidence: f64,
    pub value: f64,
    pub expected_min: f64,
    pub expected_max: f64,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub severity: String,
    pub action_required: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub total_metrics_analyzed: i64,
    pub anomalies_found: i64,
    pub models_used: Vec<String>,
    pub by_severity: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrichedSignals {
    /// Fraction of CFS periods throttled (0–1).
    pub cpu_throttle_rate: Option<f64>,
    /// Fraction of HTTP requests answered 5xx (0–1).
    pub http_error_rate: Option<f64>,
    pub http_response_time_p99_ms: Option<f64>,
    pub throttling_detected: bool,
    pub http_degraded: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Analysis {
    pub status: &'static str,
    pub time_range: String,
    pub analyzed_at: String,
    pub anomalies_detected: i64,
    pub threshold: f64,
    pub anomalies: Vec<Anomaly>,
    pub recommendations: Vec<String>,
    pub alerts: Vec<Alert>,
    pub summary: Summary,
    pub enriched_signals: EnrichedSignals,
    /// The requested metrics that matched no series in the scope over the range (an answer,
    /// not an error: a name may be valid and simply not exported here).
    pub metrics_without_data: Vec<String>,
    /// Says which metrics had no data and which series they need; absent when all had data.
    /// Not in the MCP server's struct, so its Go client ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

pub fn severity(score: f64) -> &'static str {
    match score {
        s if s >= 0.9 => "critical",
        s if s >= 0.7 => "high",
        s if s >= 0.5 => "medium",
        _ => "low",
    }
}

/// `[last, mean, stddev, z]` of a series.
pub fn features(points: &[(f64, f64)]) -> Option<[f64; 4]> {
    let (_, last) = *points.last()?;
    let n = points.len() as f64;
    let mean = points.iter().map(|p| p.1).sum::<f64>() / n;
    let variance = points.iter().map(|p| (p.1 - mean).powi(2)).sum::<f64>() / n;
    let std = variance.sqrt();
    let z = if std > 0.0 { (last - mean) / std } else { 0.0 };
    Some([last, mean, std, z])
}

/// The z-score's own anomaly score.
pub fn z_score(z: f64) -> f64 {
    (z.abs() / 5.0).min(1.0)
}

/// A model's answer as a score: a probability in 0–1 is taken as is; IsolationForest-style
/// labels (`-1` anomaly, `1` normal) become 1 or 0.
pub fn model_score(prediction: &serde_json::Value) -> Option<f64> {
    let first = first_number(prediction)?;
    let value = first.as_f64()?;
    // Labels are integers; a probability of exactly 1.0 is a float.
    let label = first.is_i64() || first.is_u64();
    Some(match (label, value) {
        (true, -1.0) => 1.0,
        (true, 1.0) => 0.0,
        _ => value.clamp(0.0, 1.0),
    })
}

/// The first JSON number of a prediction (itself, or inside an array, or the `score` /
/// `anomaly_score` / `probability` field of an object).
fn first_number(prediction: &serde_json::Value) -> Option<&serde_json::Value> {
    use serde_json::Value;
    match prediction {
        Value::Number(_) => Some(prediction),
        Value::Array(items) => items.first().and_then(first_number),
        Value::Object(fields) => ["score", "anomaly_score", "probability"]
            .iter()
            .find_map(|k| fields.get(*k))
            .and_then(first_number),
        _ => None,
    }
}

/// What to do about a drop, whatever the metric.
const ON_DROP: &str =
    "check the pod is still serving: a sudden drop often means it stopped working";

/// `namespace/pod` (what get-throttled-pods splits on); a raw series may have neither label.
fn label(series: &Series) -> String {
    match (series.label("namespace"), series.label("pod")) {
        ("", "") => "cluster".to_string(),
        (namespace, "") => namespace.to_string(),
        (namespace, pod) => format!("{namespace}/{pod}"),
    }
}

async fn scalar(prometheus: &Prometheus, query: String) -> Result<Option<f64>, AnalyticsError> {
    Ok(prometheus
        .instant(&query)
        .await?
        .first()
        .map(|s| s.value)
        .filter(|v| v.is_finite()))
}

#[allow(clippy::too_many_arguments)]
pub async fn analyze(
    prometheus: &Prometheus,
    models: &Models,
    scope: &Scope,
    metrics: &[Metric],
    range: Duration,
    range_text: &str,
    threshold: f64,
) -> Result<Analysis, AnalyticsError> {
    let selector = scope.selector().join(",");
    let step = Duration::from_secs((range.as_secs() / 60).max(15));
    let window = format!("{}s", step.as_secs().max(300));
    let context = QueryContext {
        selector: &selector,
        window: &window,
    };
    let mut without_data: Vec<&Metric> = Vec::new();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut anomalies = Vec::new();
    let mut analysed = 0i64;
    let mut models_used = std::collections::BTreeSet::new();
    for metric in metrics {
        let series = prometheus
            .range(&scope.with_labels(metric.query(&context)), range, step)
            .await?;
        let vectors: Vec<(Series, [f64; 4])> = series
            .into_iter()
            .filter_map(|s| {
                let f = features(&s.points)?;
                Some((s, f))
            })
            .collect();
        analysed += vectors.len() as i64;
        if vectors.is_empty() {
            without_data.push(metric);
            continue;
        }
        // One call per metric: every pod's vector as one instance.
        let instances: Vec<[f64; 4]> = vectors.iter().map(|(_, f)| *f).collect();
        let scored: Vec<(f64, &str)> = match &models.anomaly_detector {
            Some(model) => match model.predict(json!(instances)).await {
                Ok(predictions) if predictions.len() == vectors.len() => predictions
                    .iter()
                    .zip(&vectors)
                    .map(|(p, (_, f))| {
                        (
                            model_score(p).unwrap_or_else(|| z_score(f[3])),
                            crate::ml::ANOMALY_DETECTOR,
                        )
                    })
                    .collect(),
                _ => vectors
                    .iter()
                    .map(|(_, f)| (z_score(f[3]), "zscore"))
                    .collect(),
            },
            None => vectors
                .iter()
                .map(|(_, f)| (z_score(f[3]), "zscore"))
                .collect(),
        };
        for ((series, [last, mean, std, z]), (score, model)) in vectors.iter().zip(scored) {
            models_used.insert(model.to_string());
            if score < threshold {
                continue;
            }
            let spike = *z >= 0.0;
            anomalies.push(Anomaly {
                metric: metric.name().to_string(),
                kind: if spike { "spike" } else { "drop" }.into(),
                severity: severity(score).into(),
                timestamp: now.clone(),
                model: model.into(),
                explanation: format!(
                    "{}: {} {last:.4} is {:.1}σ {} its {range_text} mean {mean:.4}",
                    label(series),
                    metric.name(),
                    z.abs(),
                    if spike { "above" } else { "below" }
                ),
                recommended_action: if spike { metric.on_spike() } else { ON_DROP }.into(),
                anomaly_score: score,
                confidence: (series.points.len() as f64 / 30.0).min(1.0),
                value: *last,
                expected_min: mean - 2.0 * std,
                expected_max: mean + 2.0 * std,
                metrics: BTreeMap::from([("z_score".to_string(), *z), ("mean".to_string(), *mean)]),
            });
        }
        if metric.throttling() {
            let w = format!("{}s", range.as_secs());
            let throttled = prometheus
                .instant(&scope.with_labels(format!(
                    "sum by (namespace, pod) (increase(container_cpu_cfs_throttled_periods_total{{{selector}}}[{w}])) / sum by (namespace, pod) (increase(container_cpu_cfs_periods_total{{{selector}}}[{w}]))"
                )))
                .await?;
            for sample in throttled
                .into_iter()
                .filter(|s| s.value.is_finite() && s.value >= threshold)
            {
                let pod = format!(
                    "{}/{}",
                    sample
                        .labels
                        .get("namespace")
                        .map(String::as_str)
                        .unwrap_or_default(),
                    sample
                        .labels
                        .get("pod")
                        .map(String::as_str)
                        .unwrap_or_default()
                );
                anomalies.push(Anomaly {
                    metric: "cpu_throttling".into(),
                    kind: "throttling".into(),
                    severity: severity(sample.value).into(),
                    timestamp: now.clone(),
                    model: "cfs".into(),
                    explanation: format!(
                        "{pod}: throttled in {:.0}% of CFS periods over {range_text}",
                        sample.value * 100.0
                    ),
                    recommended_action:
                        "raise the CPU limit (or remove it) or spread the load over more replicas"
                            .into(),
                    anomaly_score: sample.value,
                    confidence: 1.0,
                    value: sample.value,
                    expected_min: 0.0,
                    expected_max: 0.1,
                    metrics: BTreeMap::from([("throttle_rate_pct".to_string(), sample.value)]),
                });
            }
        }
    }
    anomalies.sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
    let enriched = enriched(prometheus, &selector, range).await?;
    let mut by_severity: BTreeMap<String, i64> = BTreeMap::new();
    for a in &anomalies {
        *by_severity.entry(a.severity.clone()).or_default() += 1;
    }
    let mut recommendations: Vec<String> = Vec::new();
    for a in &anomalies {
        let line = format!(
            "{}: {}",
            a.explanation.split(':').next().unwrap_or_default(),
            a.recommended_action
        );
        if !recommendations.contains(&line) {
            recommendations.push(line);
        }
    }
    let alerts = anomalies
        .iter()
        .filter(|a| matches!(a.severity.as_str(), "critical" | "high"))
        .map(|a| Alert {
            kind: a.kind.clone(),
            message: a.explanation.clone(),
            severity: a.severity.clone(),
            action_required: true,
        })
        .collect();
    let message = (!without_data.is_empty()).then(|| {
        let each: Vec<String> = without_data
            .iter()
            .map(|m| format!("{} (needs {})", m.name(), m.needs()))
            .collect();
        format!(
            "no data over {range_text} in {} for: {}",
            scope.describe(),
            each.join("; ")
        )
    });
    Ok(Analysis {
        status: "success",
        time_range: range_text.into(),
        analyzed_at: now,
        anomalies_detected: anomalies.len() as i64,
        threshold,
        summary: Summary {
            total_metrics_analyzed: analysed,
            anomalies_found: anomalies.len() as i64,
            models_used: models_used.into_iter().collect(),
            by_severity,
        },
        anomalies,
        recommendations,
        alerts,
        enriched_signals: enriched,
        metrics_without_data: without_data.iter().map(|m| m.name().to_string()).collect(),
        message,
    })
}

async fn enriched(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_and_scores() {
        let points: Vec<(f64, f64)> = (0..9)
            .map(|i| (i as f64, 1.0))
            .chain([(9.0, 11.0)])
            .collect();
        let [last, mean, std, z] = features(&points).expect("features");
        assert_eq!((last, mean), (11.0, 2.0));
        assert!((std - 3.0).abs() < 1e-9);
        assert!((z - 3.0).abs() < 1e-9);
        assert!((z_score(z) - 0.6).abs() < 1e-9);
        assert_eq!(z_score(-10.0), 1.0);
        assert_eq!(model_score(&json!(-1)), Some(1.0));
        assert_eq!(model_score(&json!(1)), Some(0.0));
        assert_eq!(model_score(&json!(0.42)), Some(0.42));
        assert_eq!(model_score(&json!([0.8])), Some(0.8));
        assert_eq!(
            model_score(&json!([1.0])),
            Some(1.0),
            "a certain anomaly, not a label"
        );
        assert_eq!(model_score(&json!({"score": 1.0})), Some(1.0));
        assert_eq!(model_score(&json!([-1])), Some(1.0));
        assert_eq!(severity(0.95), "critical");
        assert_eq!(severity(0.3), "low");
    }

    #[test]
    fn the_scope_becomes_escaped_matchers_and_a_label_join() {
        let scope = Scope {
            namespace: Some("shop".into()),
            pod: None,
            deployment: Some("web.v2".into()),
            labels: vec![("app.kubernetes.io/name".into(), "web\"".into())],
        };
        assert_eq!(
            scope.selector(),
            vec![
                r#"namespace="shop""#.to_string(),
                r#"pod=~"web\\.v2-.*""#.to_string()
            ]
        );
        assert!(
            scope
                .with_labels("q".into())
                .contains(r#"kube_pod_labels{label_app_kubernetes_io_name="web\""}"#)
        );
    }
}

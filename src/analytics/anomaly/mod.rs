//! `POST /api/v1/anomalies/analyze`: each requested metric (a name of the catalog in
//! `metrics_catalog`, or a raw series) per pod over the time range, as a feature vector
//! `[last, mean, stddev, z]` scored by the anomaly-detector (or, when no model is configured or
//! it is down, by the z-score alone: `min(1, |z| / 5)`, so 0.3 ≈ 1.5σ and 0.7 ≈ 3.5σ). CPU and
//! CPU throttling also yield throttling anomalies (CFS throttled periods at or above the
//! threshold), and the enriched signals (throttling, HTTP errors and p99) come with the answer.
//! A metric with no series in the scope is named in the answer's `message`, not refused.

mod enriched;
mod report;
mod scope;
mod score;
#[cfg(test)]
mod tests;

pub use scope::Scope;
pub use score::{features, model_score, severity, z_score};

use super::AnalyticsError;
use super::metrics_catalog::{Metric, QueryContext};
use super::prometheus::{Prometheus, Sample, Series};
use crate::ml::Models;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use utoipa::ToSchema;

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

/// One analysis: what every metric's queries and anomalies share.
struct Run<'a> {
    prometheus: &'a Prometheus,
    models: &'a Models,
    scope: &'a Scope,
    /// The scope's matchers, comma-separated.
    selector: &'a str,
    context: QueryContext<'a>,
    range: Duration,
    step: Duration,
    range_text: &'a str,
    threshold: f64,
    /// The timestamp of every anomaly found.
    now: String,
}

/// What the metrics yielded so far.
#[derive(Default)]
struct Findings<'m> {
    anomalies: Vec<Anomaly>,
    /// Series scored, over all metrics.
    analysed: i64,
    models_used: BTreeSet<String>,
    without_data: Vec<&'m Metric>,
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
    let run = Run {
        prometheus,
        models,
        scope,
        selector: &selector,
        context: QueryContext {
            selector: &selector,
            window: &window,
        },
        range,
        step,
        range_text,
        threshold,
        now: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let mut found = Findings::default();
    for metric in metrics {
        run.analyze_metric(metric, &mut found).await?;
    }
    found
        .anomalies
        .sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
    let enriched = enriched::enriched(prometheus, &selector, range).await?;
    Ok(run.answer(found, enriched))
}

impl Run<'_> {
    /// Scores every pod's series of one metric; a metric without series is only noted (said
    /// in the answer's message), not an error.
    async fn analyze_metric<'m>(
        &self,
        metric: &'m Metric,
        found: &mut Findings<'m>,
    ) -> Result<(), AnalyticsError> {
        let vectors = self.feature_vectors(metric).await?;
        found.analysed += vectors.len() as i64;
        if vectors.is_empty() {
            found.without_data.push(metric);
            return Ok(());
        }
        let instances: Vec<[f64; 4]> = vectors.iter().map(|(_, f)| *f).collect();
        let scored = score::score_all(self.models, &instances).await;
        for ((series, features), (score, model)) in vectors.iter().zip(scored) {
            found.models_used.insert(model.to_string());
            if score >= self.threshold {
                let anomaly = self.spike_or_drop(metric, series, features, score, model);
                found.anomalies.push(anomaly);
            }
        }
        if metric.throttling() {
            found.anomalies.extend(self.throttled_pods().await?);
        }
        Ok(())
    }

    /// The metric's series over the range, each with its `[last, mean, stddev, z]`.
    async fn feature_vectors(
        &self,
        metric: &Metric,
    ) -> Result<Vec<(Series, [f64; 4])>, AnalyticsError> {
        let query = self.scope.with_labels(metric.query(&self.context));
        let series = self.prometheus.range(&query, self.range, self.step).await?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                let f = features(&s.points)?;
                Some((s, f))
            })
            .collect())
    }

    fn spike_or_drop(
        &self,
        metric: &Metric,
        series: &Series,
        [last, mean, std, z]: &[f64; 4],
        score: f64,
        model: &str,
    ) -> Anomaly {
        let spike = *z >= 0.0;
        Anomaly {
            metric: metric.name().to_string(),
            kind: if spike { "spike" } else { "drop" }.into(),
            severity: severity(score).into(),
            timestamp: self.now.clone(),
            model: model.into(),
            explanation: format!(
                "{}: {} {last:.4} is {:.1}σ {} its {} mean {mean:.4}",
                label(series),
                metric.name(),
                z.abs(),
                if spike { "above" } else { "below" },
                self.range_text
            ),
            recommended_action: if spike { metric.on_spike() } else { ON_DROP }.into(),
            anomaly_score: score,
            confidence: (series.points.len() as f64 / 30.0).min(1.0),
            value: *last,
            expected_min: mean - 2.0 * std,
            expected_max: mean + 2.0 * std,
            metrics: BTreeMap::from([("z_score".to_string(), *z), ("mean".to_string(), *mean)]),
        }
    }

    /// Pods throttled in at least `threshold` of their CFS periods over the range.
    async fn throttled_pods(&self) -> Result<Vec<Anomaly>, AnalyticsError> {
        let (selector, w) = (self.selector, format!("{}s", self.range.as_secs()));
        let throttled = self
            .prometheus
            .instant(&self.scope.with_labels(format!(
                "sum by (namespace, pod) (increase(container_cpu_cfs_throttled_periods_total{{{selector}}}[{w}])) / sum by (namespace, pod) (increase(container_cpu_cfs_periods_total{{{selector}}}[{w}]))"
            )))
            .await?;
        Ok(throttled
            .into_iter()
            .filter(|s| s.value.is_finite() && s.value >= self.threshold)
            .map(|sample| self.throttling(&sample))
            .collect())
    }

    fn throttling(&self, sample: &Sample) -> Anomaly {
        let label = |key: &str| {
            sample
                .labels
                .get(key)
                .map(String::as_str)
                .unwrap_or_default()
        };
        let pod = format!("{}/{}", label("namespace"), label("pod"));
        Anomaly {
            metric: "cpu_throttling".into(),
            kind: "throttling".into(),
            severity: severity(sample.value).into(),
            timestamp: self.now.clone(),
            model: "cfs".into(),
            explanation: format!(
                "{pod}: throttled in {:.0}% of CFS periods over {}",
                sample.value * 100.0,
                self.range_text
            ),
            recommended_action:
                "raise the CPU limit (or remove it) or spread the load over more replicas".into(),
            anomaly_score: sample.value,
            confidence: 1.0,
            value: sample.value,
            expected_min: 0.0,
            expected_max: 0.1,
            metrics: BTreeMap::from([("throttle_rate_pct".to_string(), sample.value)]),
        }
    }
}

//! Resource-usage prediction with the predictive-analytics model (the MCP server's
//! predict-resource-usage tool): the current usage (Prometheus', else the client's estimate),
//! the model's `[cpu, memory, confidence?]` for a future hour, and what that means (trend,
//! recommendation).

use super::kserve::{Model, ModelError, numbers};
use crate::analytics::AnalyticsError;
use crate::analytics::prometheus::Prometheus;
use crate::analytics::usage::{self, Objects, Scope};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A prediction request, its fields checked by the caller.
#[derive(Debug, Clone)]
pub struct UsageRequest {
    pub hour: i64,
    /// Monday = 0 … Sunday = 6.
    pub day_of_week: i64,
    /// As sent (one of [`Scope`]'s words).
    pub scope_name: String,
    pub scope: Scope,
    pub objects: Objects,
    /// The client's estimates (percent), used when Prometheus has no measurement; checked
    /// only then.
    pub cpu_estimate: Option<f64>,
    pub memory_estimate: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Prometheus(#[from] AnalyticsError),
    /// A client estimate that is not a percentage.
    #[error("{field}: must be a percentage")]
    Estimate { field: &'static str },
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model answered, but not with two numbers.
    #[error("{0}")]
    NoPrediction(String),
}

#[derive(Serialize, ToSchema)]
pub struct Percentages {
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    /// The model's own confidence, when it gives one (a third number).
    pub confidence: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct CurrentMetrics {
    pub cpu_rolling_mean: f64,
    pub memory_rolling_mean: f64,
    pub timestamp: String,
    /// `prometheus` (measured) or `request` (the client's estimate).
    pub source: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct TargetTime {
    pub hour: i64,
    pub day_of_week: i64,
    pub iso_timestamp: String,
}

#[derive(Serialize, ToSchema)]
pub struct Prediction {
    pub status: &'static str,
    pub scope: String,
    pub target: String,
    pub predictions: Percentages,
    pub model_info: ModelInfo,
    pub current_metrics: CurrentMetrics,
    pub target_time: TargetTime,
    pub trend: &'static str,
    pub recommendation: String,
}

/// A client's estimate: absent is 0, otherwise a finite percentage up to 1000.
pub fn estimate(field: &'static str, value: Option<f64>) -> Result<f64, PredictError> {
    match value {
        None => Ok(0.0),
        Some(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => Ok(v),
        Some(_) => Err(PredictError::Estimate { field }),
    }
}

/// The next time at `hour` on `day_of_week` (Monday = 0) after `now`, in UTC, whole hours.
pub fn next_time(hour: i64, day_of_week: i64, now: DateTime<Utc>) -> String {
    use chrono::{Datelike, Duration, Timelike};
    let today = i64::from(now.weekday().num_days_from_monday());
    let mut days = (day_of_week - today).rem_euclid(7);
    if days == 0 && hour <= i64::from(now.hour()) {
        days = 7;
    }
    let at = (now + Duration::days(days))
        .with_hour(hour as u32)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .unwrap_or(now);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The model's numbers: `[cpu, memory, confidence?]`, or an object with those fields by name.
pub fn predicted_values(predictions: &[Value]) -> Vec<f64> {
    match predictions.first() {
        Some(Value::Object(fields)) => ["cpu_percent", "memory_percent", "confidence"]
            .iter()
            .map_while(|k| fields.get(*k).and_then(Value::as_f64))
            .collect(),
        Some(other) => numbers(other),
        None => Vec::new(),
    }
}

/// More than 10 % above now on either resource is `increasing`; more than 10 % below on both
/// is `decreasing`.
pub fn trend(cpu_now: f64, memory_now: f64, cpu: f64, memory: f64) -> &'static str {
    if cpu > cpu_now * 1.1 || memory > memory_now * 1.1 {
        "increasing"
    } else if cpu < cpu_now * 0.9 && memory < memory_now * 0.9 {
        "decreasing"
    } else {
        "stable"
    }
}

/// 85 % of the requests or more on either resource needs capacity; 20 % or less on both means
/// the requests could be lowered.
pub fn recommendation(cpu: f64, memory: f64) -> String {
    if cpu >= 85.0 || memory >= 85.0 {
        format!(
            "expect {cpu:.0}% CPU and {memory:.0}% memory of requests: add capacity or replicas before then"
        )
    } else if cpu <= 20.0 && memory <= 20.0 {
        "usage stays low: the requests could be lowered (see /api/v1/recommendations/rightsizing)"
            .into()
    } else {
        "no action needed".into()
    }
}

/// The usage now: measured by Prometheus when it is configured and answers, else the client's
/// estimate.
async fn current_usage(
    prometheus: Option<&Prometheus>,
    request: &UsageRequest,
) -> Result<(f64, f64, &'static str), PredictError> {
    if let Some(prometheus) = prometheus
        && let Some((cpu, memory)) = usage::measured(
            prometheus,
            &usage::selector(request.scope, &request.objects),
        )
        .await?
    {
        return Ok((cpu, memory, "prometheus"));
    }
    Ok((
        estimate("cpu_rolling_mean", request.cpu_estimate)?,
        estimate("memory_rolling_mean", request.memory_estimate)?,
        "request",
    ))
}

/// Asks `model` for the usage at the requested hour, from the usage now.
pub async fn predict(
    model: &Model,
    prometheus: Option<&Prometheus>,
    request: UsageRequest,
) -> Result<Prediction, PredictError> {
    let (cpu_now, memory_now, source) = current_usage(prometheus, &request).await?;
    let predictions = model
        .predict(serde_json::json!([[
            request.hour,
            request.day_of_week,
            cpu_now,
            memory_now
        ]]))
        .await?;
    let values = predicted_values(&predictions);
    let (Some(cpu), Some(memory)) = (values.first().copied(), values.get(1).copied()) else {
        return Err(PredictError::NoPrediction(format!(
            "{} answered no [cpu, memory] prediction: {predictions:?}",
            model.name
        )));
    };
    let now = Utc::now();
    Ok(Prediction {
        status: "success",
        target: usage::target_name(request.scope, &request.objects),
        scope: request.scope_name,
        predictions: Percentages {
            cpu_percent: cpu,
            memory_percent: memory,
        },
        model_info: ModelInfo {
            name: model.name.clone(),
            version: "v1".into(),
            confidence: values.get(2).copied(),
        },
        current_metrics: CurrentMetrics {
            cpu_rolling_mean: cpu_now,
            memory_rolling_mean: memory_now,
            timestamp: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source,
        },
        target_time: TargetTime {
            hour: request.hour,
            day_of_week: request.day_of_week,
            iso_timestamp: next_time(request.hour, request.day_of_week, now),
        },
        trend: trend(cpu_now, memory_now, cpu, memory),
        recommendation: recommendation(cpu, memory),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_trend_needs_ten_percent_either_way() {
        assert_eq!(trend(50.0, 50.0, 56.0, 50.0), "increasing");
        assert_eq!(trend(50.0, 50.0, 50.0, 56.0), "increasing");
        assert_eq!(trend(50.0, 50.0, 54.0, 54.0), "stable");
        assert_eq!(trend(50.0, 50.0, 44.0, 44.0), "decreasing");
        // Both must fall to call it decreasing.
        assert_eq!(trend(50.0, 50.0, 44.0, 50.0), "stable");
    }

    #[test]
    fn recommendations_follow_the_85_and_20_percent_thresholds() {
        assert_eq!(
            recommendation(85.0, 10.0),
            "expect 85% CPU and 10% memory of requests: add capacity or replicas before then"
        );
        assert!(recommendation(10.0, 90.4).starts_with("expect 10% CPU and 90% memory"));
        assert!(recommendation(20.0, 20.0).starts_with("usage stays low"));
        assert_eq!(recommendation(20.0, 21.0), "no action needed");
        assert_eq!(recommendation(84.9, 50.0), "no action needed");
    }

    #[test]
    fn the_model_answers_in_a_list_or_by_name() {
        assert_eq!(predicted_values(&[json!([61.0, 72.5])]), vec![61.0, 72.5]);
        assert_eq!(
            predicted_values(&[
                json!({"memory_percent": 2.0, "cpu_percent": 1.0, "confidence": 0.9})
            ]),
            vec![1.0, 2.0, 0.9]
        );
        // A named answer stops at the first missing field.
        assert_eq!(
            predicted_values(&[json!({"memory_percent": 2.0, "confidence": 0.9})]),
            Vec::<f64>::new()
        );
        assert!(predicted_values(&[]).is_empty());
    }

    #[test]
    fn the_target_time_is_the_next_such_hour_never_now() {
        // Wednesday 2026-12-02 10:30 UTC.
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 10, 30, 0).unwrap();
        assert_eq!(next_time(14, 2, now), "2026-12-02T14:00:00Z");
        assert_eq!(next_time(10, 2, now), "2026-12-09T10:00:00Z");
        assert_eq!(next_time(0, 0, now), "2026-12-07T00:00:00Z");
    }

    #[test]
    fn estimates_are_percentages_and_absent_is_zero() {
        assert_eq!(estimate("cpu_rolling_mean", None).unwrap(), 0.0);
        assert_eq!(estimate("cpu_rolling_mean", Some(1000.0)).unwrap(), 1000.0);
        for bad in [-1.0, 1000.1, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                estimate("cpu_rolling_mean", Some(bad)),
                Err(PredictError::Estimate {
                    field: "cpu_rolling_mean"
                })
            ));
        }
    }
}

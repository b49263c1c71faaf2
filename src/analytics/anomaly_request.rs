//! What an anomaly analysis may be asked (`POST /api/v1/anomalies/analyze`): a time range from
//! 5 m to 30 d (default 1 h), a score threshold from 0 to 1 (default 0.3), only the
//! anomaly-detector as model, at most 10 metrics (default cpu and memory; catalog names or
//! Prometheus metric names) and an equality label selector. Each failure names the field.

use super::metrics_catalog::{self, Metric};
use crate::validate::FieldError;
use std::time::Duration;

/// Metrics one analysis may ask for.
pub const MAX_METRICS: usize = 10;

/// The range to analyse and its text as asked (`1h` when none was).
pub fn time_range(text: Option<String>) -> Result<(Duration, String), FieldError> {
    let text = text
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "1h".into());
    crate::config::parse_duration(&text)
        .filter(|d| (Duration::from_secs(300)..=Duration::from_secs(30 * 86_400)).contains(d))
        .map(|range| (range, text))
        .ok_or_else(|| FieldError::new("time_range", "a duration from 5m to 30d, like 1h or 24h"))
}

/// The anomaly score above which a point is reported.
pub fn threshold(value: Option<f64>) -> Result<f64, FieldError> {
    let threshold = value.unwrap_or(0.3);
    if (0.0..=1.0).contains(&threshold) {
        Ok(threshold)
    } else {
        Err(FieldError::new("threshold", "must be from 0 to 1"))
    }
}

/// Only the anomaly-detector scores anomalies (blank means it).
pub fn model(name: Option<&str>) -> Result<(), FieldError> {
    match name.filter(|m| !m.is_empty()) {
        Some(model) if model != crate::ml::ANOMALY_DETECTOR => Err(FieldError::new(
            "model_name",
            format!("only {} is served", crate::ml::ANOMALY_DETECTOR),
        )),
        _ => Ok(()),
    }
}

/// `key=value,key2=value2` (equality only, like kube-state-metrics labels can answer).
pub fn label_selector(text: Option<&str>) -> Result<Vec<(String, String)>, FieldError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                FieldError::new("label_selector", format!("{pair:?} is not key=value"))
            })?;
            let key_ok = !k.is_empty()
                && k.len() <= 253
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
            let value_ok = v.len() <= 63
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if key_ok && value_ok {
                Ok((k.to_string(), v.to_string()))
            } else {
                Err(FieldError::new(
                    "label_selector",
                    format!("{pair:?} is not a label"),
                ))
            }
        })
        .collect()
}

/// Why the requested metrics were refused.
#[derive(Debug, PartialEq, Eq)]
pub enum MetricsError {
    TooMany,
    /// `metric` (as shown: clipped, it is the caller's text) is neither in the catalog nor a
    /// metric name; `message` says why and lists the catalog.
    Invalid {
        metric: String,
        message: String,
    },
}

/// The requested metrics, each a catalog name or a valid Prometheus metric name.
pub fn metrics(names: Option<Vec<String>>) -> Result<Vec<Metric>, MetricsError> {
    let names = match names {
        None => vec!["cpu".into(), "memory".into()],
        Some(names) if names.len() > MAX_METRICS => return Err(MetricsError::TooMany),
        Some(names) => names,
    };
    names
        .iter()
        .map(|name| {
            metrics_catalog::resolve(name).map_err(|why| {
                let metric = crate::clip::shown(name).into_owned();
                let known: Vec<&str> = metrics_catalog::CATALOG
                    .iter()
                    .map(|e| e.names[0])
                    .collect();
                MetricsError::Invalid {
                    message: format!("{metric:?} {why}; known metrics: {}", known.join(", ")),
                    metric,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_five_minutes_to_thirty_days_and_one_hour_by_default() {
        assert_eq!(
            time_range(None).unwrap(),
            (Duration::from_secs(3600), "1h".into())
        );
        assert_eq!(time_range(Some(" ".into())).unwrap().1, "1h");
        assert_eq!(time_range(Some("5m".into())).unwrap().0.as_secs(), 300);
        assert_eq!(
            time_range(Some("30d".into())).unwrap().0.as_secs(),
            2_592_000
        );
        for bad in ["4m", "31d", "soon"] {
            assert_eq!(
                time_range(Some(bad.into())).unwrap_err().field,
                "time_range"
            );
        }
    }

    #[test]
    fn the_threshold_is_a_score_and_the_model_is_the_anomaly_detector() {
        assert_eq!(threshold(None).unwrap(), 0.3);
        assert_eq!(threshold(Some(1.0)).unwrap(), 1.0);
        assert!(threshold(Some(1.01)).is_err());
        assert!(threshold(Some(f64::NAN)).is_err());
        assert!(model(None).is_ok() && model(Some("")).is_ok());
        assert!(model(Some("anomaly-detector")).is_ok());
        assert_eq!(model(Some("gpt")).unwrap_err().field, "model_name");
    }

    #[test]
    fn label_selectors_are_equalities_of_label_shaped_text() {
        assert_eq!(
            label_selector(Some("app=cart, tier=web")).unwrap_err(),
            FieldError::new("label_selector", "\" tier=web\" is not a label")
        );
        assert_eq!(
            label_selector(Some("app.kubernetes.io/name=cart,tier=web")).unwrap(),
            vec![
                ("app.kubernetes.io/name".into(), "cart".into()),
                ("tier".into(), "web".into())
            ]
        );
        assert!(label_selector(Some("app")).is_err());
        assert!(label_selector(Some("app=\"x\"}")).is_err());
        assert!(label_selector(None).unwrap().is_empty());
    }

    #[test]
    fn metrics_default_to_cpu_and_memory_and_unknown_ones_are_named() {
        assert_eq!(metrics(None).unwrap().len(), 2);
        assert_eq!(
            metrics(Some(vec!["x".into(); 11])).unwrap_err(),
            MetricsError::TooMany
        );
        let Err(MetricsError::Invalid { metric, message }) =
            metrics(Some(vec!["cpu".into(), "rate(x[5m])".into()]))
        else {
            panic!("a PromQL expression is not a metric");
        };
        assert_eq!(metric, "rate(x[5m])");
        assert!(message.contains("known metrics: cpu"), "{message}");
    }
}

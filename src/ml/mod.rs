//! KServe models (SPEC §7): the anomaly-detector (anomaly scores, and a layer classification
//! that refines keyword detection) and predictive-analytics (usage by hour and weekday). Every
//! call is bounded and behind a circuit breaker; ML down means keyword detection and a
//! `degraded` health, never a failed workflow.

pub mod discovery;
pub mod kserve;
pub mod predict;

use crate::config::Settings;
use crate::detect::Layer;
use kserve::Model;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub const ANOMALY_DETECTOR: &str = "anomaly-detector";
pub const PREDICTIVE_ANALYTICS: &str = "predictive-analytics";

/// Outcomes of `ml_layer_detection_total{outcome}`.
pub const LAYER_OUTCOMES: &[&str] = &["used", "low_confidence", "unavailable"];

/// The configured models (none when `ENABLE_KSERVE_INTEGRATION` is false).
#[derive(Default)]
pub struct Models {
    pub anomaly_detector: Option<Model>,
    pub predictive_analytics: Option<Model>,
    pub layer_confidence: f64,
}

/// What the anomaly-detector said about an incident's layer.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerVerdict {
    Used { layer: Layer, confidence: f64 },
    LowConfidence { layer: Layer, confidence: f64 },
    Unavailable(String),
}

impl LayerVerdict {
    pub fn outcome(&self) -> &'static str {
        match self {
            LayerVerdict::Used { .. } => "used",
            LayerVerdict::LowConfidence { .. } => "low_confidence",
            LayerVerdict::Unavailable(_) => "unavailable",
        }
    }
}

fn model(
    name: &str,
    service: Option<&String>,
    url: Option<&String>,
    model_name: Option<&String>,
    settings: &Settings,
) -> Result<Option<Model>, String> {
    // Unnamed, the served model is discovered; among several, the one named after the
    // InferenceService (or, with an explicit URL, after the model's role) is preferred.
    let (base, preferred) = match (url, service) {
        (Some(url), _) => (url.clone(), name.to_string()),
        (None, Some(service)) => kserve::service_url(service, &settings.kserve.namespace),
        (None, None) => return Ok(None),
    };
    Model::new(
        name,
        &base,
        model_name.map(String::as_str),
        &preferred,
        settings.kserve.timeout,
    )
    .map(|m| Some(m.with_open_for(settings.kserve.circuit_open)))
}

/// The first wait before a model that is not ready at startup is asked again.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two such tries.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The wait after `wait`: doubled, at most [`MAX_RETRY`].
fn next_wait(wait: Duration) -> Duration {
    (wait * 2).min(MAX_RETRY)
}

impl Models {
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let k = &settings.kserve;
        if let Some(url) = &settings.ml_service_url {
            tracing::warn!(
                %url,
                "ML_SERVICE_URL is ignored: the deprecated Python ML service is not called \
                 (docs/decisions/0010); configure KSERVE_ANOMALY_DETECTOR_SERVICE instead"
            );
        }
        if !k.enabled {
            return Ok(Models::default());
        }
        Ok(Models {
            anomaly_detector: model(
                ANOMALY_DETECTOR,
                k.anomaly_detector_service.as_ref(),
                k.anomaly_detector_url.as_ref(),
                k.anomaly_detector_model.as_ref(),
                settings,
            )?,
            predictive_analytics: model(
                PREDICTIVE_ANALYTICS,
                k.predictive_analytics_service.as_ref(),
                k.predictive_analytics_url.as_ref(),
                k.predictive_analytics_model.as_ref(),
                settings,
            )?,
            layer_confidence: k.layer_confidence,
        })
    }

    /// Asks each model for its name and readiness until it answers ready, waiting 1 s, 2 s, …
    /// up to 60 s between tries: a model deployed after the engine is found without a
    /// restart, and its name is known before the first incident needs it. Later outages are
    /// the circuit breaker's (and a 404's re-discovery's) business.
    pub fn spawn_readiness_watch(self: &Arc<Self>) {
        for name in self.all().map(|m| m.name.clone()) {
            let models = self.clone();
            tokio::spawn(async move {
                let Some(model) = models.get(&name) else {
                    return;
                };
                let mut wait = FIRST_RETRY;
                loop {
                    let answer = model.ready().await;
                    let what = model.describe();
                    let retry_in_s = wait.as_secs();
                    match answer {
                        Ok(true) => {
                            tracing::info!(url = %model.base_url, "KServe {what}: ready");
                            return;
                        }
                        Ok(false) => tracing::warn!(retry_in_s, "KServe {what}: not ready yet"),
                        Err(error) => {
                            tracing::warn!(retry_in_s, "KServe {what}: {}", error.reason())
                        }
                    }
                    tokio::time::sleep(wait).await;
                    wait = next_wait(wait);
                }
            });
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Model> {
        self.anomaly_detector
            .iter()
            .chain(self.predictive_analytics.iter())
    }

    pub fn get(&self, name: &str) -> Option<&Model> {
        self.all().find(|m| m.name == name)
    }

    /// Asks the anomaly-detector for the incident's layer: one instance
    /// `{"task": "layer", kind, namespace, alertname, text}`; the answer is
    /// `{"layer": …, "confidence": …}` or three probabilities (infrastructure, platform,
    /// application). `None` when no anomaly-detector is configured.
    pub async fn classify_layer(&self, features: Value) -> Option<LayerVerdict> {
        let model = self.anomaly_detector.as_ref()?;
        let mut instance = features;
        instance["task"] = json!("layer");
        let predictions = match model.predict(json!([instance])).await {
            Ok(p) => p,
            Err(error) => return Some(LayerVerdict::Unavailable(error.to_string())),
        };
        let Some((layer, confidence)) = predictions.first().and_then(parse_layer) else {
            return Some(LayerVerdict::Unavailable(format!(
                "{} answered no layer: {predictions:?}",
                model.name
            )));
        };
        Some(if confidence >= self.layer_confidence {
            LayerVerdict::Used { layer, confidence }
        } else {
            LayerVerdict::LowConfidence { layer, confidence }
        })
    }
}

/// `{"layer": "platform", "confidence": 0.9}` or `[p_infra, p_platform, p_app]`.
pub fn parse_layer(prediction: &Value) -> Option<(Layer, f64)> {
    if let Some(name) = prediction.get("layer").and_then(Value::as_str) {
        let layer = match name {
            "infrastructure" => Layer::Infrastructure,
            "platform" => Layer::Platform,
            "application" => Layer::Application,
            _ => return None,
        };
        let confidence = prediction
            .get("confidence")
            .map(kserve::numbers)
            .and_then(|n| n.first().copied())?;
        return Some((layer, confidence));
    }
    // Named probabilities, or three in the order infrastructure, platform, application.
    let probabilities: Vec<f64> = match prediction.as_object() {
        Some(fields) => ["infrastructure", "platform", "application"]
            .iter()
            .map(|k| fields.get(*k).and_then(Value::as_f64))
            .collect::<Option<Vec<f64>>>()?,
        None => kserve::numbers(prediction),
    };
    if probabilities.len() != 3 {
        return None;
    }
    let (index, best) = probabilities
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let layer = [Layer::Infrastructure, Layer::Platform, Layer::Application][index];
    Some((layer, best))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_is_asked_again_with_a_bounded_backoff() {
        let waits: Vec<u64> = std::iter::successors(Some(FIRST_RETRY), |w| Some(next_wait(*w)))
            .take(9)
            .map(|w| w.as_secs())
            .collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn layer_answers_in_either_shape() {
        assert_eq!(
            parse_layer(&json!({"layer": "platform", "confidence": 0.91})),
            Some((Layer::Platform, 0.91))
        );
        assert_eq!(
            parse_layer(&json!([0.1, 0.2, 0.7])),
            Some((Layer::Application, 0.7))
        );
        assert_eq!(
            parse_layer(&json!({"layer": "kernel", "confidence": 1})),
            None
        );
        assert_eq!(parse_layer(&json!([0.5, 0.5])), None);
        // By name, not in the (alphabetical) order of the object's keys.
        assert_eq!(
            parse_layer(&json!({"infrastructure": 0.1, "platform": 0.8, "application": 0.1})),
            Some((Layer::Platform, 0.8))
        );
    }
}

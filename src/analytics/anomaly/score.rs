//! Scoring a series: its feature vector, the z-score's own score, and a model's answer read
//! as a score.

use crate::ml::Models;
use serde_json::json;

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

/// One score and the name of what gave it per feature vector: the anomaly-detector in one
/// call for all of them (every pod's vector as one instance), or the z-score when no model is
/// configured, it fails, or it answers a different number of predictions.
pub(super) async fn score_all(models: &Models, vectors: &[[f64; 4]]) -> Vec<(f64, &'static str)> {
    let by_z_score = || vectors.iter().map(|f| (z_score(f[3]), "zscore")).collect();
    let Some(model) = &models.anomaly_detector else {
        return by_z_score();
    };
    match model.predict(json!(vectors)).await {
        Ok(predictions) if predictions.len() == vectors.len() => predictions
            .iter()
            .zip(vectors)
            .map(|(p, f)| {
                (
                    model_score(p).unwrap_or_else(|| z_score(f[3])),
                    crate::ml::ANOMALY_DETECTOR,
                )
            })
            .collect(),
        _ => by_z_score(),
    }
}

//! What crosses the wire: bounded JSON answers, predictions as numbers, predictor URLs.

use serde_json::Value;

/// At most `limit` bytes of a response, as JSON (the per-call timeout bounds the time).
pub(super) async fn read_json(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Value, String> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("answer larger than {limit} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("answer larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
}

/// A peer's JSON, shortened for an error message.
pub(super) fn clip(body: &Value) -> String {
    crate::clip::clip(&body.to_string(), 300).into_owned()
}

/// A prediction as numbers: `3`, `0.7`, `"0.7"`, `[0.1, 0.9]`, `{"score": 0.7}`. Object fields
/// come in key order (alphabetical): callers that need named fields read them by name.
pub fn numbers(prediction: &Value) -> Vec<f64> {
    match prediction {
        Value::Number(n) => n.as_f64().into_iter().collect(),
        Value::String(s) => s.trim().parse().ok().into_iter().collect(),
        Value::Bool(b) => vec![if *b { 1.0 } else { 0.0 }],
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Object(fields) => fields.values().flat_map(numbers).collect(),
        Value::Null => Vec::new(),
    }
}

/// The base URL of a KServe predictor service: `{service}-predictor` unless the name already
/// ends so (the Go engine's README shows both spellings).
pub fn service_url(service: &str, namespace: &str) -> (String, String) {
    let model = service.strip_suffix("-predictor").unwrap_or(service);
    (
        format!("http://{model}-predictor.{namespace}.svc:8080"),
        model.to_string(),
    )
}

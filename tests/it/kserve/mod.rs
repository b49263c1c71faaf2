//! The KServe client against the real KServe model server: readiness, float predictions, the
//! anomaly-detector refining layer detection, the model going away (the circuit opens,
//! detection falls back to keywords, health says degraded) and coming back (it closes); the
//! served model's name discovered (the seed serves each predictor's model as `model`), set
//! explicitly, or missing.

mod discovery;
mod serving;

use crate::helpers::{TestApp, spawn_app_with};
use serde_json::{Value, json};

/// Sends an alert whose summary is `summary` and returns its incident's plan.
pub(super) async fn plan_of_alert(app: &TestApp, fingerprint: &str, summary: &str) -> Value {
    let mut alert = crate::alertmanager::sample("alertmanager-sample.json");
    alert["alerts"][0]["fingerprint"] = json!(fingerprint);
    alert["alerts"][0]["annotations"]["summary"] = json!(summary);
    let incident_id = app.post_alert(&alert).await;
    let incident = app.incident_with_workflow(&incident_id).await;
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            incident["workflow_ids"][0].as_str().expect("workflow")
        ))
        .await;
    workflow["plan"].clone()
}

pub(super) fn model<'a>(models: &'a Value, name: &str) -> &'a Value {
    models["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {models}"))
}

/// An engine using the model server on `port` for both models, with `names` as
/// (KSERVE_ANOMALY_DETECTOR_MODEL, KSERVE_PREDICTIVE_ANALYTICS_MODEL).
pub(super) async fn using_models(port: u16, names: (Option<&str>, Option<&str>)) -> TestApp {
    let url = format!("http://127.0.0.1:{port}");
    spawn_app_with(|env| {
        env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
        env.insert("KSERVE_ANOMALY_DETECTOR_URL".into(), url.clone());
        env.insert("KSERVE_PREDICTIVE_ANALYTICS_URL".into(), url);
        env.insert("KSERVE_TIMEOUT".into(), "2s".into());
        env.insert("KSERVE_CIRCUIT_OPEN".into(), "1s".into());
        if let Some(name) = names.0 {
            env.insert("KSERVE_ANOMALY_DETECTOR_MODEL".into(), name.into());
        }
        if let Some(name) = names.1 {
            env.insert("KSERVE_PREDICTIVE_ANALYTICS_MODEL".into(), name.into());
        }
    })
    .await
}

pub(super) fn kserve_health(health: &Value) -> (String, String) {
    let kserve = &health["components"]["kserve"];
    (
        kserve["status"].as_str().unwrap_or_default().to_string(),
        kserve["message"].as_str().unwrap_or_default().to_string(),
    )
}

//! The chart's ML values: the Go engine's own install command (`--set mlServiceUrl=…`) renders,
//! the OpenShift values files install with KServe on (the seed's recommended install) and
//! their KServe environment is one the engine accepts, and model names reach the environment.

use crate::chart::{find, render};
use crate::peers::find_binary;
use serde_json::Value;
use std::collections::HashMap;

/// The engine container's environment, by name.
fn env_of(docs: &[Value]) -> HashMap<String, String> {
    let deployment = find(docs, "Deployment")[0];
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_string(),
                e["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn the_seeds_helm_command_with_ml_service_url_renders_and_sets_the_variable() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    // As the Go engine's README writes it.
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "image.repository=quay.io/takinosh/openshift-coordination-engine",
            "image.tag=latest",
            "mlServiceUrl=http://aiops-ml-service:8080",
        ],
    );
    let env = env_of(&docs);
    assert_eq!(
        env.get("ML_SERVICE_URL").map(String::as_str),
        Some("http://aiops-ml-service:8080")
    );
    // Embedded default: KServe off (decision 0001).
    assert_eq!(
        env.get("ENABLE_KSERVE_INTEGRATION").map(String::as_str),
        Some("false")
    );
    // Unset, the variable is absent rather than empty.
    assert!(!env_of(&render(&helm, "values.yaml", &[])).contains_key("ML_SERVICE_URL"));
}

#[test]
fn the_openshift_values_files_enable_kserve_with_settings_the_engine_accepts() {
    use coordination_engine::config::{self, Sources};
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    for values in [
        "values-ocp-4.18.yaml",
        "values-ocp-4.19.yaml",
        "values-ocp-4.20.yaml",
    ] {
        let env = env_of(&render(&helm, values, &[]));
        assert_eq!(
            env.get("ENABLE_KSERVE_INTEGRATION").map(String::as_str),
            Some("true"),
            "{values}"
        );
        // Only the ML part: the rest names files that exist in the pod, not here.
        let ml: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.contains("KSERVE") || k == "ML_SERVICE_URL")
            .collect();
        let settings = config::load(&Sources {
            files: Vec::new(),
            env: ml,
        })
        .unwrap_or_else(|e| panic!("{values}: the engine refuses its KServe settings: {e}"));
        assert!(settings.kserve.enabled);
        assert_eq!(
            settings.kserve.anomaly_detector_service.as_deref(),
            Some("anomaly-detector"),
            "{values}"
        );
        // Model names are discovered unless set.
        assert_eq!(settings.kserve.anomaly_detector_model, None, "{values}");
    }
}

#[test]
fn kserve_model_names_render_their_variables_and_bad_ones_are_refused() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let env = env_of(&render(
        &helm,
        "values-ocp-4.20.yaml",
        &[
            "kserve.anomalyDetectorModel=model",
            "kserve.predictiveAnalyticsModel=forecaster-v2",
        ],
    ));
    assert_eq!(
        env.get("KSERVE_ANOMALY_DETECTOR_MODEL").map(String::as_str),
        Some("model")
    );
    assert_eq!(
        env.get("KSERVE_PREDICTIVE_ANALYTICS_MODEL")
            .map(String::as_str),
        Some("forecaster-v2")
    );
    assert!(
        !env_of(&render(&helm, "values-ocp-4.20.yaml", &[]))
            .contains_key("KSERVE_ANOMALY_DETECTOR_MODEL")
    );
    // The schema refuses what the engine would refuse at startup, and unknown kserve keys.
    for bad in [
        "kserve.anomalyDetectorModel=../admin",
        "kserve.anomalyDetectorModels=model",
        "mlServiceUrl=aiops-ml-service:8080",
    ] {
        let output = std::process::Command::new(&helm)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["template", "ce", crate::chart::CHART, "--set", bad])
            .output()
            .expect("run helm");
        assert!(!output.status.success(), "{bad} was accepted");
    }
}

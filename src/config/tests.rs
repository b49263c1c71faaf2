//! Loading, layering, validation and printing of the settings.

use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        files: vec![],
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn yaml(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write yaml");
    file
}

#[test]
fn defaults_match_the_go_engine() {
    let s = load(&env(&[])).expect("defaults are valid");
    assert_eq!(s.port, 8080);
    assert_eq!(s.metrics_port, 9090);
    assert_eq!(s.namespace, "self-healing-platform");
    assert_eq!(s.kserve.timeout, std::time::Duration::from_secs(10));
    assert_eq!(s.tls.mode, TlsMode::Auto);
    assert_eq!(s.data_dir, PathBuf::from("data"));
}

#[test]
fn environment_overrides_files_which_override_defaults() {
    let low = yaml("port: 7000\nmetrics_port: 7001\n");
    let high = yaml("port: 7100\n");
    let mut sources = env(&[("METRICS_PORT", "7200")]);
    sources.files = vec![
        (low.path().to_path_buf(), true),
        (high.path().to_path_buf(), true),
    ];
    let s = load(&sources).expect("valid");
    assert_eq!((s.port, s.metrics_port), (7100, 7200));
}

#[test]
fn unknown_key_in_a_file_is_an_error() {
    let file = yaml("prot: 8080\n");
    let mut sources = env(&[]);
    sources.files = vec![(file.path().to_path_buf(), true)];
    let err = load(&sources).unwrap_err().to_string();
    assert!(err.contains("prot"), "{err}");
}

#[test]
fn missing_required_config_file_is_an_error() {
    let mut sources = env(&[]);
    sources.files = vec![(PathBuf::from("/nonexistent/ce.yaml"), true)];
    assert!(load(&sources).is_err());
}

#[test]
fn bad_values_name_their_key_and_value() {
    let cases = [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("TLS_MODE", "bogus"),
        ("LOG_FORMAT", "xml"),
        ("KSERVE_TIMEOUT", "soon"),
        ("ENABLE_KSERVE_INTEGRATION", "maybe"),
        ("ARGOCD_API_URL", "argocd:8080"),
        ("NAMESPACE", "Not_A_Namespace"),
        ("LOG_LEVEL", "info,=="),
        // Past the bounds: these overflowed time arithmetic (a panic) before.
        ("LEASE_TTL", "1000000000d"),
        ("LEASE_TTL", "25h"),
        ("INCIDENT_RETENTION_DAYS", "4000000000"),
        ("INCIDENT_RETENTION_DAYS", "3651"),
        ("SHUTDOWN_TIMEOUT", "3651d"),
        ("DENIAL_INCIDENT_TTL", "99999999999h"),
        ("BODY_READ_TIMEOUT", "1000000000000s"),
        ("MAX_UNAVAILABLE_NODES", "5001"),
        ("DENIAL_INCIDENTS_PER_MINUTE", "10001"),
    ];
    for (key, value) in cases {
        let err = load(&env(&[(key, value)]))
            .expect_err(&format!("{key}={value} must be rejected"))
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
        assert!(err.contains(value), "{key}: {err}");
    }
}

#[test]
fn values_at_their_bounds_are_accepted() {
    let settings = load(&env(&[
        ("LEASE_TTL", "24h"),
        ("INCIDENT_RETENTION_DAYS", "3650"),
        ("DENIAL_INCIDENT_TTL", "3650d"),
        ("MAX_UNAVAILABLE_NODES", "5000"),
        ("DENIAL_INCIDENTS_PER_MINUTE", "10000"),
    ]))
    .expect("values at their bounds");
    assert_eq!(
        settings.channels.lease_ttl,
        std::time::Duration::from_secs(24 * 3600)
    );
    assert_eq!(settings.incident_retention_days, 3650);
    let err = load(&env(&[("LEASE_TTL", "1000000000d")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("at most 24h"), "{err}");
}

#[test]
fn port_equal_to_metrics_port_is_an_error() {
    let err = load(&env(&[("PORT", "9090")])).unwrap_err().to_string();
    assert!(err.contains("METRICS_PORT"), "{err}");
}

#[test]
fn kserve_enabled_without_a_model_is_an_error() {
    let err = load(&env(&[("ENABLE_KSERVE_INTEGRATION", "true")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("KSERVE_ANOMALY_DETECTOR_SERVICE"), "{err}");
    let ok = load(&env(&[
        ("ENABLE_KSERVE_INTEGRATION", "true"),
        ("KSERVE_ANOMALY_DETECTOR_SERVICE", "anomaly-detector"),
    ]));
    assert!(ok.is_ok());
    // ML_SERVICE_URL is not a KServe model (docs/decisions/0010).
    let err = load(&env(&[
        ("ENABLE_KSERVE_INTEGRATION", "true"),
        ("ML_SERVICE_URL", "http://aiops-ml-service:8080"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("KSERVE_ANOMALY_DETECTOR_SERVICE"), "{err}");
}

#[test]
fn kserve_model_names_are_checked_before_they_reach_a_url() {
    let s = load(&env(&[("KSERVE_ANOMALY_DETECTOR_MODEL", "model")])).expect("valid");
    assert_eq!(s.kserve.anomaly_detector_model.as_deref(), Some("model"));
    assert_eq!(s.kserve.predictive_analytics_model, None);
    for bad in ["../admin", "a/b", ".x", "a b"] {
        let err = load(&env(&[("KSERVE_PREDICTIVE_ANALYTICS_MODEL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kserve_predictive_analytics_model"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn tls_files_mode_needs_existing_files() {
    let err = load(&env(&[
        ("TLS_MODE", "files"),
        ("TLS_CERT_FILE", "/nonexistent/tls.crt"),
        ("TLS_KEY_FILE", "/nonexistent/tls.key"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("TLS_CERT_FILE"), "{err}");
    assert!(err.contains("/nonexistent/tls.crt"), "{err}");
    let err = load(&env(&[("TLS_MODE", "files")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS_CERT_FILE"), "{err}");
}

#[test]
fn audit_client_names_without_a_client_ca_are_an_error() {
    let err = load(&env(&[("AUDIT_CLIENT_NAMES", "kube-apiserver")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("AUDIT_CLIENT_CA_FILE"), "{err}");
    assert!(err.contains("kube-apiserver"), "{err}");
    let ca = yaml("not checked here beyond being readable\n");
    let ca_path = ca.path().to_string_lossy().to_string();
    let err = load(&env(&[
        ("AUDIT_CLIENT_NAMES", "kube-apiserver"),
        ("AUDIT_CLIENT_CA_FILE", &ca_path),
        ("TLS_MODE", "off"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(err.contains("TLS"), "{err}");
    let ok = load(&env(&[
        ("AUDIT_CLIENT_NAMES", "kube-apiserver"),
        ("AUDIT_CLIENT_CA_FILE", &ca_path),
    ]));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn secrets_are_redacted_when_printed() {
    let s = load(&env(&[("API_TOKEN", "s3cr3t-token-value")])).expect("valid");
    let printed = s.to_redacted_yaml();
    assert!(!printed.contains("s3cr3t"), "{printed}");
    assert!(printed.contains("api_token: \"<redacted>\""), "{printed}");
}

#[test]
fn the_shipped_default_yaml_documents_every_key_with_the_built_in_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
    let text = std::fs::read_to_string(&path).expect("config/default.yaml");
    for (key, _) in KEYS {
        assert!(
            text.contains(&format!("\n{key}:")),
            "{key} is documented in default.yaml"
        );
    }
    let mut sources = env(&[]);
    sources.files = vec![(path, true)];
    let from_file = load(&sources)
        .expect("default.yaml is valid")
        .to_redacted_yaml();
    let built_in = load(&env(&[])).expect("defaults").to_redacted_yaml();
    assert_eq!(from_file, built_in);
}

#[test]
fn empty_yaml_value_means_unset() {
    let file = yaml("argocd_api_url:\nport: 8081\n");
    let mut sources = env(&[]);
    sources.files = vec![(file.path().to_path_buf(), true)];
    let s = load(&sources).expect("valid");
    assert_eq!(s.argocd.api_url, None);
    assert_eq!(s.port, 8081);
}

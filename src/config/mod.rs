//! Settings: built-in defaults < `config/default.yaml` < `--config FILE` < environment.
//!
//! Keys are flat and snake_case; the environment variable of a key is its upper-case form
//! (`tls_cert_file` ↔ `TLS_CERT_FILE`), so every name of the Go engine (`PORT`,
//! `METRICS_PORT`, `KSERVE_TIMEOUT`, …) keeps working. Only known keys are read from the
//! environment, and an unknown key in a file is an error: a typo must not be silently ignored.

mod parse;
mod settings;

pub use parse::{ConfigError, env_name, format_duration, parse_duration};
pub use settings::{
    ArgoCdSettings, AuthSettings, ChannelSettings, CompatTriggerMode, GuardSettings,
    KServeSettings, LogFormat, Secret, Settings, TlsMode, TlsSettings,
};

use parse::RawValues;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Every configuration key, and whether its value is a secret (redacted when printed).
pub const KEYS: &[(&str, bool)] = &[
    ("bind_address", false),
    ("port", false),
    ("metrics_port", false),
    ("log_level", false),
    ("log_format", false),
    ("namespace", false),
    ("data_dir", false),
    ("tls_mode", false),
    ("tls_cert_file", false),
    ("tls_key_file", false),
    ("tls_reload_interval", false),
    ("api_token", true),
    ("api_token_file", false),
    ("kubeconfig", false),
    ("argocd_api_url", false),
    ("argocd_token", true),
    ("argocd_token_file", false),
    ("argocd_ca_file", false),
    ("argocd_sync_timeout", false),
    ("drain_timeout", false),
    ("max_unavailable_nodes", false),
    ("helm_bin", false),
    ("leased_actions", false),
    ("prometheus_url", false),
    ("prometheus_token_file", false),
    ("prometheus_ca_file", false),
    ("prometheus_timeout", false),
    ("lease_ttl", false),
    ("enable_kserve_integration", false),
    ("kserve_namespace", false),
    ("kserve_anomaly_detector_service", false),
    ("kserve_predictive_analytics_service", false),
    ("kserve_timeout", false),
    ("kserve_anomaly_detector_url", false),
    ("kserve_predictive_analytics_url", false),
    ("kserve_anomaly_detector_model", false),
    ("kserve_predictive_analytics_model", false),
    ("ml_layer_confidence", false),
    ("kserve_circuit_open", false),
    ("ml_service_url", false),
    ("shutdown_timeout", false),
    ("compat_http_port", false),
    ("incident_retention_days", false),
    ("store_busy_timeout", false),
    ("database_url", true),
    ("database_password_file", false),
    ("leader_election_lease", false),
    ("pod_name", false),
    ("alert_issue_types", false),
    ("pipeline_interval", false),
    ("workload_checkpoint_timeout", false),
    ("approval_required_actions", false),
    ("audit_client_ca_file", false),
    ("audit_protected_resources", false),
    ("service_account", false),
    ("argocd_namespaces", false),
    ("guard_mode", false),
    ("guard_namespace_modes", false),
    ("guard_disabled_namespaces", false),
    ("guard_exempt_users", false),
    ("guard_exempt_groups", false),
    ("guard_gitops_identities", false),
    ("guard_annotation_allow_list", false),
    ("guard_label_allow_list", false),
    ("body_read_timeout", false),
    ("header_read_timeout", false),
    ("tokenless_body_budget", false),
    ("compat_trigger_mode", false),
    ("audit_client_names", false),
    ("denial_incident_ttl", false),
    ("denial_incidents_per_minute", false),
];

/// The file loaded before `--config`, relative to the working directory, when it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/default.yaml";

/// Where the settings come from. Tests build one by hand instead of reading the process's.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Files in increasing priority; `(path, required)`.
    pub files: Vec<(PathBuf, bool)>,
    /// Environment variables (only known keys are looked at).
    pub env: HashMap<String, String>,
}

impl Sources {
    /// The process's sources: `config/default.yaml` if present, `--config` if given, the
    /// environment.
    pub fn from_process(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut files = vec![(PathBuf::from(DEFAULT_CONFIG_FILE), false)];
        if let Some(path) = config_file {
            files.push((path.to_path_buf(), true));
        }
        let mut env = HashMap::new();
        for (key, _) in KEYS {
            let name = env_name(key);
            match std::env::var(&name) {
                Ok(value) => {
                    env.insert(name, value);
                }
                Err(std::env::VarError::NotPresent) => {}
                Err(std::env::VarError::NotUnicode(raw)) => {
                    return Err(ConfigError::invalid(
                        key,
                        &raw.to_string_lossy(),
                        "the value is not valid UTF-8",
                    ));
                }
            }
        }
        Ok(Sources { files, env })
    }
}

/// Loads, layers and validates the settings.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    let mut builder = config::Config::builder();
    for (path, required) in &sources.files {
        if !required && !path.exists() {
            continue;
        }
        let file = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Yaml))
            .build()
            .map_err(|e| ConfigError::Source(format!("{}: {e}", path.display())))?;
        reject_unknown_keys(&file, &path.display().to_string())?;
        builder = builder.add_source(file);
    }
    for (key, _) in KEYS {
        if let Some(value) = sources.env.get(&env_name(key)) {
            builder = builder
                .set_override(*key, value.as_str())
                .map_err(|e| ConfigError::Source(e.to_string()))?;
        }
    }
    let merged = builder
        .build()
        .map_err(|e| ConfigError::Source(e.to_string()))?;
    Settings::from_raw(&to_raw(&merged)?)
}

fn reject_unknown_keys(file: &config::Config, origin: &str) -> Result<(), ConfigError> {
    let table = file
        .clone()
        .try_deserialize::<HashMap<String, config::Value>>()
        .map_err(|e| ConfigError::Source(format!("{origin}: {e}")))?;
    match table
        .keys()
        .find(|key| !KEYS.iter().any(|(known, _)| known == key))
    {
        Some(key) => Err(ConfigError::UnknownKey {
            key: key.clone(),
            origin: origin.to_string(),
        }),
        None => Ok(()),
    }
}

fn to_raw(merged: &config::Config) -> Result<RawValues, ConfigError> {
    let table = merged
        .clone()
        .try_deserialize::<HashMap<String, config::Value>>()
        .map_err(|e| ConfigError::Source(e.to_string()))?;
    let mut raw = RawValues::default();
    for (key, value) in table {
        let shown = value.to_string();
        // A null in YAML (`key:` with nothing after it) means "unset".
        if matches!(value.kind, config::ValueKind::Nil) {
            continue;
        }
        let text = value.into_string().map_err(|_| {
            ConfigError::invalid(&key, &shown, "expected a single value, not a list or map")
        })?;
        raw.0.insert(key, text);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
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
}

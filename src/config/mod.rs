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
mod tests;

//! Reading the settings from the raw values, key by key (defaults, ranges, names).

use super::*;
use crate::config::parse::{ConfigError, RawValues};
use std::net::{IpAddr, Ipv4Addr};

/// The actions `APPROVAL_REQUIRED_ACTIONS` may name.
const APPROVABLE_ACTIONS: &[&str] = &[
    "delete_pod",
    "rollout_restart",
    "rollback",
    "scale_up",
    "cordon",
    "drain",
    "restart_operator_pods",
];

impl Settings {
    /// Reads every key, in field order (so the first invalid key is the one reported), then
    /// validates the combination.
    pub(in crate::config) fn from_raw(raw: &RawValues) -> Result<Settings, ConfigError> {
        let settings = Settings {
            bind_address: raw.ip("bind_address", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?,
            port: raw.port("port", 8080)?,
            metrics_port: raw.port("metrics_port", 9090)?,
            log_level: log_level(raw)?,
            log_format: log_format(raw)?,
            namespace: dns_label(raw, "namespace", "self-healing-platform")?,
            data_dir: raw
                .path("data_dir")
                .unwrap_or_else(|| PathBuf::from("data")),
            tls: tls_settings(raw)?,
            auth: AuthSettings {
                api_token: raw.string("api_token").map(Secret::new),
                api_token_file: raw.path("api_token_file"),
            },
            kubeconfig: raw.string("kubeconfig"),
            argocd: argocd_settings(raw)?,
            prometheus: PrometheusSettings {
                url: raw.http_url("prometheus_url")?,
                token_file: raw.path("prometheus_token_file"),
                ca_file: raw.path("prometheus_ca_file"),
                timeout: raw.duration("prometheus_timeout", Duration::from_secs(30))?,
            },
            channels: channel_settings(raw)?,
            kserve: kserve_settings(raw)?,
            ml_service_url: raw.http_url("ml_service_url")?,
            shutdown_timeout: raw.duration("shutdown_timeout", Duration::from_secs(30))?,
            compat_http_port: raw.optional_port("compat_http_port")?,
            incident_retention_days: incident_retention_days(raw)?,
            store_busy_timeout: raw.duration("store_busy_timeout", Duration::from_secs(5))?,
            database_url: database_url(raw),
            database_password_file: raw.path("database_password_file"),
            leader_election_lease: dns_subdomain(
                raw,
                "leader_election_lease",
                "coordination-engine-leader",
            )?,
            pod_name: raw.string("pod_name").filter(|p| !p.is_empty()),
            alert_issue_types: alert_issue_types(raw)?,
            alert_issue_types_text: raw.string_or("alert_issue_types", ""),
            service_account: raw.string_or("service_account", "coordination-engine"),
            pipeline_interval: raw.duration("pipeline_interval", Duration::from_secs(1))?,
            approval_required_actions: actions(
                raw,
                "approval_required_actions",
                APPROVABLE_ACTIONS,
            )?,
            workload_checkpoint_timeout: raw
                .duration("workload_checkpoint_timeout", Duration::from_secs(120))?,
            audit_client_ca_file: raw.path("audit_client_ca_file"),
            audit_protected_resources: raw.list("audit_protected_resources"),
            argocd_namespaces: argocd_namespaces(raw),
            guard: guard_settings(raw)?,
            body_read_timeout: raw.duration("body_read_timeout", Duration::from_secs(10))?,
            header_read_timeout: raw.duration("header_read_timeout", Duration::from_secs(5))?,
            tokenless_body_budget: raw.parse_or(
                "tokenless_body_budget",
                crate::http::budget::DEFAULT_TOKENLESS_BODY_BUDGET,
                "a whole number of bytes",
            )?,
            compat_trigger_mode: compat_trigger_mode(raw)?,
            audit_client_names: raw.list("audit_client_names"),
            denial_incident_ttl: raw
                .duration("denial_incident_ttl", Duration::from_secs(24 * 3600))?,
            denial_incidents_per_minute: raw.number_at_most(
                "denial_incidents_per_minute",
                30,
                MAX_DENIALS_PER_MINUTE,
                "a whole number of incidents per minute (0 records none)",
            )?,
        };
        settings.validate()?;
        Ok(settings)
    }
}

fn log_format(raw: &RawValues) -> Result<LogFormat, ConfigError> {
    Ok(
        match raw
            .choice("log_format", "json", &["json", "text"])?
            .as_str()
        {
            "text" => LogFormat::Text,
            _ => LogFormat::Json,
        },
    )
}

fn tls_settings(raw: &RawValues) -> Result<TlsSettings, ConfigError> {
    Ok(TlsSettings {
        mode: match raw
            .choice("tls_mode", "auto", &["auto", "files", "off"])?
            .as_str()
        {
            "files" => TlsMode::Files,
            "off" => TlsMode::Off,
            _ => TlsMode::Auto,
        },
        cert_file: raw.path("tls_cert_file"),
        key_file: raw.path("tls_key_file"),
        reload_interval: raw.duration("tls_reload_interval", Duration::from_secs(5))?,
    })
}

fn argocd_settings(raw: &RawValues) -> Result<ArgoCdSettings, ConfigError> {
    Ok(ArgoCdSettings {
        api_url: raw.http_url("argocd_api_url")?,
        token: raw.string("argocd_token").map(Secret::new),
        token_file: raw.path("argocd_token_file"),
        ca_file: raw.path("argocd_ca_file"),
        sync_timeout: raw.duration("argocd_sync_timeout", Duration::from_secs(300))?,
    })
}

fn channel_settings(raw: &RawValues) -> Result<ChannelSettings, ConfigError> {
    Ok(ChannelSettings {
        drain_timeout: raw.duration("drain_timeout", Duration::from_secs(300))?,
        max_unavailable_nodes: raw.number_at_most(
            "max_unavailable_nodes",
            1,
            MAX_NODES,
            "a whole number of nodes (0 forbids cordoning)",
        )?,
        helm_bin: raw.path("helm_bin"),
        kubeconfig: raw.string("kubeconfig"),
        leased_actions: actions(raw, "leased_actions", &["scale_up", "rollout_restart"])?,
        lease_ttl: raw.duration_at_most("lease_ttl", Duration::from_secs(900), MAX_LEASE_TTL)?,
    })
}

fn kserve_settings(raw: &RawValues) -> Result<KServeSettings, ConfigError> {
    Ok(KServeSettings {
        enabled: raw.bool("enable_kserve_integration", false)?,
        namespace: dns_label(raw, "kserve_namespace", "self-healing-platform")?,
        anomaly_detector_service: raw.string("kserve_anomaly_detector_service"),
        predictive_analytics_service: raw.string("kserve_predictive_analytics_service"),
        anomaly_detector_url: raw.http_url("kserve_anomaly_detector_url")?,
        predictive_analytics_url: raw.http_url("kserve_predictive_analytics_url")?,
        anomaly_detector_model: model_name(raw, "kserve_anomaly_detector_model")?,
        predictive_analytics_model: model_name(raw, "kserve_predictive_analytics_model")?,
        timeout: raw.duration("kserve_timeout", Duration::from_secs(10))?,
        circuit_open: raw.duration("kserve_circuit_open", Duration::from_secs(30))?,
        layer_confidence: layer_confidence(raw)?,
    })
}

/// The minimum confidence of the layer classifier's answer, from 0 to 1.
fn layer_confidence(raw: &RawValues) -> Result<f64, ConfigError> {
    let text = raw.string_or("ml_layer_confidence", "0.7");
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|c| (0.0..=1.0).contains(c))
        .ok_or_else(|| ConfigError::invalid("ml_layer_confidence", &text, "a number from 0 to 1"))
}

fn incident_retention_days(raw: &RawValues) -> Result<u32, ConfigError> {
    raw.number_at_most(
        "incident_retention_days",
        90,
        MAX_RETENTION_DAYS,
        "a whole number of days (0 keeps incidents forever)",
    )
}

/// PostgreSQL's URL; empty means unset (SQLite).
fn database_url(raw: &RawValues) -> Option<Secret> {
    raw.string("database_url")
        .filter(|u| !u.is_empty())
        .map(Secret::new)
}

fn alert_issue_types(
    raw: &RawValues,
) -> Result<crate::sources::alertmanager::IssueTypes, ConfigError> {
    let text = raw.string_or("alert_issue_types", "");
    crate::sources::alertmanager::IssueTypes::with_overrides(&text)
        .map_err(|why| ConfigError::invalid("alert_issue_types", &text, why))
}

/// The namespaces ArgoCD's Applications live in; both usual ones when unset.
fn argocd_namespaces(raw: &RawValues) -> Vec<String> {
    let list = raw.list("argocd_namespaces");
    if list.is_empty() {
        vec!["argocd".into(), "openshift-gitops".into()]
    } else {
        list
    }
}

fn compat_trigger_mode(raw: &RawValues) -> Result<CompatTriggerMode, ConfigError> {
    Ok(
        match raw
            .choice(
                "compat_trigger_mode",
                "approval",
                &["approval", "dry_run", "live"],
            )?
            .as_str()
        {
            "dry_run" => CompatTriggerMode::DryRun,
            "live" => CompatTriggerMode::Live,
            _ => CompatTriggerMode::Approval,
        },
    )
}

fn guard_settings(raw: &RawValues) -> Result<GuardSettings, ConfigError> {
    let mode_text = raw.string_or("guard_mode", "enforce");
    let mode = mode_text
        .parse()
        .map_err(|why: String| ConfigError::invalid("guard_mode", &mode_text, why))?;
    let namespace_modes = raw
        .list("guard_namespace_modes")
        .into_iter()
        .map(|entry| {
            let (ns, m) = entry.split_once('=').ok_or_else(|| {
                ConfigError::invalid("guard_namespace_modes", &entry, "expected namespace=mode")
            })?;
            let mode = m.trim().parse().map_err(|why: String| {
                ConfigError::invalid("guard_namespace_modes", &entry, why)
            })?;
            Ok((ns.trim().to_string(), mode))
        })
        .collect::<Result<_, ConfigError>>()?;
    Ok(GuardSettings {
        mode,
        namespace_modes,
        disabled_namespaces: raw.list("guard_disabled_namespaces"),
        exempt_users: raw.list("guard_exempt_users"),
        exempt_groups: raw.list("guard_exempt_groups"),
        gitops_identities: raw.list("guard_gitops_identities"),
        annotation_allow_list: raw.list("guard_annotation_allow_list"),
        label_allow_list: raw.list("guard_label_allow_list"),
    })
}

fn log_level(raw: &RawValues) -> Result<String, ConfigError> {
    let level = raw.string_or("log_level", "info");
    tracing_subscriber::EnvFilter::try_new(&level)
        .map_err(|e| ConfigError::invalid("log_level", &level, format!("not a log filter: {e}")))?;
    Ok(level)
}

/// A KServe model name (`/v1/models/{m}`), when set.
fn model_name(raw: &RawValues, key: &str) -> Result<Option<String>, ConfigError> {
    match raw.string(key) {
        Some(name) if !crate::ml::discovery::valid_model_name(&name) => Err(ConfigError::invalid(
            key,
            &name,
            "expected a model name (letters, digits, '.', '_', '-'; not starting with '.')",
        )),
        name => Ok(name),
    }
}

/// A Kubernetes namespace name (RFC 1123 label).
fn dns_label(raw: &RawValues, key: &str, default: &str) -> Result<String, ConfigError> {
    kubernetes_name(
        raw,
        key,
        default,
        (63, false),
        "expected a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)",
    )
}

/// A Kubernetes object name (DNS subdomain: lower-case alphanumerics, '-' and '.', ≤ 253).
fn dns_subdomain(raw: &RawValues, key: &str, default: &str) -> Result<String, ConfigError> {
    kubernetes_name(
        raw,
        key,
        default,
        (253, true),
        "expected a Kubernetes object name (lower-case letters, digits, '-' and '.')",
    )
}

/// Lower-case letters, digits, '-' (and '.' when `dots`), at most `max` bytes, starting and
/// ending with a letter or digit.
fn kubernetes_name(
    raw: &RawValues,
    key: &str,
    default: &str,
    (max, dots): (usize, bool),
    expected: &str,
) -> Result<String, ConfigError> {
    let value = raw.string_or(key, default);
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| alphanumeric(c) || c == '-' || (dots && c == '.'))
        && value.starts_with(alphanumeric)
        && value.ends_with(alphanumeric);
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::invalid(key, &value, expected))
    }
}

/// A list of plan actions among `allowed`.
fn actions(
    raw: &RawValues,
    key: &str,
    allowed: &[&str],
) -> Result<Vec<crate::plan::Action>, ConfigError> {
    raw.list(key)
        .into_iter()
        .map(|name| {
            let action = allowed
                .contains(&name.as_str())
                .then(|| serde_json::from_value(serde_json::Value::String(name.clone())).ok())
                .flatten();
            action.ok_or_else(|| {
                ConfigError::invalid(
                    key,
                    &name,
                    format!("expected actions among {}", allowed.join(", ")),
                )
            })
        })
        .collect()
}

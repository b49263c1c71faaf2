//! The typed, validated settings and their cross-field rules.

use super::parse::{ConfigError, RawValues, format_duration};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// A secret string: never printed by `Debug` or `check-config`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Use `tls_cert_file`/`tls_key_file` when given, else a generated cert under `data_dir/tls`.
    Auto,
    /// Load the given PEM files and reload them when they change.
    Files,
    /// Plain HTTP (behind a mesh or a TLS-terminating proxy).
    Off,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub mode: TlsMode,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// How often the cert files are checked for rotation.
    pub reload_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub api_token: Option<Secret>,
    pub api_token_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ArgoCdSettings {
    pub api_url: Option<String>,
    pub token: Option<Secret>,
    /// A file holding the argocd-server token, re-read when it changes (rotation without a
    /// restart); used when `ARGOCD_TOKEN` is unset.
    pub token_file: Option<PathBuf>,
    /// CA bundle for argocd-server's certificate (system roots when unset).
    pub ca_file: Option<PathBuf>,
    /// How long a sync may take to reach Synced + Healthy.
    pub sync_timeout: Duration,
}

/// Where the analytics routes read metrics.
#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    /// Unset: the analytics routes answer 503 naming `PROMETHEUS_URL`.
    pub url: Option<String>,
    /// Bearer token file (OpenShift's Thanos querier), re-read at every query.
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

/// Limits of the node and Helm channels.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// How long a drain keeps retrying evictions a PodDisruptionBudget refuses.
    pub drain_timeout: Duration,
    /// Nodes the engine may have cordoned at once (counting nodes already unschedulable).
    pub max_unavailable_nodes: u32,
    /// The helm binary for release rollbacks (`helm` on the PATH when unset).
    pub helm_bin: Option<PathBuf>,
    /// The kubeconfig helm is given (`KUBECONFIG`), the engine's own.
    pub kubeconfig: Option<String>,
    /// Actions the engine may take directly on an ArgoCD-managed object, under a remediation
    /// lease the guard honours (empty: never).
    pub leased_actions: Vec<crate::plan::Action>,
    /// How long such a lease lasts.
    pub lease_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct KServeSettings {
    pub enabled: bool,
    pub namespace: String,
    pub anomaly_detector_service: Option<String>,
    pub predictive_analytics_service: Option<String>,
    /// Explicit base URLs (instead of the in-cluster service names).
    pub anomaly_detector_url: Option<String>,
    pub predictive_analytics_url: Option<String>,
    /// The names in `/v1/models/{m}`; unset, discovered with `GET /v1/models`.
    pub anomaly_detector_model: Option<String>,
    pub predictive_analytics_model: Option<String>,
    pub timeout: Duration,
    /// The ML layer classification is used only at or above this confidence.
    pub layer_confidence: f64,
    /// How long a model's circuit stays open after repeated failures.
    pub circuit_open: Duration,
}

/// The effective configuration of one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind_address: IpAddr,
    pub port: u16,
    pub metrics_port: u16,
    pub log_level: String,
    pub log_format: LogFormat,
    pub namespace: String,
    pub data_dir: PathBuf,
    pub tls: TlsSettings,
    pub auth: AuthSettings,
    pub kubeconfig: Option<String>,
    pub argocd: ArgoCdSettings,
    pub channels: ChannelSettings,
    pub prometheus: PrometheusSettings,
    pub kserve: KServeSettings,
    /// Deprecated by KServe; accepted so old deployments keep starting (a warning is logged).
    pub ml_service_url: Option<String>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Plain-HTTP, token-less listener for the Go engine's clients (off when `None`).
    pub compat_http_port: Option<u16>,
    /// Closed incidents older than this are purged; 0 keeps everything.
    pub incident_retention_days: u32,
    /// How long a request waits for the store before answering 503.
    pub store_busy_timeout: Duration,
    /// PostgreSQL (`postgres://user@host:port/db?sslmode=…`) for several replicas; `None`:
    /// SQLite under `data_dir` (one replica).
    pub database_url: Option<Secret>,
    /// A file holding the PostgreSQL password (a mounted Secret), added to `database_url`.
    pub database_password_file: Option<PathBuf>,
    /// The `coordination.k8s.io` Lease (in `namespace`) that elects the one executor.
    pub leader_election_lease: String,
    /// This replica's name in the election (`POD_NAME`, from the downward API); `None`: the
    /// hostname plus a random suffix.
    pub pod_name: Option<String>,
    /// alertname → issue type (defaults plus `ALERT_ISSUE_TYPES`).
    pub alert_issue_types: crate::sources::alertmanager::IssueTypes,
    /// The raw `ALERT_ISSUE_TYPES` value, for printing.
    pub alert_issue_types_text: String,
    /// The engine's ServiceAccount name (its identity is
    /// `system:serviceaccount:<NAMESPACE>:<SERVICE_ACCOUNT>`).
    pub service_account: String,
    /// How often the pipeline takes new incidents off the queue; zero stops it.
    pub pipeline_interval: Duration,
    /// How long a workload checkpoint (rollout complete) may take after a step.
    pub workload_checkpoint_timeout: Duration,
    /// Actions that need `POST /api/v1/workflows/{id}/approve` before they run.
    pub approval_required_actions: Vec<crate::plan::Action>,
    /// CA whose client certificates may post audit events without the token.
    pub audit_client_ca_file: Option<PathBuf>,
    /// `resource.group` whose deletion is an incident (empty: the defaults).
    pub audit_protected_resources: Vec<String>,
    /// Namespaces where ArgoCD (and its `argocd-cm`) runs.
    pub argocd_namespaces: Vec<String>,
    pub guard: GuardSettings,
    /// How long a client may take to send a request body before it is answered 408 and its
    /// connection closed (headers have their own, shorter, actix timeout).
    pub body_read_timeout: Duration,
    /// Bytes of request bodies the token-less routes may be receiving at once.
    pub tokenless_body_budget: usize,
    /// How long a request's headers may take: from the connection's start for its first
    /// request (then 408 and close), from their first byte for later ones (then close).
    pub header_read_timeout: Duration,
    /// What a trigger from the unauthenticated compatibility listener may do.
    pub compat_trigger_mode: CompatTriggerMode,
    /// Audit client certificates allowed to post without the token, by subject common name or
    /// DNS SAN (empty: any certificate the client CA verifies).
    pub audit_client_names: Vec<String>,
    /// Denial incidents are closed this long after their last denial, so retention can purge
    /// them.
    pub denial_incident_ttl: Duration,
    /// New denial incidents recorded per minute, cluster-wide; the excess is counted, not stored.
    pub denial_incidents_per_minute: u32,
}

/// What a remediation trigger from the token-less compatibility listener may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatTriggerMode {
    /// The workflow waits in `awaiting_approval` (the default).
    Approval,
    /// The workflow is forced to a dry run.
    DryRun,
    /// As the Go engine did: the trigger acts (after the symptom check).
    Live,
}

impl CompatTriggerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CompatTriggerMode::Approval => "approval",
            CompatTriggerMode::DryRun => "dry_run",
            CompatTriggerMode::Live => "live",
        }
    }
}

/// The admission guard's settings (SPEC §6).
#[derive(Debug, Clone)]
pub struct GuardSettings {
    pub mode: crate::guard::GuardMode,
    pub namespace_modes: Vec<(String, crate::guard::GuardMode)>,
    pub disabled_namespaces: Vec<String>,
    pub exempt_users: Vec<String>,
    pub exempt_groups: Vec<String>,
    /// Extra GitOps identities, on top of ArgoCD's defaults.
    pub gitops_identities: Vec<String>,
    pub annotation_allow_list: Vec<String>,
    pub label_allow_list: Vec<String>,
}

// Upper bounds beyond the general one on durations (`parse::MAX_DURATION`, ten years): a
// larger value is a typo, and some would overflow the arithmetic that uses them.

/// Kubernetes' documented largest cluster.
const MAX_NODES: u32 = 5000;
/// A lease exempts the engine's changes from the GitOps guard: a day is plenty for any step.
const MAX_LEASE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Ten years, like every duration (`now - days` must stay in the calendar).
const MAX_RETENTION_DAYS: u32 = 3650;
/// More than this many admission incidents a minute is no rate limit at all.
const MAX_DENIALS_PER_MINUTE: u32 = 10_000;

impl Settings {
    pub(super) fn from_raw(raw: &RawValues) -> Result<Settings, ConfigError> {
        let settings = Settings {
            bind_address: raw.ip("bind_address", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?,
            port: raw.port("port", 8080)?,
            metrics_port: raw.port("metrics_port", 9090)?,
            log_level: log_level(raw)?,
            log_format: match raw
                .choice("log_format", "json", &["json", "text"])?
                .as_str()
            {
                "text" => LogFormat::Text,
                _ => LogFormat::Json,
            },
            namespace: dns_label(raw, "namespace", "self-healing-platform")?,
            data_dir: raw
                .path("data_dir")
                .unwrap_or_else(|| PathBuf::from("data")),
            tls: TlsSettings {
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
            },
            auth: AuthSettings {
                api_token: raw.string("api_token").map(Secret::new),
                api_token_file: raw.path("api_token_file"),
            },
            kubeconfig: raw.string("kubeconfig"),
            argocd: ArgoCdSettings {
                api_url: raw.http_url("argocd_api_url")?,
                token: raw.string("argocd_token").map(Secret::new),
                token_file: raw.path("argocd_token_file"),
                ca_file: raw.path("argocd_ca_file"),
                sync_timeout: raw.duration("argocd_sync_timeout", Duration::from_secs(300))?,
            },
            prometheus: PrometheusSettings {
                url: raw.http_url("prometheus_url")?,
                token_file: raw.path("prometheus_token_file"),
                ca_file: raw.path("prometheus_ca_file"),
                timeout: raw.duration("prometheus_timeout", Duration::from_secs(30))?,
            },
            channels: ChannelSettings {
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
                lease_ttl: raw.duration_at_most(
                    "lease_ttl",
                    Duration::from_secs(900),
                    MAX_LEASE_TTL,
                )?,
            },
            kserve: KServeSettings {
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
                layer_confidence: {
                    let text = raw.string_or("ml_layer_confidence", "0.7");
                    text.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|c| (0.0..=1.0).contains(c))
                        .ok_or_else(|| {
                            ConfigError::invalid(
                                "ml_layer_confidence",
                                &text,
                                "a number from 0 to 1",
                            )
                        })?
                },
            },
            ml_service_url: raw.http_url("ml_service_url")?,
            shutdown_timeout: raw.duration("shutdown_timeout", Duration::from_secs(30))?,
            compat_http_port: raw.optional_port("compat_http_port")?,
            incident_retention_days: raw.number_at_most(
                "incident_retention_days",
                90,
                MAX_RETENTION_DAYS,
                "a whole number of days (0 keeps incidents forever)",
            )?,
            store_busy_timeout: raw.duration("store_busy_timeout", Duration::from_secs(5))?,
            database_url: raw
                .string("database_url")
                .filter(|u| !u.is_empty())
                .map(Secret::new),
            database_password_file: raw.path("database_password_file"),
            leader_election_lease: dns_subdomain(
                raw,
                "leader_election_lease",
                "coordination-engine-leader",
            )?,
            pod_name: raw.string("pod_name").filter(|p| !p.is_empty()),
            alert_issue_types: {
                let text = raw.string_or("alert_issue_types", "");
                crate::sources::alertmanager::IssueTypes::with_overrides(&text)
                    .map_err(|why| ConfigError::invalid("alert_issue_types", &text, why))?
            },
            alert_issue_types_text: raw.string_or("alert_issue_types", ""),
            service_account: raw.string_or("service_account", "coordination-engine"),
            pipeline_interval: raw.duration("pipeline_interval", Duration::from_secs(1))?,
            approval_required_actions: actions(
                raw,
                "approval_required_actions",
                &[
                    "delete_pod",
                    "rollout_restart",
                    "rollback",
                    "scale_up",
                    "cordon",
                    "drain",
                    "restart_operator_pods",
                ],
            )?,
            workload_checkpoint_timeout: raw
                .duration("workload_checkpoint_timeout", Duration::from_secs(120))?,
            audit_client_ca_file: raw.path("audit_client_ca_file"),
            audit_protected_resources: raw.list("audit_protected_resources"),
            argocd_namespaces: {
                let list = raw.list("argocd_namespaces");
                if list.is_empty() {
                    vec!["argocd".into(), "openshift-gitops".into()]
                } else {
                    list
                }
            },
            guard: guard_settings(raw)?,
            body_read_timeout: raw.duration("body_read_timeout", Duration::from_secs(10))?,
            header_read_timeout: raw.duration("header_read_timeout", Duration::from_secs(5))?,
            tokenless_body_budget: raw.parse_or(
                "tokenless_body_budget",
                crate::http::budget::DEFAULT_TOKENLESS_BODY_BUDGET,
                "a whole number of bytes",
            )?,
            compat_trigger_mode: match raw
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

    /// Rules that involve more than one key.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.port != 0 && self.port == self.metrics_port {
            return Err(ConfigError::invalid(
                "metrics_port",
                &self.metrics_port.to_string(),
                "PORT and METRICS_PORT must differ",
            ));
        }
        if let Some(compat) = self.compat_http_port
            && compat != 0
            && (compat == self.port || compat == self.metrics_port)
        {
            return Err(ConfigError::invalid(
                "compat_http_port",
                &compat.to_string(),
                "COMPAT_HTTP_PORT must differ from PORT and METRICS_PORT",
            ));
        }
        self.validate_tls()?;
        if let Some(path) = &self.auth.api_token_file {
            require_readable_file("api_token_file", path)?;
        }
        if let Some(path) = &self.argocd.token_file {
            require_readable_file("argocd_token_file", path)?;
        }
        if let Some(path) = &self.audit_client_ca_file {
            require_readable_file("audit_client_ca_file", path)?;
        }
        if let Some(path) = &self.database_password_file {
            require_readable_file("database_password_file", path)?;
            if self.database_url.is_none() {
                return Err(ConfigError::invalid(
                    "database_password_file",
                    &path.display().to_string(),
                    "DATABASE_PASSWORD_FILE needs DATABASE_URL (it is the PostgreSQL password)",
                ));
            }
        }
        if let Some(url) = &self.database_url
            && !(url.expose().starts_with("postgres://")
                || url.expose().starts_with("postgresql://"))
        {
            return Err(ConfigError::invalid(
                "database_url",
                "<redacted>",
                "expected postgres://user@host:port/database (SQLite is the default when unset)",
            ));
        }
        // An allow-list that nothing enforces is worse than none: the operator believes audit
        // posts are restricted while any client with the token (or none, without TLS) gets in.
        if !self.audit_client_names.is_empty()
            && (self.audit_client_ca_file.is_none() || self.tls.mode == TlsMode::Off)
        {
            return Err(ConfigError::invalid(
                "audit_client_names",
                &self.audit_client_names.join(","),
                "AUDIT_CLIENT_NAMES needs AUDIT_CLIENT_CA_FILE and TLS (TLS_MODE is not off)",
            ));
        }
        if self.body_read_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "body_read_timeout",
                "0s",
                "must be greater than zero",
            ));
        }
        if self.header_read_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "header_read_timeout",
                "0s",
                "must be greater than zero",
            ));
        }
        if self.tls.reload_interval.is_zero() {
            return Err(ConfigError::invalid(
                "tls_reload_interval",
                "0s",
                "must be greater than zero",
            ));
        }
        let has_model = self.kserve.anomaly_detector_service.is_some()
            || self.kserve.predictive_analytics_service.is_some()
            || self.kserve.anomaly_detector_url.is_some()
            || self.kserve.predictive_analytics_url.is_some();
        if self.kserve.enabled && !has_model {
            return Err(ConfigError::invalid(
                "enable_kserve_integration",
                "true",
                "KServe is enabled but no model is configured: set KSERVE_ANOMALY_DETECTOR_SERVICE \
                 and/or KSERVE_PREDICTIVE_ANALYTICS_SERVICE, or set ENABLE_KSERVE_INTEGRATION=false",
            ));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let (cert, key) = (&self.tls.cert_file, &self.tls.key_file);
        match self.tls.mode {
            TlsMode::Off => Ok(()),
            TlsMode::Files | TlsMode::Auto if cert.is_some() || key.is_some() => {
                let cert = cert.as_ref().ok_or_else(|| {
                    ConfigError::invalid("tls_cert_file", "", "required when TLS_KEY_FILE is set")
                })?;
                let key = key.as_ref().ok_or_else(|| {
                    ConfigError::invalid("tls_key_file", "", "required when TLS_CERT_FILE is set")
                })?;
                require_readable_file("tls_cert_file", cert)?;
                require_readable_file("tls_key_file", key)
            }
            TlsMode::Files => Err(ConfigError::invalid(
                "tls_cert_file",
                "",
                "TLS_MODE=files needs TLS_CERT_FILE and TLS_KEY_FILE",
            )),
            TlsMode::Auto => Ok(()),
        }
    }

    /// The effective configuration as YAML, secrets replaced by `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        let secret = |s: &Option<Secret>| s.as_ref().map(|_| "<redacted>".to_string());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let rows: Vec<(&str, Option<String>)> = vec![
            ("bind_address", Some(self.bind_address.to_string())),
            ("port", Some(self.port.to_string())),
            ("metrics_port", Some(self.metrics_port.to_string())),
            ("log_level", Some(self.log_level.clone())),
            (
                "log_format",
                Some(format!("{:?}", self.log_format).to_lowercase()),
            ),
            ("namespace", Some(self.namespace.clone())),
            ("data_dir", Some(self.data_dir.display().to_string())),
            (
                "tls_mode",
                Some(format!("{:?}", self.tls.mode).to_lowercase()),
            ),
            ("tls_cert_file", path(&self.tls.cert_file)),
            ("tls_key_file", path(&self.tls.key_file)),
            (
                "tls_reload_interval",
                Some(format_duration(self.tls.reload_interval)),
            ),
            ("api_token", secret(&self.auth.api_token)),
            ("api_token_file", path(&self.auth.api_token_file)),
            ("kubeconfig", self.kubeconfig.clone()),
            ("argocd_api_url", self.argocd.api_url.clone()),
            ("argocd_token", secret(&self.argocd.token)),
            ("argocd_token_file", path(&self.argocd.token_file)),
            ("argocd_ca_file", path(&self.argocd.ca_file)),
            (
                "argocd_sync_timeout",
                Some(format_duration(self.argocd.sync_timeout)),
            ),
            (
                "drain_timeout",
                Some(format_duration(self.channels.drain_timeout)),
            ),
            (
                "max_unavailable_nodes",
                Some(self.channels.max_unavailable_nodes.to_string()),
            ),
            ("helm_bin", path(&self.channels.helm_bin)),
            (
                "leased_actions",
                Some(action_names(&self.channels.leased_actions)).filter(|t| !t.is_empty()),
            ),
            ("lease_ttl", Some(format_duration(self.channels.lease_ttl))),
            ("prometheus_url", self.prometheus.url.clone()),
            ("prometheus_token_file", path(&self.prometheus.token_file)),
            ("prometheus_ca_file", path(&self.prometheus.ca_file)),
            (
                "prometheus_timeout",
                Some(format_duration(self.prometheus.timeout)),
            ),
            (
                "enable_kserve_integration",
                Some(self.kserve.enabled.to_string()),
            ),
            ("kserve_namespace", Some(self.kserve.namespace.clone())),
            (
                "kserve_anomaly_detector_service",
                self.kserve.anomaly_detector_service.clone(),
            ),
            (
                "kserve_predictive_analytics_service",
                self.kserve.predictive_analytics_service.clone(),
            ),
            ("kserve_timeout", Some(format_duration(self.kserve.timeout))),
            (
                "kserve_anomaly_detector_url",
                self.kserve.anomaly_detector_url.clone(),
            ),
            (
                "kserve_predictive_analytics_url",
                self.kserve.predictive_analytics_url.clone(),
            ),
            (
                "kserve_anomaly_detector_model",
                self.kserve.anomaly_detector_model.clone(),
            ),
            (
                "kserve_predictive_analytics_model",
                self.kserve.predictive_analytics_model.clone(),
            ),
            (
                "kserve_circuit_open",
                Some(format_duration(self.kserve.circuit_open)),
            ),
            (
                "ml_layer_confidence",
                Some(self.kserve.layer_confidence.to_string()),
            ),
            ("ml_service_url", self.ml_service_url.clone()),
            (
                "shutdown_timeout",
                Some(format_duration(self.shutdown_timeout)),
            ),
            (
                "compat_http_port",
                self.compat_http_port.map(|p| p.to_string()),
            ),
            (
                "incident_retention_days",
                Some(self.incident_retention_days.to_string()),
            ),
            (
                "store_busy_timeout",
                Some(format_duration(self.store_busy_timeout)),
            ),
            ("database_url", secret(&self.database_url)),
            ("database_password_file", path(&self.database_password_file)),
            (
                "leader_election_lease",
                Some(self.leader_election_lease.clone()),
            ),
            ("pod_name", self.pod_name.clone()),
            (
                "alert_issue_types",
                Some(self.alert_issue_types_text.clone()).filter(|t| !t.is_empty()),
            ),
            (
                "pipeline_interval",
                Some(format_duration(self.pipeline_interval)),
            ),
            (
                "approval_required_actions",
                Some(action_names(&self.approval_required_actions)).filter(|t| !t.is_empty()),
            ),
            (
                "workload_checkpoint_timeout",
                Some(format_duration(self.workload_checkpoint_timeout)),
            ),
            ("audit_client_ca_file", path(&self.audit_client_ca_file)),
            (
                "audit_protected_resources",
                join(&self.audit_protected_resources),
            ),
            ("service_account", Some(self.service_account.clone())),
            ("argocd_namespaces", Some(self.argocd_namespaces.join(","))),
            (
                "guard_mode",
                Some(format!("{:?}", self.guard.mode).to_lowercase()),
            ),
            (
                "guard_namespace_modes",
                Some(
                    self.guard
                        .namespace_modes
                        .iter()
                        .map(|(ns, m)| format!("{ns}={}", format!("{m:?}").to_lowercase()))
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .filter(|t| !t.is_empty()),
            ),
            (
                "guard_disabled_namespaces",
                join(&self.guard.disabled_namespaces),
            ),
            ("guard_exempt_users", join(&self.guard.exempt_users)),
            ("guard_exempt_groups", join(&self.guard.exempt_groups)),
            (
                "guard_gitops_identities",
                join(&self.guard.gitops_identities),
            ),
            (
                "guard_annotation_allow_list",
                join(&self.guard.annotation_allow_list),
            ),
            ("guard_label_allow_list", join(&self.guard.label_allow_list)),
            (
                "body_read_timeout",
                Some(format_duration(self.body_read_timeout)),
            ),
            (
                "header_read_timeout",
                Some(format_duration(self.header_read_timeout)),
            ),
            (
                "tokenless_body_budget",
                Some(self.tokenless_body_budget.to_string()),
            ),
            (
                "compat_trigger_mode",
                Some(self.compat_trigger_mode.as_str().to_string()),
            ),
            ("audit_client_names", join(&self.audit_client_names)),
            (
                "denial_incident_ttl",
                Some(format_duration(self.denial_incident_ttl)),
            ),
            (
                "denial_incidents_per_minute",
                Some(self.denial_incidents_per_minute.to_string()),
            ),
        ];
        rows.into_iter()
            .map(|(key, value)| match value {
                // JSON strings are valid YAML scalars and quote anything unusual.
                Some(v) => format!("{key}: {}\n", serde_json::Value::String(v)),
                None => format!("{key}: null\n"),
            })
            .collect()
    }
}

/// A list for printing; `None` (printed as null) when empty.
fn join(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
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

fn require_readable_file(key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| ConfigError::invalid(key, &path.display().to_string(), e.to_string()))
}

/// A list of plan actions among `allowed`.
fn actions(
    raw: &super::parse::RawValues,
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

fn action_names(actions: &[crate::plan::Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

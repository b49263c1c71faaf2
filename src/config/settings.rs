//! The typed settings; `load` reads them key by key, `validate` checks the rules that involve
//! more than one key, `redact` prints them without secrets.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

mod load;
mod redact;
mod validate;

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

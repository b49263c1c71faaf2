//! Prometheus metrics, in a registry owned by the app (never the global default, so tests
//! that run several apps in one process do not share counters).
//!
//! Every metric here is documented in `docs/metrics.md`. Label values known at startup are
//! initialised to zero so that each series exists from the first scrape.

use prometheus::{Encoder, HistogramVec, IntCounterVec, IntGaugeVec, Registry, TextEncoder};

mod define;
mod families;
mod series;
#[cfg(test)]
mod tests;

/// Every metric name starts with this.
pub const PREFIX: &str = "coordination_engine";

/// The `file` label values of `credential_file_reloads_total`.
pub const CREDENTIAL_FILES: [&str; 4] = [
    "api_token",
    "prometheus_token",
    "argocd_token",
    "audit_client_ca",
];

/// Handles to the metrics; cheap to clone (each is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub tls_reloads: IntCounterVec,
    /// Token files and the audit client CA, re-read when they change (`file`, `result`).
    pub credential_file_reloads: IntCounterVec,
    pub build_info: IntGaugeVec,
    pub store_duration: HistogramVec,
    /// Use `count_incident`.
    pub incidents: IntCounterVec,
    pub alerts_received: IntCounterVec,
    pub alerts_deduplicated: prometheus::IntCounter,
    pub admission_reviews: IntCounterVec,
    pub admission_duration: prometheus::Histogram,
    pub remediations: IntCounterVec,
    pub remediation_duration: HistogramVec,
    /// Live workflows that succeeded: from their start to their end, by root-cause layer and
    /// deployment method.
    pub time_to_heal: HistogramVec,
    pub gate_decisions: IntCounterVec,
    pub audit_events: IntCounterVec,
    pub workflows_active: prometheus::IntGauge,
    /// 1 on the replica that executes (the elected leader), 0 elsewhere.
    pub leader: prometheus::IntGauge,
    /// Terms this replica started (times it became leader).
    pub leader_transitions: prometheus::IntCounter,
    pub cluster_requests: IntCounterVec,
    pub argocd_syncs: IntCounterVec,
    pub argocd_sync_duration: HistogramVec,
    pub ml_layer_detection: IntCounterVec,
    /// Alerts skipped inside an accepted notification, by reason.
    pub alerts_rejected: IntCounterVec,
    /// Requests whose body did not arrive within `BODY_READ_TIMEOUT` (connection closed).
    pub body_read_timeouts: prometheus::IntCounter,
    /// Token-less requests refused with 503 because `TOKENLESS_BODY_BUDGET` was spent.
    pub body_budget_rejections: prometheus::IntCounter,
    /// Bytes of `TOKENLESS_BODY_BUDGET` reserved by bodies being received now.
    pub body_budget_in_use: prometheus::IntGauge,
    /// Denials not recorded as incidents, by reason (`rate_limited`).
    pub denials_not_recorded: IntCounterVec,
    /// Compatibility-listener writes refused, by reason.
    pub compat_requests_rejected: IntCounterVec,
}

/// Results of `argocd_sync_total{result}`.
pub const ARGOCD_SYNC_RESULTS: &[&str] = &["succeeded", "failed", "degraded", "timeout", "refused"];

/// Store operations timed by `store_operation_duration_seconds{op}`.
pub const STORE_OPS: &[&str] = &[
    "insert_incident",
    "insert_incidents",
    "record_alerts",
    "record_audit",
    "get_incident",
    "change_incident",
    "list_incidents",
    "summarize_incidents",
    "insert_workflow",
    "get_workflow",
    "update_workflow",
    "list_workflows",
    "act_on_workflow",
    "insert_lease",
    "active_leases",
    "set_pause",
    "clear_pause",
    "purge",
    "record_denial",
    "close_denials",
];

/// Layers an incident is counted under (layer detection always finds one: application when
/// nothing points lower).
pub const LAYERS: &[&str] = &["infrastructure", "platform", "application"];

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Self {
        let serving = families::serving();
        let intake = families::intake();
        let guard = families::guard();
        let workflows = families::workflows();
        let execution = families::execution();
        let limits = families::limits();
        let metrics = Metrics {
            registry: Registry::new(),
            http_requests: serving.http_requests,
            http_duration: serving.http_duration,
            tls_reloads: serving.tls_reloads,
            credential_file_reloads: serving.credential_file_reloads,
            build_info: serving.build_info,
            store_duration: serving.store_duration,
            incidents: intake.incidents,
            alerts_received: intake.alerts_received,
            alerts_deduplicated: intake.alerts_deduplicated,
            admission_reviews: guard.admission_reviews,
            admission_duration: guard.admission_duration,
            remediations: workflows.remediations,
            remediation_duration: workflows.remediation_duration,
            time_to_heal: workflows.time_to_heal,
            gate_decisions: workflows.gate_decisions,
            audit_events: intake.audit_events,
            workflows_active: workflows.workflows_active,
            leader: execution.leader,
            leader_transitions: execution.leader_transitions,
            cluster_requests: execution.cluster_requests,
            argocd_syncs: execution.argocd_syncs,
            argocd_sync_duration: execution.argocd_sync_duration,
            ml_layer_detection: workflows.ml_layer_detection,
            alerts_rejected: intake.alerts_rejected,
            body_read_timeouts: limits.body_read_timeouts,
            body_budget_rejections: limits.body_budget_rejections,
            body_budget_in_use: limits.body_budget_in_use,
            denials_not_recorded: guard.denials_not_recorded,
            compat_requests_rejected: limits.compat_requests_rejected,
        };
        metrics.register_all();
        metrics.zero_known_series();
        metrics
    }

    /// One new incident, under the layer detection found for it (counted once, when it is
    /// created: the layer is known then).
    pub fn count_incident(&self, source: crate::incident::Source, layer: crate::detect::Layer) {
        self.incidents
            .with_label_values(&[source.as_str(), layer.as_str()])
            .inc();
    }

    /// Creates the zero-valued series of a route so it is visible before its first request.
    pub fn init_route(&self, route: &str, method: &str, status: u16) {
        self.http_requests
            .with_label_values(&[route, method, &status.to_string()]);
        self.http_duration.with_label_values(&[route]);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

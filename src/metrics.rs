//! Prometheus metrics, in a registry owned by the app (never the global default, so tests
//! that run several apps in one process do not share counters).
//!
//! Every metric here is documented in `docs/metrics.md`. Label values known at startup are
//! initialised to zero so that each series exists from the first scrape.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

mod series;
#[cfg(test)]
mod tests;

/// Every metric name starts with this.
pub const PREFIX: &str = "coordination_engine";

/// Request latency buckets: the API answers in microseconds to milliseconds; remote calls
/// (Kubernetes, KServe) take up to seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            opts(
                "http_requests_total",
                "HTTP requests answered, by route pattern, method and status code",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric definition");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{PREFIX}_http_request_duration_seconds"),
                "Time to answer an HTTP request, by route pattern",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric definition");
        let tls_reloads = IntCounterVec::new(
            opts(
                "tls_certificate_reloads_total",
                "Reloads of the serving certificate after its files changed, by result",
            ),
            &["result"],
        )
        .expect("valid metric definition");
        let credential_file_reloads = IntCounterVec::new(
            opts(
                "credential_file_reloads_total",
                "Token files and the audit client CA read again after they changed, by file and result",
            ),
            &["file", "result"],
        )
        .expect("valid metric definition");
        let build_info = IntGaugeVec::new(
            opts(
                "build_info",
                "Always 1; the version label says which build runs",
            ),
            &["version"],
        )
        .expect("valid metric definition");

        let store_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{PREFIX}_store_operation_duration_seconds"),
                "Time of one store operation, by operation",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["op"],
        )
        .expect("valid metric definition");
        let incidents = IntCounterVec::new(
            opts(
                "incidents_total",
                "Incidents created, by source and the root-cause layer detected for them",
            ),
            &["source", "layer"],
        )
        .expect("valid metric definition");

        let alerts_received = IntCounterVec::new(
            opts(
                "alerts_received_total",
                "Alerts received from Alertmanager (every delivery, retries included), by status",
            ),
            &["status"],
        )
        .expect("valid metric definition");
        let alerts_deduplicated = prometheus::IntCounter::with_opts(opts(
            "alerts_deduplicated_total",
            "Alert deliveries that matched an existing incident (resends, retries)",
        ))
        .expect("valid metric definition");

        let admission_reviews = IntCounterVec::new(
            opts(
                "admission_reviews_total",
                "Admission reviews answered by the GitOps guard, by decision and reason",
            ),
            &["decision", "reason"],
        )
        .expect("valid metric definition");
        let admission_duration = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                format!("{PREFIX}_admission_review_duration_seconds"),
                "Our own time to decide one admission review (parse, review, encode)",
            )
            .buckets(vec![
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            ]),
        )
        .expect("valid metric definition");

        let remediations = IntCounterVec::new(
            opts(
                "remediation_total",
                "Workflows that ended, by mode (live, dry_run) and final status (Go engine name)",
            ),
            &["mode", "status"],
        )
        .expect("valid metric definition");
        let remediation_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{PREFIX}_remediation_duration_seconds"),
                "Time from a workflow's start to its end, by mode (Go engine name)",
            )
            .buckets(vec![
                0.001, 0.01, 0.1, 1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ]),
            &["mode"],
        )
        .expect("valid metric definition");
        let time_to_heal = HistogramVec::new(
            HistogramOpts::new(
                format!("{PREFIX}_time_to_heal_seconds"),
                "Time from a live workflow's start to its success, by root-cause layer and deployment method",
            )
            .buckets(vec![
                1.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
                1800.0,
            ]),
            &["layer", "method"],
        )
        .expect("valid metric definition");
        let gate_decisions = IntCounterVec::new(
            opts(
                "workflow_gate_decisions_total",
                "Gate decisions recorded on workflows, by gate and outcome",
            ),
            &["gate", "outcome"],
        )
        .expect("valid metric definition");

        let audit_events = IntCounterVec::new(
            opts(
                "audit_events_total",
                "Kubernetes audit events received, by the rule that matched (or ignored, duplicate)",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");

        let workflows_active = prometheus::IntGauge::with_opts(opts(
            "workflows_active",
            "Live workflows running now (acting on or verifying the cluster)",
        ))
        .expect("valid metric definition");

        let leader = prometheus::IntGauge::with_opts(opts(
            "leader",
            "1 on the replica that executes workflows (the elected leader), 0 on the others",
        ))
        .expect("valid metric definition");
        let leader_transitions = prometheus::IntCounter::with_opts(opts(
            "leader_transitions_total",
            "Times this replica became the leader",
        ))
        .expect("valid metric definition");

        let cluster_requests = IntCounterVec::new(
            opts(
                "cluster_requests_total",
                "Kubernetes API operations of the execution channels (retries of one operation count once), by verb and outcome",
            ),
            &["verb", "outcome"],
        )
        .expect("valid metric definition");

        let argocd_syncs = IntCounterVec::new(
            opts(
                "argocd_sync_total",
                "ArgoCD Application syncs the engine started, by result (Go engine name)",
            ),
            &["result"],
        )
        .expect("valid metric definition");
        let argocd_sync_duration = HistogramVec::new(
            HistogramOpts::new(
                format!("{PREFIX}_argocd_sync_duration_seconds"),
                "Time from starting an ArgoCD sync to Synced + Healthy (or its failure), by channel (kube, rest)",
            )
            .buckets(vec![1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0]),
            &["channel"],
        )
        .expect("valid metric definition");

        let ml_layer_detection = IntCounterVec::new(
            opts(
                "ml_layer_detection_total",
                "Layer detections that asked the anomaly-detector, by outcome: used, low_confidence (keywords kept), unavailable (model down; keywords) (Go engine name)",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");

        let alerts_rejected = IntCounterVec::new(
            opts(
                "alerts_rejected_total",
                "Alerts skipped inside an accepted Alertmanager notification because they failed validation, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric definition");
        let body_read_timeouts = prometheus::IntCounter::with_opts(opts(
            "body_read_timeouts_total",
            "Requests whose body did not arrive within BODY_READ_TIMEOUT; answered 408 and the connection closed",
        ))
        .expect("valid metric definition");
        let body_budget_rejections = prometheus::IntCounter::with_opts(opts(
            "body_budget_rejections_total",
            "Token-less requests answered 503 before their body was read because TOKENLESS_BODY_BUDGET was spent by bodies being received",
        ))
        .expect("valid metric definition");
        let body_budget_in_use = prometheus::IntGauge::with_opts(opts(
            "body_budget_bytes_in_use",
            "Bytes of TOKENLESS_BODY_BUDGET reserved by token-less request bodies being received now",
        ))
        .expect("valid metric definition");
        let denials_not_recorded = IntCounterVec::new(
            opts(
                "denials_not_recorded_total",
                "Admission denials that did not become an incident, by reason (rate_limited: over DENIAL_INCIDENTS_PER_MINUTE; queue_full: the recorder queue was full; store_unavailable: the store refused the write)",
            ),
            &["reason"],
        )
        .expect("valid metric definition");

        let compat_requests_rejected = IntCounterVec::new(
            opts(
                "compat_requests_rejected_total",
                "Triggers and incidents refused on the token-less compatibility listener, by reason (rate_limited: over COMPAT_WRITES_PER_MINUTE; approval_queue_full: too many workflows await approval)",
            ),
            &["reason"],
        )
        .expect("valid metric definition");
        let metrics = Metrics {
            registry,
            http_requests,
            http_duration,
            tls_reloads,
            credential_file_reloads,
            build_info,
            store_duration,
            incidents,
            alerts_received,
            alerts_deduplicated,
            admission_reviews,
            admission_duration,
            remediations,
            remediation_duration,
            time_to_heal,
            gate_decisions,
            audit_events,
            workflows_active,
            leader,
            leader_transitions,
            cluster_requests,
            argocd_syncs,
            argocd_sync_duration,
            ml_layer_detection,
            alerts_rejected,
            body_read_timeouts,
            body_budget_rejections,
            body_budget_in_use,
            denials_not_recorded,
            compat_requests_rejected,
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

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("{PREFIX}_{name}"), help)
}

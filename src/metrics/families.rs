//! The metrics, defined by family: what each one is called, what its help says, its buckets
//! and its labels. `Metrics::new` puts the families together; the names and help texts are
//! the contract documented in `docs/metrics.md`.

use super::define::{counter, counter_vec, gauge, gauge_vec, histogram, histogram_vec};
use prometheus::{Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

/// Request latency buckets: the API answers in microseconds to milliseconds; remote calls
/// (Kubernetes, KServe) take up to seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The server itself: requests, its certificate and credential files, its build, its store.
pub(super) struct Serving {
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub tls_reloads: IntCounterVec,
    pub credential_file_reloads: IntCounterVec,
    pub build_info: IntGaugeVec,
    pub store_duration: HistogramVec,
}

pub(super) fn serving() -> Serving {
    Serving {
        http_requests: counter_vec(
            "http_requests_total",
            "HTTP requests answered, by route pattern, method and status code",
            &["route", "method", "status"],
        ),
        http_duration: histogram_vec(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern",
            LATENCY_BUCKETS,
            &["route"],
        ),
        tls_reloads: counter_vec(
            "tls_certificate_reloads_total",
            "Reloads of the serving certificate after its files changed, by result",
            &["result"],
        ),
        credential_file_reloads: counter_vec(
            "credential_file_reloads_total",
            "Token files and the audit client CA read again after they changed, by file and result",
            &["file", "result"],
        ),
        build_info: gauge_vec(
            "build_info",
            "Always 1; the version label says which build runs",
            &["version"],
        ),
        store_duration: histogram_vec(
            "store_operation_duration_seconds",
            "Time of one store operation, by operation",
            LATENCY_BUCKETS,
            &["op"],
        ),
    }
}

/// What comes in: incidents, Alertmanager alerts, Kubernetes audit events.
pub(super) struct Intake {
    pub incidents: IntCounterVec,
    pub alerts_received: IntCounterVec,
    pub alerts_deduplicated: IntCounter,
    pub alerts_rejected: IntCounterVec,
    pub audit_events: IntCounterVec,
}

pub(super) fn intake() -> Intake {
    Intake {
        incidents: counter_vec(
            "incidents_total",
            "Incidents created, by source and the root-cause layer detected for them",
            &["source", "layer"],
        ),
        alerts_received: counter_vec(
            "alerts_received_total",
            "Alerts received from Alertmanager (every delivery, retries included), by status",
            &["status"],
        ),
        alerts_deduplicated: counter(
            "alerts_deduplicated_total",
            "Alert deliveries that matched an existing incident (resends, retries)",
        ),
        alerts_rejected: counter_vec(
            "alerts_rejected_total",
            "Alerts skipped inside an accepted Alertmanager notification because they failed validation, by reason",
            &["reason"],
        ),
        audit_events: counter_vec(
            "audit_events_total",
            "Kubernetes audit events received, by the rule that matched (or ignored, duplicate)",
            &["outcome"],
        ),
    }
}

/// The GitOps guard's admission reviews and the denials it could not record.
pub(super) struct Guard {
    pub admission_reviews: IntCounterVec,
    pub admission_duration: Histogram,
    pub denials_not_recorded: IntCounterVec,
}

pub(super) fn guard() -> Guard {
    Guard {
        admission_reviews: counter_vec(
            "admission_reviews_total",
            "Admission reviews answered by the GitOps guard, by decision and reason",
            &["decision", "reason"],
        ),
        admission_duration: histogram(
            "admission_review_duration_seconds",
            "Our own time to decide one admission review (parse, review, encode)",
            &[
                0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
            ],
        ),
        denials_not_recorded: counter_vec(
            "denials_not_recorded_total",
            "Admission denials that did not become an incident, by reason (rate_limited: over DENIAL_INCIDENTS_PER_MINUTE; queue_full: the recorder queue was full; store_unavailable: the store refused the write)",
            &["reason"],
        ),
    }
}

/// How workflows end and how long they take, and the gates they pass.
pub(super) struct Workflows {
    pub remediations: IntCounterVec,
    pub remediation_duration: HistogramVec,
    pub time_to_heal: HistogramVec,
    pub gate_decisions: IntCounterVec,
    pub workflows_active: IntGauge,
    pub ml_layer_detection: IntCounterVec,
}

pub(super) fn workflows() -> Workflows {
    Workflows {
        remediations: counter_vec(
            "remediation_total",
            "Workflows that ended, by mode (live, dry_run) and final status (Go engine name)",
            &["mode", "status"],
        ),
        remediation_duration: histogram_vec(
            "remediation_duration_seconds",
            "Time from a workflow's start to its end, by mode (Go engine name)",
            &[
                0.001, 0.01, 0.1, 1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
            ],
            &["mode"],
        ),
        time_to_heal: histogram_vec(
            "time_to_heal_seconds",
            "Time from a live workflow's start to its success, by root-cause layer and deployment method",
            &[
                1.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0,
                1800.0,
            ],
            &["layer", "method"],
        ),
        gate_decisions: counter_vec(
            "workflow_gate_decisions_total",
            "Gate decisions recorded on workflows, by gate and outcome",
            &["gate", "outcome"],
        ),
        workflows_active: gauge(
            "workflows_active",
            "Live workflows running now (acting on or verifying the cluster)",
        ),
        ml_layer_detection: counter_vec(
            "ml_layer_detection_total",
            "Layer detections that asked the anomaly-detector, by outcome: used, low_confidence (keywords kept), unavailable (model down; keywords) (Go engine name)",
            &["outcome"],
        ),
    }
}

/// Who executes (the elected leader), and what it asks of Kubernetes and ArgoCD.
pub(super) struct Execution {
    pub leader: IntGauge,
    pub leader_transitions: IntCounter,
    pub cluster_requests: IntCounterVec,
    pub argocd_syncs: IntCounterVec,
    pub argocd_sync_duration: HistogramVec,
}

pub(super) fn execution() -> Execution {
    Execution {
        leader: gauge(
            "leader",
            "1 on the replica that executes workflows (the elected leader), 0 on the others",
        ),
        leader_transitions: counter(
            "leader_transitions_total",
            "Times this replica became the leader",
        ),
        cluster_requests: counter_vec(
            "cluster_requests_total",
            "Kubernetes API operations of the execution channels (retries of one operation count once), by verb and outcome",
            &["verb", "outcome"],
        ),
        argocd_syncs: counter_vec(
            "argocd_sync_total",
            "ArgoCD Application syncs the engine started, by result (Go engine name)",
            &["result"],
        ),
        argocd_sync_duration: histogram_vec(
            "argocd_sync_duration_seconds",
            "Time from starting an ArgoCD sync to Synced + Healthy (or its failure), by channel (kube, rest)",
            &[1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0],
            &["channel"],
        ),
    }
}

/// The limits that protect the server from its clients: body timeouts and budgets, the
/// compatibility listener's rate limit.
pub(super) struct Limits {
    pub body_read_timeouts: IntCounter,
    pub body_budget_rejections: IntCounter,
    pub body_budget_in_use: IntGauge,
    pub compat_requests_rejected: IntCounterVec,
}

pub(super) fn limits() -> Limits {
    Limits {
        body_read_timeouts: counter(
            "body_read_timeouts_total",
            "Requests whose body did not arrive within BODY_READ_TIMEOUT; answered 408 and the connection closed",
        ),
        body_budget_rejections: counter(
            "body_budget_rejections_total",
            "Token-less requests answered 503 before their body was read because TOKENLESS_BODY_BUDGET was spent by bodies being received",
        ),
        body_budget_in_use: gauge(
            "body_budget_bytes_in_use",
            "Bytes of TOKENLESS_BODY_BUDGET reserved by token-less request bodies being received now",
        ),
        compat_requests_rejected: counter_vec(
            "compat_requests_rejected_total",
            "Triggers and incidents refused on the token-less compatibility listener, by reason (rate_limited: over COMPAT_WRITES_PER_MINUTE; approval_queue_full: too many workflows await approval)",
            &["reason"],
        ),
    }
}

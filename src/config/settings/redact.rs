//! The effective configuration as YAML, secrets redacted (`check-config`).

use super::*;
use crate::config::parse::format_duration;

/// One printed line: the key and its value (`None` prints as null).
type Row = (&'static str, Option<String>);

impl Settings {
    /// The effective configuration as YAML, secrets replaced by `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        // Sections in the order they are printed; the order is part of the output.
        let sections = [
            self.serving_rows(),
            self.channel_rows(),
            self.analytics_rows(),
            self.process_rows(),
            self.guard_rows(),
            self.intake_rows(),
        ];
        sections
            .into_iter()
            .flatten()
            .map(|(key, value)| match value {
                // JSON strings are valid YAML scalars and quote anything unusual.
                Some(v) => format!("{key}: {}\n", serde_json::Value::String(v)),
                None => format!("{key}: null\n"),
            })
            .collect()
    }

    /// The listeners, logs, TLS and the API token.
    fn serving_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }

    /// The cluster and the remediation channels (ArgoCD, drain, Helm, leases).
    fn channel_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }

    /// Prometheus and the KServe models.
    fn analytics_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }

    /// Shutdown, the compatibility port, the store, leader election and the pipeline.
    fn process_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }

    /// The audit webhook and the admission guard.
    fn guard_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }

    /// Request bounds and the intake of triggers and denials.
    fn intake_rows(&self) -> Vec<Row> {
        vec![
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
        ]
    }
}

/// A secret for printing: only whether it is set.
fn secret(value: &Option<Secret>) -> Option<String> {
    value.as_ref().map(|_| "<redacted>".to_string())
}

fn path(value: &Option<PathBuf>) -> Option<String> {
    value.as_ref().map(|p| p.display().to_string())
}
/// A list for printing; `None` (printed as null) when empty.
fn join(list: &[String]) -> Option<String> {
    (!list.is_empty()).then(|| list.join(","))
}

fn action_names(actions: &[crate::plan::Action]) -> String {
    actions
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

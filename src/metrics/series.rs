//! Registering the metrics, and the series known at startup, created at zero so that each
//! exists from the first scrape.

use super::{ARGOCD_SYNC_RESULTS, CREDENTIAL_FILES, LAYERS, Metrics, STORE_OPS};

impl Metrics {
    /// Registers every metric in the app's registry (once).
    pub(super) fn register_all(&self) {
        for collector in [
            Box::new(self.http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(self.http_duration.clone()),
            Box::new(self.tls_reloads.clone()),
            Box::new(self.credential_file_reloads.clone()),
            Box::new(self.build_info.clone()),
            Box::new(self.store_duration.clone()),
            Box::new(self.incidents.clone()),
            Box::new(self.alerts_received.clone()),
            Box::new(self.alerts_deduplicated.clone()),
            Box::new(self.admission_reviews.clone()),
            Box::new(self.admission_duration.clone()),
            Box::new(self.remediations.clone()),
            Box::new(self.remediation_duration.clone()),
            Box::new(self.time_to_heal.clone()),
            Box::new(self.gate_decisions.clone()),
            Box::new(self.audit_events.clone()),
            Box::new(self.workflows_active.clone()),
            Box::new(self.leader.clone()),
            Box::new(self.leader_transitions.clone()),
            Box::new(self.cluster_requests.clone()),
            Box::new(self.argocd_syncs.clone()),
            Box::new(self.argocd_sync_duration.clone()),
            Box::new(self.ml_layer_detection.clone()),
            Box::new(self.alerts_rejected.clone()),
            Box::new(self.body_read_timeouts.clone()),
            Box::new(self.body_budget_rejections.clone()),
            Box::new(self.body_budget_in_use.clone()),
            Box::new(self.denials_not_recorded.clone()),
            Box::new(self.compat_requests_rejected.clone()),
        ] {
            self.registry
                .register(collector)
                .expect("each metric is registered once");
        }
    }

    /// Creates the series of every label value known at startup, at zero, family by family
    /// (the exposition sorts series by name and labels, so the order here does not show).
    pub(super) fn zero_known_series(&self) {
        self.zero_serving_series();
        self.zero_intake_series();
        self.zero_guard_series();
        self.zero_workflow_series();
        self.zero_execution_series();
        for reason in crate::api::compat_limit::REJECT_REASONS {
            self.compat_requests_rejected.with_label_values(&[reason]);
        }
    }

    fn zero_serving_series(&self) {
        for result in ["success", "failure"] {
            self.tls_reloads.with_label_values(&[result]);
            for file in CREDENTIAL_FILES {
                self.credential_file_reloads
                    .with_label_values(&[file, result]);
            }
        }
        self.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for op in STORE_OPS {
            self.store_duration.with_label_values(&[op]);
        }
    }

    fn zero_intake_series(&self) {
        for status in ["firing", "resolved"] {
            self.alerts_received.with_label_values(&[status]);
        }
        for reason in crate::sources::alertmanager::REJECT_REASONS {
            self.alerts_rejected.with_label_values(&[reason]);
        }
        for outcome in crate::sources::audit::OUTCOMES {
            self.audit_events.with_label_values(&[outcome]);
        }
        for source in crate::incident::Source::ALL {
            for layer in LAYERS {
                self.incidents.with_label_values(&[source.as_str(), layer]);
            }
        }
    }

    /// Only the (decision, reason) pairs the guard can answer: a manual change warns or
    /// denies, every other reason allows.
    fn zero_guard_series(&self) {
        for reason in crate::guard::review::REASONS {
            for decision in ["allow", "warn", "deny"] {
                let possible = match *reason {
                    "manual_change" => decision != "allow",
                    _ => decision == "allow",
                };
                if possible {
                    self.admission_reviews
                        .with_label_values(&[decision, reason]);
                }
            }
        }
        for reason in crate::guard::record::NOT_RECORDED_REASONS {
            self.denials_not_recorded.with_label_values(&[reason]);
        }
    }

    fn zero_workflow_series(&self) {
        for mode in ["live", "dry_run"] {
            self.remediation_duration.with_label_values(&[mode]);
            for status in [
                "succeeded",
                "failed",
                "escalated",
                "cancelled",
                "interrupted",
                "not_needed",
            ] {
                self.remediations.with_label_values(&[mode, status]);
            }
        }
        for gate in crate::gate::GATES {
            for outcome in ["pass", "block", "dry_run", "await_approval"] {
                self.gate_decisions.with_label_values(&[gate, outcome]);
            }
        }
        for outcome in crate::ml::LAYER_OUTCOMES {
            self.ml_layer_detection.with_label_values(&[outcome]);
        }
    }

    fn zero_execution_series(&self) {
        for verb in ["get", "list", "delete", "patch", "evict"] {
            for outcome in ["success", "error"] {
                self.cluster_requests.with_label_values(&[verb, outcome]);
            }
        }
        for result in ARGOCD_SYNC_RESULTS {
            self.argocd_syncs.with_label_values(&[result]);
        }
        for channel in ["kube", "rest"] {
            self.argocd_sync_duration.with_label_values(&[channel]);
        }
    }
}

//! The pods an analysis covers, as PromQL matchers and in words.

use crate::analytics::matcher;

/// What to analyse, already validated.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub deployment: Option<String>,
    /// `key=value` pairs (kube-state-metrics pod labels).
    pub labels: Vec<(String, String)>,
}

impl Scope {
    pub(super) fn selector(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(ns) = &self.namespace {
            out.push(matcher("namespace", ns));
        }
        if let Some(pod) = &self.pod {
            out.push(matcher("pod", pod));
        }
        if let Some(deployment) = &self.deployment {
            // Validated object names: `.` is the only regex metacharacter they can hold.
            out.push(format!("pod=~\"{}-.*\"", deployment.replace('.', "\\\\.")));
        }
        out
    }

    /// The scope in words, for messages.
    pub(super) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ns) = &self.namespace {
            parts.push(format!("namespace {ns}"));
        }
        if let Some(pod) = &self.pod {
            parts.push(format!("pod {pod}"));
        }
        if let Some(deployment) = &self.deployment {
            parts.push(format!("deployment {deployment}"));
        }
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("pods labelled {}", labels.join(",")));
        }
        if parts.is_empty() {
            "the whole cluster".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Restricts a `(namespace, pod)` vector to pods with the selector's labels.
    pub(super) fn with_labels(&self, query: String) -> String {
        if self.labels.is_empty() {
            return query;
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| {
                let key: String = k
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                matcher(&format!("label_{key}"), v)
            })
            .collect();
        format!(
            "({query}) * on (namespace, pod) group_left() max by (namespace, pod) (kube_pod_labels{{{}}})",
            labels.join(",")
        )
    }
}

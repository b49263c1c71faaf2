//! Which layer is failing: infrastructure (nodes, machine config), platform (operators, SDN,
//! ingress, storage, system namespaces) or application (workloads). Pure.
//!
//! The Go engine matched substrings, so "host" in "post" or "nodejs" sent application incidents
//! to the infrastructure layer. Keywords here match whole words only.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Lowest: nodes, kubelet, machine config, disks.
    Infrastructure,
    /// Cluster services: operators, networking, ingress, storage, system namespaces.
    Platform,
    /// Workloads.
    Application,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Infrastructure => "infrastructure",
            Layer::Platform => "platform",
            Layer::Application => "application",
        }
    }
}

/// What is known about one affected resource.
#[derive(Debug, Clone, Default)]
pub struct Signal<'a> {
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub alertname: Option<&'a str>,
    /// Free text: issue type, title, description.
    pub text: &'a str,
}

/// One layer with why it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LayerFinding {
    pub layer: Layer,
    pub confidence: f64,
    pub evidence: String,
}

const INFRA_KINDS: &[&str] = &[
    "Node",
    "Machine",
    "MachineSet",
    "MachineConfig",
    "MachineConfigPool",
    "BareMetalHost",
];
const PLATFORM_KINDS: &[&str] = &[
    "ClusterOperator",
    "ClusterVersion",
    "Ingress",
    "IngressController",
    "Route",
    "PersistentVolume",
    "StorageClass",
    "CSIDriver",
    "Network",
    "NetworkPolicy",
    "ClusterServiceVersion",
    "Subscription",
    "CatalogSource",
    "InstallPlan",
];
const APP_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Service",
    "ConfigMap",
    "Secret",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
];
const INFRA_ALERTS: &[&str] = &[
    "KubeNodeNotReady",
    "KubeNodeUnreachable",
    "KubeletDown",
    "NodeFilesystemSpaceFillingUp",
    "NodeFilesystemAlmostOutOfSpace",
    "MCDDrainError",
    "MCPDegraded",
    "NodeNetworkReceiveErrs",
    "KubeNodeReadinessFlapping",
];
const PLATFORM_ALERTS: &[&str] = &[
    "ClusterOperatorDown",
    "ClusterOperatorDegraded",
    "KubeAPIErrorBudgetBurn",
    "etcdMembersDown",
    "etcdInsufficientMembers",
    "IngressControllerDegraded",
    "KubePersistentVolumeErrors",
];
/// Whole words (lower-case) that point at a layer in free text.
const INFRA_WORDS: &[&str] = &[
    "node",
    "nodes",
    "kubelet",
    "machineconfig",
    "mcp",
    "disk",
    "filesystem",
    "kernel",
    "drain",
    "cordon",
    "hardware",
    "nic",
];
const PLATFORM_WORDS: &[&str] = &[
    "operator",
    "clusteroperator",
    "etcd",
    "apiserver",
    "sdn",
    "ovn",
    "dns",
    "ingress",
    "router",
    "registry",
    "csi",
    "olm",
];

/// Namespaces of the platform itself.
pub fn is_system_namespace(namespace: &str) -> bool {
    namespace.starts_with("openshift-")
        || namespace.starts_with("kube-")
        || matches!(namespace, "openshift" | "default-broker")
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
}

/// The most likely layer of one signal.
pub fn layer_of(signal: &Signal<'_>) -> LayerFinding {
    let finding = |layer, confidence, evidence: String| LayerFinding {
        layer,
        confidence,
        evidence,
    };
    if INFRA_KINDS.contains(&signal.kind) {
        return finding(Layer::Infrastructure, 0.95, format!("kind {}", signal.kind));
    }
    if PLATFORM_KINDS.contains(&signal.kind) {
        return finding(Layer::Platform, 0.9, format!("kind {}", signal.kind));
    }
    if let Some(alert) = signal.alertname {
        if INFRA_ALERTS.contains(&alert) {
            return finding(Layer::Infrastructure, 0.9, format!("alert {alert}"));
        }
        if PLATFORM_ALERTS.contains(&alert) {
            return finding(Layer::Platform, 0.85, format!("alert {alert}"));
        }
    }
    if let Some(ns) = signal.namespace.filter(|ns| is_system_namespace(ns)) {
        return finding(Layer::Platform, 0.8, format!("system namespace {ns}"));
    }
    if APP_KINDS.contains(&signal.kind) {
        return finding(Layer::Application, 0.85, format!("kind {}", signal.kind));
    }
    let text_words: Vec<String> = words(signal.text).collect();
    if let Some(w) = text_words
        .iter()
        .find(|w| INFRA_WORDS.contains(&w.as_str()))
    {
        return finding(Layer::Infrastructure, 0.6, format!("keyword {w:?}"));
    }
    if let Some(w) = text_words
        .iter()
        .find(|w| PLATFORM_WORDS.contains(&w.as_str()))
    {
        return finding(Layer::Platform, 0.6, format!("keyword {w:?}"));
    }
    finding(
        Layer::Application,
        0.5,
        "no infrastructure or platform evidence".into(),
    )
}

/// The layers of several signals, deduplicated; the root cause is the lowest one.
pub fn diagnose(signals: &[Signal<'_>]) -> (Vec<LayerFinding>, Layer) {
    let mut findings: Vec<LayerFinding> = Vec::new();
    for signal in signals {
        let found = layer_of(signal);
        match findings.iter_mut().find(|f| f.layer == found.layer) {
            Some(existing) if existing.confidence < found.confidence => *existing = found,
            Some(_) => {}
            None => findings.push(found),
        }
    }
    findings.sort_by_key(|f| f.layer);
    let root = findings
        .first()
        .map(|f| f.layer)
        .unwrap_or(Layer::Application);
    (findings, root)
}

#[cfg(test)]
mod tests;

//! Every Kubernetes API call the engine makes, declared in one place: the Helm chart's RBAC is
//! written from this table, `docs/rbac.md` explains it, and a test renders the chart and
//! checks that it grants exactly these (group, resource, verb) triples, nothing more.

/// Which part of the engine needs a permission, and so which chart value turns it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Always: guard watches, detection, the workload channel, verification, Events.
    Core,
    /// The ArgoCD channel and the guard's Application watch.
    ArgoCd,
    /// The infrastructure channel (cordon, drain).
    Nodes,
    /// OpenShift: ClusterOperators, MachineConfigPools, ClusterVersion (`rbac.openshift`).
    OpenShift,
    /// OLM ClusterServiceVersions (`rbac.olm`).
    Olm,
    /// Helm release history: reading Secrets cluster-wide (`rbac.helm`, off by default).
    Helm,
}

/// One permission: `verbs` on `resources` of `group` (cluster-wide).
#[derive(Debug, Clone, Copy)]
pub struct ApiCall {
    pub feature: Feature,
    pub group: &'static str,
    pub resources: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// The code that makes the call, and why.
    pub why: &'static str,
}

pub const API_CALLS: &[ApiCall] = &[
    ApiCall {
        feature: Feature::Core,
        group: "",
        resources: &["pods"],
        verbs: &["get", "list", "delete"],
        why: "owner chains and evidence (execute/workload, execute/inspect), verification (verify), deleting a failing pod (delete_pod), operator pods (execute/platform)",
    },
    ApiCall {
        feature: Feature::Core,
        group: "",
        resources: &["events"],
        verbs: &["create"],
        why: "a Kubernetes Event on every step's target (workload::record_event)",
    },
    ApiCall {
        feature: Feature::Core,
        group: "apps",
        resources: &["deployments", "statefulsets"],
        verbs: &["get", "list", "watch", "patch"],
        why: "the guard's metadata-only watch of guarded kinds (watch/parents), owner chains and rollout checkpoints (get), operator Deployments (list, execute/platform), rollout restart and rollback (patch)",
    },
    ApiCall {
        feature: Feature::Core,
        group: "apps",
        resources: &["replicasets"],
        verbs: &["get", "list", "watch"],
        why: "the guard's metadata-only watch (watch/parents), owner chains (get), the previous revision of a rollback (list)",
    },
    ApiCall {
        feature: Feature::Core,
        group: "apps",
        resources: &["daemonsets"],
        verbs: &["get", "patch"],
        why: "owner chains and rollout restart of DaemonSets",
    },
    ApiCall {
        feature: Feature::Core,
        group: "apps",
        resources: &["deployments/scale", "statefulsets/scale"],
        verbs: &["patch"],
        why: "scale_up through the scale subresource (workload::scale)",
    },
    ApiCall {
        feature: Feature::Core,
        group: "autoscaling",
        resources: &["horizontalpodautoscalers"],
        verbs: &["list"],
        why: "never scale a workload an HPA scales (workload::autoscaler_of)",
    },
    ApiCall {
        feature: Feature::ArgoCd,
        group: "argoproj.io",
        resources: &["applications"],
        verbs: &["get", "list", "watch", "patch"],
        why: "the guard's Application watch (watch/argocd); refresh + sync and selfHeal off under a lease (execute/argocd)",
    },
    ApiCall {
        feature: Feature::Nodes,
        group: "",
        resources: &["nodes"],
        verbs: &["get", "list", "patch"],
        why: "the node budget (list), cordon and uncordon (patch), readiness after a drain (get) (execute/node)",
    },
    ApiCall {
        feature: Feature::Nodes,
        group: "",
        resources: &["pods/eviction"],
        verbs: &["create"],
        why: "drain through the Eviction API, PodDisruptionBudgets honoured (execute/node::drain)",
    },
    ApiCall {
        feature: Feature::OpenShift,
        group: "config.openshift.io",
        resources: &["clusteroperators"],
        verbs: &["get"],
        why: "the platform channel and its checkpoint (execute/platform)",
    },
    ApiCall {
        feature: Feature::OpenShift,
        group: "config.openshift.io",
        resources: &["clusterversions"],
        verbs: &["list"],
        why: "the maintenance gate: an upgrade in progress pauses node steps (execute/node)",
    },
    ApiCall {
        feature: Feature::OpenShift,
        group: "machineconfiguration.openshift.io",
        resources: &["machineconfigpools"],
        verbs: &["list"],
        why: "the maintenance gate: updating pools make node steps wait, degraded ones escalate (execute/node)",
    },
    ApiCall {
        feature: Feature::Olm,
        group: "operators.coreos.com",
        resources: &["clusterserviceversions"],
        verbs: &["list"],
        why: "an operand's operator must be healthy before it is nudged (execute/operator)",
    },
    ApiCall {
        feature: Feature::Helm,
        group: "",
        resources: &["secrets"],
        verbs: &["list"],
        why: "Helm release history from the release Secrets (execute/helm); the helm CLI's own rollback needs the release's resources too (rbac.helm.extraRules)",
    },
];

/// ConfigMaps in ArgoCD's namespaces only (a Role there, not a cluster-wide grant): the guard
/// watches `argocd-cm` for the tracking method and label (watch/argocd).
pub const ARGOCD_NAMESPACE_CALLS: ApiCall = ApiCall {
    feature: Feature::ArgoCd,
    group: "",
    resources: &["configmaps"],
    verbs: &["list", "watch"],
    why: "argocd-cm in each ARGOCD_NAMESPACES namespace (watch/argocd)",
};

/// `(group, resource, verb)` triples granted cluster-wide for the enabled features.
pub fn triples(
    enabled: impl Fn(Feature) -> bool,
) -> std::collections::BTreeSet<(String, String, String)> {
    API_CALLS
        .iter()
        .filter(|call| enabled(call.feature))
        .flat_map(|call| {
            call.resources.iter().flat_map(move |resource| {
                call.verbs.iter().map(move |verb| {
                    (
                        call.group.to_string(),
                        resource.to_string(),
                        verb.to_string(),
                    )
                })
            })
        })
        .collect()
}

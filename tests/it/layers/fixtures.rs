//! The mock API server's answers for each layer: a NotReady node, a degraded ClusterOperator,
//! a crash-looping pod.

use crate::helpers::cluster::{api_pod_chain, pod, pod_list};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;

pub(super) type Mock = (HashMap<String, Value>, Writes);

pub(super) const NODES: &str = "/api/v1/nodes";
pub(super) const NODE: &str = "/api/v1/nodes/node-2";
pub(super) const PODS_ON_NODES: &str = "/api/v1/pods";
pub(super) const POOLS: &str = "/apis/machineconfiguration.openshift.io/v1/machineconfigpools";
pub(super) const VERSIONS: &str = "/apis/config.openshift.io/v1/clusterversions";
pub(super) const OPERATOR: &str = "/apis/config.openshift.io/v1/clusteroperators/ingress";
pub(super) const OPERATOR_NS: &str = "openshift-ingress-operator";

pub(super) fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

pub(super) fn conditions(name: &str, pairs: &[(&str, &str)]) -> Value {
    let conditions: Vec<Value> = pairs
        .iter()
        .map(|(t, s)| json!({"type": t, "status": s, "lastTransitionTime": "2026-01-01T00:00:00Z", "message": "m"}))
        .collect();
    json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": name}, "status": {"conditions": conditions}})
}

pub(super) fn node(name: &str, unschedulable: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {"unschedulable": unschedulable}})
}

pub(super) fn node_pod(ns: &str, name: &str, owner: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns,
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner, "name": "o", "uid": "u", "controller": true}]},
        "spec": {"nodeName": "node-2", "containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}})
}

pub(super) fn created() -> (u16, Value) {
    (
        201,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}),
    )
}

pub(super) fn too_many() -> (u16, Value) {
    (
        429,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429,
               "message": "Cannot evict pod as it would violate the pod's disruption budget."}),
    )
}

pub(super) fn event(ns: &str) -> ((String, String), Vec<(u16, Value)>) {
    (
        ("POST".into(), format!("/api/v1/namespaces/{ns}/events")),
        vec![(
            201,
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": ns}, "involvedObject": {}}),
        )],
    )
}

/// node-2 NotReady: a MachineConfigPool updating at first, three pods on the node (one of a
/// DaemonSet), a PDB that refuses web-1's eviction `pdb_refusals` times; `other_cordoned`:
/// node-1 is already unschedulable; `ready_after`: node-2 is Ready again after the drain.
pub(super) fn node_layer(other_cordoned: bool, pdb_refusals: usize, ready_after: bool) -> Mock {
    let on_node = list(
        "PodList",
        vec![
            node_pod("shop", "web-1", "ReplicaSet"),
            node_pod("kube-system", "ds-1", "DaemonSet"),
            node_pod("shop", "db-0", "StatefulSet"),
        ],
    );
    let drained = list(
        "PodList",
        vec![node_pod("kube-system", "ds-1", "DaemonSet")],
    );
    let mut web_evictions: Vec<(u16, Value)> = (0..pdb_refusals).map(|_| too_many()).collect();
    web_evictions.push(created());
    // Cordoned by the engine (its annotation), Ready again or not.
    let mut after = node("node-2", true);
    after["metadata"]["annotations"] = json!({"coordination-engine.io/cordoned": "true"});
    after["status"] = json!({"conditions": [{"type": "Ready", "status": if ready_after { "True" } else { "Unknown" }}]});
    let after_get = after.clone();
    let lists = node_lists(after, other_cordoned);
    // NotReady when the engine confirms the symptom, before it cordons.
    let mut sick = node("node-2", false);
    sick["status"] = json!({"conditions": [{"type": "Ready", "status": "Unknown"}]});
    let writes = Writes::from([
        (
            ("GET".into(), NODE.into()),
            vec![(200, sick), (200, after_get)],
        ),
        (("GET".into(), POOLS.into()), pools_updating_then_done()),
        (
            ("GET".into(), PODS_ON_NODES.into()),
            vec![(200, on_node), (200, drained)],
        ),
        (
            ("PATCH".into(), NODE.into()),
            vec![(200, node("node-2", true))],
        ),
        (
            (
                "POST".into(),
                "/api/v1/namespaces/shop/pods/web-1/eviction".into(),
            ),
            web_evictions,
        ),
        (
            (
                "POST".into(),
                "/api/v1/namespaces/shop/pods/db-0/eviction".into(),
            ),
            vec![created()],
        ),
        event("default"),
    ]);
    (lists, writes)
}

/// node-2 as `after` describes it, node-1 (unschedulable if `other_cordoned`), the cluster
/// version not progressing.
fn node_lists(after: Value, other_cordoned: bool) -> HashMap<String, Value> {
    HashMap::from([
        (NODE.to_string(), after),
        (
            NODES.to_string(),
            list(
                "NodeList",
                vec![node("node-1", other_cordoned), node("node-2", false)],
            ),
        ),
        (
            VERSIONS.to_string(),
            list(
                "ClusterVersionList",
                vec![conditions("version", &[("Progressing", "False")])],
            ),
        ),
    ])
}

/// The MachineConfigPool worker updating at the first read, done at the second.
fn pools_updating_then_done() -> Vec<(u16, Value)> {
    vec![
        (
            200,
            list(
                "MachineConfigPoolList",
                vec![conditions("worker", &[("Updating", "True")])],
            ),
        ),
        (
            200,
            list(
                "MachineConfigPoolList",
                vec![conditions("worker", &[("Updating", "False")])],
            ),
        ),
    ]
}

/// ClusterOperator ingress Degraded, healthy again after its operator pod is restarted.
pub(super) fn platform_layer() -> Mock {
    let degraded = json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterOperator", "metadata": {"name": "ingress"},
        "status": {"conditions": [{"type": "Available", "status": "True"}, {"type": "Degraded", "status": "True"}],
                   "relatedObjects": [{"group": "", "resource": "namespaces", "name": OPERATOR_NS},
                                      {"group": "", "resource": "namespaces", "name": "openshift-ingress"}]}});
    let mut healthy = degraded.clone();
    healthy["status"]["conditions"][1]["status"] = json!("False");
    let operator_deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ingress-operator", "namespace": OPERATOR_NS},
        "spec": {"selector": {"matchLabels": {"name": "ingress-operator"}}, "template": {"metadata": {}, "spec": {"containers": []}}}});
    let mut operator_pod = pod(OPERATOR_NS, "ingress-operator-abc", "ingress-operator-rs");
    operator_pod["metadata"]["labels"] = json!({"name": "ingress-operator"});
    let lists = HashMap::from([
        (
            format!("/apis/apps/v1/namespaces/{OPERATOR_NS}/deployments"),
            list("DeploymentList", vec![operator_deployment.clone()]),
        ),
        (
            format!("/apis/apps/v1/namespaces/{OPERATOR_NS}/deployments/ingress-operator"),
            operator_deployment,
        ),
        (
            format!("/api/v1/namespaces/{OPERATOR_NS}/pods"),
            list("PodList", vec![operator_pod.clone()]),
        ),
    ]);
    let writes = Writes::from([
        (
            ("GET".into(), OPERATOR.into()),
            // Read at the evidence check, at the restart, at the first poll; then healthy.
            vec![
                (200, degraded.clone()),
                (200, degraded.clone()),
                (200, degraded),
                (200, healthy),
            ],
        ),
        (
            (
                "DELETE".into(),
                format!("/api/v1/namespaces/{OPERATOR_NS}/pods/ingress-operator-abc"),
            ),
            vec![(200, operator_pod)],
        ),
        event("default"),
    ]);
    (lists, writes)
}

/// The crash-looping pod of the application layer (manual Deployment prod/api).
pub(super) fn application_layer() -> Mock {
    let writes = crate::helpers::cluster::pod_deletion();
    let mut lists = api_pod_chain(2, json!({}));
    lists.insert(
        "/api/v1/namespaces/prod/pods".into(),
        pod_list(&[("api-7d9f", true, 0)]),
    );
    (lists, writes)
}

pub(super) async fn start(layers: Vec<Mock>) -> MockApiServer {
    let (mut lists, mut writes) = (HashMap::new(), Writes::new());
    for (l, w) in layers {
        lists.extend(l);
        writes.extend(w);
    }
    MockApiServer::start_with(lists, writes).await
}

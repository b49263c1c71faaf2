//! The platform channel (OpenShift, SPEC §5.4): a ClusterOperator that is Degraded or not
//! Available gets its operator's pods restarted (deleted: the operator Deployment's
//! controller recreates them; the Deployment itself belongs to the cluster-version operator
//! and is never patched), then the ClusterOperator is watched until Available=True and
//! Degraded=False.

use super::{ExecError, with_retry, workload};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use serde_json::Value;

fn cluster_operators(client: &kube::Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterOperator");
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "clusteroperators"),
    )
}

/// The ClusterOperator as JSON.
pub async fn cluster_operator(client: &kube::Client, name: &str) -> Result<Value, ExecError> {
    let api = cluster_operators(client);
    let object = with_retry(|| async { Ok(api.get(name).await?) }).await?;
    serde_json::to_value(object).map_err(|e| ExecError::Permanent(e.to_string()))
}

fn condition_status<'a>(operator: &'a Value, kind: &str) -> &'a str {
    operator
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
        })
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("Unknown")
}

/// `(healthy, "Available=…, Degraded=…")` of a ClusterOperator.
pub fn health(operator: &Value) -> (bool, String) {
    let (available, degraded) = (
        condition_status(operator, "Available"),
        condition_status(operator, "Degraded"),
    );
    (
        available == "True" && degraded == "False",
        format!("Available={available}, Degraded={degraded}"),
    )
}

/// The operator's namespaces, from `status.relatedObjects` (`resource: namespaces`), the
/// `-operator` ones first.
pub fn operator_namespaces(operator: &Value) -> Vec<String> {
    let mut namespaces: Vec<String> = operator
        .pointer("/status/relatedObjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|o| o.get("resource").and_then(Value::as_str) == Some("namespaces"))
        .filter_map(|o| o.get("name").and_then(Value::as_str).map(String::from))
        .collect();
    namespaces.sort_by_key(|ns| !ns.ends_with("-operator"));
    namespaces
}

/// Deletes the pods of the operator's Deployment (the first Deployment whose name contains
/// `operator` in the operator's namespaces).
pub async fn restart_operator_pods(
    client: &kube::Client,
    name: &str,
    dry_run: bool,
) -> Result<String, ExecError> {
    let operator = cluster_operator(client, name).await?;
    for namespace in operator_namespaces(&operator) {
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        let list =
            with_retry(|| async { Ok(deployments.list(&ListParams::default()).await?) }).await?;
        let Some(deployment) = list.items.into_iter().find(|d| {
            d.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.contains("operator"))
        }) else {
            continue;
        };
        let deployment_name = deployment.metadata.name.clone().unwrap_or_default();
        let selector =
            workload::selector(client, "Deployment", &namespace, &deployment_name).await?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let params = ListParams::default().labels(&selector);
        let listed = with_retry(|| async { Ok(pods.list(&params).await?) }).await?;
        let mut deleted = Vec::new();
        for pod in listed.items {
            let pod_name = pod.metadata.name.unwrap_or_default();
            workload::delete_pod(client, &namespace, &pod_name, dry_run).await?;
            deleted.push(pod_name);
        }
        return Ok(format!(
            "restarted the pods of Deployment {namespace}/{deployment_name} ({}) for ClusterOperator {name}{}",
            if deleted.is_empty() {
                "none running".to_string()
            } else {
                deleted.join(", ")
            },
            if dry_run { " (dry run)" } else { "" }
        ));
    }
    Err(ExecError::Permanent(format!(
        "ClusterOperator {name} names no namespace with an operator Deployment in status.relatedObjects"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_and_namespaces_come_from_the_status() {
        let operator = json!({"status": {
        "conditions": [{"type": "Available", "status": "True"}, {"type": "Degraded", "status": "True"}],
        "relatedObjects": [
            {"group": "", "resource": "namespaces", "name": "openshift-ingress"},
            {"group": "operator.openshift.io", "resource": "ingresscontrollers", "name": "default"},
            {"group": "", "resource": "namespaces", "name": "openshift-ingress-operator"}
        ]}});
        assert_eq!(
            health(&operator),
            (false, "Available=True, Degraded=True".to_string())
        );
        assert_eq!(
            operator_namespaces(&operator),
            vec!["openshift-ingress-operator", "openshift-ingress"]
        );
        assert_eq!(
            health(&json!({})),
            (false, "Available=Unknown, Degraded=Unknown".to_string())
        );
    }
}

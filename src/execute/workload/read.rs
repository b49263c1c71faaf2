//! Reads of workloads: the owner chain, rollout state, selector, autoscaler and replicas.

use super::super::{ExecError, with_retry};
use crate::guard::view::ParentCache;
use crate::watch::parents::cached_object;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::Value;

/// The object and its controllers up to the top, as JSON (`apiVersion`, `kind`, `metadata`),
/// for ownership detection (pods go up through their ReplicaSet to the Deployment): from
/// `cache` (the metadata watch cache) the objects it holds, from the API server the others
/// (pods, DaemonSets, anything not cached yet); `read` is told the outcome of each request.
pub async fn owner_chain_from(
    client: &kube::Client,
    cache: Option<&ParentCache>,
    read: &(dyn Fn(bool) + Sync),
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Vec<Value>, ExecError> {
    let mut chain = Vec::new();
    let (mut kind, mut name) = (kind.to_string(), name.to_string());
    for _ in 0..4 {
        let cached = cache.and_then(|c| cached_object(c, &kind, namespace, &name));
        let object = match cached {
            Some(object) => object,
            None => {
                let object = get(client, &kind, namespace, &name).await;
                if READABLE.contains(&kind.as_str()) {
                    // Sent (another kind fails before any request).
                    read(object.is_ok());
                }
                object?
            }
        };
        let owner = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            })
            .cloned();
        chain.push(object);
        match owner {
            Some(owner)
                if matches!(
                    owner.get("kind").and_then(Value::as_str),
                    Some("ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet")
                ) =>
            {
                kind = owner["kind"].as_str().unwrap_or_default().to_string();
                name = owner["name"].as_str().unwrap_or_default().to_string();
            }
            _ => break,
        }
    }
    Ok(chain)
}

/// The kinds `get` reads.
const READABLE: &[&str] = &[
    "Pod",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
];

pub(crate) async fn get(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Value, ExecError> {
    let client = client.clone();
    let to_json =
        |v: Result<Value, serde_json::Error>| v.map_err(|e| ExecError::Permanent(e.to_string()));
    with_retry(|| {
        let client = client.clone();
        async move {
            let value = match kind {
                "Pod" => to_json(serde_json::to_value(
                    Api::<Pod>::namespaced(client, namespace).get(name).await?,
                ))?,
                "ReplicaSet" => to_json(serde_json::to_value(
                    Api::<ReplicaSet>::namespaced(client, namespace)
                        .get(name)
                        .await?,
                ))?,
                "Deployment" => to_json(serde_json::to_value(
                    Api::<Deployment>::namespaced(client, namespace)
                        .get(name)
                        .await?,
                ))?,
                "StatefulSet" => to_json(serde_json::to_value(
                    Api::<StatefulSet>::namespaced(client, namespace)
                        .get(name)
                        .await?,
                ))?,
                "DaemonSet" => to_json(serde_json::to_value(
                    Api::<DaemonSet>::namespaced(client, namespace)
                        .get(name)
                        .await?,
                ))?,
                other => {
                    return Err(ExecError::Permanent(format!(
                        "the manual channel does not handle {other}"
                    )));
                }
            };
            Ok(value)
        }
    })
    .await
}

/// Whether the workload `object` is rolled out: its generation observed, every replica
/// updated and available; and what its status says (pure).
pub fn rollout_state(kind: &str, namespace: &str, name: &str, object: &Value) -> (bool, String) {
    let number = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let (generation, observed) = (
        number("/metadata/generation"),
        number("/status/observedGeneration"),
    );
    let (desired, ready) = match kind {
        "DaemonSet" => (
            number("/status/desiredNumberScheduled"),
            number("/status/numberAvailable"),
        ),
        "StatefulSet" => (
            object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            number("/status/readyReplicas"),
        ),
        _ => (
            object
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1),
            number("/status/availableReplicas"),
        ),
    };
    let updated = if kind == "DaemonSet" {
        number("/status/updatedNumberScheduled")
    } else {
        number("/status/updatedReplicas")
    };
    let complete = observed >= generation && updated >= desired && ready >= desired;
    (
        complete,
        format!(
            "{kind} {namespace}/{name}: generation {generation}/{observed} observed, {updated} updated, {ready}/{desired} available"
        ),
    )
}

/// The workload's pod selector (`spec.selector.matchLabels`) as a label selector string.
pub async fn selector(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<String, ExecError> {
    let object = get(client, kind, namespace, name).await?;
    selector_of(kind, namespace, name, &object)
}

/// `selector`, of the workload `object` already read.
pub fn selector_of(
    kind: &str,
    namespace: &str,
    name: &str,
    object: &Value,
) -> Result<String, ExecError> {
    let labels = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ExecError::Permanent(format!(
                "{kind} {namespace}/{name} has no matchLabels selector"
            ))
        })?;
    Ok(labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(","))
}

/// The HorizontalPodAutoscaler that scales this workload, if any: scaling it by hand would be
/// undone at the HPA's next sync.
pub async fn autoscaler_of(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<String>, ExecError> {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let list = with_retry(|| {
        let api = api.clone();
        async move { Ok(api.list(&Default::default()).await?) }
    })
    .await?;
    Ok(list.items.into_iter().find_map(|hpa| {
        let target = &hpa.spec.as_ref()?.scale_target_ref;
        (target.kind == kind && target.name == name).then(|| hpa.metadata.name.unwrap_or_default())
    }))
}

/// The workload's desired replica count (`spec.replicas`, 1 when unset).
pub async fn replicas(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<i32, ExecError> {
    let object = get(client, kind, namespace, name).await?;
    Ok(object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .and_then(|r| i32::try_from(r).ok())
        .unwrap_or(1))
}

//! The manual channel: requests on workloads nobody else owns.

use super::{ExecError, FIELD_MANAGER, with_retry};
use crate::guard::view::ParentCache;
use crate::watch::parents::cached_object;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use serde_json::{Value, json};

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

/// Deletes a pod; its controller replaces it. Not drift, even for GitOps-managed workloads.
/// With `dry_run`, the API server validates and answers without changing anything
/// (`dryRun=All`); the same goes for every write below.
pub async fn delete_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<String, ExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    with_retry(|| {
        let api = api.clone();
        async move {
            let params = DeleteParams {
                dry_run,
                ..Default::default()
            };
            api.delete(name, &params).await?;
            Ok(format!(
                "deleted pod {namespace}/{name}{}",
                dry_suffix(dry_run)
            ))
        }
    })
    .await
}

/// `kubectl rollout restart`: stamps `kubectl.kubernetes.io/restartedAt` on the pod template.
pub async fn rollout_restart(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> Result<String, ExecError> {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }}}}});
    merge_patch(client, (kind, namespace, name), &patch, dry_run, None).await?;
    Ok(format!(
        "restarted {kind} {namespace}/{name}{}",
        dry_suffix(dry_run)
    ))
}

/// A merge patch of an apps/v1 workload (or of its `subresource`), with the engine's field
/// manager, retried while transient.
async fn merge_patch(
    client: &kube::Client,
    (kind, namespace, name): (&str, &str, &str),
    patch: &Value,
    dry_run: bool,
    subresource: Option<&str>,
) -> Result<(), ExecError> {
    let plural = match (kind, subresource) {
        ("Deployment", _) => "deployments",
        ("StatefulSet", _) => "statefulsets",
        ("DaemonSet", None) => "daemonsets",
        _ => {
            return Err(ExecError::Permanent(format!(
                "cannot {} a {kind}",
                if subresource.is_some() {
                    "scale"
                } else {
                    "restart"
                }
            )));
        }
    };
    let gvk = GroupVersionKind::gvk("apps", "v1", kind);
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run,
        ..Default::default()
    };
    with_retry(|| async {
        let merge = Patch::Merge(patch);
        match subresource {
            Some(sub) => drop(api.patch_subresource(sub, name, &params, &merge).await?),
            None => drop(api.patch(name, &params, &merge).await?),
        }
        Ok(())
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

fn dry_suffix(dry_run: bool) -> &'static str {
    if dry_run {
        " (server-side dry run: accepted, nothing changed)"
    } else {
        ""
    }
}

/// Records a Kubernetes Event on the target, so `kubectl describe` shows what the engine did.
/// Best effort: a failure is logged, never fails the step.
pub async fn record_event(
    client: &kube::Client,
    target: (&str, &str, &str),
    reason: &str,
    message: &str,
    warning: bool,
) {
    use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    let (kind, object_namespace, name) = target;
    // Events of cluster-scoped objects (nodes, ClusterOperators) live in `default`, as
    // kubectl and the kubelet record them.
    let namespace = if object_namespace.is_empty() {
        "default"
    } else {
        object_namespace
    };
    let api_version = match kind {
        "Pod" | "Node" => "v1",
        "ClusterOperator" => "config.openshift.io/v1",
        _ => "apps/v1",
    };
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}.coordination-engine.")),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some(kind.to_string()),
            namespace: (!object_namespace.is_empty()).then(|| object_namespace.to_string()),
            name: Some(name.to_string()),
            api_version: Some(api_version.to_string()),
            ..Default::default()
        },
        reason: Some(reason.to_string()),
        message: Some(message.chars().take(1024).collect()),
        type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
        source: Some(EventSource {
            component: Some(FIELD_MANAGER.to_string()),
            host: None,
        }),
        reporting_component: Some(FIELD_MANAGER.to_string()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let params = kube::api::PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    if let Err(error) = api.create(&params, &event).await {
        tracing::debug!(%error, kind, namespace, name, "cannot record a Kubernetes Event");
    }
}

/// `kubectl rollout undo`: puts the pod template of the Deployment's previous revision back
/// (the ReplicaSet it owns with the highest revision below the current one).
pub async fn rollback_deployment(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<String, ExecError> {
    use kube::api::ListParams;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments.get(name).await?;
    let revision = |annotations: Option<&std::collections::BTreeMap<String, String>>| {
        annotations
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let current = revision(deployment.metadata.annotations.as_ref());
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), namespace);
    let owned = replicasets
        .list(&ListParams::default().labels(&selector))
        .await?;
    let previous = owned
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid)
        })
        .map(|rs| (revision(rs.metadata.annotations.as_ref()), rs))
        .filter(|(r, _)| *r < current)
        .max_by_key(|(r, _)| *r);
    let Some((previous_revision, rs)) = previous else {
        return Err(ExecError::Permanent(format!(
            "Deployment {namespace}/{name} has no revision before {current}"
        )));
    };
    let mut template = serde_json::to_value(rs.spec.and_then(|s| s.template).unwrap_or_default())
        .map_err(|e| ExecError::Permanent(e.to_string()))?;
    // The ReplicaSet's own hash label is not part of the Deployment's template.
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    let patch: json_patch::Patch = serde_json::from_value(
        json!([{ "op": "replace", "path": "/spec/template", "value": template }]),
    )
    .map_err(|e| ExecError::Permanent(e.to_string()))?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run,
        ..Default::default()
    };
    with_retry(|| {
        let (deployments, patch, params) = (deployments.clone(), patch.clone(), params.clone());
        async move {
            deployments.patch(name, &params, &Patch::<()>::Json(patch)).await?;
            Ok(format!(
                "rolled back Deployment {namespace}/{name} from revision {current} to {previous_revision}{}",
                dry_suffix(dry_run)
            ))
        }
    })
    .await
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

/// `kubectl scale`: sets the replicas through the `scale` subresource (what the guard judges
/// by the parent object).
pub async fn scale(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    replicas: i32,
    dry_run: bool,
) -> Result<String, ExecError> {
    let patch = json!({"spec": {"replicas": replicas}});
    merge_patch(
        client,
        (kind, namespace, name),
        &patch,
        dry_run,
        Some("scale"),
    )
    .await?;
    Ok(format!(
        "scaled {kind} {namespace}/{name} to {replicas} replicas{}",
        dry_suffix(dry_run)
    ))
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

//! The manual channel: requests on workloads nobody else owns.

use super::{ExecError, FIELD_MANAGER, with_retry};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use serde_json::{Value, json};

mod read;
mod rollback;

pub(crate) use read::get;
pub use read::{autoscaler_of, owner_chain_from, replicas, rollout_state, selector, selector_of};
pub use rollback::rollback_deployment;

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

//! The operator channel (SPEC §5.4): an operand is never patched (its operator would revert
//! it). Failing pods may be deleted (the workload channel does that); a restart becomes a
//! nudge of the owning custom resource (an annotation, which makes the operator reconcile);
//! and before anything, the operator itself must be healthy: an OLM ClusterServiceVersion that
//! is not `Succeeded` is escalated with its phase and message.

use super::{ExecError, FIELD_MANAGER, with_retry};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// The annotation that asks the operator to reconcile.
pub const NUDGE_ANNOTATION: &str = "coordination-engine.io/reconcile-requested-at";

/// The controlling custom resource of an object: `(apiVersion, kind, name)`.
pub fn custom_owner(object: &Value) -> Option<(String, String, String)> {
    object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| {
            r.get("controller").and_then(Value::as_bool) == Some(true)
                && r.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.contains('.') && v.contains('/'))
        })
        .map(|r| {
            let text = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            (text("apiVersion"), text("kind"), text("name"))
        })
}

/// A CSV that is not `Succeeded`, as a reason to escalate (pure).
pub fn unhealthy_csv(csvs: &[Value]) -> Option<String> {
    csvs.iter().find_map(|csv| {
        let phase = csv
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Unknown");
        (phase != "Succeeded").then(|| {
            format!(
                "ClusterServiceVersion {} is {phase}: {}",
                csv.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                csv.pointer("/status/message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        })
    })
}

/// The namespace's ClusterServiceVersions (none when OLM is not installed).
pub async fn csvs(client: &kube::Client, namespace: &str) -> Result<Vec<Value>, ExecError> {
    let gvk = GroupVersionKind::gvk("operators.coreos.com", "v1alpha1", "ClusterServiceVersion");
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "clusterserviceversions");
    super::list_optional(Api::namespaced_with(client.clone(), namespace, &resource)).await
}

/// Annotates the custom resource so its operator reconciles it. The resource's plural comes
/// from API discovery (custom resources have no fixed plural).
pub async fn nudge(
    client: &kube::Client,
    namespace: &str,
    owner: &(String, String, String),
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> Result<String, ExecError> {
    let (api_version, kind, name) = owner;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| ExecError::Permanent(format!("cannot discover {api_version} {kind}: {e}")))?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"metadata": {"annotations": {NUDGE_ANNOTATION: stamp}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        dry_run,
        ..Default::default()
    };
    with_retry(|| async {
        api.patch(name, &params, &Patch::Merge(&patch)).await?;
        Ok(())
    })
    .await?;
    Ok(format!(
        "asked the operator to reconcile {kind} {namespace}/{name} (annotation {NUDGE_ANNOTATION}){}",
        if dry_run { " (dry run)" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_custom_owner_and_an_unhealthy_csv_are_found() {
        let operand = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "controller": false},
            {"apiVersion": "postgres-operator.crunchydata.com/v1beta1", "kind": "PostgresCluster", "name": "db", "controller": true}]}});
        assert_eq!(
            custom_owner(&operand),
            Some((
                "postgres-operator.crunchydata.com/v1beta1".into(),
                "PostgresCluster".into(),
                "db".into()
            ))
        );
        assert_eq!(custom_owner(&json!({"metadata": {}})), None);
        let ok = json!({"metadata": {"name": "pg.v5"}, "status": {"phase": "Succeeded"}});
        let failing = json!({"metadata": {"name": "pg.v6"}, "status": {"phase": "Failed", "message": "install strategy failed"}});
        assert_eq!(unhealthy_csv(std::slice::from_ref(&ok)), None);
        assert_eq!(
            unhealthy_csv(&[ok, failing]),
            Some("ClusterServiceVersion pg.v6 is Failed: install strategy failed".into())
        );
    }
}

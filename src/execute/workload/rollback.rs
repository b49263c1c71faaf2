//! `kubectl rollout undo` for a Deployment.

use super::super::{ExecError, FIELD_MANAGER, with_retry};
use super::dry_suffix;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `kubectl rollout undo`: puts the pod template of the Deployment's previous revision back
/// (the ReplicaSet it owns with the highest revision below the current one).
pub async fn rollback_deployment(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    dry_run: bool,
) -> Result<String, ExecError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments.get(name).await?;
    let current = revision(deployment.metadata.annotations.as_ref());
    let previous = previous_replicaset(client, namespace, &deployment, current).await?;
    let Some((previous_revision, rs)) = previous else {
        return Err(ExecError::Permanent(format!(
            "Deployment {namespace}/{name} has no revision before {current}"
        )));
    };
    let template = deployment_template(rs)?;
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

/// The `deployment.kubernetes.io/revision` annotation; 0 when missing or not a number.
fn revision(annotations: Option<&BTreeMap<String, String>>) -> u64 {
    annotations
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0)
}

/// The ReplicaSet the Deployment owns (by UID, among those its `matchLabels` select) with the
/// highest revision below `current`, and that revision.
async fn previous_replicaset(
    client: &kube::Client,
    namespace: &str,
    deployment: &Deployment,
    current: u64,
) -> Result<Option<(u64, ReplicaSet)>, ExecError> {
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
    Ok(owned
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
        .max_by_key(|(r, _)| *r))
}

/// The ReplicaSet's pod template, as the Deployment's template to put back.
fn deployment_template(rs: ReplicaSet) -> Result<Value, ExecError> {
    let mut template = serde_json::to_value(rs.spec.and_then(|s| s.template).unwrap_or_default())
        .map_err(|e| ExecError::Permanent(e.to_string()))?;
    // The ReplicaSet's own hash label is not part of the Deployment's template.
    if let Some(labels) = template
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove("pod-template-hash");
    }
    Ok(template)
}

//! The ArgoCD channel (SPEC §5.4): an ArgoCD-managed object is never patched; its Application is
//! refreshed and synced instead, and ArgoCD's own `restart` resource action is used where the
//! argocd-server REST API is configured. Through the Kubernetes API by default (an
//! `operation.sync` on the Application resource, which needs no ArgoCD URL), through
//! argocd-server when `ARGOCD_API_URL` is set. Either way the channel then waits for the
//! Application to be Synced and Healthy; Degraded fails fast.

use super::{ExecError, FIELD_MANAGER, with_retry};
use crate::metrics::Metrics;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use progress::{busy, text};
use rest::Rest;
use serde_json::{Value, json};
use std::time::Duration;

mod progress;
mod rest;

/// An Application, where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for AppRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The object to sync (`resources` of the sync operation: only the target, not the whole app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ResourceRef {
    fn to_json(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "namespace": self.namespace, "name": self.name})
    }
}

/// The Application of a tracking name: `<namespace>_<name>` for apps outside the control-plane
/// namespaces, else `<name>` in the first control-plane namespace that has it (the watch's
/// view decides when it knows the app).
pub fn locate(
    tracking_name: &str,
    view: &crate::guard::GuardView,
    control_namespaces: &[String],
) -> AppRef {
    if let Some(app) = view.applications.get(tracking_name) {
        return AppRef {
            namespace: app.namespace.clone(),
            name: app.name.clone(),
        };
    }
    match tracking_name.split_once('_') {
        Some((namespace, name)) => AppRef {
            namespace: namespace.into(),
            name: name.into(),
        },
        None => AppRef {
            namespace: control_namespaces
                .first()
                .cloned()
                .unwrap_or_else(|| "argocd".into()),
            name: tracking_name.into(),
        },
    }
}

/// How a sync ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncOutcome {
    Healthy(String),
    /// The sync finished but the app is Degraded, or the sync itself failed.
    Failed(String),
    TimedOut(String),
}

/// Drives ArgoCD for the pipeline.
#[derive(Clone)]
pub struct ArgoChannel {
    kube: kube::Client,
    rest: Option<Rest>,
    pub sync_timeout: Duration,
    metrics: Metrics,
}

impl ArgoChannel {
    /// Through the Kubernetes API; `with_rest` switches to argocd-server.
    pub fn new(kube: kube::Client, sync_timeout: Duration, metrics: Metrics) -> Self {
        ArgoChannel {
            kube,
            rest: None,
            sync_timeout,
            metrics,
        }
    }

    /// `rest` or `kube`: which API this channel talks to.
    pub fn backend(&self) -> &'static str {
        if self.rest.is_some() { "rest" } else { "kube" }
    }

    fn applications(&self, namespace: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "applications");
        Api::namespaced_with(self.kube.clone(), namespace, &resource)
    }

    /// The Application as JSON (with its status).
    pub async fn fetch(&self, app: &AppRef) -> Result<Value, ExecError> {
        with_retry(|| async {
            match &self.rest {
                Some(rest) => {
                    let url = rest.url(app, "");
                    rest.send(
                        rest.http
                            .get(url)
                            .query(&[("appNamespace", &app.namespace)]),
                    )
                    .await
                }
                None => {
                    let object = self.applications(&app.namespace).get(&app.name).await?;
                    serde_json::to_value(object).map_err(|e| ExecError::Permanent(e.to_string()))
                }
            }
        })
        .await
    }

    /// Hard-refreshes the Application and syncs `resource` (no pruning), refusing while another
    /// operation runs. Returns the `operationState.startedAt` seen before, for [`Self::wait`].
    pub async fn sync(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
        reason: &str,
        dry_run: bool,
    ) -> Result<(String, String), ExecError> {
        let current = self.fetch(app).await?;
        if let Some(why) = busy(&current) {
            self.metrics
                .argocd_syncs
                .with_label_values(&["refused"])
                .inc();
            return Err(ExecError::Permanent(format!(
                "Application {app}: {why}; not starting another"
            )));
        }
        let before = text(&current, "/status/operationState/startedAt").to_string();
        with_retry(|| async {
            match &self.rest {
                Some(rest) => {
                    let body = json!({"appNamespace": app.namespace, "prune": false, "dryRun": dry_run,
                                      "resources": [resource.to_json()]});
                    rest.send(rest.http.post(rest.url(app, "/sync")).json(&body))
                        .await
                        .map(drop)
                }
                None => {
                    let patch = json!({
                        "metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}},
                        "operation": {
                            "initiatedBy": {"username": FIELD_MANAGER},
                            "info": [{"name": "reason", "value": reason}],
                            "sync": {"prune": false, "resources": [resource.to_json()]}
                        }
                    });
                    let params = PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        dry_run,
                        ..Default::default()
                    };
                    self.applications(&app.namespace)
                        .patch(&app.name, &params, &Patch::Merge(&patch))
                        .await
                        .map(drop)
                        .map_err(ExecError::from)
                }
            }
        })
        .await?;
        let detail = format!(
            "synced {}/{} {} through Application {app} ({}, prune off){}",
            resource.kind,
            resource.namespace,
            resource.name,
            self.backend(),
            if dry_run { " (dry run)" } else { "" }
        );
        Ok((detail, before))
    }

    /// ArgoCD's `restart` resource action (argocd-server only: the Kubernetes API has no
    /// resource actions). `None` when the channel talks to the Kubernetes API.
    pub async fn restart(
        &self,
        app: &AppRef,
        resource: &ResourceRef,
    ) -> Result<Option<String>, ExecError> {
        let Some(rest) = &self.rest else {
            return Ok(None);
        };
        let (group, version) = match resource.group.as_str() {
            "" => ("", "v1"),
            group => (group, "v1"),
        };
        with_retry(|| async {
            let request = rest
                .http
                .post(rest.url(app, "/resource/actions"))
                .query(&[
                    ("appNamespace", app.namespace.as_str()),
                    ("namespace", resource.namespace.as_str()),
                    ("resourceName", resource.name.as_str()),
                    ("group", group),
                    ("version", version),
                    ("kind", resource.kind.as_str()),
                ])
                .json(&"restart");
            rest.send(request).await.map(drop)
        })
        .await?;
        Ok(Some(format!(
            "ran ArgoCD's restart action on {} {}/{} (Application {app})",
            resource.kind, resource.namespace, resource.name
        )))
    }

    /// Turns the Application's automated `selfHeal` on or off (through the Kubernetes API:
    /// a merge patch of `spec.syncPolicy.automated.selfHeal`, which leaves auto-sync itself
    /// and pruning as they are).
    pub async fn set_self_heal(&self, app: &AppRef, enabled: bool) -> Result<(), ExecError> {
        let patch = json!({"spec": {"syncPolicy": {"automated": {"selfHeal": enabled}}}});
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        with_retry(|| async {
            self.applications(&app.namespace)
                .patch(&app.name, &params, &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(ExecError::from)
        })
        .await
    }

    /// The revision ArgoCD deployed before the current one (`status.history`), for an
    /// escalation that asks for a revert in Git.
    pub async fn previous_revision(&self, app: &AppRef) -> Option<String> {
        let current = self.fetch(app).await.ok()?;
        let history = current.pointer("/status/history")?.as_array()?;
        let previous = history.len().checked_sub(2).and_then(|i| history.get(i))?;
        previous
            .get("revision")
            .and_then(Value::as_str)
            .map(String::from)
    }
}

#[cfg(test)]
mod tests;

//! The ArgoCD channel (SPEC §5.4): an ArgoCD-managed object is never patched; its Application is
//! refreshed and synced instead, and ArgoCD's own `restart` resource action is used where the
//! argocd-server REST API is configured. Through the Kubernetes API by default (an
//! `operation.sync` on the Application resource, which needs no ArgoCD URL), through
//! argocd-server when `ARGOCD_API_URL` is set. Either way the channel then waits for the
//! Application to be Synced and Healthy; Degraded fails fast.

use super::{ExecError, FIELD_MANAGER, with_retry};
use crate::metrics::Metrics;
use crate::token_file::OutboundToken;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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

/// Where the operation stands, read from an Application's status.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    Running,
    Done(SyncOutcome),
}

fn text<'a>(app: &'a Value, pointer: &str) -> &'a str {
    app.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether an operation is pending or running on the Application.
fn busy(app: &Value) -> Option<String> {
    if app.get("operation").is_some_and(|o| !o.is_null()) {
        return Some("an operation is pending".into());
    }
    let phase = text(app, "/status/operationState/phase");
    matches!(phase, "Running" | "Terminating")
        .then(|| format!("an operation is {}", phase.to_lowercase()))
}

/// Judges the Application after our sync. `before`: the `operationState.startedAt` seen before
/// the sync (so an older operation's result is not taken for ours).
fn progress(app: &Value, before: &str) -> Progress {
    let (sync, health) = (
        text(app, "/status/sync/status"),
        text(app, "/status/health/status"),
    );
    let detail = format!("sync {sync}, health {health}");
    let started = text(app, "/status/operationState/startedAt");
    if busy(app).is_some() || started == before {
        return Progress::Running;
    }
    match text(app, "/status/operationState/phase") {
        "Failed" | "Error" => Progress::Done(SyncOutcome::Failed(format!(
            "the sync failed: {}",
            text(app, "/status/operationState/message")
        ))),
        _ if health == "Degraded" => Progress::Done(SyncOutcome::Failed(format!(
            "{detail}: {}",
            text(app, "/status/health/message")
        ))),
        _ if sync == "Synced" && health == "Healthy" => {
            Progress::Done(SyncOutcome::Healthy(detail))
        }
        _ => Progress::Running,
    }
}

/// The argocd-server REST API.
#[derive(Clone)]
struct Rest {
    base: String,
    /// `ARGOCD_TOKEN`, or `ARGOCD_TOKEN_FILE` read again before each request (rotation).
    token: OutboundToken,
    http: reqwest::Client,
}

impl Rest {
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ExecError> {
        let request = match self.token.current().await.map_err(ExecError::Transient)? {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ExecError::Transient(format!("argocd-server: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match status.as_u16() {
            200..=299 => Ok(body),
            409 | 429 | 500.. => Err(ExecError::Transient(format!(
                "argocd-server answered {status}: {message}"
            ))),
            _ => Err(ExecError::Permanent(format!(
                "argocd-server answered {status}: {message}"
            ))),
        }
    }

    fn url(&self, app: &AppRef, rest: &str) -> String {
        format!("{}/api/v1/applications/{}{rest}", self.base, app.name)
    }
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

    /// Uses argocd-server at `base` (TLS verified against `ca_pem` when given, else the system
    /// roots).
    pub fn with_rest(
        mut self,
        base: &str,
        token: OutboundToken,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("ARGOCD_CA_FILE is not a PEM bundle: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the argocd-server client: {e}"))?;
        self.rest = Some(Rest {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        });
        Ok(self)
    }

    /// argocd-server's base URL, when the channel goes through it.
    pub fn server(&self) -> Option<&str> {
        self.rest.as_ref().map(|rest| rest.base.as_str())
    }

    /// Asks argocd-server for its version (`GET /api/version`, no token needed) within
    /// `timeout`: the round trip, or why it failed. `None` without `ARGOCD_API_URL`.
    pub async fn probe_server(&self, timeout: Duration) -> Option<Result<Duration, String>> {
        let rest = self.rest.as_ref()?;
        let started = std::time::Instant::now();
        let request = rest
            .http
            .get(format!("{}/api/version", rest.base))
            .timeout(timeout)
            .send();
        Some(match request.await {
            Ok(response) if response.status().is_success() => Ok(started.elapsed()),
            Ok(response) => Err(format!("argocd-server answered {}", response.status())),
            Err(error) if error.is_timeout() => Err(format!(
                "argocd-server did not answer within {}s",
                timeout.as_secs()
            )),
            Err(error) => Err(format!("argocd-server unreachable: {error}")),
        })
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

    /// Waits until the Application is Synced and Healthy after the operation that started
    /// after `before`, polling at 1 s doubling to 5 s until the sync timeout.
    pub async fn wait(&self, app: &AppRef, before: &str) -> SyncOutcome {
        let started = Instant::now();
        let deadline = started + self.sync_timeout;
        let mut pause = Duration::from_secs(1);
        let mut last;
        let outcome = loop {
            match self.fetch(app).await {
                Ok(current) => match progress(&current, before) {
                    Progress::Done(outcome) => break outcome,
                    Progress::Running => {
                        last = format!(
                            "sync {}, health {}, operation {}",
                            text(&current, "/status/sync/status"),
                            text(&current, "/status/health/status"),
                            text(&current, "/status/operationState/phase")
                        );
                    }
                },
                Err(error) => last = error.to_string(),
            }
            let now = Instant::now();
            if now >= deadline {
                break SyncOutcome::TimedOut(format!(
                    "Application {app} not Synced + Healthy within {}s: {last}",
                    self.sync_timeout.as_secs()
                ));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        };
        let result = match &outcome {
            SyncOutcome::Healthy(_) => "succeeded",
            SyncOutcome::Failed(why) if why.starts_with("the sync failed") => "failed",
            SyncOutcome::Failed(_) => "degraded",
            SyncOutcome::TimedOut(_) => "timeout",
        };
        self.metrics.argocd_syncs.with_label_values(&[result]).inc();
        self.metrics
            .argocd_sync_duration
            .with_label_values(&[self.backend()])
            .observe(started.elapsed().as_secs_f64());
        outcome
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
mod tests {
    use super::*;

    fn app(sync: &str, health: &str, phase: &str, started: &str) -> Value {
        json!({"status": {"sync": {"status": sync}, "health": {"status": health, "message": "m"},
               "operationState": {"phase": phase, "startedAt": started, "message": "boom"}}})
    }

    #[test]
    fn only_our_finished_operation_decides() {
        let before = "2026-01-01T00:00:00Z";
        let cases = [
            // The old operation's result is not ours.
            (
                app("Synced", "Healthy", "Succeeded", before),
                Progress::Running,
            ),
            (app("Synced", "Healthy", "Running", "t2"), Progress::Running),
            (
                app("Synced", "Healthy", "Succeeded", "t2"),
                Progress::Done(SyncOutcome::Healthy("sync Synced, health Healthy".into())),
            ),
            (
                app("Synced", "Progressing", "Succeeded", "t2"),
                Progress::Running,
            ),
            (
                app("Synced", "Degraded", "Succeeded", "t2"),
                Progress::Done(SyncOutcome::Failed(
                    "sync Synced, health Degraded: m".into(),
                )),
            ),
            (
                app("OutOfSync", "Healthy", "Failed", "t2"),
                Progress::Done(SyncOutcome::Failed("the sync failed: boom".into())),
            ),
        ];
        for (state, expected) in cases {
            assert_eq!(progress(&state, before), expected, "{state}");
        }
        let mut pending = app("Synced", "Healthy", "Succeeded", "t2");
        pending["operation"] = json!({"sync": {}});
        assert_eq!(progress(&pending, before), Progress::Running);
        assert!(busy(&pending).is_some());
    }

    #[test]
    fn tracking_names_locate_their_application() {
        let view = crate::guard::GuardView::new(crate::guard::review::tests::default_config());
        let control = vec!["openshift-gitops".to_string()];
        assert_eq!(
            locate("shop", &view, &control),
            AppRef {
                namespace: "openshift-gitops".into(),
                name: "shop".into()
            }
        );
        assert_eq!(
            locate("team-a_cart", &view, &control),
            AppRef {
                namespace: "team-a".into(),
                name: "cart".into()
            }
        );
    }
}

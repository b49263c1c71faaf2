//! `GET /health` (liveness), `GET /ready` (readiness), `GET /api/v1/health` (details).

use super::AppState;
use crate::error::ApiError;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Liveness: the process serves requests.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process is alive", body = Liveness)))]
pub async fn liveness() -> web::Json<Liveness> {
    web::Json(Liveness {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Readiness: every check passed.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    /// Each check and whether it passed.
    pub checks: BTreeMap<&'static str, bool>,
}

#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready to serve traffic", body = Readiness),
        (status = 503, description = "Not ready; `details` names the failing checks")))]
pub async fn readiness(state: web::Data<AppState>) -> Result<web::Json<Readiness>, ApiError> {
    let mut checks = BTreeMap::new();
    // A TLS listener only starts with a loaded certificate; a reload failure keeps the old one.
    let certs_loaded = state
        .tls
        .as_ref()
        .is_none_or(|tls| tls.current_leaf().is_some());
    checks.insert("certificates_loaded", certs_loaded);
    checks.insert("store_reachable", state.store.ping().await.is_ok());
    // Attached: the guard must know ArgoCD's Applications before it judges reviews.
    if state.cluster.is_some() {
        checks.insert(
            "guard_cache_synced",
            state.guard.snapshot().applications_synced,
        );
    }
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !**ok)
        .map(|(name, _)| *name)
        .collect();
    if failing.is_empty() {
        Ok(web::Json(Readiness {
            status: "ready",
            checks,
        }))
    } else {
        Err(
            ApiError::unavailable(format!("not ready: {}", failing.join(", ")))
                .with_details(serde_json::json!({ "failing_checks": failing })),
        )
    }
}

/// State of one dependency.
#[derive(Serialize, ToSchema, Clone)]
pub struct Component {
    /// `ok`, `degraded` or `down`.
    pub status: ComponentStatus,
    /// Round-trip time of the probe, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    pub message: String,
    /// Structured facts behind the message (`rbac`: the missing permissions by name).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl Component {
    fn new(status: ComponentStatus, message: impl Into<String>) -> Component {
        Component {
            status,
            latency_ms: None,
            message: message.into(),
            details: None,
        }
    }

    /// The same, with the round trip of the probe that found it.
    fn measured(self, latency: Option<std::time::Duration>) -> Component {
        Component {
            latency_ms: latency.map(|d| d.as_secs_f64() * 1000.0),
            ..self
        }
    }
}

#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[serde(rename_all = "lowercase")]
pub enum ComponentStatus {
    Ok,
    Degraded,
    Down,
}

/// The detailed health report.
#[derive(Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy`, `degraded` (still serving; HTTP 200) or `unhealthy` (HTTP 503).
    pub status: &'static str,
    pub version: &'static str,
    /// `attached` when the Kubernetes API answers, else `detached` (workflows run as dry runs).
    pub mode: &'static str,
    pub uptime_seconds: u64,
    pub components: BTreeMap<&'static str, Component>,
    /// Which replica executes (SPEC §3). Not a readiness condition: followers serve too.
    pub leader: crate::leader::LeaderStatus,
}

#[utoipa::path(get, path = "/api/v1/health", tag = "health",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Healthy or degraded", body = HealthReport),
        (status = 401, description = "Missing or wrong token"),
        (status = 503, description = "A dependency is down", body = HealthReport)))]
pub async fn detailed(state: web::Data<AppState>) -> HttpResponse {
    let mut components = BTreeMap::new();
    let probe = crate::cluster::probe(state.cluster.as_ref()).await;
    components.insert(
        "kubernetes",
        // Detached is a supported mode, not an outage: degraded, never down.
        Component::new(
            if probe.reachable {
                ComponentStatus::Ok
            } else {
                ComponentStatus::Degraded
            },
            probe.message,
        )
        .measured(probe.latency),
    );
    components.insert("tls", tls_component(&state));
    components.insert(
        "store",
        match state.store.ping().await {
            Ok(latency) => {
                Component::new(ComponentStatus::Ok, state.store.describe()).measured(Some(latency))
            }
            Err(error) => Component::new(ComponentStatus::Down, error.to_string()),
        },
    );

    if state.models.all().next().is_some() {
        components.insert("kserve", models_component(&state).await);
    }
    if state.cluster.is_some() {
        components.insert("argocd", argocd_component(&state).await);
        components.insert("rbac", rbac_component(&state.access));
    }
    let worst = components
        .values()
        .map(|c| c.status)
        .max()
        .unwrap_or(ComponentStatus::Ok);
    let report = HealthReport {
        status: match worst {
            ComponentStatus::Ok => "healthy",
            ComponentStatus::Degraded => "degraded",
            ComponentStatus::Down => "unhealthy",
        },
        version: env!("CARGO_PKG_VERSION"),
        mode: if probe.reachable {
            "attached"
        } else {
            "detached"
        },
        uptime_seconds: state.started_at.elapsed().as_secs(),
        components,
        leader: state.pipeline.leadership().status(),
    };
    if worst == ComponentStatus::Down {
        HttpResponse::ServiceUnavailable().json(report)
    } else {
        HttpResponse::Ok().json(report)
    }
}

/// KServe models: per model, the name it is served as (explicit or discovered) and whether it
/// is ready. Degraded (never down: keyword detection carries on) when one is missing, not
/// ready or its circuit is open; the message names it.
async fn models_component(state: &AppState) -> Component {
    let mut problems = Vec::new();
    let mut ready = Vec::new();
    for model in state.models.all() {
        // Asked first: describe() then shows the name this very call used.
        let answer = model.ready().await;
        let model_used = model.describe();
        match answer {
            Ok(true) => ready.push(format!("{model_used}: ready")),
            Ok(false) => problems.push(format!("{model_used}: not ready")),
            Err(error) => problems.push(format!("{model_used}: {}", error.reason())),
        }
    }
    if problems.is_empty() {
        Component::new(ComponentStatus::Ok, ready.join("; "))
    } else {
        Component::new(
            ComponentStatus::Degraded,
            format!(
                "{}; layer detection falls back to keywords (retried until the model answers)",
                problems
                    .into_iter()
                    .chain(ready)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    }
}

/// ArgoCD: the guard's Application watch has listed every Application (until then it cannot
/// tell a managed object from a manual one), and argocd-server answers when the ArgoCD channel
/// goes through it (`ARGOCD_API_URL`).
async fn argocd_component(state: &AppState) -> Component {
    let view = state.guard.snapshot();
    let mut problems = Vec::new();
    let mut facts = Vec::new();
    let mut details = serde_json::Map::new();
    if !view.applications_synced {
        problems.push("the Application watch has not finished its first list".to_string());
    } else if view.applications_api_missing {
        facts.push("no Application API in this cluster: nothing is ArgoCD-managed".to_string());
    } else {
        facts.push(format!("{} Applications watched", view.applications.len()));
        details.insert("applications".into(), view.applications.len().into());
    }
    details.insert(
        "applications_synced".into(),
        view.applications_synced.into(),
    );
    let mut latency = None;
    if let Some(cluster) = &state.cluster {
        if let Some(server) = cluster.argocd_server() {
            details.insert("server".into(), server.clone().into());
            match cluster.probe_argocd_server(ARGOCD_PROBE_TIMEOUT).await {
                Some(Ok(round_trip)) => {
                    latency = Some(round_trip);
                    facts.push(format!("argocd-server {server} answers"));
                }
                Some(Err(error)) => problems.push(error),
                None => {}
            }
        }
    }
    let (status, message) = if problems.is_empty() {
        (ComponentStatus::Ok, facts.join("; "))
    } else {
        (ComponentStatus::Degraded, problems.join("; "))
    };
    Component {
        details: Some(details.into()),
        ..Component::new(status, message).measured(latency)
    }
}

const ARGOCD_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The ServiceAccount's permissions, from the cached self-check (`cluster/access.rs`).
fn rbac_component(access: &crate::cluster::access::AccessCheck) -> Component {
    let Some(checked) = access.latest() else {
        return Component::new(ComponentStatus::Ok, "first permission check in progress");
    };
    let age = checked.at.elapsed().as_secs();
    match checked.result {
        Err(error) => Component::new(
            ComponentStatus::Degraded,
            format!("cannot check the ServiceAccount's permissions: {error}"),
        ),
        Ok(report) => {
            let details = serde_json::json!({
                "missing": report.missing,
                "features_off": report.features_off,
                "checked": report.checked,
                "checked_seconds_ago": age,
            });
            let off = if report.features_off.is_empty() {
                String::new()
            } else {
                format!(
                    "; not granted, their steps escalate: {}",
                    report.features_off.join(", ")
                )
            };
            let component = if report.missing.is_empty() {
                Component::new(
                    ComponentStatus::Ok,
                    format!(
                        "all {} permissions the engine uses are granted{off}",
                        report.checked
                    ),
                )
            } else {
                Component::new(
                    ComponentStatus::Degraded,
                    format!(
                        "the ServiceAccount lacks {}: steps needing them will fail (docs/rbac.md){off}",
                        report.missing.join(", ")
                    ),
                )
            };
            Component {
                details: Some(details),
                ..component
            }
        }
    }
}

fn tls_component(state: &AppState) -> Component {
    let message = match &state.tls {
        None => "TLS_MODE=off: plain HTTP (terminate TLS in front of the engine)".to_string(),
        Some(tls) => {
            let source = tls.source();
            format!(
                "serving {} certificate {} (reloaded when the file changes)",
                source.origin,
                source.cert_file.display()
            )
        }
    };
    Component::new(ComponentStatus::Ok, message)
}

//! `/api/v1/pause`: stop (and resume) remediation globally, for one namespace, or for one kind
//! of cluster-scoped target (`?kind=Node`). Persisted. These are the storm budget's buckets: a
//! spent budget pauses its bucket the same way.

use super::AppState;
use super::params;
use super::validate::bounded;
use crate::error::ApiError;
use crate::gate::Bucket;
use crate::store::Pause;
use actix_web::web;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ScopeParams {
    /// Pause only this namespace; without it (and without `kind`), everything.
    pub namespace: Option<String>,
    /// Pause only cluster-scoped targets of this kind (`Node`, `ClusterOperator`, …).
    pub kind: Option<String>,
}

/// Optional body of `POST /api/v1/pause`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PauseState {
    pub paused: bool,
    /// `global`, `namespace` or `kind`.
    pub scope: &'static str,
    /// `global`, `namespace/<ns>` or `kind/<Kind>`.
    pub bucket: String,
    pub namespace: Option<String>,
    /// The kind of cluster-scoped targets (scope `kind`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub since: Option<chrono::DateTime<Utc>>,
    /// On resume: open alert incidents the pause had held, queued for the pipeline again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<usize>,
}

/// One stored pause, with its bucket spelled out.
#[derive(Serialize, ToSchema)]
pub struct PauseView {
    /// `global`, `namespace` or `kind`.
    pub scope: &'static str,
    /// `global`, `namespace/<ns>` or `kind/<Kind>`.
    pub bucket: String,
    /// The paused namespace (`null` for the global and kind scopes).
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub reason: Option<String>,
    pub since: chrono::DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct PauseList {
    pub pauses: Vec<PauseView>,
    /// The storm budget and how much of it each bucket spent in the current window.
    pub budget: crate::pipeline::BudgetUsage,
}

/// `(scope, bucket label, namespace, kind)` of a pause scope (`None`: global).
fn describe(bucket: Option<&Bucket>) -> (&'static str, String, Option<String>, Option<String>) {
    match bucket {
        None => ("global", "global".into(), None, None),
        Some(b @ Bucket::Namespace(ns)) => ("namespace", b.label(), Some(ns.clone()), None),
        Some(b @ Bucket::Kind(kind)) => ("kind", b.label(), None, Some(kind.clone())),
    }
}

/// The bucket the query names; `None` is the global scope.
fn bucket(query: &ScopeParams) -> Result<Option<Bucket>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    let kind = query
        .kind
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match (namespace, kind) {
        (Some(_), Some(_)) => Err(
            ApiError::bad_request("give either namespace or kind, not both")
                .with_details(serde_json::json!({ "parameter": "kind" })),
        ),
        (Some(ns), None) => Ok(Some(Bucket::Namespace(ns))),
        (None, Some(kind)) => {
            let kind = crate::sources::trigger::normalize_kind(kind);
            if super::remediation::CLUSTER_SCOPED.contains(&kind.as_str()) {
                Ok(Some(Bucket::Kind(kind)))
            } else {
                Err(ApiError::bad_request(format!(
                    "{kind:?} is not a cluster-scoped kind (one of {}); namespaced targets are paused by namespace",
                    super::remediation::CLUSTER_SCOPED.join(", ")
                ))
                .with_details(serde_json::json!({ "parameter": "kind" })))
            }
        }
        (None, None) => Ok(None),
    }
}

#[utoipa::path(post, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    params(ScopeParams), request_body(content = PauseRequest, description = "optional"),
    responses((status = 200, body = PauseState)))]
pub async fn pause(
    state: web::Data<AppState>,
    query: web::Query<ScopeParams>,
    body: web::Bytes,
) -> Result<web::Json<PauseState>, ApiError> {
    let bucket = bucket(&query)?;
    // The body is optional: an empty POST pauses without a reason.
    let request: PauseRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PauseRequest::default()
    } else {
        super::json::parse(&body)?
    };
    let reason = request
        .reason
        .map(|r| bounded("reason", r, 1024))
        .transpose()?;
    let pause = Pause {
        namespace: bucket.as_ref().map(Bucket::pause_key),
        reason,
        since: Utc::now(),
    };
    state.store.set_pause(&pause).await?;
    let (scope, label, namespace, kind) = describe(bucket.as_ref());
    tracing::warn!(bucket = %label, reason = ?pause.reason, "remediation paused");
    Ok(web::Json(PauseState {
        paused: true,
        scope,
        bucket: label,
        namespace,
        kind,
        reason: pause.reason,
        since: Some(pause.since),
        requeued: None,
    }))
}

#[utoipa::path(delete, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    params(ScopeParams), responses((status = 200, body = PauseState)))]
pub async fn resume(
    state: web::Data<AppState>,
    query: web::Query<ScopeParams>,
) -> Result<web::Json<PauseState>, ApiError> {
    let bucket = bucket(&query)?;
    let key = bucket.as_ref().map(Bucket::pause_key);
    let removed = state.store.clear_pause(key.as_deref()).await?;
    let requeued = state.pipeline.requeue_held(bucket.as_ref()).await?;
    let (scope, label, namespace, kind) = describe(bucket.as_ref());
    if removed {
        tracing::warn!(bucket = %label, requeued, "remediation resumed");
    }
    Ok(web::Json(PauseState {
        paused: false,
        scope,
        bucket: label,
        namespace,
        kind,
        reason: None,
        since: None,
        requeued: Some(requeued),
    }))
}

#[utoipa::path(get, path = "/api/v1/pause", tag = "pause", security(("bearer" = [])),
    responses((status = 200, body = PauseList)))]
pub async fn list(state: web::Data<AppState>) -> Result<web::Json<PauseList>, ApiError> {
    let pauses = state
        .store
        .list_pauses()
        .await?
        .into_iter()
        .map(|p| {
            let bucket = p.namespace.as_deref().map(Bucket::from_pause_key);
            let (scope, label, namespace, kind) = describe(bucket.as_ref());
            PauseView {
                scope,
                bucket: label,
                namespace,
                kind,
                reason: p.reason,
                since: p.since,
            }
        })
        .collect();
    let budget = state.pipeline.budget_usage(Utc::now()).await?;
    Ok(web::Json(PauseList { pauses, budget }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The query of a `DELETE /api/v1/pause?…` call, as actix would parse it.
    fn query_of(call: &str) -> ScopeParams {
        let query = call.split_once('?').map(|(_, q)| q).unwrap_or_default();
        web::Query::<ScopeParams>::from_query(query)
            .expect("a query actix parses")
            .into_inner()
    }

    #[test]
    fn every_bucket_a_storm_can_pause_is_lifted_by_the_call_its_escalation_names() {
        let namespaces = [None, Some(""), Some("shop"), Some("Not_A_Namespace")];
        let kinds = [
            "",
            "Pod",
            "Deployment",
            "Instance",
            "Node",
            "ClusterOperator",
        ];
        let kinds = kinds.iter().chain(crate::plan::CLUSTER_SCOPED);
        for kind in kinds {
            for namespace in namespaces {
                let Some(stored) = Bucket::of(kind, namespace) else {
                    continue;
                };
                let call = stored.resume_call();
                let named = bucket(&query_of(&call));
                assert!(
                    matches!(&named, Ok(Some(b)) if *b == stored),
                    "{kind} {namespace:?}: {call} names {named:?}, not {stored:?}"
                );
                // The stored pause key round-trips to the same bucket.
                assert_eq!(Bucket::from_pause_key(&stored.pause_key()), stored);
            }
        }
    }
}

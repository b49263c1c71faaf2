//! HTTP handlers only: extract, call, map. `routes` lists every route.

pub mod analytics;
pub mod audit;
pub mod compat_limit;
pub mod detect;
pub mod guard;
pub mod health;
pub mod incidents;
pub mod json;
pub mod leases;
pub mod ml;
pub mod openapi;
pub mod params;
pub mod pause;
pub mod remediation;
pub mod routes;
pub mod validate;
pub mod views;
pub mod webhooks;
pub mod workflows;

use crate::cluster::SharedCluster;
use crate::config::Settings;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::tls::ReloadingCert;
use actix_web::http::StatusCode;
use std::sync::Arc;
use std::time::Instant;

/// What the handlers share.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub cluster: Option<SharedCluster>,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    /// The guard's live view (watchers write it, reviews read snapshots).
    pub guard: crate::guard::SharedView,
    pub denials: crate::guard::record::DenialRecorder,
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    pub audit: audit::AuditState,
    /// `None` when `TLS_MODE=off`.
    pub tls: Option<Arc<ReloadingCert>>,
    pub started_at: Instant,
    /// `None` without `PROMETHEUS_URL`.
    pub prometheus: Option<crate::analytics::prometheus::Prometheus>,
    /// KServe models (none when `ENABLE_KSERVE_INTEGRATION` is false).
    pub models: Arc<crate::ml::Models>,
    /// What the token-less compatibility listener may still write.
    pub compat_limit: compat_limit::CompatLimit,
    /// The ServiceAccount's permissions, checked in the background when attached.
    pub access: crate::cluster::access::AccessCheck,
}

/// What an [`AppState`] is made of; the rest follows from the settings.
pub struct StateParts {
    pub settings: Arc<Settings>,
    /// `None` when detached.
    pub cluster: Option<SharedCluster>,
    pub store: Arc<dyn Store>,
    pub metrics: Metrics,
    /// The guard's live view: the one the pipeline was built with (the guard and the
    /// pipeline must see the same Applications and leases).
    pub guard: crate::guard::SharedView,
    pub pipeline: Arc<crate::pipeline::Pipeline>,
    pub tls: Option<Arc<ReloadingCert>>,
    pub prometheus: Option<crate::analytics::prometheus::Prometheus>,
    pub models: Arc<crate::ml::Models>,
    pub access: crate::cluster::access::AccessCheck,
}

impl AppState {
    /// The one way the handlers' state is built (`startup` and the tests): denials are
    /// recorded by a background task under the settings' policy, the audit rules and the
    /// compatibility listener's limits come from the settings, uptime counts from now.
    pub fn new(parts: StateParts) -> Self {
        let StateParts {
            settings,
            cluster,
            store,
            metrics,
            guard,
            pipeline,
            tls,
            prometheus,
            models,
            access,
        } = parts;
        AppState {
            denials: crate::guard::record::DenialRecorder::spawn(
                store.clone(),
                metrics.clone(),
                crate::guard::record::DenialPolicy::from_settings(&settings),
            ),
            audit: audit::AuditState::from_settings(&settings),
            compat_limit: Default::default(),
            started_at: Instant::now(),
            settings,
            cluster,
            store,
            metrics,
            guard,
            pipeline,
            tls,
            prometheus,
            models,
            access,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} does not exist")),
            StoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            StoreError::Unavailable(reason) | StoreError::Raced(reason) => {
                tracing::error!(%reason, "store unavailable");
                ApiError::unavailable("The store is unavailable; retry later.")
            }
            StoreError::Corrupt { id, reason } => {
                tracing::error!(%id, %reason, "stored record is unreadable");
                ApiError::internal(format!("stored record {id} is unreadable"))
            }
        }
    }
}

/// Checks an id's shape before touching the store: a malformed id is simply not found.
pub fn valid_id<'a>(prefix: &str, id: &'a str) -> Result<&'a str, ApiError> {
    if crate::incident::is_valid_id(prefix, id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!(
            "{id:?} is not a {} id (expected {prefix}-<32 hex digits>)",
            if prefix == "inc" {
                "incident"
            } else {
                "workflow"
            }
        )))
    }
}

#[cfg(test)]
mod tests;

//! HTTP handlers only: extract, call, map. `routes` lists every route.

pub mod health;
pub mod openapi;
pub mod routes;

use crate::cluster::Cluster;
use crate::config::Settings;
use crate::tls::ReloadingCert;
use std::sync::Arc;
use std::time::Instant;

/// What the handlers share.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub cluster: Cluster,
    /// `None` when `TLS_MODE=off`.
    pub tls: Option<Arc<ReloadingCert>>,
    pub started_at: Instant,
}

#[cfg(test)]
mod tests;

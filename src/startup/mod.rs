//! The only wiring place: builds TLS, cluster, state and the listeners. `build` runs the
//! steps in the order their side effects must happen (each step lives in the module named
//! after its topic).

mod background;
mod engine;
mod leader;
mod local;
mod outbound;
mod servers;
mod shutdown;

pub use shutdown::{ShutdownHandle, stop_on_signal};

use crate::api::routes::Shared;
use crate::api::{AppState, StateParts};
use crate::auth::{ApiToken, TokenOrigin};
use crate::cluster::Connection;
use crate::config::Settings;
use crate::http::Draining;
use crate::metrics::Metrics;
use crate::store::{SqlStore, StoreError};
use crate::tls::{self, ReloadingCert};
use std::net::SocketAddr;
use std::sync::Arc;

/// Anything that stops the process before it serves (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("DATA_DIR {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("API token: {0}")]
    Token(#[from] crate::auth::TokenError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("Kubernetes: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("ArgoCD: {0}")]
    ArgoCd(String),
    #[error("Prometheus: {0}")]
    Prometheus(String),
    #[error("KServe: {0}")]
    KServe(String),
    #[error("cannot listen on {addr} ({key}): {source}")]
    Bind {
        addr: SocketAddr,
        key: &'static str,
        source: std::io::Error,
    },
}

/// A built, bound, not yet running server pair.
pub struct Application {
    api: actix_web::dev::Server,
    metrics: actix_web::dev::Server,
    compat: Option<actix_web::dev::Server>,
    pub api_addr: SocketAddr,
    /// The compatibility listener's address, when enabled.
    pub compat_addr: Option<SocketAddr>,
    pub store: Arc<SqlStore>,
    pub metrics_addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    pub token: ApiToken,
    pub token_origin: TokenOrigin,
    pub tls: Option<Arc<ReloadingCert>>,
    pub metrics_handle: Metrics,
    /// Who executes; steps down (and hands the Lease over) at shutdown.
    pub leadership: crate::leader::Leadership,
    /// Set when the API starts draining (shared with its body middleware), and the flags
    /// the metrics and compatibility listeners set right before they stop.
    draining: Draining,
    metrics_draining: Draining,
    compat_draining: Draining,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let settings = Arc::new(settings);
        local::prepare_data_dir(&settings)?;
        let metrics = local::metrics_with_known_routes();
        let provider = tls::crypto_provider();
        let tls = local::serving_certificate(&settings, &provider, &metrics)?;
        let (token, token_origin) = local::api_token(&settings, &metrics)?;
        let cluster = Connection::connect(&settings).await?;
        let store = Arc::new(local::open_store(&settings, &metrics).await?);
        let (engine, handoff) = engine::assemble(&settings, &cluster, &store, &metrics)?;
        let access = background::start(&settings, &cluster, &store, &engine, handoff).await?;
        let state = AppState::new(StateParts {
            settings: settings.clone(),
            cluster: engine.attached,
            store: store.clone(),
            metrics: metrics.clone(),
            guard: engine.guard_view,
            pipeline: engine.pipeline,
            tls: tls.clone(),
            prometheus: outbound::prometheus_client(&settings, &metrics)?,
            models: engine.models,
            access,
        });
        let shared = Shared::new(state, token.clone());
        let servers = servers::build(&settings, &shared, tls.as_ref(), &provider, &metrics)?;
        Ok(Application {
            api: servers.api,
            metrics: servers.metrics,
            compat: servers.compat,
            compat_addr: servers.compat_addr,
            store,
            api_addr: servers.api_addr,
            metrics_addr: servers.metrics_addr,
            scheme: if tls.is_some() { "https" } else { "http" },
            token,
            token_origin,
            tls,
            metrics_handle: metrics,
            leadership: engine.leadership,
            draining: shared.draining,
            metrics_draining: servers.metrics_draining,
            compat_draining: servers.compat_draining,
        })
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        let mut servers = vec![
            (self.api.handle(), self.draining.clone()),
            (self.metrics.handle(), self.metrics_draining.clone()),
        ];
        servers.extend(
            self.compat
                .as_ref()
                .map(|c| (c.handle(), self.compat_draining.clone())),
        );
        ShutdownHandle {
            servers,
            draining: self.draining.clone(),
            leadership: self.leadership.clone(),
        }
    }

    /// Serves until every listener stops, then closes the store cleanly.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let compat = async {
            match self.compat {
                Some(server) => server.await,
                None => Ok(()),
            }
        };
        let (api, metrics, compat) = tokio::join!(self.api, self.metrics, compat);
        self.store.close().await;
        api.and(metrics).and(compat)
    }
}

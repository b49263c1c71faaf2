//! The process's own resources, set up before anything talks to a peer: the data directory,
//! the metrics registry, the serving certificate, the API token and the store.

use super::StartupError;
use crate::api::routes::ROUTES;
use crate::auth::{ApiToken, TokenOrigin, resolve_token};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::store::{SqlStore, StoreError};
use crate::tls::{self, ReloadingCert};
use rustls::crypto::CryptoProvider;
use std::sync::Arc;

pub(super) fn prepare_data_dir(settings: &Settings) -> Result<(), StartupError> {
    let dir = &settings.data_dir;
    let error = |source| StartupError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    // Fail now, with a clear message, rather than on the first write.
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok").map_err(error)?;
    std::fs::remove_file(&probe).map_err(error)
}

/// The registry, with a zero series for every route the servers answer, so dashboards see
/// them before the first request.
pub(super) fn metrics_with_known_routes() -> Metrics {
    let metrics = Metrics::new();
    for (method, route, status) in ROUTES {
        metrics.init_route(route, method, *status);
    }
    metrics.init_route("/metrics", "GET", 200);
    metrics
}

/// The API's certificate, when TLS is on, with its reload watcher started.
pub(super) fn serving_certificate(
    settings: &Settings,
    provider: &Arc<CryptoProvider>,
    metrics: &Metrics,
) -> Result<Option<Arc<ReloadingCert>>, StartupError> {
    let Some(source) = tls::resolve_source(settings)? else {
        return Ok(None);
    };
    let cert = Arc::new(ReloadingCert::load(source, provider.clone())?);
    cert.clone()
        .spawn_watcher(settings.tls.reload_interval, metrics.clone());
    Ok(Some(cert))
}

/// The bearer token the API requires, with its file watcher started when it comes from a file.
pub(super) fn api_token(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<(ApiToken, TokenOrigin), StartupError> {
    let (token, token_origin) = resolve_token(settings, metrics)?;
    if let Some(file) = token.file() {
        file.clone().spawn_watcher(settings.tls.reload_interval);
    }
    Ok((token, token_origin))
}

/// PostgreSQL when `DATABASE_URL` is set (several replicas), else SQLite under `DATA_DIR`.
pub(super) async fn open_store(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<SqlStore, StartupError> {
    let Some(url) = &settings.database_url else {
        return Ok(SqlStore::open(
            &settings.data_dir,
            settings.store_busy_timeout,
            metrics.clone(),
        )
        .await?);
    };
    let password = match &settings.database_password_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| {
                StartupError::Store(StoreError::Unavailable(format!(
                    "DATABASE_PASSWORD_FILE {}: {source}",
                    path.display()
                )))
            })?;
            // A mounted Secret often ends with a newline that is not part of the password.
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        }
    };
    let store = SqlStore::connect_postgres(
        url.expose(),
        password.as_deref(),
        settings.store_busy_timeout,
        metrics.clone(),
    )
    .await?;
    tracing::info!(database = %store.path().display(), "store: PostgreSQL");
    Ok(store)
}

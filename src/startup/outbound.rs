//! Clients of the peers the engine calls out to besides Kubernetes: argocd-server and
//! Prometheus, each with its own CA file and token.

use super::StartupError;
use crate::cluster::Connection;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::token_file::{OutboundToken, TokenFile};
use std::sync::Arc;

/// The ArgoCD channel, when attached: through argocd-server when `ARGOCD_API_URL` is set, else
/// through the Kubernetes API.
pub(super) fn argocd_channel(
    settings: &Settings,
    cluster: &Connection,
    metrics: &Metrics,
) -> Result<Option<crate::execute::argocd::ArgoChannel>, StartupError> {
    let Connection::Configured { client, .. } = cluster else {
        return Ok(None);
    };
    let channel = crate::execute::argocd::ArgoChannel::new(
        client.clone(),
        settings.argocd.sync_timeout,
        metrics.clone(),
    );
    let channel = match &settings.argocd.api_url {
        None => channel,
        Some(url) => {
            let ca = match &settings.argocd.ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    StartupError::ArgoCd(format!("ARGOCD_CA_FILE {}: {e}", path.display()))
                })?),
                None => None,
            };
            let token = match (&settings.argocd.token, &settings.argocd.token_file) {
                (Some(token), _) => OutboundToken::Fixed(token.clone()),
                (None, Some(path)) => OutboundToken::File(Arc::new(TokenFile::open(
                    path,
                    "ARGOCD_TOKEN_FILE",
                    "argocd_token",
                    metrics.clone(),
                ))),
                (None, None) => OutboundToken::None,
            };
            channel
                .with_rest(url, token, ca.as_deref())
                .map_err(StartupError::ArgoCd)?
        }
    };
    Ok(Some(channel))
}

/// The analytics' Prometheus client, when `PROMETHEUS_URL` is set.
pub(super) fn prometheus_client(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<Option<crate::analytics::prometheus::Prometheus>, StartupError> {
    let config = &settings.prometheus;
    let Some(url) = &config.url else {
        return Ok(None);
    };
    let ca = match &config.ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StartupError::Prometheus(format!("PROMETHEUS_CA_FILE {}: {e}", path.display()))
        })?),
        None => None,
    };
    let token = config.token_file.as_ref().map(|path| {
        Arc::new(TokenFile::open(
            path,
            "PROMETHEUS_TOKEN_FILE",
            "prometheus_token",
            metrics.clone(),
        ))
    });
    crate::analytics::prometheus::Prometheus::new(url, token, ca.as_deref(), config.timeout)
        .map(Some)
        .map_err(StartupError::Prometheus)
}

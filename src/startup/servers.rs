//! The three listeners: the API (TLS when configured), the metrics listener and the optional
//! unauthenticated compatibility listener. Each is bound and built here, not yet running.

use super::StartupError;
use crate::api::routes::{Shared, api_app, compat_app, metrics_app};
use crate::config::Settings;
use crate::http::{BodyReadTimeout, Draining, HttpServer};
use crate::metrics::Metrics;
use crate::tls::client_ca::ReloadingClientCa;
use crate::tls::{self, ReloadingCert};
use actix_web::dev::Server;
use rustls::crypto::CryptoProvider;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

/// The built servers with their addresses and the flags their stop sets.
pub(super) struct Servers {
    pub api: Server,
    pub metrics: Server,
    pub compat: Option<Server>,
    pub api_addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub compat_addr: Option<SocketAddr>,
    pub metrics_draining: Draining,
    pub compat_draining: Draining,
}

/// Binds the API and metrics ports (both before building either server, so a taken port
/// fails before anything serves), then the compatibility port when enabled.
pub(super) fn build(
    settings: &Settings,
    shared: &Shared,
    tls: Option<&Arc<ReloadingCert>>,
    provider: &Arc<CryptoProvider>,
    metrics: &Metrics,
) -> Result<Servers, StartupError> {
    let api_listener = bind(settings, settings.port, "PORT")?;
    let metrics_listener = bind(settings, settings.metrics_port, "METRICS_PORT")?;
    let api_addr = local_addr(&api_listener, "PORT")?;
    let metrics_addr = local_addr(&metrics_listener, "METRICS_PORT")?;
    let api = api_server(
        settings,
        shared,
        api_listener,
        api_addr,
        tls,
        provider,
        metrics,
    )?;
    let metrics_draining = Draining::default();
    let metrics_server = metrics_server(
        settings,
        shared,
        metrics_listener,
        metrics_addr,
        &metrics_draining,
    )?;
    let compat_draining = Draining::default();
    let (compat, compat_addr) = match settings.compat_http_port {
        None => (None, None),
        Some(port) => {
            let (server, addr) = compat_server(settings, shared, port, &compat_draining)?;
            (Some(server), Some(addr))
        }
    };
    Ok(Servers {
        api,
        metrics: metrics_server,
        compat,
        api_addr,
        metrics_addr,
        compat_addr,
        metrics_draining,
        compat_draining,
    })
}

/// The API on `PORT`; with TLS, client certificates are requested when
/// `AUDIT_CLIENT_CA_FILE` is set (audit webhook clients).
fn api_server(
    settings: &Settings,
    shared: &Shared,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<&Arc<ReloadingCert>>,
    provider: &Arc<CryptoProvider>,
    metrics: &Metrics,
) -> Result<Server, StartupError> {
    let api_shared = shared.clone();
    let server = HttpServer::new(move || api_app(api_shared.clone()))
        .draining(shared.draining.clone())
        .on_connect(disable_nagle)
        .client_request_timeout(settings.header_read_timeout)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs());
    let server = match tls {
        Some(cert) => {
            let client_ca = match &settings.audit_client_ca_file {
                None => None,
                Some(path) => {
                    let ca = Arc::new(ReloadingClientCa::load(path, provider.clone())?);
                    ca.clone()
                        .spawn_watcher(settings.tls.reload_interval, metrics.clone());
                    Some(ca)
                }
            };
            let config = tls::server_config(cert.clone(), provider.clone(), client_ca)?;
            server.listen_rustls_0_23(listener, config)
        }
        None => server.listen(listener),
    }
    .map_err(|source| StartupError::Bind {
        addr,
        key: "PORT",
        source,
    })?;
    Ok(server.run())
}

/// `GET /metrics` on `METRICS_PORT`, plain HTTP, one worker.
fn metrics_server(
    settings: &Settings,
    shared: &Shared,
    listener: TcpListener,
    addr: SocketAddr,
    draining: &Draining,
) -> Result<Server, StartupError> {
    let metrics_data = shared.metrics.clone();
    let metrics_app_draining = draining.clone();
    let body_read_timeout = BodyReadTimeout(settings.body_read_timeout);
    let server = HttpServer::new(move || {
        metrics_app(
            metrics_data.clone(),
            body_read_timeout,
            metrics_app_draining.clone(),
        )
    })
    .draining(draining.clone())
    .on_connect(disable_nagle)
    .client_request_timeout(settings.header_read_timeout)
    .workers(1)
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout.as_secs())
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        addr,
        key: "METRICS_PORT",
        source,
    })?;
    Ok(server.run())
}

/// The Go engine's client routes on `COMPAT_HTTP_PORT`, plain HTTP, no authentication.
fn compat_server(
    settings: &Settings,
    shared: &Shared,
    port: u16,
    draining: &Draining,
) -> Result<(Server, SocketAddr), StartupError> {
    let listener = bind(settings, port, "COMPAT_HTTP_PORT")?;
    let addr = local_addr(&listener, "COMPAT_HTTP_PORT")?;
    tracing::warn!(%addr, "COMPAT_HTTP_PORT is set: serving the Go engine's client routes over plain HTTP WITHOUT authentication; restrict it with a NetworkPolicy");
    let compat_shared = shared.clone();
    let server = HttpServer::new(move || compat_app(compat_shared.clone()))
        .draining(draining.clone())
        .on_connect(disable_nagle)
        .client_request_timeout(settings.header_read_timeout)
        .workers(1)
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr,
            key: "COMPAT_HTTP_PORT",
            source,
        })?
        .run();
    Ok((server, addr))
}

/// Sets TCP_NODELAY on each connection. actix does not, and with Nagle's algorithm a response
/// written as more than one segment waits for the client's delayed ACK (~40 ms per request on
/// keep-alive connections; measured in docs/perf.md).
///
/// Also marks connections whose client certificate was verified (audit webhook clients).
fn disable_nagle(connection: &dyn std::any::Any, extensions: &mut actix_web::dev::Extensions) {
    use actix_web::rt::net::TcpStream;
    let tcp = if let Some(tls) =
        connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
    {
        if let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            extensions.insert(crate::auth::VerifiedClientCertificate::from_leaf(leaf));
        }
        Some(tls.get_ref().0)
    } else {
        connection.downcast_ref::<TcpStream>()
    };
    if let Some(tcp) = tcp
        && let Err(error) = tcp.set_nodelay(true)
    {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
}

fn bind(settings: &Settings, port: u16, key: &'static str) -> Result<TcpListener, StartupError> {
    let addr = SocketAddr::new(settings.bind_address, port);
    TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, key, source })
}

fn local_addr(listener: &TcpListener, key: &'static str) -> Result<SocketAddr, StartupError> {
    listener.local_addr().map_err(|source| StartupError::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        key,
        source,
    })
}

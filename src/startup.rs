//! The only wiring place: builds TLS, cluster, state and the two listeners.

use crate::api::routes::{ROUTES, Shared, api_app, compat_app, metrics_app};
use crate::api::{AppState, StateParts};
use crate::auth::{ApiToken, TokenOrigin, resolve_token};
use crate::cluster::{Connection, SharedCluster};
use crate::config::Settings;
use crate::http::{BodyReadTimeout, Draining, HttpServer};
use crate::metrics::Metrics;
use crate::store::{SqlStore, Store, StoreError};
use crate::tls::client_ca::ReloadingClientCa;
use crate::tls::{self, ReloadingCert};
use crate::token_file::{OutboundToken, TokenFile};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Instant;

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

/// The ArgoCD channel, when attached: through argocd-server when `ARGOCD_API_URL` is set, else
/// through the Kubernetes API.
fn argocd_channel(
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
fn prometheus_client(
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

/// Stops every listener; what happens to open connections is decided in
/// docs/decisions/0008-graceful-shutdown-promise.md.
#[derive(Clone)]
pub struct ShutdownHandle {
    /// Each server with the flag to set right before stopping it (`HttpServer::draining`).
    servers: Vec<(actix_web::dev::ServerHandle, Draining)>,
    draining: Draining,
    leadership: crate::leader::Leadership,
}

impl ShutdownHandle {
    /// Stops accepting connections; requests on accepted connections are still answered
    /// (each answer then closes its connection) until none is left or `SHUTDOWN_TIMEOUT`.
    pub async fn graceful_stop(&self) {
        self.draining.start();
        // Executing stops first; a follower takes the Lease at its next try (≤ 2 s) instead
        // of after the lease duration (15 s).
        self.leadership
            .step_down(std::time::Duration::from_secs(2))
            .await;
        // One after the other: metrics stay scrapeable while the API drains.
        for (handle, draining) in &self.servers {
            draining.start();
            handle.stop(true).await;
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartupError> {
        let settings = Arc::new(settings);
        prepare_data_dir(&settings)?;
        let metrics = Metrics::new();
        for (method, route, status) in ROUTES {
            metrics.init_route(route, method, *status);
        }
        metrics.init_route("/metrics", "GET", 200);

        let provider = tls::crypto_provider();
        let tls = match tls::resolve_source(&settings)? {
            None => None,
            Some(source) => {
                let cert = Arc::new(ReloadingCert::load(source, provider.clone())?);
                cert.clone()
                    .spawn_watcher(settings.tls.reload_interval, metrics.clone());
                Some(cert)
            }
        };
        let (token, token_origin) = resolve_token(&settings, &metrics)?;
        if let Some(file) = token.file() {
            file.clone().spawn_watcher(settings.tls.reload_interval);
        }
        let cluster = Connection::connect(&settings).await?;
        let store = Arc::new(open_store(&settings, &metrics).await?);

        let guard_view = crate::guard::SharedView::new(crate::guard::GuardView::new(
            crate::guard::GuardConfig::from_settings(&settings),
        ));
        let models =
            Arc::new(crate::ml::Models::from_settings(&settings).map_err(StartupError::KServe)?);
        // A model missing at startup is degraded, not fatal: it is looked for again.
        models.spawn_readiness_watch();
        let (leadership, election_lock) = leadership(&settings, &store, &metrics, &cluster);
        // Every write of the pipeline goes through the leader fence; the RBAC self-check's
        // access reviews pass it on every replica.
        let fenced =
            match &cluster {
                Connection::Configured { client, .. } => Some(
                    crate::leader::fence::replica_client(client, leadership.clone(), true),
                ),
                Connection::Detached => None,
            };
        // The one place the implementation is picked: kube-rs over the fenced client, or none
        // (detached).
        let attached: Option<SharedCluster> = match (&cluster, &fenced) {
            (Connection::Configured { source, .. }, Some(fenced)) => Some(Arc::new(
                crate::cluster::kube::KubeCluster::new(fenced.clone(), source.clone())
                    .with_argocd(argocd_channel(&settings, &cluster, &metrics)?)
                    .with_helm(
                        settings.channels.helm_bin.clone(),
                        settings.channels.kubeconfig.clone(),
                    ),
            )),
            _ => None,
        };
        let pipeline = Arc::new(
            crate::pipeline::Pipeline::new(
                store.clone(),
                metrics.clone(),
                attached.clone(),
                guard_view.clone(),
                settings.workload_checkpoint_timeout,
            )
            .with_approval(&settings.approval_required_actions)
            .with_argocd_namespaces(settings.argocd_namespaces.clone())
            .with_channels(settings.channels.clone())
            .with_models(models.clone())
            .with_leadership(leadership.clone()),
        );
        start_election(election_lock, &pipeline).await?;
        // Leases recorded by any replica reach this replica's guard within 2 s.
        pipeline
            .clone()
            .spawn_lease_refresher(std::time::Duration::from_secs(2));
        spawn_retention(
            store.clone(),
            settings.incident_retention_days,
            leadership.clone(),
        );
        if !settings.pipeline_interval.is_zero() {
            pipeline
                .clone()
                .spawn_queue_consumer(settings.pipeline_interval);
        }
        let access = crate::cluster::access::AccessCheck::default();
        if let Some(fenced) = fenced {
            access.spawn_refresher(fenced, settings.argocd_namespaces.clone());
        }
        if let Connection::Configured { client, .. } = &cluster {
            crate::watch::argocd::spawn_watchers(
                client.clone(),
                guard_view.clone(),
                settings.argocd_namespaces.clone(),
            );
            crate::watch::parents::spawn_watchers(
                client.clone(),
                guard_view.snapshot().parents.clone(),
            );
        }

        let state = AppState::new(StateParts {
            settings: settings.clone(),
            cluster: attached,
            store: store.clone(),
            metrics: metrics.clone(),
            guard: guard_view.clone(),
            pipeline: pipeline.clone(),
            tls: tls.clone(),
            prometheus: prometheus_client(&settings, &metrics)?,
            models: models.clone(),
            access,
        });
        let shared = Shared::new(state, token.clone());

        let api_listener = bind(&settings, settings.port, "PORT")?;
        let metrics_listener = bind(&settings, settings.metrics_port, "METRICS_PORT")?;
        let api_addr = local_addr(&api_listener, "PORT")?;
        let metrics_addr = local_addr(&metrics_listener, "METRICS_PORT")?;
        let shutdown_secs = settings.shutdown_timeout.as_secs();

        let api_shared = shared.clone();
        let api_server = HttpServer::new(move || api_app(api_shared.clone()))
            .draining(shared.draining.clone())
            .on_connect(disable_nagle)
            .client_request_timeout(settings.header_read_timeout)
            .disable_signals()
            .shutdown_timeout(shutdown_secs);
        let api_server = match &tls {
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
                api_server.listen_rustls_0_23(api_listener, config)
            }
            None => api_server.listen(api_listener),
        }
        .map_err(|source| StartupError::Bind {
            addr: api_addr,
            key: "PORT",
            source,
        })?
        .run();

        let metrics_data = shared.metrics.clone();
        let metrics_draining = Draining::default();
        let metrics_app_draining = metrics_draining.clone();
        let body_read_timeout = BodyReadTimeout(settings.body_read_timeout);
        let metrics_server = HttpServer::new(move || {
            metrics_app(
                metrics_data.clone(),
                body_read_timeout,
                metrics_app_draining.clone(),
            )
        })
        .draining(metrics_draining.clone())
        .on_connect(disable_nagle)
        .client_request_timeout(settings.header_read_timeout)
        .workers(1)
        .disable_signals()
        .shutdown_timeout(shutdown_secs)
        .listen(metrics_listener)
        .map_err(|source| StartupError::Bind {
            addr: metrics_addr,
            key: "METRICS_PORT",
            source,
        })?
        .run();

        let compat_draining = Draining::default();
        let (compat, compat_addr) = match settings.compat_http_port {
            None => (None, None),
            Some(port) => {
                let listener = bind(&settings, port, "COMPAT_HTTP_PORT")?;
                let addr = local_addr(&listener, "COMPAT_HTTP_PORT")?;
                tracing::warn!(%addr, "COMPAT_HTTP_PORT is set: serving the Go engine's client routes over plain HTTP WITHOUT authentication; restrict it with a NetworkPolicy");
                let compat_shared = shared.clone();
                let server = HttpServer::new(move || compat_app(compat_shared.clone()))
                    .draining(compat_draining.clone())
                    .on_connect(disable_nagle)
                    .client_request_timeout(settings.header_read_timeout)
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(shutdown_secs)
                    .listen(listener)
                    .map_err(|source| StartupError::Bind {
                        addr,
                        key: "COMPAT_HTTP_PORT",
                        source,
                    })?
                    .run();
                (Some(server), Some(addr))
            }
        };

        Ok(Application {
            api: api_server,
            metrics: metrics_server,
            compat,
            compat_addr,
            store,
            api_addr,
            metrics_addr,
            scheme: if tls.is_some() { "https" } else { "http" },
            token,
            token_origin,
            tls,
            metrics_handle: metrics,
            leadership,
            draining: shared.draining,
            metrics_draining,
            compat_draining,
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

/// Registers SIGTERM and SIGINT handlers now, so a signal that arrives right after startup
/// is never the default (immediate) termination, and returns the future that waits for one
/// and then stops gracefully.
pub fn stop_on_signal(
    handle: ShutdownHandle,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        let signal = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        // Before the log line: whoever reads it may rely on every later answer closing its
        // connection (docs/decisions/0008-graceful-shutdown-promise.md).
        handle.draining.start();
        tracing::info!("{signal} received: finishing in-flight requests");
        handle.graceful_stop().await;
    })
}

/// Who executes, and the lock its election runs on: with SQLite this one replica, no lock;
/// with PostgreSQL a candidate in an election over the `LEADER_ELECTION_LEASE` Lease
/// (attached) or a row of that name in the database (detached).
fn leadership(
    settings: &Settings,
    store: &Arc<SqlStore>,
    metrics: &Metrics,
    cluster: &Connection,
) -> (
    crate::leader::Leadership,
    Option<Arc<dyn crate::leader::lock::LeaseLock>>,
) {
    use crate::leader::{Leadership, lock};
    let identity = crate::leader::identity(settings.pod_name.as_deref());
    if store.backend() == crate::store::sql::Backend::Sqlite {
        metrics.leader.set(1);
        return (Leadership::single(identity), None);
    }
    let name = &settings.leader_election_lease;
    let description = match cluster {
        Connection::Configured { .. } => format!("lease {}/{name}", settings.namespace),
        Connection::Detached => format!("database row {name}"),
    };
    let leadership = Leadership::candidate(
        identity,
        description,
        crate::leader::ElectionTiming::default().renew_deadline,
        metrics.clone(),
    );
    let lock: Arc<dyn lock::LeaseLock> = match cluster {
        Connection::Configured { client, .. } => Arc::new(lock::KubeLease::new(
            crate::leader::fence::replica_client(client, leadership.clone(), false),
            &settings.namespace,
            name,
        )),
        Connection::Detached => Arc::new(lock::DatabaseLock::new(store.clone(), name)),
    };
    (leadership, Some(lock))
}

/// Starts the election over `lock`, or, without one (SQLite: the one replica), takes over at
/// once. A new term interrupts the previous holder's running workflows; pending ones are
/// picked up by the queue consumer.
async fn start_election(
    lock: Option<Arc<dyn crate::leader::lock::LeaseLock>>,
    pipeline: &Arc<crate::pipeline::Pipeline>,
) -> Result<(), StartupError> {
    let Some(lock) = lock else {
        match pipeline.interrupt_orphans().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                workflows = n,
                "marked live workflows of the previous run as interrupted"
            ),
            Err(error) => return Err(StartupError::Store(error)),
        }
        return Ok(());
    };
    let leadership = pipeline.leadership().clone();
    let on_elected: crate::leader::election::OnElected = {
        let pipeline = pipeline.clone();
        Arc::new(move |term| {
            let pipeline = pipeline.clone();
            Box::pin(async move {
                match pipeline.interrupt_orphans().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        workflows = n,
                        transitions = term.transitions,
                        "new leader: marked the previous holder's running workflows interrupted"
                    ),
                    Err(error) => {
                        tracing::error!(%error, "new leader: cannot interrupt orphaned workflows")
                    }
                }
            })
        })
    };
    crate::leader::spawn_election(
        lock,
        leadership,
        crate::leader::ElectionTiming::default(),
        on_elected,
    );
    Ok(())
}

/// PostgreSQL when `DATABASE_URL` is set (several replicas), else SQLite under `DATA_DIR`.
async fn open_store(settings: &Settings, metrics: &Metrics) -> Result<SqlStore, StartupError> {
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

/// Purges closed incidents past the retention period, at startup and then hourly.
/// Only the leader purges (one replica's work is enough); a follower checks again each minute
/// so a new leader does not wait an hour.
fn spawn_retention(store: Arc<SqlStore>, days: u32, leadership: crate::leader::Leadership) {
    if days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut last_purge: Option<Instant> = None;
        loop {
            ticker.tick().await;
            let due =
                last_purge.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(3600));
            if !due || !leadership.is_leader() {
                continue;
            }
            last_purge = Some(Instant::now());
            // Checked: configuration bounds the days, but the task must never panic.
            let Some(cutoff) = chrono::Duration::try_days(i64::from(days))
                .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
            else {
                tracing::warn!(
                    days,
                    "INCIDENT_RETENTION_DAYS is past the calendar: no purge"
                );
                return;
            };
            match store.purge_closed_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(purged, days, "purged closed incidents past retention")
                }
                Err(error) => tracing::warn!(%error, "retention purge failed; will retry"),
            }
        }
    });
}

fn prepare_data_dir(settings: &Settings) -> Result<(), StartupError> {
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

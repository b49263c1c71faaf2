//! `HttpServer`: actix-web's `HttpServer`, the subset we use, with one difference: every
//! accepted connection is wrapped in [`Lingering`], so a response sent before the request
//! was read in full still reaches its client (see `linger.rs`), and on HTTP/1.1 the headers
//! of every request are timed, not only the first (see `head_clock.rs`).
//!
//! actix-web's own builder hands the `TcpStream` straight to its HTTP service and offers no
//! way to wrap it; this builder assembles the same pieces (actix-server, the rustls acceptor,
//! actix-http's `HttpService`) with the wrapper in between. `on_connect` callbacks still see
//! the stream actix-web would have given them (`TlsStream<TcpStream>` or `TcpStream`).
//!
//! It also closes a race in actix-server 2.6's graceful stop (fixed upstream in
//! actix/actix-net#945, in releases that need a newer Rust than this crate's MSRV): the stop
//! first ends the accept thread, which closes each worker's connection channel, and only then
//! tells the workers to stop. A worker that wakes up in between sees the closed channel,
//! exits, and drops every connection it was serving, mid-request. The worker checks its
//! services' readiness before it looks at that channel, so [`StopGate`] reports "not ready"
//! once the [`Draining`] flag given to [`HttpServer::draining`] is set (set it before
//! `ServerHandle::stop`): the worker then waits for its stop command and finishes its
//! connections gracefully.

use super::body::Draining;
use super::linger::{Lingering, OverTcp};
use actix_http::body::MessageBody;
use actix_http::{Extensions, HttpService, Protocol, Request, Response};
use actix_server::{Server, ServerBuilder};
use actix_service::{IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt, map_config};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;
use std::any::Any;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

type OnConnect = Arc<dyn Fn(&dyn Any, &mut Extensions) + Send + Sync>;

/// The app's types, carried by the builder without being stored.
type AppTypes<I, S, B> = PhantomData<fn() -> (I, S, B)>;

/// Per-connection HTTP settings shared by every listener of one server.
#[derive(Clone, Copy)]
struct Timeouts {
    /// Headers of each request must arrive within this: actix's 408 for a connection's
    /// first request, `head_clock.rs` for the later ones.
    request_head: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    keep_alive: Duration,
}

pub struct HttpServer<F, I, S, B> {
    factory: F,
    builder: ServerBuilder,
    timeouts: Timeouts,
    on_connect: Option<OnConnect>,
    draining: Draining,
    _types: AppTypes<I, S, B>,
}

impl<F, I, S, B> HttpServer<F, I, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request> + 'static,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    pub fn new(factory: F) -> Self {
        HttpServer {
            factory,
            builder: ServerBuilder::default(),
            // actix-web's defaults.
            timeouts: Timeouts {
                request_head: Duration::from_secs(5),
                keep_alive: Duration::from_secs(5),
            },
            on_connect: None,
            draining: Draining::default(),
            _types: PhantomData,
        }
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.builder = self.builder.workers(workers);
        self
    }

    pub fn disable_signals(mut self) -> Self {
        self.builder = self.builder.disable_signals();
        self
    }

    /// How long in-flight connections may take after a graceful stop (whole seconds).
    pub fn shutdown_timeout(mut self, secs: u64) -> Self {
        self.builder = self.builder.shutdown_timeout(secs);
        self
    }

    /// How long the headers of a request may take (zero: no limit).
    pub fn client_request_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.request_head = timeout;
        self
    }

    pub fn on_connect<C>(mut self, callback: C) -> Self
    where
        C: Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static,
    {
        self.on_connect = Some(Arc::new(callback));
        self
    }

    /// The flag to set right before this server's `ServerHandle::stop`: from then on its
    /// workers take no new connection and wait for the stop command (see the module docs).
    pub fn draining(mut self, draining: Draining) -> Self {
        self.draining = draining;
        self
    }

    /// Serves plain HTTP/1.1 on `listener`.
    pub fn listen(mut self, listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (factory, timeouts, on_connect, draining) = self.parts();
        self.builder = self.builder.listen(name(addr), listener, move || {
            let head_timeout = timeouts.request_head;
            let service = actix_service::fn_service(move |tcp: TcpStream| async move {
                let peer = tcp.peer_addr().ok();
                Ok::<_, actix_http::error::DispatchError>((
                    Lingering::new(tcp).with_head_timeout(head_timeout),
                    Protocol::Http1,
                    peer,
                ))
            })
            .and_then(http_service(
                factory.clone(),
                timeouts,
                on_connect.clone(),
                false,
                addr,
            ));
            StopGate::new(service, draining.clone())
        })?;
        Ok(self)
    }

    /// Serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN) on `listener`.
    pub fn listen_rustls_0_23(
        mut self,
        listener: TcpListener,
        mut config: rustls::ServerConfig,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (factory, timeouts, on_connect, draining) = self.parts();
        // As actix-http does: h2 first, then HTTP/1.1.
        let mut protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        protocols.extend_from_slice(&config.alpn_protocols);
        config.alpn_protocols = protocols;
        let config = Arc::new(config);
        self.builder = self.builder.listen(name(addr), listener, move || {
            let acceptor: Acceptor = Acceptor::new((*config).clone());
            let head_timeout = timeouts.request_head;
            let service = acceptor
                .map_init_err(|_| ())
                .map_err(|error| {
                    tracing::debug!(?error, "TLS handshake failed");
                })
                .and_then(move |tls: TlsStream<TcpStream>| async move {
                    let (tcp, session) = tls.get_ref();
                    let protocol = match session.alpn_protocol() {
                        Some(alpn) if alpn == b"h2" => Protocol::Http2,
                        _ => Protocol::Http1,
                    };
                    let peer = tcp.peer_addr().ok();
                    let connection = match protocol {
                        Protocol::Http1 => Lingering::new(tls).with_head_timeout(head_timeout),
                        _ => Lingering::new(tls),
                    };
                    Ok::<_, ()>((connection, protocol, peer))
                })
                .and_then(
                    http_service(factory.clone(), timeouts, on_connect.clone(), true, addr)
                        .map_err(|_| ()),
                );
            StopGate::new(service, draining.clone())
        })?;
        Ok(self)
    }

    pub fn run(self) -> Server {
        self.builder.run()
    }

    fn parts(&self) -> (F, Timeouts, Option<OnConnect>, Draining) {
        (
            self.factory.clone(),
            self.timeouts,
            self.on_connect.clone(),
            self.draining.clone(),
        )
    }
}

fn name(addr: SocketAddr) -> String {
    format!("coordination-engine-{addr}")
}

/// actix-http's service over a `Lingering` stream, configured as actix-web's builder does.
fn http_service<F, I, S, B, IO>(
    factory: F,
    timeouts: Timeouts,
    on_connect: Option<OnConnect>,
    secure: bool,
    addr: SocketAddr,
) -> impl ServiceFactory<
    (Lingering<IO>, Protocol, Option<SocketAddr>),
    Config = (),
    Response = (),
    Error = actix_http::error::DispatchError,
    InitError = (),
>
where
    F: Fn() -> I,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: std::fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
    IO: OverTcp + 'static,
{
    let mut builder = HttpService::build()
        .keep_alive(timeouts.keep_alive)
        .client_request_timeout(timeouts.request_head)
        // actix-web's default: a keep-alive connection being closed gets this long.
        .client_disconnect_timeout(Duration::from_secs(1))
        .local_addr(addr);
    builder = builder.on_connect_ext(move |io: &Lingering<IO>, extensions: &mut Extensions| {
        // For the body middleware (`req.conn_data`).
        if let Some(clock) = io.head_clock() {
            extensions.insert(clock);
        }
        if let Some(callback) = &on_connect {
            callback(io.get_ref() as &dyn Any, extensions)
        }
    });
    let app = factory()
        .into_factory()
        .map_err(|error| error.into().error_response());
    let service: HttpService<Lingering<IO>, _, B> = builder.finish(map_config(app, move |_| {
        AppConfig::__priv_test_new(secure, addr.to_string(), addr)
    }));
    service.map_init_err(|_| ())
}

/// A connection service that is "not ready" once its server is stopping (see the module
/// docs for the race this closes).
struct StopGate<F> {
    factory: F,
    draining: Draining,
}

impl<F> StopGate<F> {
    fn new(factory: F, draining: Draining) -> Self {
        StopGate { factory, draining }
    }
}

impl<F, Req> ServiceFactory<Req> for StopGate<F>
where
    F: ServiceFactory<Req, Config = ()>,
    F::Future: 'static,
{
    type Response = F::Response;
    type Error = F::Error;
    type Config = ();
    type Service = GatedService<F::Service>;
    type InitError = F::InitError;
    type Future =
        futures_util::future::LocalBoxFuture<'static, Result<Self::Service, F::InitError>>;

    fn new_service(&self, config: ()) -> Self::Future {
        let service = self.factory.new_service(config);
        let draining = self.draining.clone();
        Box::pin(async move {
            Ok(GatedService {
                inner: service.await?,
                draining,
            })
        })
    }
}

struct GatedService<S> {
    inner: S,
    draining: Draining,
}

impl<S: Service<Req>, Req> Service<Req> for GatedService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        if self.draining.is_draining() {
            // No waker needed: the worker's stop command wakes it.
            return std::task::Poll::Pending;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&self, request: Req) -> S::Future {
        self.inner.call(request)
    }
}

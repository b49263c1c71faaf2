//! A mock Kubernetes API server for the kube-rs code (no real API server can run here): serves
//! canned lists, streams watch events the test sends, and records every request so the test
//! can assert exactly what the engine asked for.

mod serve;

use actix_web::{App, HttpServer, web};
use serde_json::Value;
use serve::{LEASES, State, serve};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub accept: String,
    pub authorization: String,
    /// Names the replica that sent it (`coordination-engine/<version> (<identity>)`).
    pub user_agent: String,
    /// The request body, parsed as JSON (`null` when empty or not JSON).
    pub body: Value,
}

/// Answers by (method, path): consumed in order, the last one repeats. Writes (DELETE,
/// PATCH, POST) need one; a GET listed here takes precedence over `lists` (an object that
/// changes between polls).
pub type Writes = HashMap<(String, String), Vec<(u16, Value)>>;

pub struct MockApiServer {
    pub url: String,
    state: State,
    handle: actix_web::dev::ServerHandle,
}

impl MockApiServer {
    /// `lists`: path → list object. Every listed path can also be watched.
    pub async fn start(lists: HashMap<String, Value>) -> Self {
        Self::start_with(lists, Writes::new()).await
    }

    /// Also answers writes (DELETE, PATCH, POST) from `writes`.
    pub async fn start_with(lists: HashMap<String, Value>, writes: Writes) -> Self {
        Self::start_inner(lists, writes, None).await
    }

    /// The same over HTTPS, with a certificate for `localhost` signed by a CA written to
    /// `dir/ca.crt` (returned): a stand-in for a remote HTTPS peer (argocd-server).
    pub async fn start_tls(
        lists: HashMap<String, Value>,
        writes: Writes,
        dir: &std::path::Path,
    ) -> (Self, std::path::PathBuf) {
        use coordination_engine::tls;
        let paths = tls::generate::generate_into(dir, &tls::generate::default_names(), false)
            .expect("generate the mock's certificate");
        let source = tls::CertSource {
            cert_file: paths.cert.clone(),
            key_file: paths.key.clone(),
            origin: "files",
        };
        let provider = tls::crypto_provider();
        let resolver = std::sync::Arc::new(
            tls::ReloadingCert::load(source, provider.clone()).expect("load the mock's cert"),
        );
        let config = tls::server_config(resolver, provider, None).expect("server config");
        let server = Self::start_inner(lists, writes, Some(config)).await;
        (server, paths.ca_cert)
    }

    async fn start_inner(
        lists: HashMap<String, Value>,
        writes: Writes,
        tls: Option<rustls::ServerConfig>,
    ) -> Self {
        let watches = lists
            .keys()
            .map(|path| (path.clone(), broadcast::channel(64).0))
            .collect();
        let state = State {
            writes: Arc::new(Mutex::new(writes)),
            lists: Arc::new(lists),
            watches: Arc::new(watches),
            log: Arc::new(Mutex::new(Vec::new())),
            leases: Default::default(),
            stalled: Default::default(),
            denied: Default::default(),
            reviews: Default::default(),
            after: Default::default(),
        };
        let data = web::Data::new(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(serve))
        })
        .workers(1)
        .disable_signals();
        let (url, server) = match tls {
            None => (
                format!("http://127.0.0.1:{port}"),
                server.listen(listener).expect("listen").run(),
            ),
            Some(config) => (
                format!("https://localhost:{port}"),
                server
                    .listen_rustls_0_23(listener, config)
                    .expect("listen")
                    .run(),
            ),
        };
        let handle = server.handle();
        tokio::spawn(server);
        MockApiServer { url, state, handle }
    }

    /// Sends a watch event (`{"type": …, "object": …}`) to every open watch of `path`.
    pub fn send(&self, path: &str, event: Value) -> usize {
        self.state
            .watches
            .get(path)
            .map(|s| s.send(event).unwrap_or(0))
            .unwrap_or(0)
    }

    /// From now on, requests to `path` are recorded but never answered.
    pub fn stall(&self, path: &str) {
        self.state
            .stalled
            .lock()
            .expect("stalled")
            .insert(path.to_string());
    }

    /// The Lease `namespace/name` as stored now, if it exists.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        let key = format!("{LEASES}{namespace}/leases/{name}");
        self.state
            .leases
            .lock()
            .expect("leases")
            .objects
            .get(&key)
            .cloned()
    }

    /// From now on, access reviews of `verb` on `resource` (`pods/eviction` for a
    /// subresource) in `group`, in `namespace` (`""`: cluster-wide), answer "not allowed".
    pub fn deny_access(&self, verb: &str, group: &str, resource: &str, namespace: &str) {
        self.state.denied.lock().expect("denied").insert((
            verb.into(),
            group.into(),
            resource.into(),
            namespace.into(),
        ));
    }

    /// The SelfSubjectAccessReviews received so far, as sent.
    pub fn access_reviews(&self) -> Vec<Value> {
        self.state
            .reviews
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// From now on, these answers replace the ones for their (method, path).
    pub fn answer(&self, answers: Writes) {
        self.state.writes.lock().expect("writes").extend(answers);
    }

    /// Once the mock has answered `method path` (which needs an answer in `writes`), these
    /// answers replace the ones for their (method, path), before any later request is served.
    pub fn after(&self, method: &str, path: &str, answers: Writes) {
        self.state
            .after
            .lock()
            .expect("after")
            .insert((method.to_string(), path.to_string()), answers);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A kubeconfig file pointing at the mock (no auth), for an attached engine.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: {}\n\
                 users:\n- name: engine\n  user: {{}}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: engine\n\
                 current-context: mock\n",
                self.url
            ),
        )
        .expect("write kubeconfig");
        path
    }

    pub fn client(&self) -> kube::Client {
        let uri: http::Uri = self.url.parse().expect("url");
        kube::Client::try_from(kube::Config::new(uri)).expect("client")
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

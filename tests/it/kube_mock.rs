//! A mock Kubernetes API server for the kube-rs code (no real API server can run here): serves
//! canned lists, streams watch events the test sends, and records every request so the test
//! can assert exactly what the engine asked for.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
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

#[derive(Clone)]
struct State {
    writes: Arc<Mutex<Writes>>,
    lists: Arc<HashMap<String, Value>>,
    watches: Arc<HashMap<String, broadcast::Sender<Value>>>,
    log: Arc<Mutex<Vec<Recorded>>>,
    /// `coordination.k8s.io/v1` Leases by path, with the API server's optimistic concurrency.
    leases: Arc<Mutex<Leases>>,
    /// Paths whose requests are never answered (an API server that hangs).
    stalled: Arc<Mutex<HashSet<String>>>,
    /// SelfSubjectAccessReviews answer `allowed: false` for these `(verb, group, resource,
    /// namespace)`, `allowed: true` otherwise.
    denied: Arc<Mutex<HashSet<AccessKey>>>,
    /// Access reviews are kept out of `log`: they are questions, not actions on the cluster.
    reviews: Arc<Mutex<Vec<Value>>>,
    /// Answers that replace `writes`' once a request with this (method, path) was served: the
    /// cluster's state after a write (a new ReplicaSet after a restart).
    after: Arc<Mutex<HashMap<(String, String), Writes>>>,
}

type AccessKey = (String, String, String, String);

const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// A SelfSubjectAccessReview, answered like the API server's authorizer would for a
/// ServiceAccount granted everything except `denied`.
fn serve_access_review(state: &State, body: &web::Bytes) -> HttpResponse {
    let mut review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |key: &str| attributes[key].as_str().unwrap_or_default().to_string();
    let resource = match text("subresource").as_str() {
        "" => text("resource"),
        sub => format!("{}/{sub}", text("resource")),
    };
    let key = (text("verb"), text("group"), resource, text("namespace"));
    let allowed = !state.denied.lock().expect("denied").contains(&key);
    state.reviews.lock().expect("reviews").push(review.clone());
    review["status"] = serde_json::json!({ "allowed": allowed });
    HttpResponse::Created().json(review)
}

#[derive(Default)]
struct Leases {
    objects: HashMap<String, Value>,
    next_version: u64,
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/";

fn status(code: u16, reason: &str, message: String) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status")).json(
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": reason, "code": code, "message": message}),
    )
}

/// GET, POST (create: 409 AlreadyExists) and PUT (replace: 409 Conflict unless the
/// resourceVersion is the current one) of Leases, like the API server.
fn serve_lease(state: &State, method: &str, path: &str, body: &web::Bytes) -> HttpResponse {
    let mut leases = state.leases.lock().expect("leases");
    let mut object: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let (collection, name) = if method == "POST" {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (path.to_string(), name)
    } else {
        match path.rsplit_once('/') {
            Some((collection, name)) => (collection.to_string(), name.to_string()),
            None => return status(404, "NotFound", path.into()),
        }
    };
    let key = format!("{collection}/{name}");
    let current = leases.objects.get(&key).cloned();
    match (method, current) {
        ("GET", Some(lease)) => HttpResponse::Ok().json(lease),
        ("GET", None) => status(404, "NotFound", format!("leases {name:?} not found")),
        ("POST", Some(_)) => status(
            409,
            "AlreadyExists",
            format!("leases {name:?} already exists"),
        ),
        ("PUT", None) => status(404, "NotFound", format!("leases {name:?} not found")),
        ("PUT", Some(lease))
            if lease["metadata"]["resourceVersion"] != object["metadata"]["resourceVersion"] =>
        {
            status(
                409,
                "Conflict",
                format!("the object has been modified: leases {name:?}"),
            )
        }
        ("POST" | "PUT", _) => {
            leases.next_version += 1;
            object["metadata"]["resourceVersion"] = Value::from(leases.next_version.to_string());
            leases.objects.insert(key, object.clone());
            HttpResponse::Ok().json(object)
        }
        _ => status(405, "MethodNotAllowed", format!("{method} {path}")),
    }
}

pub struct MockApiServer {
    pub url: String,
    state: State,
    handle: actix_web::dev::ServerHandle,
}

fn query_map(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn serve(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let query = query_map(&req);
    let path = req.path().to_string();
    let method = req.method().to_string();
    if method == "POST" && path == ACCESS_REVIEWS {
        return serve_access_review(&state, &body);
    }
    if let Ok(mut log) = state.log.lock() {
        log.push(Recorded {
            method: req.method().to_string(),
            path: path.clone(),
            query: query.clone(),
            accept: header(&req, "accept"),
            authorization: header(&req, "authorization"),
            user_agent: header(&req, "user-agent"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
    }
    if state.stalled.lock().is_ok_and(|s| s.contains(&path)) {
        std::future::pending::<()>().await;
    }
    if path.starts_with(LEASES) && path.contains("/leases") {
        return serve_lease(&state, &method, &path, &body);
    }
    let watch = query.get("watch").map(String::as_str) == Some("true");
    let answer = state.writes.lock().ok().and_then(|mut writes| {
        let key = (method.clone(), path.clone());
        let queue = writes.get_mut(&key)?;
        let answer = if queue.len() > 1 {
            Some(queue.remove(0))
        } else {
            queue.first().cloned()
        };
        // Under the same lock: the next request sees the state after this one.
        if let Some(next) = state.after.lock().ok().and_then(|mut a| a.remove(&key)) {
            writes.extend(next);
        }
        answer
    });
    if method != "GET" || (answer.is_some() && !watch) {
        return match answer {
            Some((status, body)) => {
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status"))
                    .json(body)
            }
            None => HttpResponse::MethodNotAllowed().json(serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 405,
                "message": format!("the mock has no answer for {method} {path}")
            })),
        };
    }
    if watch {
        let Some(sender) = state.watches.get(&path) else {
            return HttpResponse::NotFound().finish();
        };
        let receiver = sender.subscribe();
        let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let mut line = serde_json::to_vec(&event).expect("event is JSON");
                        line.push(b'\n');
                        return Some((Ok::<_, actix_web::Error>(web::Bytes::from(line)), receiver));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        return HttpResponse::Ok()
            .content_type("application/json")
            .streaming(events);
    }
    match state.lists.get(&path) {
        Some(list) => HttpResponse::Ok().json(list),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("{path} not found")
        })),
    }
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

//! How the mock answers: canned lists and writes, watches, Leases, access reviews.

use super::{Recorded, Writes};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Clone)]
pub(super) struct State {
    pub(super) writes: Arc<Mutex<Writes>>,
    pub(super) lists: Arc<HashMap<String, Value>>,
    pub(super) watches: Arc<HashMap<String, broadcast::Sender<Value>>>,
    pub(super) log: Arc<Mutex<Vec<Recorded>>>,
    /// `coordination.k8s.io/v1` Leases by path, with the API server's optimistic concurrency.
    pub(super) leases: Arc<Mutex<Leases>>,
    /// Paths whose requests are never answered (an API server that hangs).
    pub(super) stalled: Arc<Mutex<HashSet<String>>>,
    /// SelfSubjectAccessReviews answer `allowed: false` for these `(verb, group, resource,
    /// namespace)`, `allowed: true` otherwise.
    pub(super) denied: Arc<Mutex<HashSet<AccessKey>>>,
    /// Access reviews are kept out of `log`: they are questions, not actions on the cluster.
    pub(super) reviews: Arc<Mutex<Vec<Value>>>,
    /// Answers that replace `writes`' once a request with this (method, path) was served: the
    /// cluster's state after a write (a new ReplicaSet after a restart).
    pub(super) after: Arc<Mutex<HashMap<(String, String), Writes>>>,
}

pub(super) type AccessKey = (String, String, String, String);

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
pub(super) struct Leases {
    pub(super) objects: HashMap<String, Value>,
    next_version: u64,
}

pub(super) const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/";

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

pub(super) async fn serve(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
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
    let answer = next_answer(&state, &method, &path);
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
        return watch_stream(&state, &path);
    }
    match state.lists.get(&path) {
        Some(list) => HttpResponse::Ok().json(list),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("{path} not found")
        })),
    }
}

/// The next canned answer for `method path`: consumed in order, the last one repeats.
fn next_answer(state: &State, method: &str, path: &str) -> Option<(u16, Value)> {
    state.writes.lock().ok().and_then(|mut writes| {
        let key = (method.to_string(), path.to_string());
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
    })
}

/// A watch of `path`: the events the test sends, one JSON line each, until the mock stops.
fn watch_stream(state: &State, path: &str) -> HttpResponse {
    let Some(sender) = state.watches.get(path) else {
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
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(events)
}

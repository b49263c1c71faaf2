//! The error mapping of our JSON extractor and actix's query extractor, checked on a
//! throw-away echo route mounted on the real app.

use super::json::JsonBody;
use super::routes::{API_BODY_LIMIT, Shared, api_app};
use super::{AppState, StateParts};
use crate::auth::ApiToken;
use crate::config::{Sources, load};
use crate::guard::{GuardConfig, GuardView, SharedView};
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::store::SqlStore;
use actix_web::{test, web};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    #[allow(dead_code)]
    n: u32,
}

#[derive(Deserialize)]
struct EchoQuery {
    #[allow(dead_code)]
    limit: u32,
}

async fn echo(_body: JsonBody<Echo>, _query: web::Query<EchoQuery>) -> &'static str {
    "ok"
}

/// The app as `startup` builds it, detached, on a store in a temp dir.
async fn shared() -> (Shared, tempfile::TempDir) {
    let settings = Arc::new(load(&Sources::default()).expect("defaults"));
    let dir = tempfile::tempdir().expect("dir");
    let metrics = Metrics::new();
    let store: Arc<dyn crate::store::Store> = Arc::new(
        SqlStore::open(
            dir.path(),
            std::time::Duration::from_secs(5),
            metrics.clone(),
        )
        .await
        .expect("store"),
    );
    let guard = SharedView::new(GuardView::new(GuardConfig::from_settings(&settings)));
    let pipeline = Arc::new(Pipeline::new(
        store.clone(),
        metrics.clone(),
        None,
        guard.clone(),
        settings.workload_checkpoint_timeout,
    ));
    let state = AppState::new(StateParts {
        settings,
        cluster: None,
        store,
        metrics,
        guard,
        pipeline,
        tls: None,
        prometheus: None,
        models: Default::default(),
        access: Default::default(),
    });
    (Shared::new(state, ApiToken::new("t")), dir)
}

async fn call(req: test::TestRequest) -> (u16, serde_json::Value) {
    let (shared, _dir) = shared().await;
    let app = test::init_service(api_app(shared).route("/echo", web::post().to(echo))).await;
    let response = test::call_service(&app, req.to_request()).await;
    let status = response.status().as_u16();
    let body = test::read_body(response).await;
    let json = serde_json::from_slice(&body).expect("every error body is JSON");
    (status, json)
}

fn post(body: &[u8], content_type: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/echo?limit=1")
        .insert_header(("content-type", content_type))
        .set_payload(body.to_vec())
}

#[actix_web::test]
async fn malformed_json_is_400() {
    let (status, body) = call(post(b"{\"n\":", "application/json")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
}

#[actix_web::test]
async fn wrong_types_and_unknown_fields_are_422_naming_the_problem() {
    let (status, body) = call(post(br#"{"n":"seven"}"#, "application/json")).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "validation_failed");
    let (status, body) = call(post(br#"{"n":1,"extra":true}"#, "application/json")).await;
    assert_eq!(status, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("extra"))
    );
    let (status, body) = call(post(br#"{"n":-1}"#, "application/json")).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["details"]["field"], "n");
    let (status, _) = call(post(br#"{"n":1} trailing"#, "application/json")).await;
    assert_eq!(status, 400);
}

#[actix_web::test]
async fn a_body_over_the_limit_is_413() {
    let big = vec![b' '; API_BODY_LIMIT + 1];
    let (status, body) = call(post(&big, "application/json")).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[actix_web::test]
async fn a_non_json_content_type_is_415() {
    let (status, body) = call(post(br#"{"n":1}"#, "text/plain")).await;
    assert_eq!(status, 415);
    assert_eq!(body["error"]["code"], "unsupported_media_type");
}

#[actix_web::test]
async fn a_bad_query_string_is_400() {
    let req = test::TestRequest::post()
        .uri("/echo?limit=lots")
        .insert_header(("content-type", "application/json"))
        .set_payload(br#"{"n":1}"#.to_vec());
    let (status, body) = call(req).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("query"))
    );
}

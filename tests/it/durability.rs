//! The store under stress and failure: concurrent writers, an outage, a corrupt file.
//! The writers and the outage run on both backends: one body, a wrapper per backend.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_on_postgres};
use coordination_engine::store::Store;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_writers_lose_nothing_and_deadlock_nothing() {
    fifty_writers_on(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_writers_lose_nothing_and_deadlock_nothing_on_postgresql() {
    if let Some(app) = spawn_app_on_postgres().await {
        fifty_writers_on(app).await;
    }
}

/// 50 writers create incidents (and note every fourth) for `CONCURRENCY_TEST_SECS` (10 s):
/// every one finishes and every acknowledged incident is counted, overall and per namespace.
async fn fifty_writers_on(app: TestApp) {
    let seconds = std::env::var("CONCURRENCY_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let app = Arc::new(app);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let created = Arc::new(AtomicU64::new(0));
    let noted = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for writer in 0..50 {
        let (app, created, noted) = (app.clone(), created.clone(), noted.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                let id = app
                    .create_incident(json!({"title": format!("w{writer}-{n}"), "namespace": format!("ns-{}", writer % 5)}))
                    .await;
                created.fetch_add(1, Ordering::Relaxed);
                if n % 4 == 0 {
                    let response = app
                        .patch_json(&format!("/api/v1/incidents/{id}"), &json!({"note": "seen"}))
                        .await;
                    assert_eq!(response.status(), 200);
                    noted.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    for writer in writers {
        // Every writer must finish: a deadlock would hang here (and the test would time out).
        tokio::time::timeout(Duration::from_secs(seconds + 60), writer)
            .await
            .expect("writer finished")
            .expect("writer did not panic");
    }
    let created = created.load(Ordering::Relaxed) as i64;
    assert!(created > 50, "some throughput: {created}");
    let all = app.get_json("/api/v1/incidents?limit=1").await;
    assert_eq!(
        all["total"], created,
        "every acknowledged incident is stored"
    );
    let per_namespace: i64 = futures_util::future::join_all((0..5).map(|ns| {
        let app = app.clone();
        async move {
            app.get_json(&format!("/api/v1/incidents?namespace=ns-{ns}&limit=1"))
                .await["total"]
                .as_i64()
                .unwrap_or(-1)
        }
    }))
    .await
    .into_iter()
    .sum();
    assert_eq!(per_namespace, created);
    eprintln!(
        "{created} incidents and {} notes from 50 writers in {seconds}s",
        noted.load(Ordering::Relaxed)
    );
}

#[tokio::test]
async fn a_store_outage_is_503_in_the_error_shape_and_readiness_fails() {
    store_outage_on(spawn_app().await).await;
}

#[tokio::test]
async fn a_store_outage_is_503_in_the_error_shape_and_readiness_fails_on_postgresql() {
    if let Some(app) = spawn_app_on_postgres().await {
        store_outage_on(app).await;
    }
}

/// The store goes away under a running server (its pools are closed): every route that needs
/// it answers 503 `unavailable`, readiness and health say why, liveness stays 200.
async fn store_outage_on(app: TestApp) {
    let id = app
        .create_incident(json!({"title": "before the outage"}))
        .await;
    app.store.close().await;

    let create = app
        .post_json("/api/v1/incidents", &json!({"title": "during"}))
        .await;
    assert_eq!(create.status(), 503);
    let (code, body) = error_body(create).await;
    assert_eq!(code, "unavailable", "{body}");
    for path in [
        "/api/v1/incidents",
        &format!("/api/v1/incidents/{id}"),
        "/api/v1/workflows",
    ] {
        let response = app.get_authed(path).await;
        assert_eq!(response.status(), 503, "{path}");
        error_body(response).await;
    }
    let ready = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 503);
    let (_, ready) = error_body(ready).await;
    assert_eq!(
        ready["error"]["details"]["failing_checks"],
        json!(["store_reachable"])
    );
    let health = app.get_authed("/api/v1/health").await;
    assert_eq!(health.status(), 503);
    let health: Value = health.json().await.expect("json");
    assert_eq!(health["status"], "unhealthy");
    assert_eq!(health["components"]["store"]["status"], "down");
    // Liveness is not readiness: the process is fine, restarting it would not help.
    let live = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn retention_purges_only_closed_incidents_older_than_the_cutoff() {
    let app = spawn_app().await;
    let open = app.create_incident(json!({"title": "open"})).await;
    let closed = app.create_incident(json!({"title": "closed"})).await;
    let response = app
        .patch_json(
            &format!("/api/v1/incidents/{closed}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let past = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(app.store.purge_closed_before(past).await.expect("purge"), 0);
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(
        app.store.purge_closed_before(future).await.expect("purge"),
        1
    );
    assert_eq!(
        app.get_authed(&format!("/api/v1/incidents/{closed}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_authed(&format!("/api/v1/incidents/{open}"))
            .await
            .status(),
        200
    );
    // The summary counters follow deletions (and agree with a row scan via `since`).
    for query in ["", "?since=1h"] {
        let listed = app.get_json(&format!("/api/v1/incidents{query}")).await;
        assert_eq!(listed["total"], 1, "{query}");
        assert_eq!(listed["summary"]["completed"], 0, "{query}");
        assert_eq!(listed["summary"]["active"], 1, "{query}");
    }
}

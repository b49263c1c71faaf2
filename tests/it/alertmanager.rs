//! The Alertmanager receiver over HTTP: idempotency, resolution, bad input, store outages.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use coordination_engine::store::Store;
use serde_json::{Value, json};

pub fn sample(name: &str) -> Value {
    crate::helpers::sample("alertmanager", name)
}

async fn post_raw(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.post_raw("/webhooks/alertmanager", body).await
}

async fn post(app: &TestApp, body: &Value) -> reqwest::Response {
    post_raw(app, serde_json::to_vec(body).expect("json")).await
}

async fn total(app: &TestApp) -> i64 {
    app.get_json("/api/v1/incidents?limit=1").await["total"]
        .as_i64()
        .expect("total")
}

#[tokio::test]
async fn an_alert_becomes_one_incident_however_often_it_is_delivered() {
    // The pipeline stays off so the queue can be inspected.
    let app = spawn_app_with(|env| {
        env.insert("PIPELINE_INTERVAL".into(), "0s".into());
    })
    .await;
    let firing = sample("alertmanager-sample.json");
    let first = post(&app, &firing).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("json");
    assert_eq!(first["received"], 1);
    assert_eq!(first["created"], 1);
    let id = first["incident_ids"][0].as_str().expect("id").to_string();

    let incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["source"], "alertmanager");
    assert_eq!(incident["issue_type"], "crash_loop");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["namespace"], "prod");
    assert_eq!(incident["target"], "Pod/api-7d9f");
    assert_eq!(incident["fingerprint"], "faeeacf5ff6beaf7");
    assert_eq!(
        incident["annotations"]["runbook_url"],
        "https://runbooks.example/crashloop"
    );
    assert_eq!(
        app.store.queued_incidents(10).await.expect("queue"),
        vec![id.clone()]
    );

    // Alertmanager resends the group every repeat_interval and retries on errors.
    for _ in 0..3 {
        let again: Value = post(&app, &firing).await.json().await.expect("json");
        assert_eq!(again["created"], 0);
        assert_eq!(again["deduplicated"], 1);
        assert_eq!(again["incident_ids"][0], id.as_str());
    }
    assert_eq!(total(&app).await, 1);
    let incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["occurrences"], 4);
    assert_eq!(
        app.store.queued_incidents(10).await.expect("queue").len(),
        1,
        "queued once"
    );

    let resolved: Value = post(&app, &sample("alertmanager-sample-resolved.json"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(resolved["resolved"], 1);
    let incident = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "resolved");
    assert_eq!(incident["resolved_at"], "2026-11-22T19:20:17Z");

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"coordination_engine_alerts_received_total{status="firing"} 4"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"coordination_engine_alerts_received_total{status="resolved"} 1"#));
    assert!(metrics.contains("coordination_engine_alerts_deduplicated_total 3"));
    assert!(metrics.contains(
        r#"coordination_engine_incidents_total{layer="application",source="alertmanager"} 1"#
    ));
}

#[tokio::test]
async fn a_new_firing_of_the_same_alert_is_a_new_incident() {
    let app = spawn_app().await;
    let mut firing = sample("alertmanager-sample.json");
    post(&app, &firing).await;
    firing["alerts"][0]["startsAt"] = json!("2026-11-23T08:00:00Z");
    let second: Value = post(&app, &firing).await.json().await.expect("json");
    assert_eq!(second["created"], 1, "same fingerprint, new startsAt");
    assert_eq!(total(&app).await, 2);
}

#[tokio::test]
async fn a_batch_repeating_an_alert_stores_it_once_and_unknown_alerts_are_not_queued() {
    let app = spawn_app_with(|env| {
        env.insert("PIPELINE_INTERVAL".into(), "0s".into());
    })
    .await;
    let mut payload = sample("alertmanager-sample.json");
    let alert = payload["alerts"][0].clone();
    let info = sample("alertmanager-sample-from-prometheus.json")["alerts"][0].clone();
    payload["alerts"] = json!([alert.clone(), alert, info]);
    let outcome: Value = post(&app, &payload).await.json().await.expect("json");
    assert_eq!(outcome["created"], 2);
    assert_eq!(outcome["deduplicated"], 1);
    assert_eq!(total(&app).await, 2);
    assert_eq!(
        app.store.queued_incidents(10).await.expect("queue").len(),
        1
    );
}

#[tokio::test]
async fn the_receiver_needs_the_token() {
    let app = spawn_app().await;
    let body = sample("alertmanager-sample.json");
    let anonymous = app
        .client
        .post(app.url("/webhooks/alertmanager"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
    let wrong = app
        .client
        .post(app.url("/webhooks/alertmanager"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    error_body(wrong).await;
}

/// Each bad notification, by name: its body, the status it gets, and a word its error names.
fn bad_notifications() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let good = sample("alertmanager-sample.json");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    let mut cases = vec![
        ("not JSON", b"<alert/>".to_vec(), 400, "bad_request"),
        (
            "wrong version",
            with(&|v| v["version"] = json!("3")),
            422,
            "version",
        ),
        (
            "version as number",
            with(&|v| v["version"] = json!(4)),
            422,
            "version",
        ),
        (
            "missing alerts",
            with(&|v| {
                v.as_object_mut().map(|o| o.remove("alerts"));
            }),
            422,
            "alerts",
        ),
        (
            "alert without labels",
            with(&|v| v["alerts"][0]["labels"] = json!({})),
            422,
            "alerts[0].labels",
        ),
        (
            "labels not strings",
            with(&|v| v["alerts"][0]["labels"]["x"] = json!(1)),
            422,
            "alerts[0].labels",
        ),
        (
            "bad startsAt",
            with(&|v| v["alerts"][0]["startsAt"] = json!("yesterday")),
            422,
            "alerts[0].startsAt",
        ),
        (
            "bad status",
            with(&|v| v["alerts"][0]["status"] = json!("burning")),
            422,
            "alerts[0].status",
        ),
    ];
    cases.extend(oversized_notifications(&good));
    cases
}

/// Notifications over the limits: too many alerts, too many bytes.
fn oversized_notifications(good: &Value) -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let alert = good["alerts"][0].clone();
    let mut many = good.clone();
    many["alerts"] = Value::Array(
        (0..10_000)
            .map(|i| {
                let mut a = alert.clone();
                a["fingerprint"] = json!(format!("{i:016x}"));
                a
            })
            .collect(),
    );
    vec![
        (
            "10 000 alerts",
            serde_json::to_vec(&many).expect("json"),
            413,
            "too_many_alerts",
        ),
        (
            "6 MiB body",
            {
                let mut v = good.clone();
                v["commonAnnotations"]["padding"] = json!("x".repeat(6 * 1024 * 1024));
                serde_json::to_vec(&v).expect("json")
            },
            413,
            "payload_too_large",
        ),
    ]
}

#[tokio::test]
async fn bad_notifications_get_the_right_4xx_and_store_nothing() {
    let app = spawn_app().await;
    let cases = bad_notifications();
    for (name, body, status, needle) in cases {
        let response = post_raw(&app, body).await;
        assert_eq!(response.status(), status, "{name}");
        let (code, body) = error_body(response).await;
        let text = format!("{code} {}", body["error"]["message"]);
        assert!(text.contains(needle), "{name}: {text}");
    }
    assert_eq!(total(&app).await, 0, "nothing from rejected batches");
}

#[tokio::test]
async fn while_the_store_is_locked_alertmanager_gets_503_and_the_retry_lands() {
    let app = spawn_app_with(|env| {
        env.insert("STORE_BUSY_TIMEOUT".into(), "200ms".into());
    })
    .await;
    // Another process holding the write lock: the store cannot commit.
    let blocker = app.lock_store().await;
    let firing = sample("alertmanager-sample.json");
    let refused = post(&app, &firing).await;
    assert_eq!(refused.status(), 503);
    let (code, _) = error_body(refused).await;
    assert_eq!(code, "unavailable");

    crate::helpers::release_store(blocker).await;
    let retried = post(&app, &firing).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.expect("json");
    assert_eq!(
        retried["created"], 1,
        "the failed attempt left nothing behind"
    );
    assert_eq!(total(&app).await, 1);
}

//! Denials that must not flood the store: a forged flood, repeats of one object, the TTL.

use super::server::{Server, peak_rss};
use super::{MIB, deployment, review};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

async fn metrics_text(metrics_url: &str) -> String {
    reqwest::get(metrics_url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_forged_denial_flood_opens_at_most_100_incidents() {
    let server = Server::start().await;
    let forged = 1_500;
    let not_recorded = |reason: &str| {
        format!("coordination_engine_denials_not_recorded_total{{reason=\"{reason}\"}}")
    };
    let before = metrics_text(&server.metrics_url).await;
    let before_limited = metric(&before, &not_recorded("rate_limited"));

    // Distinct users, objects and Applications, every one a denied DELETE; 10 at a time.
    let mut posted = 0;
    while posted < forged {
        let batch: Vec<_> = (posted..(posted + 10).min(forged))
            .map(|i| {
                let old = deployment(&format!("app-{i}"), &format!("obj-{i}"), json!({}));
                let body = review(&format!("user-{i}"), "DELETE", Some(old), None);
                let server = &server;
                async move {
                    let answer = server
                        .review(serde_json::to_vec(&body).expect("json"))
                        .await;
                    assert_eq!(answer["response"]["allowed"], false, "{answer}");
                }
            })
            .collect();
        posted += batch.len();
        futures_util::future::join_all(batch).await;
    }

    // Every denial is either an incident or counted as not recorded: wait until all are.
    let (incidents, limited) = wait_for(
        "the recorder to account for every denial",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            let text = metrics_text(&server.metrics_url).await;
            let counted: u64 = ["rate_limited", "queue_full", "store_unavailable"]
                .iter()
                .map(|r| metric(&text, &not_recorded(r)))
                .sum();
            let stored = server.get("/api/v1/incidents?source=admission").await["total"]
                .as_u64()
                .expect("total");
            (stored + counted >= forged as u64)
                .then(|| (stored, metric(&text, &not_recorded("rate_limited"))))
        },
    )
    .await;
    assert!(incidents <= 100, "{incidents} admission incidents");
    assert!(incidents > 0, "the first denials are recorded");
    assert!(limited > before_limited, "the excess is counted");
    let peak = peak_rss(server.pid());
    println!(
        "forged flood: {incidents} incidents of {forged} denials; peak RSS (VmHWM) {} MiB",
        peak / MIB
    );
    assert!(peak < 256 * MIB, "peak RSS {} MiB", peak / MIB);
}

/// Waits until the admission incidents of `name` satisfy `done`; returns them.
async fn incidents_of(
    app: &TestApp,
    name: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for(
        what,
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let all = app
                .get_json("/api/v1/incidents?source=admission&limit=1000")
                .await;
            let mine: Vec<Value> = all["incidents"]
                .as_array()
                .expect("incidents")
                .iter()
                .filter(|i| i["target"] == format!("Deployment/{name}"))
                .cloned()
                .collect();
            done(&mine).then_some(mine)
        },
    )
    .await
}

async fn deny(app: &TestApp, body: &Value) {
    let answer: Value = app
        .client
        .post(app.url("/webhooks/validate"))
        .json(body)
        .send()
        .await
        .expect("review")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
}

#[tokio::test]
async fn repeated_denials_of_one_application_object_keep_one_open_incident() {
    let app = spawn_app().await;
    let old = deployment("shop", "basket", json!({"replicas": 1}));
    let new = deployment("shop", "basket", json!({"replicas": 5}));
    for (user, op) in [("alice", "UPDATE"), ("bob", "UPDATE"), ("carol", "DELETE")] {
        let body = if op == "DELETE" {
            review(user, op, Some(old.clone()), None)
        } else {
            review(user, op, Some(old.clone()), Some(new.clone()))
        };
        deny(&app, &body).await;
    }
    // The recorder works in order: once a later, distinct object is recorded, so were these.
    deny(
        &app,
        &review(
            "dave",
            "DELETE",
            Some(deployment("shop", "flush", json!({}))),
            None,
        ),
    )
    .await;
    incidents_of(&app, "flush", "the flush denial to be recorded", |i| {
        i.len() == 1
    })
    .await;
    let basket = incidents_of(&app, "basket", "the basket incident", |i| !i.is_empty()).await;
    assert_eq!(basket.len(), 1, "one incident for three users: {basket:?}");
    assert_eq!(basket[0]["status"], "active");
    assert_eq!(basket[0]["annotations"]["argocd_application"], "shop");
}

#[tokio::test]
async fn denial_incidents_are_closed_after_the_ttl() {
    let app = spawn_app_with(|env| {
        env.insert("DENIAL_INCIDENT_TTL".into(), "1s".into());
    })
    .await;
    let old = deployment("shop", "cart", json!({}));
    let delete = review("alice", "DELETE", Some(old), None);
    deny(&app, &delete).await;
    let closed = incidents_of(&app, "cart", "the denial incident to be closed", |i| {
        i.len() == 1 && i[0]["status"] == "resolved"
    })
    .await;
    assert!(
        closed[0]["notes"]
            .to_string()
            .contains("DENIAL_INCIDENT_TTL"),
        "{}",
        closed[0]
    );
    // Closed is closed: the next denial of the object opens a new incident.
    deny(&app, &delete).await;
    incidents_of(&app, "cart", "a new incident after the closed one", |i| {
        i.len() == 2
    })
    .await;
}

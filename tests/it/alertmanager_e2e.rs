//! A real Alertmanager (Debian's `prometheus-alertmanager` 0.25) delivering to our TLS
//! receiver with the CA and the bearer token, as a user would configure it.

use crate::helpers::{TestApp, spawn_app_with};
use crate::peers::{find_binary, start_alertmanager};
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "alertmanager-e2e-token-0123456789";

/// Polls every 200 ms (Alertmanager works on whole seconds).
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    crate::helpers::wait_for(what, limit, Duration::from_millis(200), probe).await
}

/// Incidents from Alertmanager whose target is `Pod/<pod>`.
async fn incidents_for(app: &TestApp, pod: &str) -> Vec<Value> {
    let listed = app
        .get_json("/api/v1/incidents?source=alertmanager&limit=100")
        .await;
    listed["incidents"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|i| i["target"] == format!("Pod/{pod}").as_str())
        .cloned()
        .collect()
}

fn alert(pod: &str, starts_at: &str, ends_at: Option<&str>) -> Value {
    let mut alert = json!({
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": pod, "severity": "critical"},
        "annotations": {"summary": format!("{pod} is crash looping")},
        "startsAt": starts_at,
    });
    if let Some(end) = ends_at {
        alert["endsAt"] = json!(end);
    }
    alert
}

/// The receiver as a user would configure it: our TLS URL, CA and bearer token.
fn receiver_config(app: &TestApp) -> String {
    format!(
        r#"global:
  resolve_timeout: 1m
route:
  receiver: coordination-engine
  group_by: ['alertname', 'pod']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: coordination-engine
    webhook_configs:
      - url: https://127.0.0.1:{port}/webhooks/alertmanager
        send_resolved: true
        max_alerts: 1000
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
          tls_config:
            ca_file: {ca}
"#,
        port = app.addr.port(),
        ca = app.ca_file.display()
    )
}

/// Alertmanager's own API, to post alerts as Prometheus would.
struct Alertmanager {
    http: reqwest::Client,
    url: String,
}

impl Alertmanager {
    async fn post_alerts(&self, alerts: Value) {
        let response = self
            .http
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&alerts)
            .send()
            .await
            .expect("post");
        assert!(
            response.status().is_success(),
            "alertmanager took the alerts"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_dedupes_retries_and_resolves_through_tls() {
    let Some(binary) = find_binary(
        "ALERTMANAGER_BIN",
        &["prometheus-alertmanager", "alertmanager"],
    ) else {
        return;
    };
    let app = spawn_app_with(|env| {
        env.insert("API_TOKEN".into(), TOKEN.into());
        env.insert("STORE_BUSY_TIMEOUT".into(), "200ms".into());
    })
    .await;
    let alertmanager = start_alertmanager(&binary, &receiver_config(&app)).await;
    let am = Alertmanager {
        http: reqwest::Client::new(),
        url: alertmanager.url.clone(),
    };
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let id = delivered_once_despite_resends(&app, &am, &started).await;
    retried_until_the_store_commits(&app, &am, &started).await;
    resolving_resolves_the_incident(&app, &am, &started, &id).await;
}

/// 1. A firing alert arrives as one incident, and Alertmanager's resends do not duplicate it;
///    returns the incident's id.
async fn delivered_once_despite_resends(app: &TestApp, am: &Alertmanager, started: &str) -> String {
    am.post_alerts(json!([alert("cart-1", started, None)]))
        .await;
    let incident = wait_for(
        "the incident for cart-1",
        Duration::from_secs(60),
        || async { incidents_for(app, "cart-1").await.into_iter().next() },
    )
    .await;
    assert_eq!(incident["issue_type"], "crash_loop");
    assert_eq!(incident["severity"], "critical");
    let id = incident["id"].as_str().expect("id").to_string();
    am.post_alerts(json!([alert("cart-1", started, None)]))
        .await;
    wait_for(
        "a resend of the same alert",
        Duration::from_secs(60),
        || async {
            let current = app.get_json(&format!("/api/v1/incidents/{id}")).await;
            (current["occurrences"].as_i64() >= Some(2)).then_some(())
        },
    )
    .await;
    assert_eq!(
        incidents_for(app, "cart-1").await.len(),
        1,
        "resends never duplicate"
    );
    id
}

/// 2. While our store cannot commit, Alertmanager gets 503 and retries until it lands.
async fn retried_until_the_store_commits(app: &TestApp, am: &Alertmanager, started: &str) {
    let blocker = app.lock_store().await;
    am.post_alerts(json!([alert("cart-2", started, None)]))
        .await;
    wait_for("a 503 answered to Alertmanager", Duration::from_secs(60), || async {
        let metrics = app.metrics().await;
        metrics
            .lines()
            .find(|l| l.starts_with(r#"coordination_engine_http_requests_total{method="POST",route="/webhooks/alertmanager",status="503"}"#))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .filter(|n| *n >= 1.0)
    })
    .await;
    assert!(incidents_for(app, "cart-2").await.is_empty());
    crate::helpers::release_store(blocker).await;
    wait_for(
        "cart-2 after the store recovered",
        Duration::from_secs(60),
        || async { incidents_for(app, "cart-2").await.into_iter().next() },
    )
    .await;
    assert_eq!(incidents_for(app, "cart-2").await.len(), 1);
}

/// 3. Resolving the alert in Alertmanager resolves the incident.
async fn resolving_resolves_the_incident(
    app: &TestApp,
    am: &Alertmanager,
    started: &str,
    id: &str,
) {
    let ended = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    am.post_alerts(json!([alert("cart-1", started, Some(&ended))]))
        .await;
    wait_for("cart-1 resolved", Duration::from_secs(60), || async {
        let current = app.get_json(&format!("/api/v1/incidents/{id}")).await;
        (current["status"] == "resolved").then_some(())
    })
    .await;
    assert_eq!(incidents_for(app, "cart-1").await.len(), 1);
}

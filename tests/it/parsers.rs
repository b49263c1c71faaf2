//! Outside input at its edges, over HTTP: alert by alert intake (one bad alert no longer costs
//! the good ones), and times outside the years 0000–9999 (audit, alerts, `since`).

use crate::helpers::{TestApp, error_body, sample, spawn_app_with};
use crate::peers::{find_binary, start_alertmanager};
use serde_json::{Value, json};
use std::time::Duration;

async fn app() -> TestApp {
    spawn_app_with(|env| {
        env.insert("PIPELINE_INTERVAL".into(), "0s".into());
    })
    .await
}

/// The sample alert, for another pod and fingerprint.
fn alert(pod: &str, fingerprint: &str) -> Value {
    let mut alert = sample("alertmanager", "alertmanager-sample.json")["alerts"][0].clone();
    alert["labels"]["pod"] = json!(pod);
    alert["annotations"]["summary"] = json!(format!("{pod} is crash looping"));
    alert["fingerprint"] = json!(fingerprint);
    alert
}

fn notification(alerts: Vec<Value>) -> Value {
    let mut notification = sample("alertmanager", "alertmanager-sample.json");
    notification["alerts"] = Value::Array(alerts);
    notification
}

/// The value of one series in the metrics text, `None` when absent.
fn series(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn rejected(metrics: &str, reason: &str) -> Option<f64> {
    series(
        metrics,
        &format!(r#"coordination_engine_alerts_rejected_total{{reason="{reason}"}}"#),
    )
}

async fn incident_pods(app: &TestApp) -> Vec<String> {
    let listed = app
        .get_json("/api/v1/incidents?source=alertmanager&limit=100")
        .await;
    let mut pods: Vec<String> = listed["incidents"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["target"].as_str()?.strip_prefix("Pod/").map(String::from))
        .collect();
    pods.sort();
    pods
}

#[tokio::test]
async fn a_notification_with_bad_alerts_stores_the_good_ones_and_counts_each_reject() {
    let app = app().await;
    let mut no_alertname = alert("bad-1", "00000000000000b1");
    no_alertname["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("alertname");
    let mut out_of_range = alert("bad-2", "00000000000000b2");
    out_of_range["startsAt"] = json!("-262143-01-01T00:00:00Z");
    let mut oversize = alert("bad-3", "00000000000000b3");
    for i in 0..200 {
        oversize["labels"][format!("l{i}")] = json!("v");
    }
    let body = notification(vec![
        alert("good-1", "00000000000000a1"),
        no_alertname,
        out_of_range,
        oversize,
        alert("good-2", "00000000000000a2"),
    ]);
    let before = app.metrics().await;
    assert_eq!(
        rejected(&before, "missing_alertname"),
        Some(0.0),
        "pre-created"
    );

    let response = app.post_json("/webhooks/alertmanager", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["received"], 5, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["rejected"], 3, "{answer}");
    assert_eq!(answer["created"], 2, "{answer}");
    assert_eq!(answer["incident_ids"].as_array().map(Vec::len), Some(2));
    let listed: Vec<(i64, &str, &str, &str)> = answer["rejected_alerts"]
        .as_array()
        .expect("rejected_alerts")
        .iter()
        .map(|r| {
            (
                r["index"].as_i64().unwrap_or(-1),
                r["fingerprint"].as_str().unwrap_or_default(),
                r["field"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (
                1,
                "00000000000000b1",
                "alerts[1].labels.alertname",
                "missing_alertname"
            ),
            (2, "00000000000000b2", "alerts[2].startsAt", "bad_time"),
            (3, "00000000000000b3", "alerts[3].labels", "oversize"),
        ]
    );
    assert_eq!(incident_pods(&app).await, vec!["good-1", "good-2"]);

    let metrics = app.metrics().await;
    for reason in ["missing_alertname", "bad_time", "oversize"] {
        assert_eq!(rejected(&metrics, reason), Some(1.0), "{reason}: {metrics}");
    }
    assert_eq!(rejected(&metrics, "bad_status"), Some(0.0));
    assert_eq!(
        series(
            &metrics,
            r#"coordination_engine_alerts_received_total{status="firing"}"#
        ),
        Some(2.0),
        "received counts the accepted alerts"
    );
}

#[tokio::test]
async fn a_notification_with_nothing_usable_is_refused_and_its_alerts_counted() {
    let app = app().await;
    let mut bad = alert("bad-1", "00000000000000b1");
    bad["status"] = json!("burning");
    let response = app
        .post_json("/webhooks/alertmanager", &notification(vec![bad]))
        .await;
    assert_eq!(response.status(), 422);
    let (code, body) = error_body(response).await;
    assert_eq!(code, "validation_failed");
    assert_eq!(body["error"]["details"]["field"], "alerts[0].status");
    assert_eq!(
        body["error"]["details"]["rejected_alerts"][0]["fingerprint"],
        "00000000000000b1"
    );
    assert_eq!(rejected(&app.metrics().await, "bad_status"), Some(1.0));
    assert!(incident_pods(&app).await.is_empty());
}

#[tokio::test]
async fn alert_times_at_the_edges_of_0000_to_9999_are_stored_and_served() {
    let app = app().await;
    let mut year_zero = alert("year-0", "00000000000000c0");
    year_zero["startsAt"] = json!("0000-01-01T00:00:00Z");
    let mut resolved_late = alert("year-9999", "00000000000000c9");
    resolved_late["status"] = json!("resolved");
    resolved_late["startsAt"] = json!("0000-01-01T00:00:00Z");
    resolved_late["endsAt"] = json!("9999-12-31T23:59:59.999999999Z");
    let mut utc_overflow = alert("past-9999", "00000000000000cf");
    utc_overflow["startsAt"] = json!("9999-12-31T23:59:59-01:00");
    let response = app
        .post_json(
            "/webhooks/alertmanager",
            &notification(vec![year_zero, resolved_late, utc_overflow]),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["accepted"], 2, "{answer}");
    assert_eq!(answer["rejected_alerts"][0]["field"], "alerts[2].startsAt");
    for id in answer["incident_ids"].as_array().expect("ids") {
        let incident = app
            .get_json(&format!("/api/v1/incidents/{}", id.as_str().expect("id")))
            .await;
        assert!(
            incident["first_seen"]
                .as_str()
                .is_some_and(|t| t.starts_with("0000-01-01")),
            "{incident}"
        );
    }
    // The list view computes durations over these times.
    let listed = app
        .get_json("/api/v1/incidents?since=0000-01-01T00:00:00Z")
        .await;
    assert_eq!(listed["total"], 2, "{listed}");
}

fn forbidden_burst_at(time: &str) -> Value {
    let mut list = sample("audit", "forbidden-burst.json");
    for item in list["items"].as_array_mut().expect("items") {
        item["requestReceivedTimestamp"] = json!(time);
    }
    list
}

#[tokio::test]
async fn audit_times_outside_0000_to_9999_are_a_400_and_the_edges_work() {
    let app = app().await;
    // chrono parses these, and the 403 window arithmetic on them used to panic a worker.
    for time in [
        "-262143-01-01T00:00:00Z",
        "+262142-12-31T23:59:59Z",
        "0000-01-01T00:00:00+01:00",
    ] {
        let response = app
            .post_json("/webhooks/audit", &forbidden_burst_at(time))
            .await;
        assert_eq!(response.status(), 400, "{time}");
        let (_, body) = error_body(response).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("items[0].requestReceivedTimestamp") && message.contains("0000"),
            "{time}: {message}"
        );
    }
    // At the edges the batch is judged and stored (whether a burst is reported across such
    // far-apart times is the 403 tracker's business).
    for (time, prefix) in [
        ("0000-01-01T00:00:30Z", "a"),
        ("9999-12-31T23:59:59.999999Z", "b"),
    ] {
        let mut list = forbidden_burst_at(time);
        for item in list["items"].as_array_mut().expect("items") {
            // New audit ids, or the second batch would be all duplicates.
            let id = item["auditID"].as_str().expect("id").to_string();
            item["auditID"] = json!(format!("{prefix}{}", &id[1..]));
        }
        let response = app.post_json("/webhooks/audit", &list).await;
        assert_eq!(response.status(), 200, "{time}");
        let answer: Value = response.json().await.expect("json");
        assert_eq!(answer["received"], 6, "{time}: {answer}");
        assert_eq!(answer["new_events"], 6, "{time}: {answer}");
    }
}

#[tokio::test]
async fn since_outside_0000_to_9999_is_a_400_naming_the_parameter() {
    let app = app().await;
    for since in [
        "-262143-01-01T00:00:00Z",
        "0000-01-01T00:00:00%2B01:00",
        "3000000d",
        "1000000000d",
    ] {
        let response = app
            .get_authed(&format!("/api/v1/incidents?since={since}"))
            .await;
        assert_eq!(response.status(), 400, "{since}");
        let (code, body) = error_body(response).await;
        assert_eq!(code, "bad_request");
        assert_eq!(body["error"]["details"]["parameter"], "since", "{since}");
    }
    for since in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "24h"] {
        let response = app
            .get_authed(&format!("/api/v1/incidents?since={since}"))
            .await;
        assert_eq!(response.status(), 200, "{since}");
    }
}

/// A real Alertmanager (Debian's 0.25) groups a good and a bad alert into one notification:
/// the good ones arrive as incidents, the bad one is counted, and the notification is a 200
/// (a 4xx would make Alertmanager drop the whole group).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_alertmanager_mixed_notification_delivers_the_good_alerts() {
    let Some(binary) = find_binary(
        "ALERTMANAGER_BIN",
        &["prometheus-alertmanager", "alertmanager"],
    ) else {
        return;
    };
    let app = app().await;
    let config = format!(
        r#"route:
  receiver: engine
  group_by: ['namespace']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: engine
    webhook_configs:
      - url: https://127.0.0.1:{port}/webhooks/alertmanager
        http_config:
          authorization: {{ type: Bearer, credentials: {token} }}
          tls_config: {{ ca_file: {ca} }}
"#,
        port = app.addr.port(),
        token = app.token,
        ca = app.ca_file.display()
    );
    let alertmanager = start_alertmanager(&binary, &config).await;
    let am = alertmanager.url.clone();
    let http = reqwest::Client::new();

    // One API call, one namespace: one group, one notification. The second alert has no
    // alertname (Alertmanager itself accepts any non-empty label set).
    let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let labels = |pod: &str, alertname: Option<&str>| {
        let mut labels = json!({"namespace": "shop", "pod": pod, "severity": "critical"});
        if let Some(name) = alertname {
            labels["alertname"] = json!(name);
        }
        json!({"labels": labels, "startsAt": started})
    };
    let posted = http
        .post(format!("{am}/api/v2/alerts"))
        .json(&json!([
            labels("cart-1", Some("KubePodCrashLooping")),
            labels("nameless", None),
            labels("cart-2", Some("KubePodCrashLooping")),
        ]))
        .send()
        .await
        .expect("post to alertmanager");
    assert!(posted.status().is_success(), "alertmanager took the alerts");

    crate::helpers::wait_for(
        "both good alerts as incidents",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async { (incident_pods(&app).await == ["cart-1", "cart-2"]).then_some(()) },
    )
    .await;
    let metrics = app.metrics().await;
    assert!(
        rejected(&metrics, "missing_alertname") >= Some(1.0),
        "the nameless alert is counted: {metrics}"
    );
    let answered = |status: &str| {
        series(
            &metrics,
            &format!(
                r#"coordination_engine_http_requests_total{{method="POST",route="/webhooks/alertmanager",status="{status}"}}"#
            ),
        )
        .unwrap_or(0.0)
    };
    assert!(answered("200") >= 1.0, "{metrics}");
    assert_eq!(answered("422"), 0.0, "the mixed group was not refused");
}

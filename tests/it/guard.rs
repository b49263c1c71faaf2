//! The admission webhook over TLS: the case table, denials as incidents, bad input, explain.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::helpers::{admission_case as case, admission_cases as cases};

async fn post_review(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.url("/webhooks/validate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn decide(app: &TestApp, review: &Value) -> Value {
    let response = post_review(app, serde_json::to_vec(review).expect("json")).await;
    assert_eq!(response.status(), 200, "a decision is always HTTP 200");
    response.json().await.expect("json")
}

#[tokio::test]
async fn the_webhook_decides_every_default_view_case_of_the_table() {
    let app = spawn_app().await;
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| c["view"] == json!({})) {
        let answer = decide(&app, &case["review"]).await;
        let name = case["name"].as_str().unwrap_or_default();
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{name}");
        assert_eq!(answer["kind"], "AdmissionReview", "{name}");
        let response = &answer["response"];
        assert_eq!(
            response["uid"], case["review"]["request"]["uid"],
            "{name}: same uid"
        );
        let denied = case["expect"]["outcome"] == "deny";
        assert_eq!(response["allowed"], !denied, "{name}: {response}");
        assert_eq!(
            response["auditAnnotations"]["coordination-engine.io/reason"], case["expect"]["reason"],
            "{name}"
        );
        if denied {
            assert_eq!(response["status"]["code"], 403, "{name}");
            assert!(
                response["status"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Git")),
                "{name}"
            );
        } else {
            assert!(response.get("status").is_none(), "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 20, "{checked} cases over HTTP");
    let metrics = app.metrics().await;
    assert!(metrics.contains(
        r#"coordination_engine_admission_reviews_total{decision="deny",reason="manual_change"}"#
    ));
    assert!(metrics.contains("coordination_engine_admission_review_duration_seconds_count"));
}

#[tokio::test]
async fn warn_mode_allows_with_the_message_as_a_warning() {
    let app = spawn_app_with(|env| {
        env.insert("GUARD_MODE".into(), "warn".into());
    })
    .await;
    let answer = decide(
        &app,
        &case("kubectl edit of replicas on a managed deployment")["review"],
    )
    .await;
    assert_eq!(answer["response"]["allowed"], true);
    let warning = answer["response"]["warnings"][0]
        .as_str()
        .expect("a warning");
    assert!(warning.contains("\"shop\""), "{warning}");
}

/// Denials are recorded by a background task, in order. A denial of another object is queued
/// behind everything before it: once its incident exists, every earlier denial was processed.
async fn flush_denials(app: &TestApp) {
    let mut sentinel = case("kubectl delete of a managed deployment")["review"].clone();
    sentinel["request"]["userInfo"]["username"] = json!("sentinel");
    // Another object: a denial of the same Application and object joins its open incident.
    sentinel["request"]["name"] = json!("sentinel");
    sentinel["request"]["oldObject"]["metadata"]["name"] = json!("sentinel");
    sentinel["request"]["oldObject"]["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
        json!("shop:apps/Deployment:prod/sentinel");
    assert_eq!(decide(app, &sentinel).await["response"]["allowed"], false);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if admission_incidents(app)
            .await
            .iter()
            .any(|i| i["created_by"] == "sentinel")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the sentinel denial was never recorded"
        );
    }
}

async fn admission_incidents(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/incidents?source=admission").await["incidents"]
        .as_array()
        .expect("array")
        .clone()
}

#[tokio::test]
async fn denials_become_incidents_once_per_application_and_object_and_dry_runs_never() {
    let app = spawn_app().await;
    let dry = case("a server-side dry run is judged like the real request");
    assert_eq!(
        decide(&app, &dry["review"]).await["response"]["allowed"],
        false
    );
    let denied = case("kubectl edit of replicas on a managed deployment");
    for _ in 0..3 {
        assert_eq!(
            decide(&app, &denied["review"]).await["response"]["allowed"],
            false
        );
    }
    flush_denials(&app).await;
    let incidents: Vec<Value> = admission_incidents(&app)
        .await
        .into_iter()
        .filter(|i| i["created_by"] == "alice")
        .collect();
    assert_eq!(
        incidents.len(),
        1,
        "three denials of one Application and object, one incident; the dry run none"
    );
    let incident = &incidents[0];
    assert_eq!(incident["source"], "admission");
    assert_eq!(incident["created_by"], "alice");
    assert_eq!(incident["annotations"]["argocd_application"], "shop");
    assert_eq!(incident["annotations"]["changed_paths"], "/spec/replicas");
    assert_eq!(incident["target"], "Deployment/cart");
    // Counted once each (alice's and the sentinel's), under the layer detected for them.
    app.metrics_with(&[
        r#"coordination_engine_incidents_total{layer="application",source="admission"} 2"#,
    ])
    .await;
}

#[tokio::test]
async fn malformed_reviews_are_400_and_oversized_413() {
    let app = spawn_app().await;
    let good = case("kubectl edit of replicas on a managed deployment")["review"].clone();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not JSON",
            b"kind: AdmissionReview".to_vec(),
            "not valid JSON",
        ),
        (
            "wrong apiVersion",
            with(&|v| v["apiVersion"] = json!("admission.k8s.io/v1beta1")),
            "apiVersion",
        ),
        ("wrong kind", with(&|v| v["kind"] = json!("Pod")), "kind"),
        (
            "missing request",
            with(&|v| {
                v.as_object_mut().map(|o| o.remove("request"));
            }),
            "request",
        ),
        (
            "missing uid",
            with(&|v| {
                v["request"].as_object_mut().map(|o| o.remove("uid"));
            }),
            "uid",
        ),
        (
            "empty uid",
            with(&|v| v["request"]["uid"] = json!("")),
            "uid",
        ),
        (
            "object not an object",
            with(&|v| v["request"]["object"] = json!("a string")),
            "object",
        ),
        (
            "bad operation",
            with(&|v| v["request"]["operation"] = json!("PATCH")),
            "operation",
        ),
    ];
    for (name, body, needle) in cases {
        let response = post_review(&app, body).await;
        assert_eq!(response.status(), 400, "{name}");
        let (_, body) = error_body(response).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "{name}: {body}"
        );
    }
    let mut huge = good.clone();
    huge["request"]["object"]["metadata"]["annotations"]["padding"] =
        json!("x".repeat(4 * 1024 * 1024));
    let response = post_review(&app, serde_json::to_vec(&huge).expect("json")).await;
    assert_eq!(response.status(), 413);
    error_body(response).await;
}

#[tokio::test]
async fn explain_shows_the_decision_and_trace_and_records_nothing() {
    let app = spawn_app().await;
    let review = case("kubectl set image on a managed deployment")["review"].clone();
    let short = json!({
        "user": "alice",
        "groups": ["developers"],
        "operation": "UPDATE",
        "object": review["request"]["object"],
        "old_object": review["request"]["oldObject"],
    });
    for body in [short, review] {
        let response = app.post_json("/api/v1/guard/explain", &body).await;
        assert_eq!(response.status(), 200);
        let explained: Value = response.json().await.expect("json");
        assert_eq!(explained["decision"], "deny");
        assert_eq!(explained["allowed"], false);
        assert_eq!(explained["reason"], "manual_change");
        assert_eq!(explained["application"], "shop");
        assert_eq!(
            explained["changed_paths"],
            json!(["/spec/template/spec/containers/0/image"])
        );
        assert!(
            explained["trace"].as_array().is_some_and(|t| t.len() >= 2),
            "{explained}"
        );
    }
    let anonymous = app
        .client
        .post(app.url("/api/v1/guard/explain"))
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), 401);
    let bad = app
        .post_json(
            "/api/v1/guard/explain",
            &json!({"user": "a", "operation": "EXPLODE", "object": {}}),
        )
        .await;
    assert_eq!(bad.status(), 422);
    flush_denials(&app).await;
    let recorded = admission_incidents(&app).await;
    assert!(
        recorded.iter().all(|i| i["created_by"] == "sentinel"),
        "explain records nothing: {recorded:?}"
    );
}

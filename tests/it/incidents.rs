use crate::helpers::{TestApp, error_body, spawn_app};
use serde_json::{Value, json};

async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let (actual, body) = error_body(response).await;
    assert_eq!(actual, code, "{body}");
    body
}

#[tokio::test]
async fn go_engine_create_fields_are_accepted_and_echoed_at_the_top_level() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/api/v1/incidents",
            &json!({
                "title": "Payment pods crash-looping",
                "description": "OOMKilled after deploy",
                "severity": "high",
                "target": "production/Deployment/payment",
                "affected_resources": ["pod/payment-1", "pod/payment-2"],
                "labels": {"team": "payments"}
            }),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    for field in [
        "incident_id",
        "title",
        "description",
        "severity",
        "status",
        "created_at",
        "message",
    ] {
        assert!(created[field].is_string(), "{field} is a string: {created}");
    }
    assert!(
        created["priority"].is_i64(),
        "priority is an integer: {created}"
    );
    assert_eq!(created["priority"], 2);
    assert_eq!(created["status"], "active");

    let id = created["incident_id"].as_str().expect("id");
    let stored = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(stored["title"], "Payment pods crash-looping");
    assert_eq!(stored["namespace"], "production");
    assert_eq!(stored["target"], "Deployment/payment");
    assert_eq!(
        stored["resource"],
        json!({"kind": "Deployment", "name": "payment"})
    );
    assert_eq!(
        stored["affected_resources"],
        json!(["pod/payment-1", "pod/payment-2"])
    );
    assert_eq!(stored["labels"]["team"], "payments");
    assert_eq!(stored["occurrences"], 1);
    assert_eq!(stored["source"], "api");
}

#[tokio::test]
async fn mcp_camel_case_fields_are_kept_and_target_is_optional() {
    let app = spawn_app().await;
    let id = app
        .create_incident(json!({
            "title": "Latency spike",
            "description": "p99 > 2s",
            "severity": "critical",
            "source": "manual",
            "createdBy": "mcp-server",
            "affectedResources": ["svc/checkout"],
            "correlationId": "corr-1",
            "externalId": "ext-9",
            "confidence": 0.8
        }))
        .await;
    let stored = app.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(stored["source"], "manual");
    assert_eq!(stored["created_by"], "mcp-server");
    assert_eq!(stored["affected_resources"], json!(["svc/checkout"]));
    assert_eq!(stored["correlation_id"], "corr-1");
    assert_eq!(stored["external_id"], "ext-9");
    assert_eq!(stored["confidence"], 0.8);
    assert_eq!(stored["target"], Value::Null);
    assert_eq!(stored["priority"], 1);
}

#[tokio::test]
async fn invalid_create_bodies_are_rejected_naming_the_problem() {
    let app = spawn_app().await;
    let long = "x".repeat(300);
    let cases = [
        (json!({"description": "no title"}), "title"),
        (json!({"title": "  "}), "title"),
        (json!({"title": long}), "title"),
        (json!({"title": "t", "severity": "urgent"}), "severity"),
        (json!({"title": "t", "source": "alertmanager"}), "source"),
        (json!({"title": "t", "confidence": 2.5}), "confidence"),
        (json!({"title": "t", "namespace": "Bad_NS"}), "namespace"),
        (json!({"title": "t", "bogus": 1}), "bogus"),
        (json!({"title": 5}), "title"),
        (json!({"title": "t", "labels": {"k": 1}}), "labels"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/api/v1/incidents", &body).await;
        let error = expect_error(response, 422, "validation_failed").await;
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{body}: {message}");
    }
    let listed = app.get_json("/api/v1/incidents").await;
    assert_eq!(listed["total"], 0, "nothing stored from rejected requests");
}

#[tokio::test]
async fn malformed_oversized_and_non_json_bodies_get_400_413_415() {
    let app = spawn_app().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/incidents"))
            .bearer_auth(&app.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send(b"{\"title\":".to_vec(), "application/json")
        .await
        .expect("send");
    expect_error(response, 400, "bad_request").await;
    let big = format!(
        "{{\"title\":\"t\",\"description\":\"{}\"}}",
        "x".repeat(1024 * 1024)
    );
    let response = send(big.into_bytes(), "application/json")
        .await
        .expect("send");
    expect_error(response, 413, "payload_too_large").await;
    let response = send(b"title=t".to_vec(), "application/x-www-form-urlencoded")
        .await
        .expect("send");
    expect_error(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn ids_of_the_wrong_shape_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/incidents/123",
        "/api/v1/incidents/inc-0123456789abcdef0123456789abcdef",
        "/api/v1/incidents/wf-0123456789abcdef0123456789abcdef",
        "/api/v1/incidents/%27%20OR%201=1",
    ] {
        let response = app.get_authed(path).await;
        expect_error(response, 404, "not_found").await;
    }
}

async fn seed(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, (ns, severity)) in [
        ("production", "high"),
        ("production", "low"),
        ("staging", "high"),
        ("production", "critical"),
        ("staging", "medium"),
    ]
    .iter()
    .enumerate()
    {
        ids.push(
            app.create_incident(
                json!({"title": format!("incident {i}"), "namespace": ns, "severity": severity}),
            )
            .await,
        );
    }
    ids
}

#[tokio::test]
async fn list_filters_like_the_go_engine_readme_and_the_mcp_server() {
    let app = spawn_app().await;
    let ids = seed(&app).await;
    let resolved = &ids[0];
    let response = app
        .patch_json(
            &format!("/api/v1/incidents/{resolved}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(response.status(), 200);

    // The seed README's curl.
    let active_prod = app
        .get_json("/api/v1/incidents?namespace=production&status=active")
        .await;
    assert_eq!(active_prod["total"], 2);
    assert!(
        active_prod["incidents"]
            .as_array()
            .expect("array")
            .iter()
            .all(|i| i["namespace"] == "production")
    );

    // The MCP server always sends all four, `all` literally.
    let all = app
        .get_json("/api/v1/incidents?status=all&severity=all&limit=100&offset=0")
        .await;
    assert_eq!(all["total"], 5);
    assert_eq!(all["summary"]["total"], 5);
    assert_eq!(all["summary"]["active"], 4);
    assert_eq!(all["summary"]["completed"], 1);
    assert_eq!(all["summary"]["failed"], 0);
    assert_eq!(all["summary"]["by_severity"]["high"], 2);
    let listed: Vec<&str> = all["incidents"]
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);

    let completed = app.get_json("/api/v1/incidents?status=completed").await;
    assert_eq!(completed["total"], 1);
    assert_eq!(completed["incidents"][0]["id"], resolved.as_str());
    let high = app
        .get_json("/api/v1/incidents?severity=high&source=api")
        .await;
    assert_eq!(high["total"], 2);
    let since_future = app
        .get_json("/api/v1/incidents?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(since_future["total"], 0);
    let recent = app.get_json("/api/v1/incidents?since=1h").await;
    assert_eq!(recent["total"], 5);
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=10000", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("cursor=not-a-cursor", "cursor"),
        ("status=bogus", "status"),
        ("severity=urgent", "severity"),
        ("source=email", "source"),
        ("since=yesterday", "since"),
        ("namespace=Not_Valid", "namespace"),
    ] {
        let response = app.get_authed(&format!("/api/v1/incidents?{query}")).await;
        let body = expect_error(response, 400, "bad_request").await;
        assert_eq!(
            body["error"]["details"]["parameter"], parameter,
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn cursor_and_offset_paging_visit_every_incident_once() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(app.create_incident(json!({"title": format!("n{i}")})).await);
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/incidents?limit=10".to_string();
    loop {
        let page = app.get_json(&path).await;
        for row in page["incidents"].as_array().expect("array") {
            seen.push(row["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/incidents?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created);

    let third = app.get_json("/api/v1/incidents?limit=10&offset=20").await;
    assert_eq!(third["incidents"].as_array().expect("array").len(), 3);
    assert!(third["next_cursor"].is_null());
}

#[tokio::test]
async fn patch_resolves_cancels_and_notes_with_409_on_illegal_transitions() {
    let app = spawn_app().await;
    let id = app.create_incident(json!({"title": "disk full"})).await;
    let path = format!("/api/v1/incidents/{id}");

    let noted = app.patch_json(&path, &json!({"note": "looking"})).await;
    assert_eq!(noted.status(), 200);
    let noted: Value = noted.json().await.expect("json");
    assert_eq!(noted["notes"][0]["text"], "looking");
    assert_eq!(noted["status"], "active");

    let resolved: Value = app
        .patch_json(&path, &json!({"action": "resolve"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(resolved["status"], "resolved");
    assert!(resolved["resolved_at"].is_string());
    assert!(resolved["duration_seconds"].is_number());

    // Resolving again is an idempotent no-op; cancelling a resolved incident is a conflict.
    let again: Value = app
        .patch_json(&path, &json!({"status": "resolved"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["resolved_at"], resolved["resolved_at"]);
    let response = app.patch_json(&path, &json!({"status": "cancelled"})).await;
    expect_error(response, 409, "conflict").await;
    // A note is always welcome, even on a closed incident.
    assert_eq!(
        app.patch_json(&path, &json!({"note": "root cause: logs"}))
            .await
            .status(),
        200
    );

    for (body, field) in [
        (json!({}), "status"),
        (json!({"status": "active"}), "status"),
        (json!({"action": "explode"}), "action"),
        (json!({"status": "resolved", "action": "resolve"}), "action"),
        (json!({"note": ""}), "note"),
        (json!({"extra": 1}), "extra"),
    ] {
        let response = app.patch_json(&path, &body).await;
        let error = expect_error(response, 422, "validation_failed").await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(field),
            "{body}: {error}"
        );
    }
    let other = app.create_incident(json!({"title": "other"})).await;
    let cancelled: Value = app
        .patch_json(
            &format!("/api/v1/incidents/{other}"),
            &json!({"status": "cancelled"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn created_incidents_are_counted_in_metrics() {
    let app = spawn_app().await;
    app.create_incident(json!({"title": "a"})).await;
    app.create_incident(json!({"title": "b", "source": "manual"}))
        .await;
    let metrics = app.metrics().await;
    assert!(
        metrics
            .contains(r#"coordination_engine_incidents_total{layer="application",source="api"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"coordination_engine_incidents_total{layer="application",source="manual"} 1"#
        )
    );
    assert!(metrics.contains(
        r#"coordination_engine_store_operation_duration_seconds_count{op="insert_incident"} 2"#
    ));
    assert!(metrics.contains(r#"coordination_engine_http_requests_total{method="POST",route="/api/v1/incidents",status="201"} 2"#));
}

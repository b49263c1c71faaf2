//! The MCP server's calls replayed against the compatibility listener, decoded with Go's rules.

mod triggers;

use crate::helpers::{TestApp, spawn_app_with};
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Go's `encoding/json` into the MCP server's structs: a present field of the wrong JSON type
/// fails the whole call; `3.0` is not an `int`; `null` is always fine.
pub(crate) fn go_type_ok(value: &Value, kind: &str) -> bool {
    match (kind, value) {
        (_, Value::Null) => true,
        ("string", v) => v.is_string(),
        ("bool", v) => v.is_boolean(),
        ("int", v) => v.is_i64() || v.is_u64(),
        ("number", v) => v.is_number(),
        ("object", v) => v.is_object(),
        ("[string]", Value::Array(items)) => items.iter().all(Value::is_string),
        ("{string:int}", Value::Object(map)) => map.values().all(|v| v.is_i64()),
        _ => false,
    }
}

fn assert_go_decodes(object: &Value, fields: &[(&str, &str)]) {
    for (field, kind) in fields {
        if let Some(value) = object.get(*field) {
            assert!(
                go_type_ok(value, kind),
                "{field} should decode as {kind}: {value}"
            );
        }
    }
}

/// Every field present (the analytics replies are ours to shape: all of the contract's fields
/// are there) and of the type Go decodes it into.
pub(crate) fn assert_go_fields(object: &Value, fields: &[(&str, &str)]) {
    for (field, kind) in fields {
        let value = object
            .get(*field)
            .unwrap_or_else(|| panic!("{field} is missing from {object}"));
        assert!(
            go_type_ok(value, kind),
            "{field} should decode as {kind}: {value}"
        );
    }
}

const ROW_FIELDS: &[(&str, &str)] = &[
    ("id", "string"),
    ("title", "string"),
    ("description", "string"),
    ("severity", "string"),
    ("status", "string"),
    ("target", "string"),
    ("action_type", "string"),
    ("source", "string"),
    ("created_at", "string"),
    ("priority", "int"),
    ("confidence", "number"),
    ("parameters", "object"),
    ("started_at", "string"),
    ("completed_at", "string"),
    ("duration_seconds", "number"),
    ("tags", "[string]"),
];

#[tokio::test]
async fn the_mcp_server_works_unchanged_against_the_compat_listener() {
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
    })
    .await;
    let compat = app.compat_addr.expect("compat listener enabled");
    // The MCP server: plain HTTP, no token, Go's User-Agent.
    let go = reqwest::Client::builder()
        .user_agent("Go-http-client/1.1")
        .build()
        .expect("client");

    create_incidents_as_the_tool_does(&go, compat).await;
    resolve_the_first_active_incident(&app, &go, compat).await;
    assert_incident_lists_decode_with_go_rules(&go, compat).await;
    assert_analytics_routes_exist_without_prometheus(&go, compat).await;

    // The compat listener serves only the client's routes, and the main one still wants a token.
    let health = go
        .get(format!("http://{compat}/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let not_served = go
        .get(format!("http://{compat}/api/v1/workflows"))
        .send()
        .await
        .expect("send");
    assert_eq!(not_served.status(), 404);
    let main = app
        .client
        .get(app.url("/api/v1/incidents"))
        .send()
        .await
        .expect("send");
    assert_eq!(main.status(), 401);
}

/// #2 create-incident, exactly as the tool builds it, under both prefixes.
async fn create_incidents_as_the_tool_does(go: &reqwest::Client, compat: SocketAddr) {
    for prefix in ["/api/v1", "/api/v1/api/v1"] {
        let response = go
            .post(format!("http://{compat}{prefix}/incidents"))
            .json(&json!({
                "title": "High memory", "description": "heap grows", "severity": "high",
                "source": "manual", "createdBy": "mcp-server",
                "affectedResources": ["deployment/api"], "confidence": 0.7
            }))
            .send()
            .await
            .expect("create");
        assert_eq!(
            response.status(),
            201,
            "{prefix}: only 201 is success for the client"
        );
        let created: Value = response.json().await.expect("json");
        assert_go_decodes(
            &created,
            &[
                ("incident_id", "string"),
                ("title", "string"),
                ("description", "string"),
                ("severity", "string"),
                ("status", "string"),
                ("created_at", "string"),
                ("message", "string"),
                ("priority", "int"),
            ],
        );
        assert_eq!(created["title"], "High memory");
    }
}

/// Resolve one (through the authenticated API) so remediation history has a success.
async fn resolve_the_first_active_incident(
    app: &TestApp,
    go: &reqwest::Client,
    compat: SocketAddr,
) {
    let listed: Value = go
        .get(format!(
            "http://{compat}/api/v1/incidents?status=active&severity=all&limit=100&offset=0"
        ))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let first = listed["incidents"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let response = app
        .patch_json(
            &format!("/api/v1/incidents/{first}"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// #1 list-incidents and the remediation-history resource, doubled prefix included.
async fn assert_incident_lists_decode_with_go_rules(go: &reqwest::Client, compat: SocketAddr) {
    for query in [
        "status=all&severity=all&limit=100&offset=0",
        "status=completed&severity=all&limit=100&offset=0",
        "status=failed&severity=all&limit=100&offset=0",
    ] {
        let url = format!("http://{compat}/api/v1/api/v1/incidents?{query}");
        let response = go.get(&url).send().await.expect("list");
        assert_eq!(response.status(), 200, "{url}");
        let body: Value = response.json().await.expect("json");
        for row in body["incidents"].as_array().expect("incidents array") {
            assert_go_decodes(row, ROW_FIELDS);
        }
        assert_go_decodes(
            &body["summary"],
            &[
                ("total", "int"),
                ("active", "int"),
                ("completed", "int"),
                ("failed", "int"),
                ("by_severity", "{string:int}"),
            ],
        );
    }
    let completed: Value = go
        .get(format!(
            "http://{compat}/api/v1/incidents?status=completed&severity=all&limit=100&offset=0"
        ))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(completed["summary"]["total"], 1);
    assert_eq!(
        completed["incidents"][0]["status"], "completed",
        "the Go engine's word for resolved"
    );
}

/// The analytics routes the client's tools call exist here too (#6-#9, #11), under both
/// prefixes; without PROMETHEUS_URL they say which setting is missing (503), never 404.
async fn assert_analytics_routes_exist_without_prometheus(
    go: &reqwest::Client,
    compat: SocketAddr,
) {
    for prefix in ["/api/v1", "/api/v1/api/v1"] {
        for path in [
            "/capacity/trends?namespace=shop",
            "/predict/disk-exhaustion",
            "/recommendations/rightsizing?namespace=shop&window=30d",
            "/predict/memory-leak",
        ] {
            let response = go
                .get(format!("http://{compat}{prefix}{path}"))
                .send()
                .await
                .expect("send");
            assert_eq!(response.status(), 503, "{prefix}{path}");
        }
        let status: Value = go
            .get(format!("http://{compat}{prefix}/cluster/status"))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        assert!(status["actions"]["total"].is_i64() && status["engine"]["workers_count"].is_i64());
        let anomalies = go
            .post(format!("http://{compat}{prefix}/anomalies/analyze"))
            .json(&serde_json::json!({"timeRange": "1h", "metrics": ["cpu_usage"], "threshold": 0.25}))
            .send()
            .await
            .expect("send");
        assert_eq!(anomalies.status(), 503);
    }
}

#[tokio::test]
async fn the_compat_listener_is_off_unless_configured() {
    let app = spawn_app_with(|_| {}).await;
    assert!(app.compat_addr.is_none());
}

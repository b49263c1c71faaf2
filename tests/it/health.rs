use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_answers_ok_with_the_version_over_verified_tls() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn detailed_health_is_degraded_and_detached_without_a_cluster() {
    let app = spawn_app().await;
    let response = app.get_authed("/api/v1/health").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["mode"], "detached");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["components"]["kubernetes"]["status"], "degraded");
    assert_eq!(body["components"]["tls"]["status"], "ok");
    assert_eq!(body["components"]["store"]["status"], "ok");
    assert!(body["components"]["store"]["latency_ms"].is_number());
    assert!(body["uptime_seconds"].is_u64(), "integer uptime: {body}");
    // SQLite: one replica, which always executes; no election.
    let leader = &body["leader"];
    assert_eq!(leader["enabled"], false, "{leader}");
    assert_eq!(leader["is_leader"], true, "{leader}");
    assert_eq!(leader["holder"], leader["identity"], "{leader}");
    assert_eq!(leader["lock"], "none");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("coordination_engine_leader 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn readiness_reports_its_checks() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["certificates_loaded"], true);
    assert_eq!(body["checks"]["store_reachable"], true);
}

#[tokio::test]
async fn tls_off_serves_plain_http() {
    let app = spawn_app_with(|env| {
        env.insert("TLS_MODE".into(), "off".into());
    })
    .await;
    let body: serde_json::Value = reqwest::get(format!("http://{}/health", app.addr))
        .await
        .expect("plain http")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "ok");
    assert!(
        !app.data_dir.path().join("tls").exists(),
        "no cert generated when TLS is off"
    );
}

/// The method is the client's choice: invented ones share one label value, so they cannot
/// grow the registry.
#[tokio::test]
async fn invented_methods_are_counted_as_other() {
    let app = spawn_app().await;
    for method in ["FOO", "BAR1", "PROPFIND"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let answer = app
            .client
            .request(method, app.url("/health"))
            .send()
            .await
            .expect("request");
        assert_eq!(answer.status(), 405);
    }
    let after = app.metrics().await;
    assert!(
        after.contains(r#"coordination_engine_http_requests_total{method="other",route="/health",status="405"} 3"#),
        "{after}"
    );
    assert!(!after.contains("FOO") && !after.contains("BAR1") && !after.contains("PROPFIND"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = spawn_app().await;
    let before = app.metrics().await;
    assert!(
        before.contains(r#"coordination_engine_http_requests_total{method="GET",route="/health",status="200"} 0"#),
        "series exists from the first scrape:\n{before}"
    );
    for _ in 0..3 {
        app.client
            .get(app.url("/health"))
            .send()
            .await
            .expect("request");
    }
    app.client
        .get(app.url("/no/such/route/123"))
        .send()
        .await
        .expect("request");
    let after = app.metrics().await;
    assert!(
        after.contains(r#"coordination_engine_http_requests_total{method="GET",route="/health",status="200"} 3"#),
        "{after}"
    );
    assert!(
        after.contains(r#"coordination_engine_http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "raw paths never become labels:\n{after}"
    );
    assert!(!after.contains("/no/such/route"));
    assert!(
        after.contains(
            r#"coordination_engine_http_request_duration_seconds_count{route="/health"} 3"#
        )
    );
}

#[tokio::test]
async fn openapi_document_is_public_and_lists_the_routes() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/health",
        "/ready",
        "/api/v1/health",
        "/api/v1/openapi.json",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}",
        "/api/v1/workflows",
        "/api/v1/workflows/{id}",
        "/api/v1/workflows/{id}/approve",
        "/api/v1/workflows/{id}/reject",
        "/api/v1/workflows/{id}/cancel",
        "/api/v1/coordination/workflows",
        "/api/v1/coordination/workflows/{id}",
        "/api/v1/pause",
        "/webhooks/alertmanager",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// The detailed health of an engine attached to `mock`, once the RBAC self-check has answered.
async fn attached_health(app: &crate::helpers::TestApp) -> serde_json::Value {
    crate::helpers::wait_for(
        "the first RBAC self-check",
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(50),
        || async {
            let body: serde_json::Value =
                app.get_authed("/api/v1/health").await.json().await.ok()?;
            let checked = body["components"]["rbac"]["details"].is_object();
            let synced = body["components"]["argocd"]["details"]["applications_synced"] == true;
            (checked && synced).then_some(body)
        },
    )
    .await
}

fn one_application() -> std::collections::HashMap<String, serde_json::Value> {
    let app = serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd", "resourceVersion": "3", "uid": "a-1"},
        "spec": {"destination": {"namespace": "shop"}}});
    std::collections::HashMap::from([(
        "/apis/argoproj.io/v1alpha1/applications".to_string(),
        serde_json::json!({"apiVersion": "v1", "kind": "ApplicationList",
            "metadata": {"resourceVersion": "10"}, "items": [app]}),
    )])
}

#[tokio::test]
async fn attached_health_names_a_missing_permission_as_degraded() {
    let mock = crate::kube_mock::MockApiServer::start(one_application()).await;
    mock.deny_access("delete", "", "pods", "");
    let app = crate::helpers::argocd::attached_with(&mock, &[]).await;

    let body = attached_health(&app).await;
    let rbac = &body["components"]["rbac"];
    assert_eq!(rbac["status"], "degraded", "{rbac}");
    assert_eq!(
        rbac["details"]["missing"],
        serde_json::json!(["delete pods"])
    );
    assert!(
        rbac["message"]
            .as_str()
            .unwrap_or_default()
            .contains("delete pods"),
        "{rbac}"
    );
    assert_eq!(body["status"], "degraded", "{body}");

    // Every (verb, resource) of the RBAC table was asked once, subresources apart, and the
    // ArgoCD ConfigMap permission in each ArgoCD namespace.
    let reviews = mock.access_reviews();
    assert_eq!(rbac["details"]["checked"], reviews.len(), "{rbac}");
    let asked = |verb: &str, resource: &str, sub: Option<&str>, namespace: Option<&str>| {
        reviews.iter().any(|r| {
            let a = &r["spec"]["resourceAttributes"];
            a["verb"] == verb
                && a["resource"] == resource
                && a["subresource"].as_str() == sub
                && a["namespace"].as_str() == namespace
        })
    };
    assert!(asked("create", "pods", Some("eviction"), None));
    assert!(asked("patch", "applications", None, None));
    assert!(asked("list", "configmaps", None, Some("argocd")));
    // Reviews ask; they change nothing (the mock keeps them out of its write log).
    assert!(
        mock.requests().iter().all(|r| r.method == "GET"),
        "only reads"
    );
}

#[tokio::test]
async fn attached_health_reports_argocd_and_a_full_grant() {
    let mut lists = one_application();
    lists.insert(
        "/api/version".into(),
        serde_json::json!({"Version": "v2.14.0"}),
    );
    let mock = crate::kube_mock::MockApiServer::start(lists).await;
    // OLM is not granted at all: its chart toggle is off, which is not a fault.
    mock.deny_access("list", "operators.coreos.com", "clusterserviceversions", "");
    // The mock also stands in for argocd-server (GET /api/version).
    let app =
        crate::helpers::argocd::attached_with(&mock, &[("ARGOCD_API_URL", mock.url.as_str())])
            .await;

    let body = attached_health(&app).await;
    let argocd = &body["components"]["argocd"];
    assert_eq!(argocd["status"], "ok", "{argocd}");
    assert_eq!(argocd["details"]["applications"], 1, "{argocd}");
    assert_eq!(argocd["details"]["server"], mock.url.as_str(), "{argocd}");
    assert!(argocd["latency_ms"].is_number(), "{argocd}");

    let rbac = &body["components"]["rbac"];
    assert_eq!(rbac["status"], "ok", "{rbac}");
    assert_eq!(rbac["details"]["missing"], serde_json::json!([]));
    assert_eq!(
        rbac["details"]["features_off"],
        serde_json::json!(["olm (rbac.olm)"])
    );
}

#[tokio::test]
async fn an_unreachable_argocd_server_degrades_the_argocd_component() {
    let mock = crate::kube_mock::MockApiServer::start(one_application()).await;
    mock.deny_access("create", "", "pods/eviction", "");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let app =
        crate::helpers::argocd::attached_with(&mock, &[("ARGOCD_API_URL", url.as_str())]).await;

    let body = attached_health(&app).await;
    let argocd = &body["components"]["argocd"];
    assert_eq!(argocd["status"], "degraded", "{argocd}");
    assert!(
        argocd["message"]
            .as_str()
            .unwrap_or_default()
            .contains("argocd-server"),
        "{argocd}"
    );
    // A partial node grant is a broken grant, named.
    let rbac = &body["components"]["rbac"];
    assert_eq!(rbac["status"], "degraded", "{rbac}");
    assert_eq!(
        rbac["details"]["missing"],
        serde_json::json!(["create pods/eviction"])
    );
}

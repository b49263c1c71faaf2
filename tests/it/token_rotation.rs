//! Token files rotate without a restart: the API token (`API_TOKEN_FILE`) is re-read when it
//! changes, and outbound clients (Prometheus, argocd-server) send the file's current token.
//! A file caught empty keeps the last good token.

use crate::helpers::argocd::{application, argocd_server_answers, attached_with, cluster};
use crate::helpers::cluster::event_answer;
use crate::helpers::workflow::trigger;
use crate::helpers::{TestApp, spawn_app_with, wait_for};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Replaces a file the way the kubelet updates a mounted Secret: write elsewhere, rename over.
fn rotate(target: &Path, contents: &str) {
    let tmp = target.with_extension("new");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, target).expect("rename");
}

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.client
        .get(app.url("/api/v1/incidents"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request reaches the server")
        .status()
        .as_u16()
}

/// Waits until the metrics show `count` reloads of `file` with `result`.
async fn reloads_counted(app: &TestApp, file: &str, result: &str, count: u32) {
    let line = format!(
        r#"coordination_engine_credential_file_reloads_total{{file="{file}",result="{result}"}} {count}"#
    );
    wait_for(
        &line,
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async { app.metrics().await.contains(&line).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_rotated_api_token_file_admits_the_new_token_and_refuses_the_old_one() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("token");
    rotate(&file, "token-a-0123456789\n");
    let path = file.display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("API_TOKEN_FILE".into(), path);
    })
    .await;
    assert_eq!(app.token, "token-a-0123456789");
    assert_eq!(status_with(&app, "token-a-0123456789").await, 200);
    assert_eq!(status_with(&app, "token-b-0123456789").await, 401);

    rotate(&file, "token-b-0123456789\n");
    wait_for(
        "the new token to be accepted",
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async { (status_with(&app, "token-b-0123456789").await == 200).then_some(()) },
    )
    .await;
    assert_eq!(status_with(&app, "token-a-0123456789").await, 401);
    // The audit and Alertmanager webhooks take the same token.
    let audit = app
        .client
        .post(app.url("/webhooks/audit"))
        .bearer_auth("token-a-0123456789")
        .json(&json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(audit.status(), 401);

    // A rotation caught half-way (an empty file) keeps the last good token; it never admits
    // an empty one.
    rotate(&file, "");
    reloads_counted(&app, "api_token", "failure", 1).await;
    assert_eq!(status_with(&app, "token-b-0123456789").await, 200);
    let empty = app
        .client
        .get(app.url("/api/v1/incidents"))
        .header("authorization", "Bearer ")
        .send()
        .await
        .expect("send");
    assert_eq!(empty.status(), 401);
    // So does a file that disappears.
    std::fs::remove_file(&file).expect("remove");
    reloads_counted(&app, "api_token", "failure", 2).await;
    assert_eq!(status_with(&app, "token-b-0123456789").await, 200);

    rotate(&file, "token-c-0123456789");
    wait_for(
        "the token after the failed rotation to be accepted",
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async { (status_with(&app, "token-c-0123456789").await == 200).then_some(()) },
    )
    .await;
    assert_eq!(status_with(&app, "token-b-0123456789").await, 401);
    reloads_counted(&app, "api_token", "success", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_queries_send_the_current_token_and_survive_an_empty_token_file() {
    coordination_engine::tls::install_default_provider();
    let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
    let vector = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
    let tls_dir = tempfile::tempdir().expect("dir");
    let (thanos, ca) = MockApiServer::start_tls(
        HashMap::new(),
        Writes::from([
            (
                ("GET".to_string(), "/api/v1/query_range".to_string()),
                vec![(200, empty)],
            ),
            (
                ("GET".to_string(), "/api/v1/query".to_string()),
                vec![(200, vector)],
            ),
        ]),
        tls_dir.path(),
    )
    .await;
    let token = tls_dir.path().join("token");
    rotate(&token, "prom-first\n");
    let app = spawn_app_with(|env| {
        env.insert("PROMETHEUS_URL".into(), thanos.url.clone());
        env.insert("PROMETHEUS_TOKEN_FILE".into(), token.display().to_string());
        env.insert("PROMETHEUS_CA_FILE".into(), ca.display().to_string());
    })
    .await;
    let last_bearer = || {
        thanos
            .requests()
            .last()
            .map(|r| r.authorization.clone())
            .unwrap_or_default()
    };
    app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(last_bearer(), "Bearer prom-first");

    rotate(&token, "  \n");
    app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(
        last_bearer(),
        "Bearer prom-first",
        "an empty file keeps the last good token"
    );
    reloads_counted(&app, "prometheus_token", "failure", 1).await;

    rotate(&token, "prom-second");
    app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(last_bearer(), "Bearer prom-second");
    thanos.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argocd_server_requests_carry_the_token_file_as_it_rotates() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start_with(cluster(), Writes::from([event_answer("shop")])).await;
    let tls_dir = tempfile::tempdir().expect("dir");
    // The Application stays Progressing, so the channel keeps polling argocd-server while the
    // token rotates.
    let (argocd, ca) = MockApiServer::start_tls(
        HashMap::new(),
        argocd_server_answers(application("Synced", "Progressing", "Running", "t2")),
        tls_dir.path(),
    )
    .await;
    let token = tls_dir.path().join("argocd-token");
    rotate(&token, "argo-first\n");
    let app = attached_with(
        &mock,
        &[
            ("ARGOCD_API_URL", argocd.url.as_str()),
            ("ARGOCD_TOKEN_FILE", token.display().to_string().as_str()),
            ("ARGOCD_CA_FILE", ca.display().to_string().as_str()),
            ("ARGOCD_SYNC_TIMEOUT", "60s"),
        ],
    )
    .await;
    trigger(&app, "shop", "deployment", "cart", "crash_loop").await;
    let bearers = || -> Vec<String> {
        argocd
            .requests()
            .iter()
            .map(|r| r.authorization.clone())
            .collect()
    };
    let seen = |bearer: &'static str| {
        let bearers = &bearers;
        move || async move { bearers().iter().any(|b| b == bearer).then_some(()) }
    };
    wait_for(
        "argocd-server to be called with the first token",
        Duration::from_secs(20),
        Duration::from_millis(25),
        seen("Bearer argo-first"),
    )
    .await;

    rotate(&token, "argo-second\n");
    wait_for(
        "argocd-server to be called with the rotated token",
        Duration::from_secs(20),
        Duration::from_millis(25),
        seen("Bearer argo-second"),
    )
    .await;
    let all = bearers();
    let first_rotated = all
        .iter()
        .position(|b| b == "Bearer argo-second")
        .expect("seen");
    assert!(
        all[..first_rotated]
            .iter()
            .all(|b| b == "Bearer argo-first")
            && all[first_rotated..]
                .iter()
                .all(|b| b == "Bearer argo-second"),
        "every request carries the token of its time: {all:?}"
    );
    argocd.stop().await;
    mock.stop().await;
}

#[test]
fn the_chart_mounts_the_argocd_token_as_a_file_the_engine_re_reads() {
    use crate::chart::{find, render};
    use crate::chart_hardening::env_value;
    let Some(helm) = crate::peers::find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "argocd.apiUrl=https://argocd-server.argocd.svc",
            "argocd.tokenSecret.name=argocd-engine-token",
        ],
    );
    assert_eq!(
        env_value(&docs, "ARGOCD_TOKEN_FILE").as_deref(),
        Some("/etc/coordination-engine/argocd-token/token")
    );
    let pod = &find(&docs, "Deployment")[0]["spec"]["template"]["spec"];
    let env = pod["containers"][0]["env"].as_array().expect("env");
    assert!(
        env.iter().all(|e| e["name"] != "ARGOCD_TOKEN"),
        "an env var is fixed at start: {env:?}"
    );
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == "argocd-token")
        .expect("the token volume");
    assert_eq!(volume["secret"]["secretName"], "argocd-engine-token");
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "argocd-token")
        .expect("the token mount");
    assert_eq!(mount["mountPath"], "/etc/coordination-engine/argocd-token");

    // Without a token Secret nothing is mounted.
    let docs = render(&helm, "values.yaml", &[]);
    assert!(env_value(&docs, "ARGOCD_TOKEN_FILE").is_none());
}

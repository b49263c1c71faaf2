//! A killed process: what it acknowledged survives, a half-done workflow is not resumed.

use super::start_server;
use std::time::Duration;

#[tokio::test]
async fn everything_acknowledged_survives_sigkill() {
    everything_acknowledged_survives_sigkill_on(None).await;
}

#[tokio::test]
async fn everything_acknowledged_survives_sigkill_on_postgresql() {
    if let Some(url) = coordination_engine::store::testing::fresh_postgres_database().await {
        everything_acknowledged_survives_sigkill_on(Some(&url)).await;
    }
}

/// `database`: `None` for SQLite under the data dir, else a PostgreSQL URL.
async fn everything_acknowledged_survives_sigkill_on(database: Option<&str>) {
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut env = vec![("API_TOKEN", "durability-test-token")];
    env.extend(database.map(|url| ("DATABASE_URL", url)));
    let (mut child, addr) = start_server(dir.path(), &env).await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url =
        |addr: std::net::SocketAddr, path: &str| format!("https://localhost:{}{path}", addr.port());

    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let response = client
            .post(url(addr, "/api/v1/incidents"))
            .bearer_auth("durability-test-token")
            .json(&serde_json::json!({"title": format!("durable {i}")}))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.expect("json");
        acknowledged.push(body["incident_id"].as_str().expect("id").to_string());
    }
    let paused = client
        .post(url(addr, "/api/v1/pause?namespace=prod"))
        .bearer_auth("durability-test-token")
        .send()
        .await
        .expect("pause");
    assert_eq!(paused.status(), 200);

    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");

    let (_child, addr) = start_server(dir.path(), &env).await;
    for id in &acknowledged {
        let response = client
            .get(url(addr, &format!("/api/v1/incidents/{id}")))
            .bearer_auth("durability-test-token")
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{id} survived");
    }
    let pauses: serde_json::Value = client
        .get(url(addr, "/api/v1/pause"))
        .bearer_auth("durability-test-token")
        .send()
        .await
        .expect("pauses")
        .json()
        .await
        .expect("json");
    assert_eq!(pauses["pauses"][0]["namespace"], "prod");
}

#[tokio::test]
async fn a_workflow_killed_mid_step_is_interrupted_at_the_next_start_not_resumed_blindly() {
    killed_mid_step_on(None).await;
}

/// On PostgreSQL the restarted replica first wins the Lease (the mock keeps it), then
/// interrupts the workflow of the earlier term.
#[tokio::test]
async fn a_workflow_killed_mid_step_is_interrupted_by_the_next_leader_on_postgresql() {
    if let Some(url) = coordination_engine::store::testing::fresh_postgres_database().await {
        killed_mid_step_on(Some(&url)).await;
    }
}

async fn killed_mid_step_on(database: Option<&str>) {
    coordination_engine::tls::install_default_provider();
    // A Deployment whose rollout never completes: after the restart the workflow verifies
    // for a minute, long enough to be killed in the middle.
    let mock = crate::helpers::cluster::stuck_deployment_mock().await;
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = mock.kubeconfig(dir.path()).display().to_string();
    let mut env = vec![
        ("API_TOKEN", "sigkill-test-token"),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("WORKLOAD_CHECKPOINT_TIMEOUT", "60s"),
    ];
    env.extend(database.map(|url| ("DATABASE_URL", url)));
    let (mut child, addr) = start_server(dir.path(), &env).await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url =
        |addr: std::net::SocketAddr, path: &str| format!("https://localhost:{}{path}", addr.port());
    let id = trigger_the_stuck_deployment(&client, &url(addr, "/api/v1/remediation/trigger")).await;
    let workflow_url = |addr| url(addr, &format!("/api/v1/workflows/{id}"));
    let get = |addr| workflow(&client, workflow_url(addr));
    let verifying = crate::helpers::wait_for(
        "the workflow to restart the Deployment and verify",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let workflow = get(addr).await;
            (workflow["status"] == "verifying").then_some(workflow)
        },
    )
    .await;
    assert!(
        verifying["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["action"] == "rollout_restart")),
        "{verifying}"
    );

    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");
    let patches_before = patches(&mock);

    let (_child, addr) = start_server(dir.path(), &env).await;
    // With SQLite at once; on PostgreSQL once the new process holds the Lease (the killed
    // one's record must first go unrenewed for the lease duration, 15 s).
    let workflow = crate::helpers::wait_for(
        "the workflow to be interrupted",
        Duration::from_secs(40),
        Duration::from_millis(200),
        || async {
            let workflow = get(addr).await;
            (workflow["status"] == "interrupted").then_some(workflow)
        },
    )
    .await;
    assert!(
        workflow["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped while this workflow ran")),
        "{workflow}"
    );
    assert_eq!(
        workflow["steps"].as_array().map(Vec::len),
        verifying["steps"].as_array().map(Vec::len),
        "the steps persisted before the kill are all there"
    );
    let patches_after = patches(&mock);
    assert_eq!(patches_before, 1);
    assert_eq!(patches_after, 1, "the half-done workflow was not run again");
    mock.stop().await;
}

/// Starts the crash-loop remediation of `shop/stuck` at `trigger_url`; returns its id.
async fn trigger_the_stuck_deployment(client: &reqwest::Client, trigger_url: &str) -> String {
    let answer: serde_json::Value = client
        .post(trigger_url)
        .bearer_auth("sigkill-test-token")
        .json(
            &serde_json::json!({"namespace": "shop", "resource_type": "deployment",
                                  "resource_name": "stuck", "issue_type": "crash_loop"}),
        )
        .send()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("json");
    answer["workflow_id"].as_str().expect("id").to_string()
}

async fn workflow(client: &reqwest::Client, url: String) -> serde_json::Value {
    client
        .get(url)
        .bearer_auth("sigkill-test-token")
        .send()
        .await
        .expect("get")
        .json::<serde_json::Value>()
        .await
        .expect("json")
}

/// The PATCH requests the mock API server has received so far.
fn patches(mock: &crate::kube_mock::MockApiServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count()
}

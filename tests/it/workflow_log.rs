//! The real binary's JSON logs: one live workflow's log is one filter away (its span).

use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_of_a_live_workflow_is_logged_in_its_span() {
    coordination_engine::tls::install_default_provider();
    // A Deployment whose rollout never completes: restart, a failing checkpoint, then the
    // rest of the ladder until the workflow ends.
    let mock = crate::helpers::cluster::stuck_deployment_mock().await;
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = mock.kubeconfig(dir.path()).display().to_string();
    let env = [
        ("API_TOKEN", "workflow-log-token"),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("WORKLOAD_CHECKPOINT_TIMEOUT", "1s"),
    ];
    let (_child, addr, mut logs) = crate::process::start_server_with_logs(dir.path(), &env).await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url = |path: &str| format!("https://localhost:{}{path}", addr.port());
    let answer: Value = client
        .post(url("/api/v1/remediation/trigger"))
        .bearer_auth("workflow-log-token")
        .json(&json!({"namespace": "shop", "resource_type": "deployment",
                      "resource_name": "stuck", "issue_type": "crash_loop"}))
        .send()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("json");
    let id = answer["workflow_id"].as_str().expect("id").to_string();

    // Everything logged in the workflow's span, up to its last event.
    let read = async {
        let mut mine = Vec::new();
        while let Some(line) = logs.next_line().await.expect("read the logs") {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["span"]["workflow_id"] != id.as_str() {
                continue;
            }
            let finished = event["message"] == "workflow finished";
            mine.push(event);
            if finished {
                return mine;
            }
        }
        panic!("the logs ended before the workflow finished");
    };
    let mine = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the workflow finishes within 30 s");

    let workflow: Value = client
        .get(url(&format!("/api/v1/workflows/{id}")))
        .bearer_auth("workflow-log-token")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let stored: Vec<(&str, &str)> = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let logged: Vec<(&str, &str)> = mine
        .iter()
        .filter(|e| e["message"] == "workflow step")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(logged, stored, "every stored step is logged once, in order");
    assert!(
        stored.contains(&("rollout_restart", "done")) && stored.contains(&("verify", "failed")),
        "{workflow}"
    );
    for event in &mine {
        assert_eq!(event["span"]["name"], "workflow", "{event}");
        assert_eq!(event["span"]["target"], "shop/Deployment/stuck", "{event}");
        assert_eq!(event["span"]["method"], "manual", "{event}");
    }
    assert_eq!(mine.last().unwrap()["status"], workflow["status"]);
    mock.stop().await;
}

//! The real binary's JSON logs: one live workflow's log is one filter away (its span).

use serde_json::{Value, json};
use std::time::Duration;

type Logs = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// Everything logged in workflow `id`'s span, up to its last event.
async fn read_the_workflow_span(logs: &mut Logs, id: &str) -> Vec<Value> {
    let read = async {
        let mut mine = Vec::new();
        while let Some(line) = logs.next_line().await.expect("read the logs") {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["span"]["workflow_id"] != id {
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
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the workflow finishes within 30 s")
}

/// (action, outcome) of each step, from the stored workflow or from the log events alike.
fn step_outcomes(steps: &[Value]) -> Vec<(String, String)> {
    steps
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

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

    let mine = read_the_workflow_span(&mut logs, &id).await;

    let workflow: Value = client
        .get(url(&format!("/api/v1/workflows/{id}")))
        .bearer_auth("workflow-log-token")
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let stored = step_outcomes(workflow["steps"].as_array().expect("steps"));
    let logged = step_outcomes(
        &mine
            .iter()
            .filter(|e| e["message"] == "workflow step")
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(logged, stored, "every stored step is logged once, in order");
    assert!(
        stored.contains(&("rollout_restart".into(), "done".into()))
            && stored.contains(&("verify".into(), "failed".into())),
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

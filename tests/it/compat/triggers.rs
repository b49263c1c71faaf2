//! The MCP server's triggers on the compatibility listener: `COMPAT_TRIGGER_MODE`, the rate
//! limit and the approval queue's bound.

use crate::helpers::spawn_app_with;
use serde_json::{Value, json};

/// The MCP server's trigger on the compatibility listener (no token), as `COMPAT_TRIGGER_MODE`
/// (unset: the default) treats it; returns the stored workflow.
async fn compat_trigger(mode: Option<&str>, dry_run: Option<bool>) -> (Value, Value) {
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
        if let Some(mode) = mode {
            env.insert("COMPAT_TRIGGER_MODE".into(), mode.into());
        }
    })
    .await;
    let compat = app.compat_addr.expect("compat listener enabled");
    let mut body = json!({"incident_id": "mcp-7", "namespace": "shop",
        "resource": {"kind": "Deployment", "name": "cart"},
        "issue": {"type": "pod_crash", "description": "", "severity": "high"}});
    if let Some(dry_run) = dry_run {
        body["dry_run"] = json!(dry_run);
    }
    let response = reqwest::Client::new()
        .post(format!("http://{compat}/api/v1/remediation/trigger"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.expect("json");
    let workflow = app
        .get_json(&format!(
            "/api/v1/workflows/{}",
            answer["workflow_id"].as_str().expect("id")
        ))
        .await;
    // The authenticated API is not bound by the compat mode.
    let main: Value = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"namespace": "shop", "resource_type": "deployment", "resource_name": "web", "issue_type": "crash_loop"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(main["status"], "succeeded", "{main}");
    (answer, workflow)
}

fn gate_reason(workflow: &Value, gate: &str) -> String {
    workflow["gate_decisions"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["gate"] == gate))
        .and_then(|d| d["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn compat_triggers_wait_for_approval_by_default() {
    let (answer, workflow) = compat_trigger(None, None).await;
    assert_eq!(answer["status"], "awaiting_approval", "{answer}");
    assert!(
        gate_reason(&workflow, "approval").contains("COMPAT_TRIGGER_MODE=approval"),
        "{workflow}"
    );
    // A dry run writes nothing: it needs no approval.
    let (answer, workflow) = compat_trigger(Some("approval"), Some(true)).await;
    assert_eq!(answer["status"], "succeeded", "{answer}");
    assert_eq!(workflow["mode"], "dry_run");
}

#[tokio::test]
async fn compat_trigger_mode_dry_run_forces_a_dry_run() {
    let (answer, workflow) = compat_trigger(Some("dry_run"), None).await;
    assert_eq!(answer["status"], "succeeded", "{answer}");
    assert_eq!(gate_reason(&workflow, "dry_run"), "dry run requested");
    assert_eq!(gate_reason(&workflow, "approval"), "no step needs approval");
}

#[tokio::test]
async fn compat_trigger_mode_live_acts_as_asked() {
    let (answer, workflow) = compat_trigger(Some("live"), None).await;
    assert_eq!(answer["status"], "succeeded", "{answer}");
    // Detached here, so recorded only; attached, it would act (after the evidence check).
    assert_eq!(
        gate_reason(&workflow, "dry_run"),
        "detached (no cluster): planned and recorded only"
    );
}

async fn compat_post(compat: std::net::SocketAddr, name: &str) -> reqwest::Response {
    let body = json!({"namespace": "shop", "resource": {"kind": "Deployment", "name": name},
        "issue": {"type": "pod_crash", "description": "", "severity": "high"}});
    reqwest::Client::new()
        .post(format!("http://{compat}/api/v1/remediation/trigger"))
        .json(&body)
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn compat_triggers_are_rate_limited_and_the_excess_is_answered_429() {
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
        env.insert("COMPAT_TRIGGER_MODE".into(), "dry_run".into());
    })
    .await;
    let compat = app.compat_addr.expect("compat listener enabled");
    let started = std::time::Instant::now();
    let mut accepted = 0;
    let refused = loop {
        let response = compat_post(compat, &format!("web-{accepted}")).await;
        if response.status() != 202 {
            break response;
        }
        accepted += 1;
        assert!(accepted <= 60, "no limit after {accepted} triggers");
    };
    // 30 in a burst, plus one every 2 s the burst took.
    let refill = started.elapsed().as_secs() / 2 + 1;
    assert!(
        accepted >= 30 && accepted <= 30 + refill,
        "{accepted} accepted"
    );
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (code, error) = crate::helpers::error_body(refused).await;
    assert_eq!(code, "too_many_requests", "{error}");
    // Incidents posted on the listener share the budget.
    let incident = reqwest::Client::new()
        .post(format!("http://{compat}/api/v1/incidents"))
        .json(&json!({"title": "t", "description": "d", "severity": "high"}))
        .send()
        .await
        .expect("send");
    assert_eq!(incident.status(), 429);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"coordination_engine_compat_requests_rejected_total{reason="rate_limited"} 2"#
        ),
        "{metrics}"
    );
    // The authenticated API is not bound by the listener's budget.
    let main = app
        .post_json(
            "/api/v1/remediation/trigger",
            &json!({"namespace": "shop", "resource_type": "deployment", "resource_name": "api", "issue_type": "crash_loop"}),
        )
        .await;
    assert_eq!(main.status(), 202);
}

#[tokio::test]
async fn compat_triggers_stop_while_the_approval_queue_is_full() {
    use coordination_engine::store::Store;
    use coordination_engine::workflow::{Workflow, WorkflowKind, WorkflowMode, WorkflowStatus};
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
    })
    .await;
    let compat = app.compat_addr.expect("compat listener enabled");
    let first = compat_post(compat, "web-0").await;
    assert_eq!(first.status(), 202);
    let answer: Value = first.json().await.expect("json");
    assert_eq!(answer["status"], "awaiting_approval");
    // 99 more waiting (written straight to the store: the listener's rate limit would take
    // minutes to let them through).
    let incident_id = answer["incident_id"].as_str().expect("id");
    for _ in 1..100 {
        let mut waiting = Workflow::new(
            incident_id,
            Some("shop".into()),
            WorkflowKind::Remediation,
            WorkflowMode::Live,
            chrono::Utc::now(),
        );
        waiting.status = WorkflowStatus::AwaitingApproval;
        app.store.insert_workflow(&waiting).await.expect("insert");
    }
    let refused = compat_post(compat, "web-1").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let (code, error) = crate::helpers::error_body(refused).await;
    assert_eq!(code, "approval_queue_full", "{error}");
    assert_eq!(
        error["error"]["details"]["awaiting_approval"], 100,
        "{error}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"coordination_engine_compat_requests_rejected_total{reason="approval_queue_full"} 1"#
        ),
        "{metrics}"
    );
    // Nothing was stored for the refused trigger.
    let workflows = app
        .get_json("/api/v1/workflows?status=awaiting_approval")
        .await;
    assert_eq!(workflows["total"], 100, "{workflows}");
}

//! Time to heal with the default checkpoint timeout (120 s): a Helm release whose new pods
//! crash within seconds of starting. The rollout restart's checkpoint fails as soon as a pod
//! of the new template crash-loops (not at its timeout), the Helm rollback runs, and the
//! workload settles: healed in well under a minute, by the workflow's own timestamps.

use crate::helpers::cluster::event_answer;
use crate::helpers::workflow::trigger;
use crate::helpers::{TestApp, spawn_attached, wait_for};
use crate::kube_mock::{MockApiServer, Writes};
use crate::ladder::step;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SHOP: &str = "/apis/apps/v1/namespaces/prod/deployments/shop-web";
const PODS: &str = "/api/v1/namespaces/prod/pods";
const SECRETS: &str = "/api/v1/namespaces/prod/secrets";

fn replicaset_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/prod/replicasets/{name}")
}

/// shop-web at Deployment revision `revision` (observed), `available` of its 1 replica.
fn shop(revision: u32, available: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "shop-web", "namespace": "prod", "uid": "uid-shop", "generation": revision,
            "annotations": {"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "prod",
                            "deployment.kubernetes.io/revision": revision.to_string()}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "shop-web"}},
                 "template": {"metadata": {}, "spec": {"containers": [{"name": "web", "image": "shop:1"}]}}},
        "status": {"observedGeneration": revision, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": available}})
}

/// The ReplicaSet `name` of shop-web, carrying the Deployment revision `revision`.
fn replicaset(name: &str, revision: u32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"),
            "annotations": {"deployment.kubernetes.io/revision": revision.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-web",
                                 "uid": "uid-shop", "controller": true}]},
        "spec": {"selector": {"matchLabels": {"app": "shop-web"}}}})
}

/// A pod of the ReplicaSet `rs`: running and Ready, or waiting in CrashLoopBackOff.
fn pod(name: &str, rs: &str, restarts: i32, crashing: bool) -> Value {
    let state = if crashing {
        json!({"waiting": {"reason": "CrashLoopBackOff",
                           "message": "back-off 10s restarting failed container=web"}})
    } else {
        json!({"running": {"startedAt": "2030-01-01T00:00:00Z"}})
    };
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "prod", "uid": format!("uid-{name}"), "labels": {"app": "shop-web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": format!("uid-{rs}"), "controller": true}]},
        "spec": {"containers": [{"name": "web", "image": "shop:1"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": if crashing { "False" } else { "True" }}],
            "containerStatuses": [{"name": "web", "image": "shop:1", "imageID": "", "ready": !crashing,
                                   "restartCount": restarts, "state": state,
                                   "lastState": if restarts > 0 {
                                       json!({"terminated": {"exitCode": 1, "reason": "Error",
                                              "finishedAt": Utc::now().to_rfc3339()}})
                                   } else { json!({}) }}]}})
}

fn pods(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": items})
}

fn get(path: &str, answers: Vec<Value>) -> ((String, String), Vec<(u16, Value)>) {
    (
        ("GET".to_string(), path.to_string()),
        answers.into_iter().map(|a| (200, a)).collect(),
    )
}

/// Revision 3 of the release crash-loops (the symptom). After the rollout restart, the new
/// ReplicaSet's pod runs for its first polls, then crashes and backs off; after the Helm
/// rollback to revision 2, the Deployment runs revision 2's template again: available.
async fn crash_looping_release() -> MockApiServer {
    let secrets: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/helm/shop-release-secrets.json").expect("fixture"),
    )
    .expect("json");
    let broken = pod("shop-web-r3-a", "shop-web-r3", 5, true);
    let mock = MockApiServer::start_with(
        HashMap::from([(SECRETS.to_string(), secrets)]),
        Writes::from([
            get(SHOP, vec![shop(3, 0)]),
            get(PODS, vec![pods(vec![broken.clone()])]),
            get(
                &replicaset_path("shop-web-r3"),
                vec![replicaset("shop-web-r3", 3)],
            ),
            (
                ("PATCH".to_string(), SHOP.to_string()),
                vec![(200, shop(4, 0))],
            ),
            event_answer("prod"),
        ]),
    )
    .await;
    // The restart: revision 4's pod starts, and crashes about two seconds in.
    let starting = pods(vec![
        broken.clone(),
        pod("shop-web-r4-a", "shop-web-r4", 0, false),
    ]);
    let crashed = pods(vec![broken, pod("shop-web-r4-a", "shop-web-r4", 1, true)]);
    mock.after(
        "PATCH",
        SHOP,
        Writes::from([
            get(SHOP, vec![shop(4, 0)]),
            get(
                PODS,
                vec![starting.clone(), starting.clone(), starting, crashed],
            ),
            get(
                &replicaset_path("shop-web-r4"),
                vec![replicaset("shop-web-r4", 4)],
            ),
        ]),
    );
    mock
}

/// The state after `helm rollback shop 2`: revision 2's ReplicaSet is current again (as
/// revision 5), its pod Ready.
fn rolled_back() -> Writes {
    Writes::from([
        get(SHOP, vec![shop(5, 1)]),
        get(
            PODS,
            vec![pods(vec![pod("shop-web-r2-a", "shop-web-r2", 0, false)])],
        ),
        get(
            &replicaset_path("shop-web-r2"),
            vec![replicaset("shop-web-r2", 5)],
        ),
    ])
}

/// A stand-in for the helm CLI (the mock API server cannot serve a real helm): records its
/// arguments, then waits (bounded) until the test has applied the rollback's effect to the
/// mock, and answers like helm.
fn fake_helm(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("helm");
    let d = dir.display();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" > {d}/helm-called\ni=0\n\
             while [ ! -f {d}/helm-applied ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n\
             echo 'Rollback was a success! Happy Helming!'\n"
        ),
    )
    .expect("write fake helm");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The engine with every default checkpoint setting (WORKLOAD_CHECKPOINT_TIMEOUT unset).
async fn attached(mock: &MockApiServer, dir: &Path) -> TestApp {
    let helm = fake_helm(dir).display().to_string();
    spawn_attached(
        mock,
        &[("HELM_BIN", &helm), ("WORKLOAD_CHECKPOINT_TIMEOUT", "")],
    )
    .await
}

fn at(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// Lets the fake helm's rollback reach the cluster once helm is called; returns the finished
/// workflow.
async fn heal_through_helm(app: &TestApp, mock: &MockApiServer, dir: &Path, id: &str) -> Value {
    // helm was called: the rollback's effect reaches the cluster before helm returns.
    wait_for(
        "the Helm rollback",
        Duration::from_secs(90),
        Duration::from_millis(20),
        || async { dir.join("helm-called").exists().then_some(()) },
    )
    .await;
    mock.answer(rolled_back());
    std::fs::write(dir.join("helm-applied"), "").expect("signal helm");

    let path = format!("/api/v1/workflows/{id}");
    wait_for(
        "the workflow to finish",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || async {
            let workflow = app.get_json(&path).await;
            let done = workflow["finished_at"].is_string();
            done.then_some(workflow)
        },
    )
    .await
}

/// The restart's failed verification names the new template's crash-looping pod, not the old.
fn assert_the_evidence_is_the_new_pods_crash_loop(workflow: &Value, verification: &Value) {
    let evidence = verification["detail"].as_str().unwrap_or_default();
    assert_eq!(verification["outcome"], "failed", "{workflow}");
    assert!(
        evidence.contains("the evidence is conclusive")
            && evidence.contains(
                "pod shop-web-r4-a of the new template: container web is in CrashLoopBackOff"
            ),
        "{evidence}"
    );
    assert!(
        !evidence.contains("shop-web-r3-a"),
        "the old template's pod is not the evidence: {evidence}"
    );
}

fn assert_rolled_back_with_the_helm_cli(workflow: &Value, rollback: &Value, dir: &Path) {
    assert_eq!(rollback["channel"], "helm");
    assert!(
        rollback["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rolled back Helm release prod/shop to revision 2")),
        "{workflow}"
    );
    let called = std::fs::read_to_string(dir.join("helm-called")).expect("helm ran");
    assert!(
        called.starts_with("rollback shop 2 --namespace prod"),
        "{called}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_crash_loop_fails_the_restart_fast_and_heals_by_rollback_within_a_minute() {
    coordination_engine::tls::install_default_provider();
    let mock = crash_looping_release().await;
    let dir = tempfile::tempdir().expect("dir");
    let app = attached(&mock, dir.path()).await;
    let answer = trigger(&app, "prod", "deployment", "shop-web", "crash_loop").await;
    let id = answer["workflow_id"].as_str().expect("id").to_string();

    let workflow = heal_through_helm(&app, &mock, dir.path(), &id).await;
    let restart = step(&workflow, "rollout_restart");
    let rollback = step(&workflow, "rollback");
    let verifications = step(&workflow, "verify");
    let checkpoint = at(&verifications[0]["at"]) - at(&restart[0]["at"]);
    let healed = at(&workflow["finished_at"]) - at(&workflow["started_at"]);
    eprintln!(
        "restart checkpoint: {:.1}s; time to heal: {:.1}s",
        checkpoint.as_seconds_f64(),
        healed.as_seconds_f64()
    );
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(restart[0]["channel"], "kubernetes", "{workflow}");
    assert_eq!(verifications.len(), 2, "{workflow}");
    assert_the_evidence_is_the_new_pods_crash_loop(&workflow, verifications[0]);
    assert!(
        checkpoint < chrono::TimeDelta::seconds(30),
        "the restart's checkpoint ends on the evidence, not at its 120 s timeout: {checkpoint}"
    );
    assert_rolled_back_with_the_helm_cli(&workflow, rollback[0], dir.path());
    assert_eq!(verifications[1]["outcome"], "passed", "{workflow}");
    assert!(
        verifications[1]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1 pods Ready, no restart for 30s")),
        "the default settle window: {workflow}"
    );
    assert!(
        healed < chrono::TimeDelta::seconds(60),
        "healed in {healed} (the restart's timeout alone is 120 s)"
    );
    // Observed once, under the layer and the method that healed it.
    app.metrics_with(&[
        r#"coordination_engine_time_to_heal_seconds_count{layer="application",method="helm"} 1"#,
        r#"coordination_engine_time_to_heal_seconds_bucket{layer="application",method="helm",le="60"} 1"#,
    ])
    .await;
    mock.stop().await;
}

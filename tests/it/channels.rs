//! The Helm and operator channels against the mock API server: a Helm release is rolled back
//! to its last good revision (read from helm-format release Secrets) with the helm CLI; an
//! operator's operand is never patched, its custom resource is nudged instead.

use crate::helpers::cluster::{deployment, event_answer, pod_list, sick_first};
use crate::helpers::workflow::writes_of as writes;
use crate::helpers::workflow::{finished_workflow, trigger};
use crate::helpers::{TestApp, spawn_attached};
use crate::kube_mock::{MockApiServer, Writes};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

const SHOP: &str = "/apis/apps/v1/namespaces/prod/deployments/shop-web";
const SECRETS: &str = "/api/v1/namespaces/prod/secrets";

async fn attached(mock: &MockApiServer, helm_bin: &Path) -> TestApp {
    let helm_bin = helm_bin.display().to_string();
    spawn_attached(mock, &[("HELM_BIN", &helm_bin)]).await
}

/// A stand-in for the helm CLI (no API server here for the real one to roll back against):
/// records its arguments and `KUBECONFIG`, answers like helm.
fn fake_helm(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("helm");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n%s\\n' \"$*\" \"$KUBECONFIG\" > {}/helm-called\necho 'Rollback was a success! Happy Helming!'\n",
            dir.display()
        ),
    )
    .expect("write fake helm");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// shop-web, deployed by the Helm release `shop` (3 revisions), never available.
async fn helm_cluster() -> MockApiServer {
    let secrets: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/helm/shop-release-secrets.json").expect("fixture"),
    )
    .expect("json");
    let shop = deployment(
        "prod",
        "shop-web",
        json!({"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": "prod"}),
        0,
    );
    MockApiServer::start_with(
        HashMap::from([
            (SHOP.to_string(), shop.clone()),
            (SECRETS.to_string(), secrets),
        ]),
        Writes::from([
            (("PATCH".to_string(), SHOP.to_string()), vec![(200, shop)]),
            event_answer("prod"),
        ]),
    )
    .await
}

/// The fake helm was asked for the rollback, with the engine's kubeconfig.
fn assert_helm_rolled_back_on_the_engines_cluster(app: &TestApp, dir: &Path) {
    let called = std::fs::read_to_string(dir.join("helm-called")).expect("helm ran");
    let mut lines = called.lines();
    let args = lines.next().expect("args");
    assert!(
        args.starts_with("rollback shop 2 --namespace prod --timeout="),
        "{args}"
    );
    assert_eq!(
        lines.next(),
        Some(
            app.data_dir
                .path()
                .join("kubeconfig")
                .display()
                .to_string()
                .as_str()
        ),
        "helm talks to the engine's cluster"
    );
}

fn assert_each_step_records_its_channel(workflow: &Value) {
    let carried: Vec<(String, String)> = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["channel"].is_string())
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("channel"))
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("rollout_restart", "kubernetes"),
        ("rollback", "helm"),
        ("escalate", "human"),
    ]
    .iter()
    .map(|(a, c)| (a.to_string(), c.to_string()))
    .collect();
    assert_eq!(carried, expected, "{workflow}");
    let planned: Vec<(String, String)> = workflow["plan"]["steps"]
        .as_array()
        .expect("plan")
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("channel"))
        })
        .collect();
    assert_eq!(planned, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_release_is_rolled_back_to_its_last_good_revision_with_the_helm_cli() {
    coordination_engine::tls::install_default_provider();
    let mock = helm_cluster().await;
    let dir = tempfile::tempdir().expect("dir");
    let helm = fake_helm(dir.path());
    let app = attached(&mock, &helm).await;
    let answer = trigger(&app, "prod", "deployment", "shop-web", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    // Neither the restart nor the rollback makes the (mock) Deployment available.
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    let tried: Vec<&str> = workflow["escalation"]["tried"]
        .as_array()
        .expect("tried")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        tried.iter().any(|t| t
            .contains("rolled back Helm release prod/shop to revision 2 (shop-1.1.0, app 1.1)")
            && t.contains("Happy Helming")
            && t.contains("from revision 3")),
        "{tried:?}"
    );
    assert_helm_rolled_back_on_the_engines_cluster(&app, dir.path());
    let requests = mock.requests();
    let listed = requests
        .iter()
        .find(|r| r.path == SECRETS)
        .expect("release secrets read");
    assert_eq!(
        listed.query.get("labelSelector").map(String::as_str),
        Some("owner=helm,name=shop")
    );
    assert_eq!(
        writes(&requests),
        vec![("PATCH".to_string(), SHOP.to_string())],
        "the restart patches the Deployment; the rollback goes through helm, not a patch"
    );
    // Each step records what carried it: the PATCH above is the Kubernetes API's, the rollback
    // the helm CLI's; the plan shows the same channels once Helm was detected.
    assert_each_step_records_its_channel(&workflow);
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_helm_binary_the_rollback_escalates_with_the_exact_command() {
    coordination_engine::tls::install_default_provider();
    let mock = helm_cluster().await;
    let dir = tempfile::tempdir().expect("dir");
    let app = attached(&mock, &dir.path().join("no-such-helm")).await;
    let answer = trigger(&app, "prod", "deployment", "shop-web", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert_eq!(
        workflow["escalation"]["needed"],
        "run `helm rollback shop 2 --namespace prod`"
    );
    assert!(
        workflow["escalation"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("revision 2 (shop-1.1.0)") && r.contains("HELM_BIN")),
        "{workflow}"
    );
    mock.stop().await;
}

const POOLER: &str = "/apis/apps/v1/namespaces/prod/deployments/db-pooler";
const GROUP: &str = "/apis/postgres-operator.crunchydata.com/v1beta1";
const CLUSTER: &str =
    "/apis/postgres-operator.crunchydata.com/v1beta1/namespaces/prod/postgresclusters/db";
const CSVS: &str = "/apis/operators.coreos.com/v1alpha1/namespaces/prod/clusterserviceversions";

async fn operator_cluster(csv_phase: &str) -> MockApiServer {
    let mut pooler = deployment("prod", "db-pooler", json!({}), 2);
    pooler["metadata"]["ownerReferences"] = json!([{"apiVersion": "postgres-operator.crunchydata.com/v1beta1",
        "kind": "PostgresCluster", "name": "db", "uid": "uid-pg", "controller": true}]);
    let resources = json!({"kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": "postgres-operator.crunchydata.com/v1beta1",
        "resources": [{"name": "postgresclusters", "singularName": "postgrescluster", "namespaced": true,
                       "kind": "PostgresCluster", "verbs": ["get", "list", "patch", "watch"]}]});
    let csvs = json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersionList",
        "metadata": {"resourceVersion": "1"},
        "items": [{"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
                   "metadata": {"name": "postgresoperator.v5.7.0", "namespace": "prod"},
                   "status": {"phase": csv_phase, "message": "install strategy failed: deployment not ready"}}]});
    let mut writes = Writes::from([
        (
            ("PATCH".to_string(), CLUSTER.to_string()),
            vec![(
                200,
                json!({"apiVersion": "postgres-operator.crunchydata.com/v1beta1", "kind": "PostgresCluster",
                       "metadata": {"name": "db", "namespace": "prod"}}),
            )],
        ),
        event_answer("prod"),
    ]);
    // The pooler's pod crash-loops when the engine looks, and is Ready once reconciled.
    sick_first(
        &mut writes,
        "/api/v1/namespaces/prod/pods",
        pod_list(&[("db-pooler-1", true, 0)]),
    );
    MockApiServer::start_with(
        HashMap::from([
            (POOLER.to_string(), pooler),
            (GROUP.to_string(), resources),
            (CSVS.to_string(), csvs),
            (
                "/api/v1/namespaces/prod/pods".to_string(),
                pod_list(&[("db-pooler-1", true, 0)]),
            ),
        ]),
        writes,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operand_is_never_patched_its_custom_resource_is_nudged_to_reconcile() {
    coordination_engine::tls::install_default_provider();
    let mock = operator_cluster("Succeeded").await;
    let app = attached(&mock, Path::new("helm")).await;
    let answer = trigger(&app, "prod", "deployment", "db-pooler", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "succeeded", "{workflow}");
    assert_eq!(workflow["steps"][0]["deployment_method"], "operator");
    let nudge = workflow["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "rollout_restart")
        .expect("restart step");
    assert_eq!(nudge["channel"], "operator", "the PATCH below: {nudge}");
    let requests = mock.requests();
    assert_eq!(
        writes(&requests),
        vec![("PATCH".to_string(), CLUSTER.to_string())],
        "only the custom resource is touched"
    );
    let patch = requests
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("nudge");
    assert!(
        patch
            .body
            .pointer("/metadata/annotations/coordination-engine.io~1reconcile-requested-at")
            .is_some_and(Value::is_string),
        "{}",
        patch.body
    );
    assert_eq!(
        patch.query.get("fieldManager").map(String::as_str),
        Some("coordination-engine")
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_operator_csv_escalates_before_anything_is_touched() {
    coordination_engine::tls::install_default_provider();
    let mock = operator_cluster("Failed").await;
    let app = attached(&mock, Path::new("helm")).await;
    let answer = trigger(&app, "prod", "deployment", "db-pooler", "crash_loop").await;
    let workflow = finished_workflow(&app, answer["workflow_id"].as_str().expect("id")).await;
    assert_eq!(workflow["status"], "escalated", "{workflow}");
    assert_eq!(
        workflow["escalation"]["reason"],
        "ClusterServiceVersion postgresoperator.v5.7.0 is Failed: install strategy failed: deployment not ready"
    );
    assert!(writes(&mock.requests()).is_empty());
    mock.stop().await;
}

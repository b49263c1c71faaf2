//! Ladders of workloads someone else deploys: ArgoCD (through the Application, never
//! patched), Helm (restart, then `helm rollback`) and operators (a nudge of the custom
//! resource, after the operator's own health).

use super::*;
use crate::execute::argocd::SyncOutcome;
use crate::execute::helm::Revision;
use serde_json::json;

fn argocd(rollouts: Vec<(Rollout, Vec<PodState>)>) -> World {
    let tracking = json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/api"});
    let mut world = world_of(deployment(tracking, json!([])), rollouts);
    world.argocd = true;
    world.previous_revision = Some("abc123".into());
    world
}

#[tokio::test]
async fn an_argocd_workload_is_synced_through_its_application_never_patched() {
    let h = harness(argocd(vec![healthy()])).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "sync_application argocd/shop Deployment/shop/api",
            "restart_through_argocd argocd/shop Deployment/shop/api"
        ]
    );
    assert!(
        h.cluster
            .calls()
            .contains(&"await_application argocd/shop after before".to_string())
    );
    assert_eq!(steps(&workflow)[1], "rollout_restart done argocd");
}

#[tokio::test]
async fn a_degraded_sync_fails_and_the_rollback_asks_for_a_revert_in_git() {
    let mut world = argocd(vec![healthy()]);
    world.sync_outcome = Some(SyncOutcome::Failed(
        "sync Synced, health Degraded: crash".into(),
    ));
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(
        steps(&workflow),
        [
            "detect done",
            "rollout_restart failed argocd",
            "rollback escalated human"
        ]
    );
    assert_eq!(
        h.cluster.writes().len(),
        2,
        "only the sync and the restart action"
    );
    assert!(escalation(&workflow, "needed").contains("revert the commits after abc123"));
    assert!(
        !h.cluster
            .calls()
            .iter()
            .any(|c| c.starts_with("workload_state"))
    );
}

#[tokio::test]
async fn without_the_argocd_channel_an_argocd_workload_is_refused_not_patched() {
    let mut world = argocd(vec![healthy()]);
    world.argocd = false;
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty(), "{:?}", h.cluster.writes());
    assert!(escalation(&workflow, "reason").contains("the manual channel never patches it"));
}

#[tokio::test]
async fn a_leased_scale_up_records_the_lease_and_scales_the_argocd_workload() {
    let h = harness_with(argocd(vec![healthy()]), vec![crate::plan::Action::ScaleUp]).await;
    let workflow = h.run("high_cpu", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["scale Deployment/shop/api 3"]);
    let leases = h.store.active_leases(Utc::now()).await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!(leases[0].object_uid, "uid-api");
    assert_eq!(leases[0].paths, ["/spec/replicas"]);
}

#[tokio::test]
async fn a_bad_image_in_git_escalates_with_the_change_needed_and_no_blind_restart() {
    let mut world = argocd(vec![healthy()]);
    world.pods = vec![
        json!({"metadata": {"name": "api-1"}, "status": {"containerStatuses": [{"name": "web",
        "image": "shop:typo", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}}),
    ];
    let h = harness(world).await;
    let workflow = h.run("image_pull", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Escalated);
    assert!(
        escalation(&workflow, "reason")
            .contains("cannot pull its image shop:typo (ImagePullBackOff"),
        "{:?}",
        workflow.escalation
    );
    assert_eq!(
        escalation(&workflow, "needed"),
        "change spec.template.spec.containers[web].image from shop:typo to an image that exists, in Git for ArgoCD Application shop"
    );
    assert!(
        h.cluster.writes().is_empty(),
        "no restart, no sync: {:?}",
        h.cluster.writes()
    );
}

fn revision(version: u64, status: &str) -> Revision {
    Revision {
        version,
        status: status.into(),
        chart: "shop-1.0.0".into(),
        app_version: "1".into(),
    }
}

fn helm(rollouts: Vec<(Rollout, Vec<PodState>)>, history: Vec<Revision>) -> World {
    let release = json!({"meta.helm.sh/release-name": "shop"});
    let mut world = world_of(deployment(release, json!([])), rollouts);
    world.helm_history.insert("shop".into(), history);
    world.helm_available = true;
    world
}

#[tokio::test]
async fn a_helm_crash_loop_fails_the_restart_fast_and_heals_by_rollback() {
    let history = vec![revision(1, "superseded"), revision(2, "deployed")];
    let h = harness(helm(vec![crash_looping(), healthy()], history)).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(
        h.cluster.writes(),
        [
            "rollout_restart Deployment/shop/api",
            "helm_rollback shop/shop 1"
        ]
    );
    assert_eq!(
        steps(&workflow),
        [
            "detect done",
            "rollout_restart done kubernetes",
            "verify failed",
            "rollback done helm",
            "verify passed",
            "checkpoint passed"
        ]
    );
    assert!(detail(&workflow, "rollback").ends_with("(from revision 2)"));
}

#[tokio::test]
async fn without_a_helm_binary_the_rollback_escalates_with_the_exact_command() {
    let history = vec![revision(1, "superseded"), revision(2, "deployed")];
    let mut world = helm(vec![crash_looping()], history);
    world.helm_available = false;
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(
        escalation(&workflow, "needed"),
        "run `helm rollback shop 1 --namespace shop`"
    );
}

#[tokio::test]
async fn a_rendered_release_without_history_escalates_instead_of_rolling_back() {
    let h = harness(helm(vec![crash_looping()], Vec::new())).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.writes(), ["rollout_restart Deployment/shop/api"]);
    assert!(escalation(&workflow, "reason").contains("has no release Secrets"));
}

fn operator(csv_phase: &str) -> World {
    let owners = json!([{"apiVersion": "db.example.com/v1", "kind": "Database", "name": "db", "controller": true}]);
    let mut world = world_of(deployment(json!({}), owners), vec![healthy()]);
    world.csvs = vec![json!({"metadata": {"name": "db-operator.v2"},
        "status": {"phase": csv_phase, "message": "install strategy failed"}})];
    world
}

#[tokio::test]
async fn an_operand_is_never_patched_its_custom_resource_is_nudged() {
    let h = harness(operator("Succeeded")).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Succeeded);
    assert_eq!(h.cluster.writes(), ["nudge_operator Database/shop/db"]);
    assert_eq!(steps(&workflow)[1], "rollout_restart done operator");
}

#[tokio::test]
async fn a_failing_operator_csv_escalates_before_anything_is_touched() {
    let h = harness(operator("Failed")).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty());
    assert_eq!(
        escalation(&workflow, "reason"),
        "ClusterServiceVersion db-operator.v2 is Failed: install strategy failed"
    );
}

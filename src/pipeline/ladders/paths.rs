//! The ways out of a ladder other than healing or exhausting it: a target that is no
//! Kubernetes name or cannot be read, a symptom that cannot be confirmed, a cancellation, and
//! a fix verified while its alert still fires.

use super::*;
use crate::incident::IncidentStatus;
use serde_json::json;

#[tokio::test]
async fn a_name_that_is_not_a_kubernetes_name_never_reaches_the_cluster() {
    let h = harness(World::default()).await;
    let workflow = h
        .run("crash_loop", "Deployment", Some("shop"), "10.0.0.1:9100")
        .await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.calls().is_empty(), "{:?}", h.cluster.calls());
    assert!(escalation(&workflow, "reason").contains("nothing was sent to the API server"));
}

#[tokio::test]
async fn an_alert_whose_target_is_not_a_kubernetes_name_reaches_a_human_not_the_cluster() {
    let h = harness(World::default()).await;
    // An alert that names only a scrape target (`instance="10.0.0.1:9100"`).
    let alert = incident(
        Source::Alertmanager,
        "crash_loop",
        ("Instance", None, "10.0.0.1:9100"),
    );
    let started = h.start(&alert, false).await;
    let workflow = h.finished(&started.id).await;
    assert_status(&workflow, WorkflowStatus::Escalated);
    assert_eq!(workflow.mode, crate::workflow::WorkflowMode::Live);
    assert!(h.cluster.calls().is_empty(), "{:?}", h.cluster.calls());
    assert_eq!(escalation(&workflow, "channel"), "human");
    let reason = escalation(&workflow, "reason");
    assert!(
        reason.contains("10.0.0.1:9100") && reason.contains("not a valid Kubernetes"),
        "{reason}"
    );
    assert_eq!(workflow.error, None);
}

/// Every write that records a workflow as `verifying` fails, as a full disk would.
const FAIL_VERIFYING: &str = "CREATE TRIGGER fail_progress BEFORE UPDATE ON workflows \
    WHEN NEW.status = 'verifying' BEGIN SELECT RAISE(ABORT, 'injected store failure'); END";

#[tokio::test]
async fn a_store_that_fails_mid_workflow_fails_it_and_frees_the_target() {
    use sqlx::Connection;
    let h = harness(world_of(deployment(json!({}), json!([])), vec![healthy()])).await;
    let db = h.dir.path().join(crate::store::sql::DB_FILE);
    let mut sqlite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database");
    sqlx::query(FAIL_VERIFYING)
        .execute(&mut sqlite)
        .await
        .expect("install the failure");
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_status(&workflow, WorkflowStatus::Failed);
    let error = workflow.error.clone().unwrap_or_default();
    assert!(
        error.contains("the store failed while persisting a step (4 attempts)")
            && error.contains("injected store failure"),
        "{error}"
    );
    assert!(workflow.finished_at.is_some());
    h.runner_returned(&workflow.id).await;
    // The target is free again: a new trigger starts a workflow.
    sqlx::query("DROP TRIGGER fail_progress")
        .execute(&mut sqlite)
        .await
        .expect("remove the failure");
    let again = incident(
        Source::Api,
        "crash_loop",
        ("Deployment", Some("shop"), "api"),
    );
    h.store.insert_incident(&again).await.expect("incident");
    let started = h
        .pipeline
        .start(&again, WorkflowKind::Remediation, plan_for(&again), false)
        .await;
    assert!(started.is_ok(), "the target stayed locked: {started:?}");
}

#[tokio::test]
async fn a_target_that_cannot_be_read_escalates_with_the_reason() {
    let h = harness(World::default()).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert_eq!(h.cluster.calls(), ["owner_chain Deployment/shop/api"]);
    assert!(escalation(&workflow, "reason").starts_with("cannot read Deployment shop/api"));
    assert_eq!(
        escalation(&workflow, "needed"),
        "check the target and the engine's RBAC"
    );
}

#[tokio::test]
async fn a_symptom_that_cannot_be_confirmed_escalates_before_any_write() {
    let mut available = deployment(json!({}), json!([]));
    available["status"]["availableReplicas"] = json!(2);
    let mut world = world_of(available, vec![healthy()]);
    world
        .failures
        .insert("pods", "the API server answered 403 Forbidden".into());
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(h.cluster.writes().is_empty());
    assert!(
        escalation(&workflow, "reason").starts_with("cannot confirm the symptom on Deployment api")
    );
}

#[tokio::test]
async fn a_checkpoint_that_cannot_read_the_workload_fails_and_the_ladder_climbs() {
    let mut world = world_of(deployment(json!({}), json!([])), vec![healthy()]);
    world.failures.insert(
        "workload_state",
        "the API server answered 403 Forbidden".into(),
    );
    let h = harness(world).await;
    let workflow = h.run("crash_loop", "Deployment", Some("shop"), "api").await;
    assert_eq!(workflow.status, WorkflowStatus::Escalated);
    assert!(detail(&workflow, "verify").starts_with("cannot verify: "));
    assert_eq!(
        h.cluster.writes(),
        [
            "rollout_restart Deployment/shop/api",
            "rollback_deployment shop/api"
        ]
    );
}

#[tokio::test]
async fn cancelling_during_a_checkpoint_stops_the_workflow_at_the_next_step_boundary() {
    // Rolling out, never done, never failing: the checkpoint runs to its timeout.
    let (mut rolling, pods) = healthy();
    rolling.complete = false;
    let h = harness(world_of(
        deployment(json!({}), json!([])),
        vec![(rolling, pods)],
    ))
    .await;
    let started = h
        .start(
            &incident(
                Source::Api,
                "crash_loop",
                ("Deployment", Some("shop"), "api"),
            ),
            false,
        )
        .await;
    h.reaches(&started.id, WorkflowStatus::Verifying).await;
    h.store
        .act_on_workflow(
            &started.id,
            crate::workflow::HumanAction::Cancel,
            Utc::now(),
        )
        .await
        .expect("cancel");
    h.runner_returned(&started.id).await;
    let workflow = h.store.get_workflow(&started.id).await.expect("workflow");
    assert_eq!(workflow.status, WorkflowStatus::Cancelled);
    assert_eq!(
        h.cluster.writes(),
        ["rollout_restart Deployment/shop/api"],
        "no rollback after the cancellation"
    );
    assert_eq!(h.pipeline.metrics.workflows_active.get(), 0);
}

#[tokio::test]
async fn a_fix_verified_while_its_alert_still_fires_leaves_the_incident_to_the_alert() {
    let h = harness(world_of(deployment(json!({}), json!([])), vec![healthy()])).await;
    let alert = incident(
        Source::Alertmanager,
        "crash_loop",
        ("Deployment", Some("shop"), "api"),
    );
    let started = h.start(&alert, false).await;
    let workflow = h.finished(&started.id).await;
    assert_eq!(workflow.status, WorkflowStatus::Succeeded);
    assert_eq!(
        workflow.steps.last().expect("steps")["source_alert"],
        "firing"
    );
    let incident = h.store.get_incident(&alert.id).await.expect("incident");
    assert_ne!(incident.status, IncidentStatus::Resolved);
}

#[tokio::test]
async fn a_trigger_learns_how_its_target_is_deployed_from_the_owner_chain() {
    let release = deployment(json!({"meta.helm.sh/release-name": "shop"}), json!([]));
    let h = harness(world_of(release, vec![healthy()])).await;
    let target = crate::plan::StepTarget {
        kind: "Deployment".into(),
        namespace: Some("shop".into()),
        name: "api".into(),
    };
    let detected = h.pipeline.detect_method(&target, DETECTION_BUDGET).await;
    let Detection::Detected(method) = detected else {
        panic!("not detected: {detected:?}");
    };
    assert_eq!(method.method, crate::detect::ownership::Method::Helm);
    assert_eq!(method.owner.as_deref(), Some("shop"));
    let missing = crate::plan::StepTarget {
        name: "gone".into(),
        ..target
    };
    let unknown = h.pipeline.detect_method(&missing, DETECTION_BUDGET).await;
    assert!(
        matches!(&unknown, Detection::Unknown(why) if why.starts_with("cannot read Deployment shop/gone")),
        "{unknown:?}"
    );
}

//! The gates' view of the store: what a trigger sees must not depend on how many workflows
//! came before it (an active workflow, a failed attempt or a live workflow in the window is
//! seen however many newer workflows were recorded since).

use super::*;
use crate::incident::{Severity, Source, Target};
use crate::store::SqlStore;
use std::time::Instant;

struct Fixture {
    pipeline: Arc<Pipeline>,
    store: Arc<SqlStore>,
    _dir: tempfile::TempDir,
}

/// What every pipeline test starts from: a SQLite store in a temp dir, its metrics, the
/// default settings and a guard view built from them.
pub(super) struct Parts {
    pub dir: tempfile::TempDir,
    pub metrics: Metrics,
    pub store: Arc<SqlStore>,
    pub defaults: crate::config::Settings,
    pub guard: crate::guard::SharedView,
}

pub(super) async fn parts() -> Parts {
    let dir = tempfile::tempdir().expect("dir");
    let metrics = Metrics::new();
    let store = Arc::new(
        SqlStore::open(dir.path(), Duration::from_secs(30), metrics.clone())
            .await
            .expect("store"),
    );
    let defaults = crate::config::load(&crate::config::Sources::default()).expect("defaults");
    let guard = crate::guard::SharedView::new(crate::guard::GuardView::new(
        crate::guard::GuardConfig::from_settings(&defaults),
    ));
    Parts {
        dir,
        metrics,
        store,
        defaults,
        guard,
    }
}

/// A detached pipeline over a real SQLite store in a temp dir.
async fn fixture() -> Fixture {
    let Parts {
        dir,
        metrics,
        store,
        guard,
        ..
    } = parts().await;
    let pipeline = Arc::new(Pipeline::new(
        store.clone(),
        metrics,
        None,
        guard,
        Duration::from_secs(1),
    ));
    Fixture {
        pipeline,
        store,
        _dir: dir,
    }
}

/// A crash-looping Deployment `namespace/name`, not yet stored.
fn crash_loop(namespace: &str, name: &str, now: DateTime<Utc>) -> Incident {
    let mut incident = Incident::new(
        Source::Api,
        format!("{name} crash-looping"),
        Severity::High,
        now,
    );
    incident.namespace = Some(namespace.into());
    incident.target = Some(Target {
        kind: "Deployment".into(),
        name: name.into(),
    });
    incident.issue_type = "crash_loop".into();
    incident
}

/// Stores `incident` and a workflow of it in `status`/`mode`, created at `at`.
async fn record(
    store: &SqlStore,
    incident: &Incident,
    status: WorkflowStatus,
    mode: WorkflowMode,
    at: DateTime<Utc>,
) -> Workflow {
    store.insert_incident(incident).await.expect("incident");
    let mut workflow = Workflow::new(
        &incident.id,
        incident.namespace.clone(),
        WorkflowKind::Remediation,
        mode,
        at,
    );
    workflow.status = status;
    workflow.target_key = Some(target_key(&incident_target(incident)));
    if status != WorkflowStatus::AwaitingApproval && status != WorkflowStatus::Pending {
        workflow.started_at = Some(at);
    }
    if status.is_terminal() {
        workflow.finished_at = Some(at);
    }
    store.insert_workflow(&workflow).await.expect("workflow");
    workflow
}

/// `n` finished dry runs on other targets (namespaces `other-*`), all newer than `after`.
async fn bury(store: &SqlStore, n: usize, after: DateTime<Utc>) {
    let incidents: Vec<Incident> = (0..n)
        .map(|i| crash_loop(&format!("other-{}", i % 50), &format!("app-{i}"), after))
        .collect();
    store.insert_incidents(&incidents).await.expect("incidents");
    for (i, incident) in incidents.iter().enumerate() {
        let at = after + chrono::Duration::milliseconds(i as i64 + 1);
        let mut workflow = Workflow::new(
            &incident.id,
            incident.namespace.clone(),
            WorkflowKind::Remediation,
            WorkflowMode::DryRun,
            at,
        );
        workflow.status = WorkflowStatus::Succeeded;
        workflow.target_key = Some(target_key(&incident_target(incident)));
        workflow.started_at = Some(at);
        workflow.finished_at = Some(at);
        store.insert_workflow(&workflow).await.expect("workflow");
    }
}

/// Starts a workflow for a new incident on `namespace/Deployment/name`.
async fn trigger(fixture: &Fixture, namespace: &str, name: &str) -> Result<Workflow, StartError> {
    let incident = crash_loop(namespace, name, Utc::now());
    fixture
        .store
        .insert_incident(&incident)
        .await
        .expect("incident");
    fixture
        .pipeline
        .start(
            &incident,
            WorkflowKind::Remediation,
            plan_for(&incident),
            false,
        )
        .await
}

#[tokio::test]
async fn a_target_stays_held_by_its_old_workflows_behind_a_thousand_newer_ones() {
    let f = fixture().await;
    let old = Utc::now() - chrono::Duration::minutes(5);
    let waiting = record(
        &f.store,
        &crash_loop("shop", "cart", old),
        WorkflowStatus::AwaitingApproval,
        WorkflowMode::Live,
        old,
    )
    .await;
    // A failed attempt 30 s ago: the 1-minute cooldown after one failure is in effect.
    let failed_at = Utc::now() - chrono::Duration::seconds(30);
    let began = failed_at - chrono::Duration::minutes(1);
    let mut failed = record(
        &f.store,
        &crash_loop("shop", "api", began),
        WorkflowStatus::Failed,
        WorkflowMode::Live,
        began,
    )
    .await;
    failed.finished_at = Some(failed_at);
    f.store.update_workflow(&failed).await.expect("update");
    bury(&f.store, 1000, failed_at).await;

    match trigger(&f, "shop", "cart").await {
        Err(StartError::AlreadyActive(id)) => assert_eq!(id, waiting.id),
        other => panic!("the waiting workflow must hold its target, got {other:?}"),
    }
    let held = trigger(&f, "shop", "api").await.expect("recorded");
    assert_eq!(held.status, WorkflowStatus::Cancelled, "{held:?}");
    assert!(
        held.error
            .as_deref()
            .unwrap_or_default()
            .contains("cooling down"),
        "{:?}",
        held.error
    );
}

#[tokio::test]
async fn live_workflows_behind_a_thousand_dry_runs_still_spend_the_storm_budget() {
    let f = fixture().await;
    let started = Utc::now() - chrono::Duration::minutes(5);
    for i in 0..StormBudget::default().per_bucket {
        record(
            &f.store,
            &crash_loop("shop", &format!("live-{i}"), started),
            WorkflowStatus::Running,
            WorkflowMode::Live,
            started,
        )
        .await;
    }
    bury(&f.store, 1000, started).await;

    let usage = f.pipeline.budget_usage(Utc::now()).await.expect("usage");
    assert_eq!(
        usage.cluster,
        StormBudget::default().per_bucket,
        "{usage:?}"
    );
    assert_eq!(usage.buckets.len(), 1, "{usage:?}");
    assert_eq!(usage.buckets[0].bucket, "namespace/shop");
    let stormed = trigger(&f, "shop", "one-more").await.expect("recorded");
    assert_eq!(stormed.status, WorkflowStatus::Escalated, "{stormed:?}");
    let pauses = f.store.list_pauses().await.expect("pauses");
    assert_eq!(pauses.len(), 1, "{pauses:?}");
    assert_eq!(pauses[0].namespace.as_deref(), Some("shop"));
    // Another namespace is not paused, and spent nothing.
    let elsewhere = trigger(&f, "other-1", "fresh").await.expect("recorded");
    assert_eq!(elsewhere.status, WorkflowStatus::Succeeded, "{elsewhere:?}");
}

/// Not a test but a measurement (`cargo test --lib trigger_cost -- --ignored --nocapture`,
/// `TRIGGERS=n` to change the total): the time of each block of 500 triggers (incident
/// stored, gates, workflow stored) as the history grows. See docs/perf.md.
#[tokio::test]
#[ignore = "a measurement, not a test"]
async fn trigger_cost_as_history_grows() {
    let total: usize = std::env::var("TRIGGERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let f = fixture().await;
    let all = Instant::now();
    let mut block = Instant::now();
    for i in 0..total {
        trigger(&f, &format!("team-{}", i % 50), &format!("app-{i}"))
            .await
            .expect("recorded");
        if (i + 1) % 500 == 0 {
            println!(
                "triggers {:>6}-{:>6}: {:>8.1} ms ({:.2} ms each)",
                i + 2 - 500,
                i + 1,
                block.elapsed().as_secs_f64() * 1000.0,
                block.elapsed().as_secs_f64() * 1000.0 / 500.0
            );
            block = Instant::now();
        }
    }
    println!("{total} triggers: {:.1} s", all.elapsed().as_secs_f64());
}

/// `n` dry runs still pending (not orphans: nothing was written), all newer than `after`.
async fn pending_dry_runs(store: &SqlStore, n: usize, after: DateTime<Utc>) {
    for i in 0..n {
        let at = after + chrono::Duration::milliseconds(i as i64 + 1);
        let incident = crash_loop(&format!("other-{}", i % 50), &format!("dry-{i}"), at);
        record(
            store,
            &incident,
            WorkflowStatus::Pending,
            WorkflowMode::DryRun,
            at,
        )
        .await;
    }
}

#[tokio::test]
async fn a_live_orphan_behind_a_thousand_newer_pending_workflows_is_interrupted_at_startup() {
    let f = fixture().await;
    let started = Utc::now() - chrono::Duration::hours(1);
    let orphan = record(
        &f.store,
        &crash_loop("shop", "api", started),
        WorkflowStatus::Running,
        WorkflowMode::Live,
        started,
    )
    .await;
    pending_dry_runs(&f.store, 1001, started).await;
    assert_eq!(f.pipeline.interrupt_orphans().await.expect("interrupt"), 1);
    let stored = f.store.get_workflow(&orphan.id).await.expect("orphan");
    assert_eq!(stored.status, WorkflowStatus::Interrupted);
}

#[tokio::test]
async fn resuming_requeues_an_alert_held_behind_a_thousand_newer_workflows() {
    let f = fixture().await;
    let held_at = Utc::now() - chrono::Duration::hours(1);
    let mut alert = crash_loop("shop", "api", held_at);
    alert.source = Source::Alertmanager;
    f.store.insert_incident(&alert).await.expect("incident");
    let mut held = Workflow::new(
        &alert.id,
        alert.namespace.clone(),
        WorkflowKind::Remediation,
        WorkflowMode::Live,
        held_at,
    );
    held.status = WorkflowStatus::Cancelled;
    held.target_key = Some(target_key(&incident_target(&alert)));
    held.finished_at = Some(held_at);
    held.gate_decisions = vec![serde_json::json!({"gate": "pause", "outcome": "block"})];
    f.store.insert_workflow(&held).await.expect("workflow");
    bury(&f.store, 1001, held_at).await;
    let queued = f.pipeline.requeue_held(None).await.expect("requeue");
    assert_eq!(queued, 1);
    assert_eq!(
        f.store.queued_incidents(10).await.expect("queue"),
        vec![alert.id.clone()]
    );
}

//! Tests of the store against real databases: every test in `on_both_backends!` runs on a
//! SQLite file and on a fresh PostgreSQL database (`TEST_DATABASE_URL`, see
//! `scripts/test-postgres.sh`); the rest are about SQLite's own file handling.

use super::*;
use crate::incident::{Incident, IncidentStatus, Severity, Source};
use crate::store::schema::MIGRATIONS;
use crate::store::{IncidentChange, IncidentFilter, Store, to_micros};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

/// A store of each backend for one test; the SQLite one keeps its directory alive.
pub(crate) struct TestStore {
    pub store: SqlStore,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("dir");
    let store = SqlStore::open(dir.path(), Duration::from_secs(5), Metrics::new())
        .await
        .expect("store");
    TestStore {
        store,
        _dir: Some(dir),
    }
}

pub(crate) async fn postgres_store() -> Option<TestStore> {
    let url = crate::store::testing::fresh_postgres_database().await?;
    let store = SqlStore::connect_postgres(&url, None, Duration::from_secs(5), Metrics::new())
        .await
        .expect("postgres store");
    Some(TestStore { store, _dir: None })
}

/// Writes each test once and runs it on both backends (`sqlite::name`, `postgres::name`).
macro_rules! on_both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($store:ident: &SqlStore) $body:block
    )*) => {
        $(
            $(#[$meta])*
            async fn $name($store: &SqlStore) $body
        )*
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = super::sqlite_store().await;
                    super::$name(&test.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = super::postgres_store().await else { return };
                    super::$name(&test.store).await;
                }
            )*
        }
    };
}

/// A live remediation of `incident` on `target_key`, in `status`.
fn live_workflow(
    incident: &Incident,
    status: crate::workflow::WorkflowStatus,
    target_key: &str,
    now: DateTime<Utc>,
) -> Workflow {
    use crate::workflow::{WorkflowKind, WorkflowMode};
    let mut w = Workflow::new(
        &incident.id,
        None,
        WorkflowKind::Remediation,
        WorkflowMode::Live,
        now,
    );
    w.status = status;
    w.target_key = Some(target_key.into());
    w
}

async fn totals(store: &SqlStore, filter: &IncidentFilter) -> (i64, i64) {
    let counted = store.summarize_incidents(filter).await.expect("summary");
    // The same filter plus a `since` far in the past forces the row scan.
    let mut scan_filter = filter.clone();
    scan_filter.since = Some(Utc::now() - chrono::Duration::days(3650));
    let scanned = store
        .summarize_incidents(&scan_filter)
        .await
        .expect("summary");
    assert_eq!(counted, scanned, "counters agree with a scan");
    (counted.total, counted.completed)
}

on_both_backends! {
async fn counters_follow_inserts_changes_and_purges(store: &SqlStore) {
    let now = Utc::now();
    let mut ids = Vec::new();
    for (i, ns) in [Some("a"), Some("b"), None].into_iter().enumerate() {
        let mut incident = Incident::new(Source::Api, format!("t{i}"), Severity::High, now);
        incident.namespace = ns.map(String::from);
        store.insert_incident(&incident).await.expect("insert");
        ids.push(incident.id);
    }
    let all = IncidentFilter::default();
    let only_a = IncidentFilter {
        namespace: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(totals(store, &all).await, (3, 0));
    let resolve = IncidentChange {
        status: Some(IncidentStatus::Resolved),
        note: None,
    };
    store
        .change_incident(&ids[0], resolve, now)
        .await
        .expect("resolve");
    assert_eq!(totals(store, &all).await, (3, 1));
    assert_eq!(totals(store, &only_a).await, (1, 1));
    let purged = store
        .purge_closed_before(now + chrono::Duration::seconds(1))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(totals(store, &all).await, (2, 0));
    assert_eq!(totals(store, &only_a).await, (0, 0));
}

/// Concurrent writers (replicas taking alerts at once) each bump the counters of many
/// namespaces in one transaction. On PostgreSQL every upsert locks its counter row until
/// commit; when each transaction took them in its own (hash) order they deadlocked, and the
/// losers failed. Taken in key order, every batch commits and the counters add up.
async fn concurrent_writers_over_many_namespaces_all_commit(store: &SqlStore) {
    let now = Utc::now();
    let batch = |writer: usize, round: usize| -> Vec<Incident> {
        (0..50)
            .map(|n| {
                let mut incident = Incident::new(
                    Source::Alertmanager,
                    format!("w{writer} r{round} n{n}"),
                    Severity::ALL[n % Severity::ALL.len()],
                    now,
                );
                incident.namespace = Some(format!("team-{n}"));
                incident
            })
            .collect()
    };
    for round in 0..5 {
        let writers = (0..8).map(|writer| {
            let incidents = batch(writer, round);
            async move { store.insert_incidents(&incidents).await }
        });
        for result in futures_util::future::join_all(writers).await {
            result.expect("every concurrent batch commits");
        }
    }
    assert_eq!(
        totals(store, &IncidentFilter::default()).await,
        (5 * 8 * 50, 0)
    );
}

async fn the_store_refuses_a_second_active_workflow_for_a_target(store: &SqlStore) {
    use crate::workflow::WorkflowStatus;
    let now = Utc::now();
    let incident = Incident::new(Source::Api, "t".into(), Severity::High, now);
    store.insert_incident(&incident).await.expect("incident");
    let workflow = |status| live_workflow(&incident, status, "shop/Deployment/cart", now);
    let mut first = workflow(WorkflowStatus::Running);
    store.insert_workflow(&first).await.expect("first");
    assert!(matches!(
        store
            .insert_workflow(&workflow(WorkflowStatus::Pending))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Ended workflows do not hold the target.
    store
        .insert_workflow(&workflow(WorkflowStatus::Succeeded))
        .await
        .expect("an ended one");
    first.status = WorkflowStatus::Escalated;
    assert!(store.update_workflow(&first).await.expect("update"));
    store
        .insert_workflow(&workflow(WorkflowStatus::Pending))
        .await
        .expect("free again");
}

/// The election's row: created once, replaced only at the version that was read.
async fn the_leader_lock_row_is_a_compare_and_set(store: &SqlStore) {
    use crate::leader::lock::{LockError, LockRecord};
    assert!(store.read_leader_lock("l").await.expect("read").is_none());
    let now = Utc::now();
    let record = |holder: &str, transitions| LockRecord {
        holder: holder.into(),
        acquired_at: now,
        renewed_at: now,
        duration_secs: 15,
        transitions,
    };
    store
        .create_leader_lock("l", &record("a", 0))
        .await
        .expect("create");
    assert!(matches!(
        store.create_leader_lock("l", &record("b", 0)).await,
        Err(LockError::Conflict)
    ));
    let (read, version) = store.read_leader_lock("l").await.expect("read").expect("row");
    assert_eq!(read.holder, "a");
    store
        .replace_leader_lock("l", &record("b", 1), &version)
        .await
        .expect("take over");
    assert!(matches!(
        store.replace_leader_lock("l", &record("a", 0), &version).await,
        Err(LockError::Conflict)
    ));
    let (read, _) = store.read_leader_lock("l").await.expect("read").expect("row");
    assert_eq!((read.holder.as_str(), read.transitions), ("b", 1));
}

/// 403s of one identity: the fifth within the window is a burst, reported once per window;
/// a resent event counts nothing; another identity's 403s are its own.
async fn a_burst_of_403s_is_reported_once_per_window(store: &SqlStore) {
    use crate::sources::audit::DeniedAccess;
    let t0 = Utc::now() - chrono::Duration::minutes(5);
    let denied = |who: &str, second: i64| {
        let at = t0 + chrono::Duration::seconds(second);
        DeniedAccess {
            identity: who.into(),
            at,
            since: at - chrono::Duration::seconds(60),
        }
    };
    let mut outcomes = Vec::new();
    for second in 0..6 {
        let id = format!("bob-{second}");
        outcomes.push(store.note_denied_access(&id, &denied("bob", second), 5).await.expect("note"));
    }
    assert_eq!(outcomes, vec![None, None, None, None, Some(5), None]);
    assert_eq!(
        store.note_denied_access("bob-4", &denied("bob", 4), 5).await.expect("resend"),
        None,
        "a resent event counts nothing"
    );
    for second in 0..4 {
        let id = format!("eve-{second}");
        assert_eq!(store.note_denied_access(&id, &denied("eve", second), 5).await.expect("eve"), None);
    }
    // A window later, five more 403s are a new burst.
    let mut later = Vec::new();
    for i in 0..5 {
        let id = format!("bob-later-{i}");
        later.push(store.note_denied_access(&id, &denied("bob", 120 + i), 5).await.expect("note"));
    }
    assert_eq!(later, vec![None, None, None, None, Some(5)]);
}

/// A requeue that lands while the consumer handles the older entry (a pause lifted at that
/// moment) survives the consumer's dequeue.
async fn a_requeue_while_the_entry_is_handled_is_not_lost(store: &SqlStore) {
    let now = Utc::now();
    let incident = Incident::new(Source::Api, "t".into(), Severity::High, now);
    store.insert_incident(&incident).await.expect("incident");
    store.enqueue(&incident.id, now).await.expect("enqueue");
    let read = store.queue_entries(10).await.expect("queue");
    assert_eq!(read.len(), 1);
    store.enqueue(&incident.id, now).await.expect("requeue");
    store.dequeue(&read[0]).await.expect("dequeue the old entry");
    let left = store.queue_entries(10).await.expect("queue");
    assert_eq!(left.len(), 1, "the requeue is still there");
    assert_eq!(left[0].incident_id, incident.id);
    assert_ne!(left[0].generation, read[0].generation);
    store.dequeue(&left[0]).await.expect("dequeue");
    assert!(store.queued_incidents(10).await.expect("queue").is_empty());
    // An incident that no longer exists is not queued.
    store.enqueue("inc-missing", now).await.expect("no-op");
    assert!(store.queued_incidents(10).await.expect("queue").is_empty());
}

async fn migrations_are_recorded_once(store: &SqlStore) {
    let again = store;
    let versions: Vec<i64> = sqlx::query("SELECT version FROM schema_version ORDER BY version")
        .fetch_all(&again.readers)
        .await
        .expect("versions")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let expected: Vec<i64> = MIGRATIONS.iter().map(|(v, _, _)| *v).collect();
    assert_eq!(versions, expected);
}
}

#[tokio::test]
async fn reopening_applies_no_migration_twice() {
    let dir = tempfile::tempdir().expect("dir");
    let first = SqlStore::open(dir.path(), Duration::from_secs(5), Metrics::new())
        .await
        .expect("store");
    first.close().await;
    let again = SqlStore::open(dir.path(), Duration::from_secs(5), Metrics::new())
        .await
        .expect("reopen");
    migrations_are_recorded_once(&again).await;
}

/// Replicas start together: each runs the migrations under an advisory lock, so they apply
/// once and every replica opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_starting_together_migrate_once() {
    let Some(url) = crate::store::testing::fresh_postgres_database().await else {
        return;
    };
    let opens = (0..3).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            SqlStore::connect_postgres(&url, None, Duration::from_secs(5), Metrics::new()).await
        })
    });
    for open in opens {
        let store = open.await.expect("task").expect("opens");
        migrations_are_recorded_once(&store).await;
    }
}

/// A cold start on a busy node: the database is locked for longer than the (short) busy
/// timeout. Opening waits it out instead of failing startup; once the lock goes, it opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_outlasts_a_lock_held_longer_than_the_busy_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    // Another connection holds the write lock on a database that still needs its migrations.
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join(DB_FILE).display());
    let locker = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("locker");
    let mut lock = locker.acquire().await.expect("connection");
    sqlx::raw_sql("BEGIN EXCLUSIVE; CREATE TABLE held (x INTEGER)")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let opening = tokio::spawn({
        let dir = dir.path().to_path_buf();
        async move { SqlStore::open(&dir, Duration::from_millis(20), Metrics::new()).await }
    });
    // The lock is held for many busy timeouts: without the retry, opening has failed by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !opening.is_finished(),
        "opening waits while the database is locked"
    );
    sqlx::query("COMMIT")
        .execute(&mut *lock)
        .await
        .expect("unlock");
    let store = opening
        .await
        .expect("task")
        .expect("opens once the lock is gone");
    store.ping().await.expect("usable");
}

/// Workflows stored before migration 8 get their gate columns from their documents: an
/// upgrade does not forget a live workflow in the storm window or a recent failure.
#[tokio::test]
async fn the_gate_columns_of_older_workflows_are_filled_in_by_the_migration() {
    use crate::workflow::WorkflowStatus;
    let dir = tempfile::tempdir().expect("dir");
    let now = Utc::now();
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join(DB_FILE).display());
    let old = AnyPool::connect(&url).await.expect("old store");
    sqlx::query(crate::store::schema::VERSION_TABLE)
        .execute(&old)
        .await
        .expect("version table");
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v < 8) {
        sqlx::raw_sql(*sql).execute(&old).await.expect("migration");
        sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, 0)")
            .bind(version)
            .bind(name)
            .execute(&old)
            .await
            .expect("version");
    }
    let incident = Incident::new(Source::Api, "t".into(), Severity::High, now);
    sqlx::query(
        "INSERT INTO incidents (id, source, severity, status, created_at, updated_at, doc) \
         VALUES ($1, 'api', 'high', 'active', $2, $2, $3)",
    )
    .bind(&incident.id)
    .bind(to_micros(now))
    .bind(serde_json::to_string(&incident).expect("json"))
    .execute(&old)
    .await
    .expect("incident");
    let failed_at = now - chrono::Duration::seconds(20);
    for (status, key, started) in [
        (WorkflowStatus::Running, "/Node/worker-1", Some(now)),
        (WorkflowStatus::Failed, "shop/Deployment/cart", Some(now)),
        (
            WorkflowStatus::AwaitingApproval,
            "shop/Deployment/api",
            None,
        ),
    ] {
        let mut w = live_workflow(&incident, status, key, now);
        w.started_at = started;
        w.finished_at = status.is_terminal().then_some(failed_at);
        sqlx::query(
            "INSERT INTO workflows (id, incident_id, kind, status, created_at, updated_at, doc, \
             target_key) VALUES ($1, $2, 'remediation', $3, $4, $4, $5, $6)",
        )
        .bind(&w.id)
        .bind(&incident.id)
        .bind(status.as_str())
        .bind(to_micros(now))
        .bind(serde_json::to_string(&w).expect("json"))
        .bind(key)
        .execute(&old)
        .await
        .expect("workflow");
    }
    old.close().await;

    let store = SqlStore::open(dir.path(), Duration::from_secs(5), Metrics::new())
        .await
        .expect("upgrade");
    let spent = store
        .budget_spent_since(now - chrono::Duration::minutes(10))
        .await
        .expect("spent");
    // The failed one ran too: it spent the budget of its namespace.
    let mut spent = spent;
    spent.sort();
    assert_eq!(
        spent,
        vec![(Some("kind:Node".into()), 1), (Some("shop".into()), 1)]
    );
    let cart = store
        .target_history("shop/Deployment/cart")
        .await
        .expect("history");
    assert_eq!(cart.failed_attempts, 1);
    assert_eq!(
        cart.last_failed_at.map(to_micros),
        Some(to_micros(failed_at))
    );
    let api = store
        .target_history("shop/Deployment/api")
        .await
        .expect("history");
    assert!(api.active_workflow.is_some(), "{api:?}");
}

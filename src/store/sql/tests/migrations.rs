//! Migrations: applied once (reopening, replicas starting together), waiting out a locked
//! database, and filling in the columns older rows did not have.

use super::*;
use crate::store::schema::MIGRATIONS;
use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

on_both_backends! {
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
    let old = store_before_migration(dir.path(), 8).await;
    let incident = Incident::new(Source::Api, "t".into(), Severity::High, now);
    insert_old_incident(&old, &incident, now).await;
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
        insert_old_workflow(&old, &w, key, now).await;
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

/// A SQLite database in `dir` as a release before migration `before` left it.
async fn store_before_migration(dir: &std::path::Path, before: i64) -> AnyPool {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}?mode=rwc", dir.join(DB_FILE).display());
    let old = AnyPool::connect(&url).await.expect("old store");
    sqlx::query(crate::store::schema::VERSION_TABLE)
        .execute(&old)
        .await
        .expect("version table");
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v < before) {
        sqlx::raw_sql(*sql).execute(&old).await.expect("migration");
        sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, 0)")
            .bind(version)
            .bind(name)
            .execute(&old)
            .await
            .expect("version");
    }
    old
}

/// Writes an incident row as the old schema held it.
async fn insert_old_incident(old: &AnyPool, incident: &Incident, now: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO incidents (id, source, severity, status, created_at, updated_at, doc) \
         VALUES ($1, 'api', 'high', 'active', $2, $2, $3)",
    )
    .bind(&incident.id)
    .bind(to_micros(now))
    .bind(serde_json::to_string(incident).expect("json"))
    .execute(old)
    .await
    .expect("incident");
}

/// Writes a workflow row as the old schema held it: the document and the target key, no
/// gate columns.
async fn insert_old_workflow(old: &AnyPool, w: &Workflow, key: &str, now: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO workflows (id, incident_id, kind, status, created_at, updated_at, doc, \
         target_key) VALUES ($1, $2, 'remediation', $3, $4, $4, $5, $6)",
    )
    .bind(&w.id)
    .bind(&w.incident_id)
    .bind(w.status.as_str())
    .bind(to_micros(now))
    .bind(serde_json::to_string(w).expect("json"))
    .bind(key)
    .execute(old)
    .await
    .expect("workflow");
}

//! Tests of the store against real databases: every test in `on_both_backends!` runs on a
//! SQLite file and on a fresh PostgreSQL database (`TEST_DATABASE_URL`, see
//! `scripts/test-postgres.sh`); the rest are about migrations on one backend. By topic:
//! `counters`, `writers` (rules between concurrent writers), `migrations`.

use super::*;
use crate::incident::{Incident, IncidentStatus, Severity, Source};
use crate::store::{IncidentChange, IncidentFilter, Store, to_micros};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};

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
                    let test = crate::store::sql::tests::sqlite_store().await;
                    super::$name(&test.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = crate::store::sql::tests::postgres_store().await else { return };
                    super::$name(&test.store).await;
                }
            )*
        }
    };
}

mod counters;
mod migrations;
mod writers;

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

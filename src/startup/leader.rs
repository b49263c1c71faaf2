//! Who executes: the single replica with SQLite, or a candidate in a Lease (or database row)
//! election with PostgreSQL.

use super::StartupError;
use crate::cluster::Connection;
use crate::config::Settings;
use crate::leader::lock::LeaseLock;
use crate::metrics::Metrics;
use crate::store::SqlStore;
use std::sync::Arc;

/// Who executes, and the lock its election runs on: with SQLite this one replica, no lock;
/// with PostgreSQL a candidate in an election over the `LEADER_ELECTION_LEASE` Lease
/// (attached) or a row of that name in the database (detached).
pub(super) fn leadership(
    settings: &Settings,
    store: &Arc<SqlStore>,
    metrics: &Metrics,
    cluster: &Connection,
) -> (crate::leader::Leadership, Option<Arc<dyn LeaseLock>>) {
    use crate::leader::{Leadership, lock};
    let identity = crate::leader::identity(settings.pod_name.as_deref());
    if store.backend() == crate::store::sql::Backend::Sqlite {
        metrics.leader.set(1);
        return (Leadership::single(identity), None);
    }
    let name = &settings.leader_election_lease;
    let description = match cluster {
        Connection::Configured { .. } => format!("lease {}/{name}", settings.namespace),
        Connection::Detached => format!("database row {name}"),
    };
    let leadership = Leadership::candidate(
        identity,
        description,
        crate::leader::ElectionTiming::default().renew_deadline,
        metrics.clone(),
    );
    let lock: Arc<dyn lock::LeaseLock> = match cluster {
        Connection::Configured { client, .. } => Arc::new(lock::KubeLease::new(
            crate::leader::fence::replica_client(client, leadership.clone(), false),
            &settings.namespace,
            name,
        )),
        Connection::Detached => Arc::new(lock::DatabaseLock::new(store.clone(), name)),
    };
    (leadership, Some(lock))
}

/// Starts the election over `lock`, or, without one (SQLite: the one replica), takes over at
/// once. A new term interrupts the previous holder's running workflows; pending ones are
/// picked up by the queue consumer.
pub(super) async fn start_election(
    lock: Option<Arc<dyn LeaseLock>>,
    pipeline: &Arc<crate::pipeline::Pipeline>,
) -> Result<(), StartupError> {
    let Some(lock) = lock else {
        match pipeline.interrupt_orphans().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                workflows = n,
                "marked live workflows of the previous run as interrupted"
            ),
            Err(error) => return Err(StartupError::Store(error)),
        }
        return Ok(());
    };
    let leadership = pipeline.leadership().clone();
    let on_elected: crate::leader::election::OnElected = {
        let pipeline = pipeline.clone();
        Arc::new(move |term| {
            let pipeline = pipeline.clone();
            Box::pin(async move {
                match pipeline.interrupt_orphans().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(
                        workflows = n,
                        transitions = term.transitions,
                        "new leader: marked the previous holder's running workflows interrupted"
                    ),
                    Err(error) => {
                        tracing::error!(%error, "new leader: cannot interrupt orphaned workflows")
                    }
                }
            })
        })
    };
    crate::leader::spawn_election(
        lock,
        leadership,
        crate::leader::ElectionTiming::default(),
        on_elected,
    );
    Ok(())
}

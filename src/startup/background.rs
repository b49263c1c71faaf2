//! The engine's long-running tasks, started once its core objects exist.

use super::StartupError;
use super::engine::{Engine, Handoff};
use super::leader::start_election;
use crate::cluster::Connection;
use crate::config::Settings;
use crate::store::{SqlStore, Store};
use std::sync::Arc;
use std::time::Instant;

/// Starts, in this order: the election, the lease refresher, the retention purge, the queue
/// consumer, the RBAC self-check and the guard's watchers. Returns the self-check the API
/// reports.
pub(super) async fn start(
    settings: &Settings,
    cluster: &Connection,
    store: &Arc<SqlStore>,
    engine: &Engine,
    handoff: Handoff,
) -> Result<crate::cluster::access::AccessCheck, StartupError> {
    let pipeline = &engine.pipeline;
    start_election(handoff.election_lock, pipeline).await?;
    // Leases recorded by any replica reach this replica's guard within 2 s.
    pipeline
        .clone()
        .spawn_lease_refresher(std::time::Duration::from_secs(2));
    spawn_retention(
        store.clone(),
        settings.incident_retention_days,
        engine.leadership.clone(),
    );
    if !settings.pipeline_interval.is_zero() {
        pipeline
            .clone()
            .spawn_queue_consumer(settings.pipeline_interval);
    }
    let access = crate::cluster::access::AccessCheck::default();
    if let Some(fenced) = handoff.fenced {
        access.spawn_refresher(fenced, settings.argocd_namespaces.clone());
    }
    if let Connection::Configured { client, .. } = cluster {
        crate::watch::argocd::spawn_watchers(
            client.clone(),
            engine.guard_view.clone(),
            settings.argocd_namespaces.clone(),
        );
        crate::watch::parents::spawn_watchers(
            client.clone(),
            engine.guard_view.snapshot().parents.clone(),
        );
    }
    Ok(access)
}

/// Purges closed incidents past the retention period, at startup and then hourly.
/// Only the leader purges (one replica's work is enough); a follower checks again each minute
/// so a new leader does not wait an hour.
fn spawn_retention(store: Arc<SqlStore>, days: u32, leadership: crate::leader::Leadership) {
    if days == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut last_purge: Option<Instant> = None;
        loop {
            ticker.tick().await;
            let due =
                last_purge.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(3600));
            if !due || !leadership.is_leader() {
                continue;
            }
            last_purge = Some(Instant::now());
            // Checked: configuration bounds the days, but the task must never panic.
            let Some(cutoff) = chrono::Duration::try_days(i64::from(days))
                .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
            else {
                tracing::warn!(
                    days,
                    "INCIDENT_RETENTION_DAYS is past the calendar: no purge"
                );
                return;
            };
            match store.purge_closed_before(cutoff).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(purged, days, "purged closed incidents past retention")
                }
                Err(error) => tracing::warn!(%error, "retention purge failed; will retry"),
            }
        }
    });
}

//! Leader election: of several replicas, exactly one executes (consumes the pipeline queue,
//! runs workflows, resumes interrupted work, purges retention); every replica serves the guard,
//! the intake and the API.
//!
//! The lock is a `coordination.k8s.io/v1` Lease when attached to a cluster, a row in the
//! database when detached on PostgreSQL (`lock.rs`); with SQLite there is one replica and it
//! is always the leader. The algorithm is client-go's (`election.rs`), with its defaults:
//! lease 15 s, renew deadline 10 s, retry 2 s.
//!
//! Safety ("no two executors, ever"): a leader counts as leader only until its last
//! successful renewal *started* plus the renew deadline (10 s); a follower takes over only
//! after it has seen the record unchanged for the lease duration (15 s), measured on its own
//! monotonic clock from when it *observed* the renewal, which is after the renewal started.
//! So a leader that cannot renew, or was stopped (SIGSTOP, a long GC-like pause, a partition),
//! stops acting at least 5 s before anyone else may start. Every cluster write checks this
//! (`fence.rs`), every step does, and the store refuses progress on a workflow another leader
//! already marked `interrupted`.

pub mod election;
pub mod fence;
pub mod lock;

pub use election::{ElectionTiming, spawn_election};

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use utoipa::ToSchema;

/// A leadership term: who led, and the Lease's transition count when it took over. Recorded on
/// every workflow a leader starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Term {
    pub identity: String,
    pub transitions: i64,
}

/// What `/api/v1/health` shows under `leader` (SPEC §3).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeaderStatus {
    /// `false` with SQLite: one replica, always the leader.
    pub enabled: bool,
    pub is_leader: bool,
    /// This replica.
    pub identity: String,
    /// Who holds the lock, as last read (`null` before the first read).
    pub holder: Option<String>,
    /// When the holder acquired it.
    pub since: Option<DateTime<Utc>>,
    /// `lease` (Kubernetes Lease `namespace/name`), `database` or `none`.
    pub lock: String,
}

#[derive(Debug, Default)]
struct State {
    /// This replica's term while it holds the lock.
    term: Option<Term>,
    /// When the last successful renewal (or acquisition) was *sent*.
    renewed: Option<Instant>,
    holder: Option<String>,
    since: Option<DateTime<Utc>>,
}

/// The shared view of this replica's leadership.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    identity: String,
    enabled: bool,
    lock: String,
    renew_deadline: Duration,
    state: Mutex<State>,
    metrics: Option<crate::metrics::Metrics>,
    /// Set at shutdown: stop acting now, and hand the lock over (`release`).
    stepping_down: tokio::sync::watch::Sender<bool>,
}

impl Leadership {
    /// One replica (SQLite): always the leader, term 0.
    pub fn single(identity: impl Into<String>) -> Self {
        let identity = identity.into();
        let state = State {
            term: Some(Term {
                identity: identity.clone(),
                transitions: 0,
            }),
            renewed: None,
            holder: Some(identity.clone()),
            since: Some(Utc::now()),
        };
        Leadership {
            inner: Arc::new(Inner {
                identity,
                enabled: false,
                lock: "none".into(),
                renew_deadline: Duration::MAX,
                state: Mutex::new(state),
                metrics: None,
                stepping_down: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// A candidate in an election over `lock` (described for people), not leading yet.
    pub fn candidate(
        identity: impl Into<String>,
        lock: impl Into<String>,
        renew_deadline: Duration,
        metrics: crate::metrics::Metrics,
    ) -> Self {
        metrics.leader.set(0);
        Leadership {
            inner: Arc::new(Inner {
                identity: identity.into(),
                enabled: true,
                lock: lock.into(),
                renew_deadline,
                state: Mutex::new(State::default()),
                metrics: Some(metrics),
                stepping_down: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent (plain assignments).
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current term, if this replica may act now: it holds the lock and its last renewal
    /// was sent less than the renew deadline ago. Checked before every write.
    pub fn current_term(&self) -> Option<Term> {
        if *self.inner.stepping_down.borrow() {
            return None;
        }
        let state = self.state();
        let term = state.term.clone()?;
        if !self.inner.enabled {
            return Some(term);
        }
        let renewed = state.renewed?;
        (renewed.elapsed() < self.inner.renew_deadline).then_some(term)
    }

    /// At shutdown: stops acting at once and, when this replica holds the lock, hands it over
    /// (the election writes an empty holder, so a follower takes over at its next try instead
    /// of waiting out the lease). Waits at most `within` for that write.
    pub async fn step_down(&self, within: Duration) {
        if !self.inner.enabled {
            return;
        }
        let mut released = self.inner.stepping_down.subscribe();
        self.inner.stepping_down.send_replace(true);
        // The election answers by clearing the term after its release write (or at once when
        // it did not hold the lock).
        let cleared = async {
            loop {
                if self.state().term.is_none() {
                    return;
                }
                if released.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(within, cleared).await;
    }

    fn stepping_down(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.stepping_down.subscribe()
    }

    /// The election released the lock (or gave up trying) at shutdown.
    fn released(&self) {
        self.lost();
        // Wakes `step_down`.
        self.inner.stepping_down.send_replace(true);
    }

    pub fn is_leader(&self) -> bool {
        self.current_term().is_some()
    }

    pub fn status(&self) -> LeaderStatus {
        let is_leader = self.is_leader();
        let state = self.state();
        LeaderStatus {
            enabled: self.inner.enabled,
            is_leader,
            identity: self.inner.identity.clone(),
            holder: state.holder.clone(),
            since: state.since,
            lock: self.inner.lock.clone(),
        }
    }

    /// The election saw the lock's record (holder and acquire time).
    fn observed(&self, holder: Option<String>, since: Option<DateTime<Utc>>) {
        let mut state = self.state();
        state.holder = holder;
        state.since = since;
    }

    /// The election acquired or renewed the lock with a request sent at `sent`. Returns `true`
    /// when this started a new term.
    fn renewed(&self, term: Term, sent: Instant) -> bool {
        let mut state = self.state();
        let new_term = state.term.as_ref() != Some(&term);
        state.term = Some(term);
        state.renewed = Some(sent);
        if new_term && let Some(metrics) = &self.inner.metrics {
            metrics.leader.set(1);
            metrics.leader_transitions.inc();
        }
        new_term
    }

    /// The election lost the lock (or could not renew in time).
    fn lost(&self) {
        let mut state = self.state();
        if state.term.take().is_some() {
            tracing::warn!(identity = %self.inner.identity, "lost leadership: no longer executing");
        }
        state.renewed = None;
        if let Some(metrics) = &self.inner.metrics {
            metrics.leader.set(0);
        }
    }
}

/// This replica's name: `POD_NAME` when set, else the hostname plus a random suffix (two
/// processes on one host must not share an identity).
pub fn identity(pod_name: Option<&str>) -> String {
    if let Some(name) = pod_name {
        return name.to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "engine".into());
    let suffix: u32 = rand::random();
    format!("{host}-{suffix:08x}")
}

#[cfg(test)]
mod tests;

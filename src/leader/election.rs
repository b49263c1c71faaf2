//! client-go's leader election loop over any [`LeaseLock`].

use super::lock::{LeaseLock, LockError, LockRecord};
use super::{Leadership, Term};
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// client-go's defaults.
#[derive(Debug, Clone, Copy)]
pub struct ElectionTiming {
    /// How long a follower waits, from when it saw the last renewal, before taking over.
    pub lease_duration: Duration,
    /// How long a leader may go without a successful renewal before it stops acting.
    pub renew_deadline: Duration,
    /// How often every replica reads (and the leader renews) the lock.
    pub retry_period: Duration,
}

impl Default for ElectionTiming {
    fn default() -> Self {
        ElectionTiming {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Called when this replica starts a new term (it must take over the previous holder's work).
pub type OnElected = Arc<dyn Fn(Term) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The record as last seen, and when it was first seen in that state (our clock, not the
/// holder's: clocks of two machines never decide who leads).
pub(super) struct Observation {
    record: LockRecord,
    since: Instant,
}

/// Runs the election for as long as the process lives.
pub fn spawn_election(
    lock: Arc<dyn LeaseLock>,
    leadership: Leadership,
    timing: ElectionTiming,
    on_elected: OnElected,
) {
    tokio::spawn(async move {
        let mut observed: Option<Observation> = None;
        let mut stepping_down = leadership.stepping_down();
        loop {
            if *stepping_down.borrow() {
                release(&*lock, &leadership).await;
                return;
            }
            let elected = step(&*lock, &leadership, &timing, &mut observed).await;
            if let Some(term) = elected {
                tracing::info!(identity = %term.identity, transitions = term.transitions, "elected leader");
                // Beside the loop: taking over work must never delay the next renewal.
                tokio::spawn(on_elected(term));
            }
            tokio::select! {
                _ = tokio::time::sleep(timing.retry_period) => {}
                _ = stepping_down.changed() => {}
            }
        }
    });
}

/// Hands the lock over at shutdown: when this replica still holds it, writes an empty holder
/// (compare-and-set, so a lock someone else already took is left alone).
pub(super) async fn release(lock: &dyn LeaseLock, leadership: &Leadership) {
    let me = leadership.identity().to_string();
    match lock.read().await {
        Ok(Some((record, version))) if record.holder == me => {
            let released = LockRecord {
                holder: String::new(),
                renewed_at: Utc::now(),
                ..record
            };
            match lock.replace(&released, &version).await {
                Ok(()) => tracing::info!(identity = %me, "released the leader lock at shutdown"),
                Err(error) => {
                    tracing::warn!(%error, "could not release the leader lock; it expires by itself")
                }
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "could not read the leader lock at shutdown"),
    }
    leadership.released();
}

/// One round: read the lock, then renew it (leader), take it over (expired or free), or
/// follow. Returns the new term when this round won one.
pub(super) async fn step(
    lock: &dyn LeaseLock,
    leadership: &Leadership,
    timing: &ElectionTiming,
    observed: &mut Option<Observation>,
) -> Option<Term> {
    if leadership.current_term().is_none() {
        // Not leading, or the term ran out at the renew deadline: say so (metric, log).
        leadership.lost();
    }
    let me = leadership.identity().to_string();
    let sent = Instant::now();
    let current = match lock.read().await {
        Ok(current) => current,
        Err(error) => {
            tracing::warn!(%error, "leader election: cannot read the lock");
            // Without a renewal the term simply runs out at the renew deadline.
            return None;
        }
    };
    let round = Round {
        me,
        now: Utc::now(),
        duration_secs: timing.lease_duration.as_secs() as i64,
    };
    let Some((record, version)) = current else {
        let record = round.new_term(0);
        return match lock.create(&record).await {
            Ok(()) => won(leadership, observed, record, sent),
            Err(error) => {
                log_lost_race(&error, "create");
                None
            }
        };
    };
    let seen_since = remember(leadership, observed, &record, sent);
    let mine = record.holder == round.me;
    let expired = record.holder.is_empty() || seen_since.elapsed() >= timing.lease_duration;
    if !mine && !expired {
        leadership.lost();
        return None;
    }
    let next = if mine {
        round.renewal(&record)
    } else {
        round.new_term(record.transitions + 1)
    };
    match lock.replace(&next, &version).await {
        Ok(()) => won(leadership, observed, next, sent),
        Err(error) => {
            log_lost_race(&error, if mine { "renew" } else { "take over" });
            if mine && leadership.current_term().is_none() {
                // Past the renew deadline: stop acting now (the term already ran out).
                leadership.lost();
            }
            None
        }
    }
}

/// What a round writes into the lock: this replica's identity, the wall time (shown to
/// people, never compared across machines) and the lease duration.
struct Round {
    me: String,
    now: DateTime<Utc>,
    duration_secs: i64,
}

impl Round {
    /// A term of this replica that starts now, the holder's `transitions`-th change.
    fn new_term(&self, transitions: i64) -> LockRecord {
        LockRecord {
            holder: self.me.clone(),
            acquired_at: self.now,
            renewed_at: self.now,
            duration_secs: self.duration_secs,
            transitions,
        }
    }

    /// Our own `record`, renewed now.
    fn renewal(&self, record: &LockRecord) -> LockRecord {
        LockRecord {
            renewed_at: self.now,
            duration_secs: self.duration_secs,
            ..record.clone()
        }
    }
}

/// Publishes who holds the lock, and returns since when (our clock, from the read `sent` at)
/// the record has looked exactly like this: a holder that stops renewing expires from there.
fn remember(
    leadership: &Leadership,
    observed: &mut Option<Observation>,
    record: &LockRecord,
    sent: Instant,
) -> Instant {
    leadership.observed(
        Some(record.holder.clone()).filter(|h| !h.is_empty()),
        Some(record.acquired_at),
    );
    if observed.as_ref().map(|o| &o.record) != Some(record) {
        *observed = Some(Observation {
            record: record.clone(),
            since: sent,
        });
    }
    observed.as_ref().map_or(sent, |o| o.since)
}

fn won(
    leadership: &Leadership,
    observed: &mut Option<Observation>,
    record: LockRecord,
    sent: Instant,
) -> Option<Term> {
    let term = Term {
        identity: record.holder.clone(),
        transitions: record.transitions,
    };
    leadership.observed(Some(record.holder.clone()), Some(record.acquired_at));
    *observed = Some(Observation {
        record,
        since: sent,
    });
    leadership.renewed(term.clone(), sent).then_some(term)
}

fn log_lost_race(error: &LockError, what: &str) {
    match error {
        LockError::Conflict => {
            tracing::debug!(what, "leader election: another replica wrote first")
        }
        LockError::Unavailable(why) => {
            tracing::warn!(what, %why, "leader election: lock write failed")
        }
    }
}

//! The election's safety and liveness on an in-memory lock, under tokio's paused clock.

use super::election::{ElectionTiming, Observation, step};
use super::lock::{LeaseLock, LockError, LockRecord};
use super::*;
use async_trait::async_trait;
use std::sync::Mutex as StdMutex;

/// A lock in memory with the same compare-and-set as the Lease; `down` makes it unreachable.
#[derive(Default)]
struct MemoryLock {
    record: StdMutex<Option<(LockRecord, u64)>>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl LeaseLock for MemoryLock {
    async fn read(&self) -> Result<Option<(LockRecord, String)>, LockError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LockError::Unavailable("down".into()));
        }
        let record = self.record.lock().expect("lock");
        Ok(record.as_ref().map(|(r, v)| (r.clone(), v.to_string())))
    }

    async fn create(&self, record: &LockRecord) -> Result<(), LockError> {
        let mut stored = self.record.lock().expect("lock");
        if stored.is_some() {
            return Err(LockError::Conflict);
        }
        *stored = Some((record.clone(), 1));
        Ok(())
    }

    async fn replace(&self, record: &LockRecord, version: &str) -> Result<(), LockError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(LockError::Unavailable("down".into()));
        }
        let mut stored = self.record.lock().expect("lock");
        match stored.as_mut() {
            Some((current, v)) if v.to_string() == version => {
                *current = record.clone();
                *v += 1;
                Ok(())
            }
            _ => Err(LockError::Conflict),
        }
    }
}

struct Replica {
    leadership: Leadership,
    observed: Option<Observation>,
    metrics: crate::metrics::Metrics,
}

impl Replica {
    fn new(name: &str, timing: &ElectionTiming) -> Self {
        let metrics = crate::metrics::Metrics::new();
        Replica {
            leadership: Leadership::candidate(
                name,
                "memory",
                timing.renew_deadline,
                metrics.clone(),
            ),
            observed: None,
            metrics,
        }
    }

    async fn step(&mut self, lock: &MemoryLock, timing: &ElectionTiming) -> Option<Term> {
        step(lock, &self.leadership, timing, &mut self.observed).await
    }
}

/// Two replicas on one lock: `a` took it, `b` saw it held.
async fn a_leads_b_follows() -> (ElectionTiming, MemoryLock, Replica, Replica) {
    let timing = ElectionTiming::default();
    let lock = MemoryLock::default();
    let mut a = Replica::new("a", &timing);
    let mut b = Replica::new("b", &timing);
    a.step(&lock, &timing).await.expect("a leads");
    assert_eq!(b.step(&lock, &timing).await, None);
    (timing, lock, a, b)
}

#[tokio::test(start_paused = true)]
async fn one_replica_leads_and_the_others_follow_it() {
    let timing = ElectionTiming::default();
    let lock = MemoryLock::default();
    let mut a = Replica::new("a", &timing);
    let mut b = Replica::new("b", &timing);
    let term = a.step(&lock, &timing).await.expect("a is elected");
    assert_eq!(term.identity, "a");
    assert_eq!(term.transitions, 0);
    assert_eq!(b.step(&lock, &timing).await, None);
    assert!(a.leadership.is_leader());
    assert!(!b.leadership.is_leader());
    let status = b.leadership.status();
    assert_eq!(status.holder.as_deref(), Some("a"));
    assert!(status.enabled && !status.is_leader);
    // Renewing keeps the same term: no second "elected".
    for _ in 0..20 {
        tokio::time::advance(timing.retry_period).await;
        assert_eq!(a.step(&lock, &timing).await, None);
        assert_eq!(b.step(&lock, &timing).await, None);
        assert!(a.leadership.is_leader() && !b.leadership.is_leader());
    }
}

/// The safety property: a leader that stops renewing stops acting (renew deadline, 10 s)
/// before a follower may take over (lease duration, 15 s after it saw the last renewal).
#[tokio::test(start_paused = true)]
async fn a_stalled_leader_stops_acting_before_anyone_takes_over() {
    let (timing, lock, mut a, mut b) = a_leads_b_follows().await;
    // `a` stalls (SIGSTOP, partition): it never steps again. `b` keeps looking.
    let mut waited = Duration::ZERO;
    let took_over = loop {
        tokio::time::advance(timing.retry_period).await;
        waited += timing.retry_period;
        if let Some(term) = b.step(&lock, &timing).await {
            break term;
        }
        assert!(waited < Duration::from_secs(30), "b never took over");
        if a.leadership.is_leader() {
            assert!(
                waited < timing.renew_deadline,
                "a acts past its renew deadline"
            );
        }
    };
    assert!(!a.leadership.is_leader(), "two leaders at once");
    // The gauge follows: `a` says 0 once its term ran out, `b` 1; each counted one term.
    assert_eq!(b.metrics.leader.get(), 1);
    assert_eq!(b.metrics.leader_transitions.get(), 1);
    assert_eq!(a.metrics.leader_transitions.get(), 1);
    assert!(
        waited >= timing.lease_duration,
        "taken over after {waited:?}"
    );
    assert_eq!(took_over.identity, "b");
    assert_eq!(took_over.transitions, 1);
    // `a` resumes: its renewal loses the compare-and-set and it follows.
    assert_eq!(a.step(&lock, &timing).await, None);
    assert!(!a.leadership.is_leader());
    assert_eq!(a.metrics.leader.get(), 0);
    assert_eq!(a.leadership.status().holder.as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_reach_the_lock_stops_at_the_renew_deadline() {
    let timing = ElectionTiming::default();
    let lock = MemoryLock::default();
    let mut a = Replica::new("a", &timing);
    a.step(&lock, &timing).await.expect("a leads");
    lock.down.store(true, std::sync::atomic::Ordering::SeqCst);
    tokio::time::advance(timing.renew_deadline - Duration::from_millis(1)).await;
    assert!(a.leadership.is_leader());
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!a.leadership.is_leader(), "past the renew deadline");
    // Back: it renews its own record and starts a new term of its own.
    lock.down.store(false, std::sync::atomic::Ordering::SeqCst);
    let again = a.step(&lock, &timing).await.expect("a leads again");
    assert_eq!(again.identity, "a");
}

#[test]
fn without_pod_name_two_processes_on_one_host_get_different_identities() {
    assert_eq!(identity(Some("engine-0")), "engine-0");
    assert_ne!(identity(None), identity(None));
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_steps_down_hands_over_without_waiting_out_the_lease() {
    let (timing, lock, a, mut b) = a_leads_b_follows().await;
    // Shutdown: `a` stops acting at once and writes an empty holder.
    a.leadership.inner.stepping_down.send_replace(true);
    assert!(!a.leadership.is_leader());
    super::election::release(&lock, &a.leadership).await;
    let (record, _) = lock.read().await.expect("read").expect("record");
    assert_eq!(record.holder, "");
    // The next try of `b` (one retry period, not the 15 s lease) takes it.
    tokio::time::advance(timing.retry_period).await;
    let term = b.step(&lock, &timing).await.expect("b takes over");
    assert_eq!((term.identity.as_str(), term.transitions), ("b", 1));
}

//! Rules the store enforces between concurrent writers: one active workflow per target,
//! the leader lock's compare-and-set, 403 bursts, requeues during a dequeue.

use super::*;

on_both_backends! {
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
}

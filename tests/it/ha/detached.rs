//! Detached replicas: an election on a database row, shared incidents and leases.

use super::{Replicas, fresh_database, others};
use crate::helpers::wait_for;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_replicas_elect_one_executor_store_one_incident_per_alert_and_fail_over() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let mut replicas = Replicas::start(3, &database, &[]).await;
    let leader = replicas
        .one_leader(&[0, 1, 2], Duration::from_secs(5))
        .await;
    assert_one_incident_per_alert_on_every_replica(&replicas).await;
    assert_a_split_audit_burst_is_one_incident(&replicas).await;
    assert_a_stored_lease_reaches_every_guard(&replicas, &database).await;

    // The leader dies: another replica takes over once the row goes unrenewed (15 s).
    let killed_at = Instant::now();
    replicas.kill(leader).await;
    let alive = others(3, &[leader]);
    let next = replicas.one_leader(&alive, Duration::from_secs(25)).await;
    assert_ne!(next, leader);
    assert!(killed_at.elapsed() < Duration::from_secs(25));
    let view = replicas.get(next, "/api/v1/health").await.expect("health");
    assert_eq!(
        view["leader"]["lock"],
        "database row coordination-engine-leader"
    );

    // A graceful stop (SIGTERM: a rollout, a drain) hands the lock over: the last replica
    // leads at its next try, not after the 15 s lease.
    let stopped_at = Instant::now();
    replicas.signal(next, libc::SIGTERM);
    let last = others(3, &[leader, next]);
    // Without the hand-over this takes at least the 15 s lease.
    let third = replicas.one_leader(&last, Duration::from_secs(14)).await;
    assert_eq!(third, last[0]);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(14),
        "handed over in {:?}",
        stopped_at.elapsed()
    );
}

/// Alertmanager HA peers deliver one notification to every replica at once.
async fn assert_one_incident_per_alert_on_every_replica(replicas: &Replicas) {
    let notification = crate::alertmanager::sample("alertmanager-sample.json");
    let answers = futures_util::future::join_all(
        (0..3).map(|i| replicas.post(i, "/webhooks/alertmanager", &notification)),
    )
    .await;
    let mut incident_ids = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        incident_ids.push(body["incident_ids"].clone());
    }
    assert!(
        incident_ids.windows(2).all(|w| w[0] == w[1]),
        "every replica answers with the same incident: {incident_ids:?}"
    );
    for i in 0..3 {
        let page = replicas.get(i, "/api/v1/incidents").await.expect("list");
        assert_eq!(page["total"], 1, "replica {i}: {page}");
    }
}

/// The API server's audit backend is load-balanced: a burst of 403s split over the three
/// replicas is still one burst, reported once.
async fn assert_a_split_audit_burst_is_one_incident(replicas: &Replicas) {
    let burst = crate::helpers::sample("audit", "forbidden-burst.json");
    let events = burst["items"].as_array().expect("items").clone();
    for (i, chunk) in events.chunks(2).enumerate() {
        let mut batch = burst.clone();
        batch["items"] = Value::Array(chunk.to_vec());
        let (status, body) = replicas.post(i % 3, "/webhooks/audit", &batch).await;
        assert_eq!(status, 200, "{body}");
    }
    let bursts = replicas
        .get(1, "/api/v1/incidents?source=audit")
        .await
        .expect("list");
    assert_eq!(bursts["total"], 1, "{bursts}");
    assert!(
        bursts["incidents"][0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("denied 5 times")),
        "{bursts}"
    );
}

/// A remediation lease recorded through any replica's store reaches every replica's guard
/// within its 2 s refresh: the engine may then change exactly those paths, a person may not.
async fn assert_a_stored_lease_reaches_every_guard(replicas: &Replicas, database: &str) {
    let engine = "system:serviceaccount:self-healing-platform:coordination-engine";
    for i in 0..3 {
        assert!(!replicas.allows(i, engine).await, "no lease yet");
    }
    let store = coordination_engine::store::SqlStore::connect_postgres(
        database,
        None,
        Duration::from_secs(5),
        coordination_engine::metrics::Metrics::new(),
    )
    .await
    .expect("store");
    let now = chrono::Utc::now();
    coordination_engine::store::Store::insert_lease(
        &store,
        &coordination_engine::store::LeaseRecord {
            id: "lease-ha".into(),
            incident_id: "inc-ha".into(),
            workflow_id: "wf-ha".into(),
            object: "Deployment prod/cart".into(),
            object_uid: "uid-cart".into(),
            paths: vec!["/spec/replicas".into()],
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
        },
    )
    .await
    .expect("lease");
    let recorded = Instant::now();
    for i in 0..3 {
        wait_for(
            "every replica's guard to honour the lease",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || async { replicas.allows(i, engine).await.then_some(()) },
        )
        .await;
        assert!(
            !replicas.allows(i, "alice").await,
            "a person is still refused"
        );
    }
    eprintln!("lease seen by every guard after {:?}", recorded.elapsed());
}

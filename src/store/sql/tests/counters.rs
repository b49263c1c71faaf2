//! The per-namespace incident counters: they follow every write and agree with a row scan.

use super::*;

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
}

//! One backend's measurement: three ways of writing up to `rows` incidents, then the reads
//! over them.

use crate::common::{self, percentile};
use chrono::{DateTime, Utc};
use coordination_engine::incident::{Incident, IncidentStatus, Severity};
use coordination_engine::store::{IncidentFilter, PageRequest, PageStart, SqlStore, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) struct Sizes {
    pub(crate) rows: usize,
    pub(crate) single: usize,
    pub(crate) concurrent_tasks: usize,
    pub(crate) concurrent_each: usize,
    pub(crate) query_runs: usize,
}

pub(crate) const FULL: Sizes = Sizes {
    rows: 100_000,
    single: 2_000,
    concurrent_tasks: 50,
    concurrent_each: 40,
    query_runs: 300,
};
pub(crate) const SMOKE: Sizes = Sizes {
    rows: 2_000,
    single: 50,
    concurrent_tasks: 5,
    concurrent_each: 5,
    query_runs: 5,
};

async fn time_query<F, Fut>(runs: usize, mut run: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        run().await;
        samples.push(started.elapsed());
    }
    (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    )
}

/// What one backend measured, for the side-by-side tables.
pub(crate) struct Measured {
    /// (what, incidents/s)
    pub(crate) writes: Vec<(String, f64)>,
    /// (what, p50, p99)
    pub(crate) reads: Vec<(String, Duration, Duration)>,
}

pub(crate) fn page(limit: i64, start: PageStart) -> PageRequest {
    PageRequest { limit, start }
}

pub(crate) fn filtered() -> IncidentFilter {
    IncidentFilter {
        // Incident i is active when i % 4 == 0 and in team-(i % 50): team-8 holds one active
        // incident in 100 (an odd team would hold none, and a page of nothing measures little).
        namespace: Some("team-8".into()),
        statuses: vec![IncidentStatus::Active],
        ..Default::default()
    }
}

/// The API's `GET /api/v1/incidents?namespace=…&status=active`: the page and its summary,
/// queried at once as the handler does.
pub(crate) async fn page_and_summary(store: &SqlStore, filter: &IncidentFilter) {
    let list = page(50, PageStart::Offset(0));
    let (a, b) = tokio::join!(
        store.list_incidents(filter, &list),
        store.summarize_incidents(filter)
    );
    a.expect("list");
    b.expect("summary");
}

/// Fills `store` with `sizes.rows` incidents (timing three ways of writing), then times the
/// reads over them. `settle` runs in between (PostgreSQL: the ANALYZE autovacuum would run).
pub(crate) async fn measure(
    store: Arc<SqlStore>,
    sizes: &Sizes,
    now: DateTime<Utc>,
    settle: impl std::future::Future<Output = ()>,
) -> Measured {
    // 1. Sequential single inserts: one transaction (one fsync) per incident.
    let single_rate = sequential_inserts(&store, sizes.single, now).await;
    // 2. Concurrent single inserts (the API under load): on SQLite commits queue on the one
    // writer; on PostgreSQL they share the pool.
    let concurrent_rate = concurrent_inserts(&store, sizes, now).await;
    // 3. Batches of 100 in one transaction each, up to `rows` incidents in total.
    let concurrent = sizes.concurrent_tasks * sizes.concurrent_each;
    let batch_rate = batched_inserts(&store, sizes.single + concurrent, sizes.rows, now).await;

    settle.await;

    // 4. Reads over `rows` incidents.
    let mut reads = page_reads(&store, sizes).await;
    reads.extend(summary_reads(&store, sizes).await);
    Measured {
        writes: vec![
            (
                "single insert, one commit each, sequential".into(),
                single_rate,
            ),
            (
                format!("single insert, {} concurrent tasks", sizes.concurrent_tasks),
                concurrent_rate,
            ),
            ("batches of 100, one commit per batch".into(), batch_rate),
        ],
        reads,
    }
}

/// Incidents 0..`single`, one `insert_incident` after the other; incidents/s.
async fn sequential_inserts(store: &SqlStore, single: usize, now: DateTime<Utc>) -> f64 {
    let started = Instant::now();
    for i in 0..single {
        store
            .insert_incident(&common::incident(i, FULL.rows, now))
            .await
            .expect("insert");
    }
    single as f64 / started.elapsed().as_secs_f64()
}

/// `concurrent_tasks` tasks at once, each inserting `concurrent_each` incidents one by one;
/// incidents/s.
async fn concurrent_inserts(store: &Arc<SqlStore>, sizes: &Sizes, now: DateTime<Utc>) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..sizes.concurrent_tasks {
        let (store, single, each) = (store.clone(), sizes.single, sizes.concurrent_each);
        tasks.push(tokio::spawn(async move {
            for j in 0..each {
                let i = single + t * each + j;
                store
                    .insert_incident(&common::incident(i, FULL.rows, now))
                    .await
                    .expect("insert");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let concurrent = sizes.concurrent_tasks * sizes.concurrent_each;
    concurrent as f64 / started.elapsed().as_secs_f64()
}

/// Incidents `from`..`rows` in batches of 100, one transaction each; incidents/s.
async fn batched_inserts(store: &SqlStore, from: usize, rows: usize, now: DateTime<Utc>) -> f64 {
    let mut inserted = from;
    let started = Instant::now();
    while inserted < rows {
        let end = (inserted + 100).min(rows);
        let batch: Vec<Incident> = (inserted..end)
            .map(|i| common::incident(i, FULL.rows, now))
            .collect();
        store.insert_incidents(&batch).await.expect("batch");
        inserted = end;
    }
    (inserted - from) as f64 / started.elapsed().as_secs_f64()
}

/// Pages of 50: filtered two ways, unfiltered, and unfiltered from a cursor in the middle.
async fn page_reads(store: &SqlStore, sizes: &Sizes) -> Vec<(String, Duration, Duration)> {
    let filtered = filtered();
    let by_severity = IncidentFilter {
        severity: Some(Severity::High),
        ..Default::default()
    };
    let everything = IncidentFilter::default();
    let deep_cursor = store
        .list_incidents(
            &everything,
            &page(50, PageStart::Offset((sizes.rows / 2) as i64)),
        )
        .await
        .expect("list")
        .next
        .expect("there is a next page");

    let mut reads = Vec::new();
    for (name, filter, start) in [
        (
            "page of 50, namespace + status=active",
            &filtered,
            PageStart::Offset(0),
        ),
        (
            "page of 50, severity=high",
            &by_severity,
            PageStart::Offset(0),
        ),
        ("page of 50, no filter", &everything, PageStart::Offset(0)),
        (
            "page of 50, no filter, cursor in the middle",
            &everything,
            deep_cursor.clone(),
        ),
    ] {
        let (p50, p99) = time_query(sizes.query_runs, || async {
            store
                .list_incidents(filter, &page(50, start.clone()))
                .await
                .expect("list");
        })
        .await;
        reads.push((name.to_string(), p50, p99));
    }
    reads
}

/// The summaries (filtered and not), then the API's page + summary as the handler asks them.
async fn summary_reads(store: &SqlStore, sizes: &Sizes) -> Vec<(String, Duration, Duration)> {
    let filtered = filtered();
    let everything = IncidentFilter::default();
    let mut reads = Vec::new();
    for (name, filter) in [
        ("summary (counts), namespace + status=active", &filtered),
        ("summary (counts), no filter", &everything),
    ] {
        let (p50, p99) = time_query(sizes.query_runs, || async {
            store.summarize_incidents(filter).await.expect("summary");
        })
        .await;
        reads.push((name.to_string(), p50, p99));
    }
    let (p50, p99) = time_query(sizes.query_runs, || page_and_summary(store, &filtered)).await;
    reads.push((
        "GET /api/v1/incidents?namespace=…&status=active (page + summary)".into(),
        p50,
        p99,
    ));
    reads
}

//! Store benchmark: `cargo bench --bench store` (writes docs/perf.md).
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version and writes nothing,
//! so CI proves it still works without spending minutes on it.

mod common;

use chrono::{Duration as ChronoDuration, Utc};
use common::{ms, percentile};
use coordination_engine::incident::{Incident, IncidentStatus, Severity, Source, Target};
use coordination_engine::metrics::Metrics;
use coordination_engine::store::{IncidentFilter, PageRequest, PageStart, SqlStore, Store};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Sizes {
    rows: usize,
    single: usize,
    concurrent_tasks: usize,
    concurrent_each: usize,
    query_runs: usize,
}

const FULL: Sizes = Sizes {
    rows: 100_000,
    single: 2_000,
    concurrent_tasks: 50,
    concurrent_each: 40,
    query_runs: 300,
};
const SMOKE: Sizes = Sizes {
    rows: 2_000,
    single: 50,
    concurrent_tasks: 5,
    concurrent_each: 5,
    query_runs: 5,
};

const NAMESPACES: usize = 50;

fn incident(i: usize, now: chrono::DateTime<Utc>) -> Incident {
    let severity = Severity::ALL[i % Severity::ALL.len()];
    let created = now - ChronoDuration::seconds((FULL.rows - i % FULL.rows) as i64);
    let mut incident = Incident::new(
        Source::Alertmanager,
        format!("KubePodCrashLooping {i}"),
        severity,
        created,
    );
    incident.namespace = Some(format!("team-{}", i % NAMESPACES));
    incident.target = Some(Target {
        kind: "Deployment".into(),
        name: format!("app-{i}"),
    });
    incident.issue_type = "crash_loop".into();
    incident
        .labels
        .insert("alertname".into(), "KubePodCrashLooping".into());
    incident
        .labels
        .insert("pod".into(), format!("app-{i}-7d9f8-abcde"));
    incident.description = "Pod is restarting 3 times / 5 minutes.".into();
    // A realistic mix: most incidents are closed.
    if i % 4 != 0 {
        incident.status = IncidentStatus::Resolved;
        incident.resolved_at = Some(created + ChronoDuration::minutes(5));
    }
    incident
}

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

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        SqlStore::open(
            dir.path(),
            std::time::Duration::from_secs(5),
            Metrics::new(),
        )
        .await
        .expect("store"),
    );
    let now = Utc::now();
    let mut report = String::new();

    // 1. Sequential single inserts: one transaction (one fsync) per incident.
    let started = Instant::now();
    for i in 0..sizes.single {
        store
            .insert_incident(&incident(i, now))
            .await
            .expect("insert");
    }
    let single_rate = sizes.single as f64 / started.elapsed().as_secs_f64();

    // 2. Concurrent single inserts (the API under load): commits queue on the one writer.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..sizes.concurrent_tasks {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..sizes.concurrent_each {
                let i = sizes.single + t * sizes.concurrent_each + j;
                store
                    .insert_incident(&incident(i, now))
                    .await
                    .expect("insert");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let concurrent = sizes.concurrent_tasks * sizes.concurrent_each;
    let concurrent_rate = concurrent as f64 / started.elapsed().as_secs_f64();

    // 3. Batches of 100 in one transaction each, up to `rows` incidents in total.
    let mut inserted = sizes.single + concurrent;
    let started = Instant::now();
    let batched_from = inserted;
    while inserted < sizes.rows {
        let end = (inserted + 100).min(sizes.rows);
        let batch: Vec<Incident> = (inserted..end).map(|i| incident(i, now)).collect();
        store.insert_incidents(&batch).await.expect("batch");
        inserted = end;
    }
    let batch_rate = (inserted - batched_from) as f64 / started.elapsed().as_secs_f64();

    // 4. Reads over `rows` incidents.
    let page = |limit, start| PageRequest { limit, start };
    let filtered = IncidentFilter {
        namespace: Some("team-7".into()),
        statuses: vec![IncidentStatus::Active],
        ..Default::default()
    };
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

    let mut rows = Vec::new();
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
        rows.push((name.to_string(), p50, p99));
    }
    for (name, filter) in [
        ("summary (counts), namespace + status=active", &filtered),
        ("summary (counts), no filter", &everything),
    ] {
        let (p50, p99) = time_query(sizes.query_runs, || async {
            store.summarize_incidents(filter).await.expect("summary");
        })
        .await;
        rows.push((name.to_string(), p50, p99));
    }
    let (p50, p99) = time_query(sizes.query_runs, || async {
        let list = page(50, PageStart::Offset(0));
        let (a, b) = tokio::join!(
            store.list_incidents(&filtered, &list),
            store.summarize_incidents(&filtered)
        );
        a.expect("list");
        b.expect("summary");
    })
    .await;
    rows.push((
        "GET /api/v1/incidents?namespace=…&status=active (page + summary)".into(),
        p50,
        p99,
    ));

    let _ = writeln!(report, "## Store (SQLite, WAL, synchronous=FULL)\n");
    let _ = writeln!(
        report,
        "{} incidents; 3 of 4 resolved, spread over {NAMESPACES} namespaces and 5 severities.\n",
        sizes.rows
    );
    let _ = writeln!(report, "| write | throughput |\n|---|---|");
    let _ = writeln!(
        report,
        "| single insert, one commit each, sequential | {single_rate:.0} incidents/s |"
    );
    let _ = writeln!(
        report,
        "| single insert, {} concurrent tasks | {concurrent_rate:.0} incidents/s |",
        sizes.concurrent_tasks
    );
    let _ = writeln!(
        report,
        "| batches of 100, one commit per batch | {batch_rate:.0} incidents/s |\n"
    );
    let _ = writeln!(
        report,
        "| read ({} runs each) | p50 | p99 |\n|---|---|---|",
        sizes.query_runs
    );
    for (name, p50, p99) in &rows {
        let _ = writeln!(report, "| {name} | {} | {} |", ms(*p50), ms(*p99));
    }
    print!("{report}");

    if full {
        common::write_section("store", "cargo bench --bench store", &report);
    }
}

//! Store benchmark: `cargo bench --bench store` (writes docs/perf.md). SQLite, and PostgreSQL
//! beside it when `TEST_DATABASE_URL` names a server (`eval "$(./scripts/test-postgres.sh
//! start)"`), including three replicas reading one database at once.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version and writes nothing,
//! so CI proves it still works without spending minutes on it.

mod common;

use chrono::{DateTime, Utc};
use common::{ms, percentile};
use coordination_engine::incident::{Incident, IncidentStatus, Severity};
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
struct Measured {
    /// (what, incidents/s)
    writes: Vec<(String, f64)>,
    /// (what, p50, p99)
    reads: Vec<(String, Duration, Duration)>,
}

fn page(limit: i64, start: PageStart) -> PageRequest {
    PageRequest { limit, start }
}

fn filtered() -> IncidentFilter {
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
async fn page_and_summary(store: &SqlStore, filter: &IncidentFilter) {
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
async fn measure(
    store: Arc<SqlStore>,
    sizes: &Sizes,
    now: DateTime<Utc>,
    settle: impl std::future::Future<Output = ()>,
) -> Measured {
    let incident = |i| common::incident(i, FULL.rows, now);
    // 1. Sequential single inserts: one transaction (one fsync) per incident.
    let started = Instant::now();
    for i in 0..sizes.single {
        store.insert_incident(&incident(i)).await.expect("insert");
    }
    let single_rate = sizes.single as f64 / started.elapsed().as_secs_f64();

    // 2. Concurrent single inserts (the API under load): on SQLite commits queue on the one
    // writer; on PostgreSQL they share the pool.
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
    let concurrent_rate = concurrent as f64 / started.elapsed().as_secs_f64();

    // 3. Batches of 100 in one transaction each, up to `rows` incidents in total.
    let mut inserted = sizes.single + concurrent;
    let started = Instant::now();
    let batched_from = inserted;
    while inserted < sizes.rows {
        let end = (inserted + 100).min(sizes.rows);
        let batch: Vec<Incident> = (inserted..end).map(incident).collect();
        store.insert_incidents(&batch).await.expect("batch");
        inserted = end;
    }
    let batch_rate = (inserted - batched_from) as f64 / started.elapsed().as_secs_f64();

    settle.await;

    // 4. Reads over `rows` incidents.
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
    let (p50, p99) = time_query(sizes.query_runs, || page_and_summary(&store, &filtered)).await;
    reads.push((
        "GET /api/v1/incidents?namespace=…&status=active (page + summary)".into(),
        p50,
        p99,
    ));
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

/// Three replicas reading one PostgreSQL database at once: three stores (three pools, as three
/// engine processes hold), `readers` tasks on each, every task running `runs` queries.
/// Returns (what, readers in all, queries/s, p50, p99).
async fn replicas_reading(
    url: &str,
    sizes: &Sizes,
) -> Vec<(String, usize, f64, Duration, Duration)> {
    let mut stores = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(
            SqlStore::connect_postgres(url, None, Duration::from_secs(5), Metrics::new())
                .await
                .expect("replica store"),
        ));
    }
    let mut rows = Vec::new();
    for readers in [1, 4] {
        for query in [
            "page of 50, no filter",
            "page of 50, namespace + status=active",
            "GET /api/v1/incidents?namespace=…&status=active (page + summary)",
        ] {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for store in &stores {
                for _ in 0..readers {
                    let (store, runs) = (store.clone(), sizes.query_runs);
                    // Full pages at 100 000 incidents (1 000 active in team-8).
                    let want = 50.min(sizes.rows / 100);
                    tasks.push(tokio::spawn(async move {
                        let filter = match query {
                            "page of 50, no filter" => IncidentFilter::default(),
                            _ => filtered(),
                        };
                        let mut samples = Vec::with_capacity(runs);
                        for _ in 0..runs {
                            let sent = Instant::now();
                            if query.starts_with("GET") {
                                page_and_summary(&store, &filter).await;
                            } else {
                                let rows = store
                                    .list_incidents(&filter, &page(50, PageStart::Offset(0)))
                                    .await
                                    .expect("list");
                                assert!(rows.items.len() >= want, "a page of {want} or more");
                            }
                            samples.push(sent.elapsed());
                        }
                        samples
                    }));
                }
            }
            let mut samples = Vec::new();
            for task in tasks {
                samples.extend(task.await.expect("reader"));
            }
            let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
            rows.push((
                query.to_string(),
                3 * readers,
                rate,
                percentile(&mut samples, 0.5),
                percentile(&mut samples, 0.99),
            ));
        }
    }
    for store in stores {
        store.close().await;
    }
    rows
}

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let now = Utc::now();
    let mut measured = Vec::new();
    let mut postgres = None;
    for backend in common::backends().await {
        let dir = tempfile::tempdir().expect("temp dir");
        let busy = Duration::from_secs(5);
        let store = match backend.url() {
            None => SqlStore::open(dir.path(), busy, Metrics::new()).await,
            Some(url) => SqlStore::connect_postgres(url, None, busy, Metrics::new()).await,
        }
        .expect("store");
        let store = Arc::new(store);
        eprintln!("measuring {}", backend.name());
        let settle = async {
            if let Some(url) = backend.url() {
                common::analyze(url).await;
            }
        };
        measured.push((
            backend.name(),
            measure(store.clone(), &sizes, now, settle).await,
        ));
        store.close().await;
        if let Some(url) = backend.url() {
            postgres = Some((
                common::describe_postgres(url).await,
                replicas_reading(url, &sizes).await,
            ));
        }
    }

    let mut report = String::from("## Store\n\n");
    let _ = writeln!(
        report,
        "{} incidents; 3 of 4 resolved, spread over {} namespaces and 5 severities. SQLite: WAL, \
         `synchronous=FULL`, a file in a temp dir. {}\n",
        sizes.rows,
        common::NAMESPACES,
        match &postgres {
            Some((described, _)) => format!(
                "{described}; one pool of 10 connections (the store's default). The reads \
                     run after an `ANALYZE`, as autovacuum runs one within a minute of such a \
                     load (without it the planner, with no statistics yet for the fresh table, \
                     sorted the 1 000 active incidents of team-8 for each page: 27 ms)."
            ),
            None => "PostgreSQL: not measured (`TEST_DATABASE_URL` unset).".into(),
        }
    );
    let names: Vec<&str> = measured.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(
        report,
        "| write (incidents/s) | {} |\n|---|{}",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for (row, (what, _)) in measured[0].1.writes.iter().enumerate() {
        let cells: Vec<String> = measured
            .iter()
            .map(|(_, m)| format!("{:.0}", m.writes[row].1))
            .collect();
        let _ = writeln!(report, "| {what} | {} |", cells.join(" | "));
    }
    let headers: Vec<String> = names
        .iter()
        .map(|name| format!("{name} p50 | {name} p99"))
        .collect();
    let _ = writeln!(
        report,
        "\n| read ({} runs each) | {} |\n|---|{}",
        sizes.query_runs,
        headers.join(" | "),
        "---|---|".repeat(names.len())
    );
    for (row, (what, _, _)) in measured[0].1.reads.iter().enumerate() {
        let cells: Vec<String> = measured
            .iter()
            .map(|(_, m)| format!("{} | {}", ms(m.reads[row].1), ms(m.reads[row].2)))
            .collect();
        let _ = writeln!(report, "| {what} | {} |", cells.join(" | "));
    }
    if let Some((_, rows)) = &postgres {
        let _ = writeln!(
            report,
            "\n### Three replicas reading one PostgreSQL database\n\nThree stores on the \
             database above (three pools of 10 connections, as three engine processes hold), \
             all querying at once; each reader runs {} queries back to back.\n",
            sizes.query_runs
        );
        let _ = writeln!(
            report,
            "| query | readers (3 replicas) | queries/s | p50 | p99 |\n|---|---|---|---|---|"
        );
        for (what, readers, rate, p50, p99) in rows {
            let _ = writeln!(
                report,
                "| {what} | {readers} | {rate:.0} | {} | {} |",
                ms(*p50),
                ms(*p99)
            );
        }
    }
    print!("{report}");

    if full {
        common::write_section("store", "cargo bench --bench store", &report);
    }
}

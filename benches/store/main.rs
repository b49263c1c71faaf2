//! Store benchmark: `cargo bench --bench store` (writes docs/perf.md). SQLite, and PostgreSQL
//! beside it when `TEST_DATABASE_URL` names a server (`eval "$(./scripts/test-postgres.sh
//! start)"`), including three replicas reading one database at once.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version and writes nothing,
//! so CI proves it still works without spending minutes on it.

#[path = "../common/mod.rs"]
mod common;
mod measure;
mod replicas;

use chrono::Utc;
use common::ms;
use coordination_engine::metrics::Metrics;
use coordination_engine::store::SqlStore;
use measure::{FULL, Measured, SMOKE, Sizes, measure};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// PostgreSQL's description and the three replicas' rows (what, readers, queries/s, p50, p99).
type Postgres = (String, Vec<(String, usize, f64, Duration, Duration)>);

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full { FULL } else { SMOKE };
    let now = Utc::now();
    let mut measured = Vec::new();
    let mut postgres = None;
    for backend in common::backends().await {
        measured.push((backend.name(), measure_backend(&backend, &sizes, now).await));
        if let Some(url) = backend.url() {
            postgres = Some((
                common::describe_postgres(url).await,
                replicas::replicas_reading(url, &sizes).await,
            ));
        }
    }

    let mut report = String::from("## Store\n\n");
    intro(&sizes, postgres.as_ref(), &mut report);
    write_table(&measured, &mut report);
    read_table(&sizes, &measured, &mut report);
    if let Some((_, rows)) = &postgres {
        replicas_table(&sizes, rows, &mut report);
    }
    print!("{report}");

    if full {
        common::write_section("store", "cargo bench --bench store", &report);
    }
}

/// Opens a store on `backend` (SQLite in a temp dir), measures it, closes it.
async fn measure_backend(
    backend: &common::Backend,
    sizes: &Sizes,
    now: chrono::DateTime<Utc>,
) -> Measured {
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
    let measured = measure(store.clone(), sizes, now, settle).await;
    store.close().await;
    measured
}

/// The paragraph under the heading: the data, SQLite's settings and PostgreSQL's.
fn intro(sizes: &Sizes, postgres: Option<&Postgres>, report: &mut String) {
    let _ = writeln!(
        report,
        "{} incidents; 3 of 4 resolved, spread over {} namespaces and 5 severities. SQLite: WAL, \
         `synchronous=FULL`, a file in a temp dir. {}\n",
        sizes.rows,
        common::NAMESPACES,
        match postgres {
            Some((described, _)) => format!(
                "{described}; one pool of 10 connections (the store's default). The reads \
                     run after an `ANALYZE`, as autovacuum runs one within a minute of such a \
                     load (without it the planner, with no statistics yet for the fresh table, \
                     sorted the 1 000 active incidents of team-8 for each page: 27 ms)."
            ),
            None => "PostgreSQL: not measured (`TEST_DATABASE_URL` unset).".into(),
        }
    );
}

/// Incidents/s of each way of writing, one column per store.
fn write_table(measured: &[(&str, Measured)], report: &mut String) {
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
}

/// p50 and p99 of each read, two columns per store.
fn read_table(sizes: &Sizes, measured: &[(&str, Measured)], report: &mut String) {
    let names: Vec<&str> = measured.iter().map(|(name, _)| *name).collect();
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
}

/// The "Three replicas reading one PostgreSQL database" subsection.
fn replicas_table(
    sizes: &Sizes,
    rows: &[(String, usize, f64, Duration, Duration)],
    report: &mut String,
) {
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

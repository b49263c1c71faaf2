//! Alertmanager intake benchmark: `cargo bench --bench intake` (writes docs/perf.md).
//!
//! The real server in-process (TLS on, SQLite with synchronous=FULL; PostgreSQL too when
//! `TEST_DATABASE_URL` names a server, then also three servers on one database), notifications
//! posted over HTTPS with keep-alive, each answered only after its commit. Under `cargo test`
//! it runs a small smoke version and writes nothing.

#[path = "../common/mod.rs"]
mod common;
mod load;
mod replicas;

use common::{Backend, ms};
use coordination_engine::store::testing::fresh_postgres_database;
use load::{ALERTMANAGER, Timed, audit_batches, notifications, post_sequentially};
use std::fmt::Write;

const AUDIT_SAMPLES: [(&str, &str); 2] = [
    ("drift (each event an incident)", "kubectl-scale.json"),
    ("ArgoCD syncs (ignored)", "argocd-sync.json"),
];

/// One server on `backend`: the alert plan, then the audit batches.
async fn one_server(
    backend: &Backend,
    plan: &[(usize, usize)],
    batches: usize,
) -> (Vec<Timed>, Vec<Timed>) {
    let server = common::spawn_server(backend.url(), "bench").await;
    let mut next_batch = 0;
    let mut alerts = Vec::new();
    for &(size, count) in plan {
        let bodies = notifications(&mut next_batch, size, count);
        alerts.push(post_sequentially(&server, ALERTMANAGER, bodies, size * count).await);
    }
    // Audit batches: 500 RequestResponse events each (kubectl patches of a managed Deployment,
    // so every event is judged through the full drift path and becomes an incident), and the
    // same with ignored events (ArgoCD's own syncs), the common case on a busy API server.
    let mut audit = Vec::new();
    let mut next_id = 0u64;
    for (_, sample) in AUDIT_SAMPLES {
        let bodies = audit_batches(sample, batches, &mut next_id);
        audit.push(post_sequentially(&server, "/webhooks/audit", bodies, 500 * batches).await);
    }
    server.stop().await;
    (alerts, audit)
}

/// What one server measured on a store: its name, the alert rows and the audit rows.
type Measured = Vec<(&'static str, (Vec<Timed>, Vec<Timed>))>;

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let plan: &[(usize, usize)] = if full {
        &[(1, 1000), (100, 200), (1000, 30)]
    } else {
        &[(1, 5), (100, 2), (1000, 1)]
    };
    let batches = if full { 40 } else { 2 };
    let mut measured = Vec::new();
    let mut postgres = None;
    for backend in common::backends().await {
        eprintln!("measuring {}", backend.name());
        measured.push((backend.name(), one_server(&backend, plan, batches).await));
        if let Some(url) = backend.url() {
            postgres = Some(common::describe_postgres(url).await);
        }
    }
    let replicas = match &postgres {
        Some(_) => {
            let url = fresh_postgres_database().await.expect("server");
            let (per_row, rows, runs) = if full {
                (300, 100_000, 300)
            } else {
                (6, 2_000, 5)
            };
            Some(replicas::three_replicas(&url, per_row, rows, runs).await)
        }
        None => None,
    };

    let mut report = alert_section(plan, &measured, postgres.as_deref());
    audit_section(batches, &measured, &mut report);
    if let Some(section) = replicas {
        let _ = write!(report, "\n{section}");
    }
    print!("{report}");
    if full {
        common::write_section("intake", "cargo bench --bench intake", &report);
    }
}

/// The "Alertmanager intake" heading, paragraph and table: one row per plan entry and store.
fn alert_section(plan: &[(usize, usize)], measured: &Measured, postgres: Option<&str>) -> String {
    let mut report = String::from("## Alertmanager intake\n\n");
    let _ = writeln!(
        report,
        "One server, one sender, sequential notifications of new alerts (each alert a new \
         incident), HTTPS with keep-alive; a notification is answered after its transaction is \
         on disk. SQLite: WAL, `synchronous=FULL`. {}\n",
        match postgres {
            Some(described) => format!("{described}."),
            None => "PostgreSQL: not measured (`TEST_DATABASE_URL` unset).".into(),
        }
    );
    let _ = writeln!(
        report,
        "| alerts per notification | notifications | store | alerts/s committed | p50 per notification | p99 per notification |\n|---|---|---|---|---|---|"
    );
    for (row, &(size, count)) in plan.iter().enumerate() {
        for (name, (alerts, _)) in measured {
            let t = &alerts[row];
            let _ = writeln!(
                report,
                "| {size} | {count} | {name} | {:.0} | {} | {} |",
                t.rate,
                ms(t.p50),
                ms(t.p99)
            );
        }
    }
    report
}

/// The "Audit intake" heading, paragraph and table: one row per sample and store.
fn audit_section(batches: usize, measured: &Measured, report: &mut String) {
    let _ = writeln!(
        report,
        "\n## Audit intake\n\nBatches of 500 `RequestResponse` events (as the API server's webhook \
         backend batches them), one sender, HTTPS keep-alive; answered after the commit.\n"
    );
    let _ = writeln!(
        report,
        "| events | batches | store | events/s committed | p50 per batch | p99 per batch |\n|---|---|---|---|---|---|"
    );
    for (row, (label, _)) in AUDIT_SAMPLES.iter().enumerate() {
        for (name, (_, audit)) in measured {
            let t = &audit[row];
            let _ = writeln!(
                report,
                "| {label} | {batches} | {name} | {:.0} | {} | {} |",
                t.rate,
                ms(t.p50),
                ms(t.p99)
            );
        }
    }
}

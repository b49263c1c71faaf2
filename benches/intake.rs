//! Alertmanager intake benchmark: `cargo bench --bench intake` (writes docs/perf.md).
//!
//! The real server in-process (TLS on, SQLite with synchronous=FULL; PostgreSQL too when
//! `TEST_DATABASE_URL` names a server, then also three servers on one database), notifications
//! posted over HTTPS with keep-alive, each answered only after its commit. Under `cargo test`
//! it runs a small smoke version and writes nothing.

mod common;

use common::{Backend, Server, ms, percentile};
use coordination_engine::incident::Incident;
use coordination_engine::metrics::Metrics;
use coordination_engine::store::testing::fresh_postgres_database;
use coordination_engine::store::{SqlStore, Store};
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn notification(batch: usize, size: usize) -> Value {
    let alerts: Vec<Value> = (0..size)
        .map(|i| {
            json!({
                "status": "firing",
                "labels": {"alertname": "KubePodCrashLooping", "namespace": format!("team-{}", i % 50),
                           "pod": format!("app-{batch}-{i}"), "severity": "warning"},
                "annotations": {"summary": "Pod is crash looping", "runbook_url": "https://runbooks.example/crashloop"},
                "startsAt": "2026-11-23T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local/graph",
                "fingerprint": format!("{:08x}{:08x}", batch, i),
            })
        })
        .collect();
    json!({"version": "4", "status": "firing", "receiver": "engine", "groupKey": "{}", "alerts": alerts,
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093"})
}

/// Posts one body with the token; the time until the 200 (sent after the commit).
async fn post_committed(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Duration {
    let sent = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status();
    let answer = response.bytes().await.expect("body");
    let elapsed = sent.elapsed();
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&answer));
    elapsed
}

/// Throughput and latency of one measurement.
struct Timed {
    /// Items (alerts, events, requests) per second.
    rate: f64,
    p50: Duration,
    p99: Duration,
}

impl Timed {
    fn new(items: usize, elapsed: Duration, samples: &mut [Duration]) -> Self {
        Timed {
            rate: items as f64 / elapsed.as_secs_f64(),
            p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
        }
    }
}

/// Notifications of `size` new alerts, numbered on from `next_batch` (fingerprints stay
/// distinct within a database).
fn notifications(next_batch: &mut usize, size: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            *next_batch += 1;
            serde_json::to_vec(&notification(*next_batch, size)).expect("json")
        })
        .collect()
}

/// Posts `bodies` one after the other to `url`.
async fn post_sequentially(
    server: &Server,
    path: &str,
    bodies: Vec<Vec<u8>>,
    items: usize,
) -> Timed {
    let url = format!("{}{path}", server.base);
    let mut samples = Vec::with_capacity(bodies.len());
    let started = Instant::now();
    for body in bodies {
        samples.push(post_committed(&server.client, &url, body).await);
    }
    Timed::new(items, started.elapsed(), &mut samples)
}

/// Audit batches of 500 `RequestResponse` events copied from `sample`, numbered on from
/// `next_id`.
fn audit_batches(sample: &str, batches: usize, next_id: &mut u64) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/audit")
        .join(sample);
    let loaded: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("json");
    let template = loaded["items"][0].clone();
    (0..batches)
        .map(|_| {
            let items: Vec<Value> = (0..500)
                .map(|_| {
                    *next_id += 1;
                    let mut e = template.clone();
                    e["auditID"] = json!(format!("{:032x}", *next_id));
                    e
                })
                .collect();
            serde_json::to_vec(
                &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
            )
            .expect("json")
        })
        .collect()
}

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

const ALERTMANAGER: &str = "/webhooks/alertmanager";

/// Runs `senders` tasks per server at once, each posting its own share of `bodies` (or, with
/// `to_all`, every server receiving every body at once, as Alertmanager HA peers deliver).
/// `items`: what counts as done (distinct alerts committed).
async fn post_to_replicas(
    servers: &[Arc<Server>],
    senders: usize,
    bodies: Vec<Vec<u8>>,
    to_all: bool,
    items: usize,
) -> Timed {
    let started = Instant::now();
    let mut tasks = Vec::new();
    if to_all {
        let bodies = Arc::new(bodies);
        for server in servers {
            let (server, bodies) = (server.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let url = format!("{}{ALERTMANAGER}", server.base);
                let mut samples = Vec::new();
                for body in bodies.iter() {
                    samples.push(post_committed(&server.client, &url, body.clone()).await);
                }
                samples
            }));
        }
    } else {
        let lanes = servers.len() * senders;
        let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); lanes];
        for (i, body) in bodies.into_iter().enumerate() {
            shares[i % lanes].push(body);
        }
        for (lane, share) in shares.into_iter().enumerate() {
            let server = servers[lane % servers.len()].clone();
            tasks.push(tokio::spawn(async move {
                let url = format!("{}{ALERTMANAGER}", server.base);
                let mut samples = Vec::new();
                for body in share {
                    samples.push(post_committed(&server.client, &url, body).await);
                }
                samples
            }));
        }
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("sender"));
    }
    Timed::new(items, started.elapsed(), &mut samples)
}

/// `GET path` on every server at once, `readers` clients per server, `runs` requests each;
/// every answer must hold at least `want` incidents.
async fn get_from_replicas(
    servers: &[Arc<Server>],
    readers: usize,
    runs: usize,
    path: &'static str,
    want: usize,
) -> Timed {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for server in servers {
        for _ in 0..readers {
            let server = server.clone();
            tasks.push(tokio::spawn(async move {
                let url = format!("{}{path}", server.base);
                let mut samples = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let sent = Instant::now();
                    let response = server
                        .client
                        .get(&url)
                        .bearer_auth(common::TOKEN)
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(response.status(), 200);
                    let body = response.bytes().await.expect("body");
                    samples.push(sent.elapsed());
                    let page: Value = serde_json::from_slice(&body).expect("json");
                    let len = page["incidents"].as_array().map_or(0, Vec::len);
                    assert!(len >= want, "a page of {want} or more, got {len}");
                }
                samples
            }));
        }
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("reader"));
    }
    let count = samples.len();
    Timed::new(count, started.elapsed(), &mut samples)
}

/// The incidents' `total` as a server answers it.
async fn total_incidents(server: &Server) -> i64 {
    let page: Value = server
        .client
        .get(format!("{}/api/v1/incidents?limit=1", server.base))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    page["total"].as_i64().expect("total")
}

/// Three servers on one PostgreSQL database: alert intake (each replica its own notifications,
/// then the same notifications to all three), then pages of 50 out of `rows` incidents.
/// Returns the report section.
async fn three_replicas(
    url: &str,
    notifications_per_row: usize,
    rows: usize,
    runs: usize,
) -> String {
    let mut servers = Vec::new();
    for replica in 1..=3 {
        servers.push(Arc::new(
            common::spawn_server(Some(url), &format!("replica-{replica}")).await,
        ));
    }
    let mut section = String::from(
        "## Three replicas on one PostgreSQL database\n\nThree servers in-process on one fresh \
         database of the server above, each with its own HTTPS listener and pool of 10 \
         connections (as three engine processes: they elect one executor on a row, and every \
         one takes webhooks and API requests). Notifications of 100 new alerts; each sender \
         posts its notifications back to back, all senders at once; a notification is answered \
         after its commit.\n\n",
    );
    let _ = writeln!(
        section,
        "| load | notifications | alerts/s committed (all replicas) | p50 per notification | p99 per notification |\n|---|---|---|---|---|"
    );
    let mut next_batch = 1_000_000;
    let mut expected = 0;
    for senders in [1, 4] {
        let bodies = notifications(&mut next_batch, 100, notifications_per_row);
        let timed = post_to_replicas(
            &servers,
            senders,
            bodies,
            false,
            100 * notifications_per_row,
        )
        .await;
        expected += 100 * notifications_per_row;
        let _ = writeln!(
            section,
            "| {senders} sender(s) per replica, {} at once, each notification to one replica | {notifications_per_row} | {:.0} | {} | {} |",
            3 * senders,
            timed.rate,
            ms(timed.p50),
            ms(timed.p99)
        );
    }
    let bodies = notifications(&mut next_batch, 100, notifications_per_row / 3);
    let timed =
        post_to_replicas(&servers, 1, bodies, true, 100 * (notifications_per_row / 3)).await;
    expected += 100 * (notifications_per_row / 3);
    let _ = writeln!(
        section,
        "| every notification to all three at once (Alertmanager HA peers), distinct alerts counted | {} × 3 | {:.0} | {} | {} |",
        notifications_per_row / 3,
        timed.rate,
        ms(timed.p50),
        ms(timed.p99)
    );
    // Each alert is one incident, whichever replicas received it.
    for server in &servers {
        assert_eq!(total_incidents(server).await, expected as i64);
    }

    // Fill the database up to `rows` incidents, then page through all three replicas at once.
    let store = SqlStore::connect_postgres(url, None, Duration::from_secs(5), Metrics::new())
        .await
        .expect("store");
    let now = chrono::Utc::now();
    for start in (expected..rows).step_by(500) {
        let batch: Vec<Incident> = (start..(start + 500).min(rows))
            .map(|i| common::incident(i, rows, now))
            .collect();
        store.insert_incidents(&batch).await.expect("fill");
    }
    store.close().await;
    common::analyze(url).await;
    assert_eq!(total_incidents(&servers[0]).await, rows as i64);
    let _ = writeln!(
        section,
        "\n{rows} incidents in the database ({expected} from the intake above, the rest as the \
         store benchmark writes them), then `ANALYZE` (as autovacuum would run); every client sends {runs} requests back to back over \
         HTTPS keep-alive, all clients at once; the time is until the whole answer (page and \
         summary) is read.\n"
    );
    let _ = writeln!(
        section,
        "| the leader's pipeline | request | clients (3 replicas) | requests/s | p50 | p99 |\n|---|---|---|---|---|---|"
    );
    // Every alert above was actionable, so the leader is still working through their queue
    // (triggers, gates, workflows) while the replicas serve the list: measured as it is, then
    // again with the queue emptied, to see the reads alone.
    let queued = common::count(url, "SELECT COUNT(*) FROM incident_queue").await;
    for leader in [
        format!("working through {queued} queued alerts"),
        "idle (queue emptied)".to_string(),
    ] {
        if leader.starts_with("idle") {
            common::execute(url, "DELETE FROM incident_queue").await;
        }
        for readers in [1, 4] {
            for path in [
                "/api/v1/incidents?limit=50",
                "/api/v1/incidents?namespace=team-8&status=active&limit=50",
            ] {
                let want = 50.min(rows / 100);
                let timed = get_from_replicas(&servers, readers, runs, path, want).await;
                let _ = writeln!(
                    section,
                    "| {leader} | `GET {path}` | {} | {:.0} | {} | {} |",
                    3 * readers,
                    timed.rate,
                    ms(timed.p50),
                    ms(timed.p99)
                );
            }
        }
    }
    for server in servers {
        if let Ok(server) = Arc::try_unwrap(server) {
            server.stop().await;
        }
    }
    section
}

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
            Some(three_replicas(&url, per_row, rows, runs).await)
        }
        None => None,
    };

    let mut report = String::from("## Alertmanager intake\n\n");
    let _ = writeln!(
        report,
        "One server, one sender, sequential notifications of new alerts (each alert a new \
         incident), HTTPS with keep-alive; a notification is answered after its transaction is \
         on disk. SQLite: WAL, `synchronous=FULL`. {}\n",
        match &postgres {
            Some(described) => format!("{described}."),
            None => "PostgreSQL: not measured (`TEST_DATABASE_URL` unset).".into(),
        }
    );
    let _ = writeln!(
        report,
        "| alerts per notification | notifications | store | alerts/s committed | p50 per notification | p99 per notification |\n|---|---|---|---|---|---|"
    );
    for (row, &(size, count)) in plan.iter().enumerate() {
        for (name, (alerts, _)) in &measured {
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
        for (name, (_, audit)) in &measured {
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
    if let Some(section) = replicas {
        let _ = write!(report, "\n{section}");
    }
    print!("{report}");
    if full {
        common::write_section("intake", "cargo bench --bench intake", &report);
    }
}

//! Shared by the benchmarks: the backends and servers under test, percentiles, and the
//! section writer for docs/perf.md.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use coordination_engine::config::{self, Sources};
use coordination_engine::incident::{Incident, IncidentStatus, Severity, Source, Target};
use coordination_engine::startup::{Application, ShutdownHandle};
use coordination_engine::store::testing::fresh_postgres_database;
use sqlx::{AssertSqlSafe, Connection};
use std::time::Duration;

/// The bench token of `spawn_server`.
pub const TOKEN: &str = "bench-token";

/// The store a measurement runs on.
pub enum Backend {
    /// Embedded, in the server's temp dir (WAL, `synchronous=FULL`).
    Sqlite,
    /// A fresh database on the throwaway server of `TEST_DATABASE_URL`.
    Postgres { url: String },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    pub fn url(&self) -> Option<&str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres { url } => Some(url),
        }
    }
}

/// SQLite always; PostgreSQL too when `TEST_DATABASE_URL` names a server (under `cargo test`
/// without one the PostgreSQL half is skipped, unless `REQUIRE_PEERS` demands it).
pub async fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if let Some(url) = fresh_postgres_database().await {
        backends.push(Backend::Postgres { url });
    }
    backends
}

/// The server's version and durability settings, read from the server itself so the report
/// states what was measured: `PostgreSQL 15.x, fsync on, synchronous_commit on`.
pub async fn describe_postgres(url: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let mut values = Vec::new();
    for setting in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "wal_sync_method",
    ] {
        let value: String = sqlx::query_scalar(AssertSqlSafe(format!("SHOW {setting}")))
            .fetch_one(&mut conn)
            .await
            .expect("show");
        values.push(value);
    }
    let _ = conn.close().await;
    assert_eq!(
        (values[1].as_str(), values[2].as_str()),
        ("on", "on"),
        "the PostgreSQL benchmarks measure durable commits: fsync and synchronous_commit must be on"
    );
    format!(
        "PostgreSQL {} on 127.0.0.1 (same machine), fsync on, synchronous_commit on, \
         wal_sync_method {}",
        values[0].split_whitespace().next().unwrap_or(&values[0]),
        values[3]
    )
}

/// `ANALYZE` the database at `url`. Autovacuum does this within `autovacuum_naptime` (1 min)
/// of a bulk load; the benchmarks read right after loading, before it had the chance.
pub async fn analyze(url: &str) {
    execute(url, "ANALYZE").await;
}

/// Runs one statement on its own connection to `url`.
pub async fn execute(url: &str, sql: &'static str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query(sql).execute(&mut conn).await.expect(sql);
    let _ = conn.close().await;
}

/// The number a `SELECT COUNT(*)` on `url` answers.
pub async fn count(url: &str, sql: &'static str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(&mut conn)
        .await
        .expect(sql);
    let _ = conn.close().await;
    n
}

/// An in-process server under test.
pub struct Server {
    /// `https://localhost:<port>`.
    pub base: String,
    /// The server's generated CA (PEM).
    pub ca: Vec<u8>,
    /// A client trusting that CA, with keep-alive.
    pub client: reqwest::Client,
    shutdown: ShutdownHandle,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The server's `DATA_DIR` (TLS material, and the SQLite file without `database_url`).
    _dir: tempfile::TempDir,
}

impl Server {
    /// Stops the listeners and waits until the store is closed, so that a finished
    /// measurement's server (its pool, its pipeline) does not run beside the next one.
    pub async fn stop(self) {
        // Closing our keep-alive connections first leaves the drain nothing to wait for.
        drop(self.client);
        self.shutdown.graceful_stop().await;
        let _ = self.running.await;
    }
}

/// The real server in-process on a free port (TLS with a generated CA), on SQLite in a temp
/// dir, or on PostgreSQL at `database_url` (several servers on one URL are replicas: they
/// elect one executor on a row of the database, and all of them serve the webhooks and API).
pub async fn spawn_server(database_url: Option<&str>, replica: &str) -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let mut env: std::collections::HashMap<String, String> = [
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PORT", "0"),
        ("METRICS_PORT", "0"),
        ("LOG_LEVEL", "warn"),
        ("API_TOKEN", TOKEN),
        ("POD_NAME", replica),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("DATA_DIR".to_string(), dir.path().display().to_string())])
    .collect();
    if let Some(url) = database_url {
        env.insert("DATABASE_URL".into(), url.into());
    }
    let settings = config::load(&Sources { files: vec![], env }).expect("settings");
    let app = Application::build(settings).await.expect("app");
    let base = format!("https://localhost:{}", app.api_addr.port());
    let shutdown = app.shutdown_handle();
    let running = tokio::spawn(app.run_until_stopped());
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).expect("ca");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("pem")])
        .build()
        .expect("client");
    Server {
        base,
        ca,
        client,
        shutdown,
        running,
        _dir: dir,
    }
}

/// Incidents as the store benchmark and the replica list measurement fill the store with: 3 of
/// 4 resolved, spread over [`NAMESPACES`] namespaces and the 5 severities, one second apart.
pub fn incident(i: usize, rows: usize, now: DateTime<Utc>) -> Incident {
    let severity = Severity::ALL[i % Severity::ALL.len()];
    let created = now - ChronoDuration::seconds((rows - i % rows) as i64);
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

pub const NAMESPACES: usize = 50;

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Replaces this benchmark's section of docs/perf.md (between its markers), keeping the others.
pub fn write_section(name: &str, how: &str, section: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/perf.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let start_marker = format!("<!-- bench:{name}:start -->");
    let end_marker = format!("<!-- bench:{name}:end -->");
    let machine = format!(
        "Measured {} on this machine ({} CPUs) with `{how}` (release profile).\n\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let block = format!("{start_marker}\n{machine}{section}{end_marker}");
    let updated = match (existing.find(&start_marker), existing.find(&end_marker)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{}{}",
            &existing[..a],
            block,
            &existing[b + end_marker.len()..]
        ),
        _ if existing.is_empty() => format!(
            "# Performance\n\nNumbers from the benchmarks, with how they were measured. Re-run \
             them after changing a hot path; each writes its own section.\n\n{block}\n"
        ),
        _ => format!("{}\n{block}\n", existing.trim_end()),
    };
    std::fs::write(&path, updated).expect("write docs/perf.md");
    eprintln!("wrote {}", path.display());
}

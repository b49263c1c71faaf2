//! A PostgreSQL restart under load: three replicas on a private server that the test stops
//! and starts again while clients keep creating and listing incidents. The clients see 2xx or
//! 503 `unavailable`, nothing else; every acknowledged incident is there afterwards; and every
//! replica serves again within 10 s of the database returning, without being restarted.
//! Then a quick restart with no traffic: no connection the old server closed is handed to a
//! request once the database is back (the pool tests a connection before lending it).

use crate::helpers::wait_for;
use crate::process::start_server;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "ha-outage-token";
const REPLICAS: usize = 3;
/// Client tasks per replica, each sending one request after the other.
const CLIENTS_PER_REPLICA: usize = 2;
/// Concurrent requests that take every connection of a replica's pool (`POSTGRES_CONNECTIONS`).
const POOL_WIDTH: usize = 10;

/// A PostgreSQL server of this test alone (the shared one must not be restarted under other
/// tests), started with `scripts/test-postgres.sh` and removed when dropped.
struct PrivatePostgres {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    url: String,
    dir: PathBuf,
    bin: PathBuf,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/test-postgres.sh")
}

impl PrivatePostgres {
    /// `None` (the test skips) where no PostgreSQL can be started, unless `REQUIRE_PEERS`.
    fn start() -> Option<PrivatePostgres> {
        let output = Command::new(script())
            .arg("start")
            .output()
            .expect("run scripts/test-postgres.sh");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            assert!(
                std::env::var_os("REQUIRE_PEERS").is_none(),
                "cannot start a PostgreSQL server: {stderr}"
            );
            eprintln!("skipping: cannot start a PostgreSQL server: {stderr}");
            return None;
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let var = |name: &str| {
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix("export "))
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
                .unwrap_or_else(|| panic!("the script printed no {name}: {stdout}"))
        };
        Some(PrivatePostgres {
            url: var("TEST_DATABASE_URL"),
            dir: var("TEST_POSTGRES_DIR").into(),
            bin: var("TEST_POSTGRES_BIN").into(),
        })
    }

    fn port(&self) -> u16 {
        url::Url::parse(&self.url)
            .ok()
            .and_then(|url| url.port())
            .expect("the server URL has a port")
    }

    /// `pg_ctl` as the `postgres` user (the server refuses to run as root), as the script does.
    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("pg/d");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]);
            c
        } else {
            let mut c = Command::new("sudo");
            c.args(["-u", "postgres", "--"]);
            c
        };
        let output = command
            .arg(pg_ctl)
            .arg("-D")
            .arg(data)
            .args(args)
            .output()
            .expect("run pg_ctl");
        assert!(
            output.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A fast shutdown: open sessions are terminated, as in a failover or an upgrade.
    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again on its port with the script's options; returns once it accepts
    /// connections.
    fn start_again(&self) {
        let log = self.dir.join("pg/log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            self.port(),
            self.dir.join("pg").display()
        );
        self.pg_ctl(&["-l", &log, "-w", "start", "-o", &options]);
    }

    /// A new database on this server; returns its URL.
    async fn create_database(&self, name: &str) -> String {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut admin = sqlx::AnyConnection::connect(&self.url)
            .await
            .expect("connect to the private server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&self.url).expect("server URL");
        url.set_path(name);
        url.to_string()
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One request of the load and how it was answered.
#[derive(Debug, Clone)]
struct Outcome {
    replica: usize,
    sent: Instant,
    answered: Instant,
    what: String,
    /// Status and body, or the transport error (a reset, a timeout…).
    answer: Result<(u16, Value), String>,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|(status, _)| *status)
    }
}

struct Load {
    http: reqwest::Client,
    addrs: Vec<SocketAddr>,
    outcomes: Mutex<Vec<Outcome>>,
    stop: AtomicBool,
}

impl Load {
    async fn send(&self, replica: usize, what: String, request: reqwest::RequestBuilder) {
        let sent = Instant::now();
        let answer = match request.bearer_auth(TOKEN).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.json::<Value>().await {
                    Ok(body) => Ok((status, body)),
                    Err(error) => Err(format!("{status} without a JSON body: {error}")),
                }
            }
            Err(error) => Err(format!("{error:?}")),
        };
        self.outcomes.lock().expect("outcomes").push(Outcome {
            replica,
            sent,
            answered: Instant::now(),
            what,
            answer,
        });
    }

    /// Creates incidents and lists them, one request after the other, until stopped.
    async fn client(self: Arc<Self>, replica: usize, client: usize) {
        let base = format!("http://{}", self.addrs[replica]);
        let mut n = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let title = format!("r{replica}-c{client}-{n}");
            let create = self
                .http
                .post(format!("{base}/api/v1/incidents"))
                .json(&json!({"title": title, "namespace": "outage"}));
            self.send(replica, format!("POST {title}"), create).await;
            let list = self.http.get(format!("{base}/api/v1/incidents?limit=5"));
            self.send(replica, "GET list".into(), list).await;
            n += 1;
        }
    }

    fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("outcomes").clone()
    }

    /// Whether every replica has answered a request sent after `since` with `status`.
    fn every_replica_answered(&self, status: u16, since: Instant) -> bool {
        let outcomes = self.snapshot();
        (0..REPLICAS).all(|replica| {
            outcomes
                .iter()
                .any(|o| o.replica == replica && o.sent >= since && o.status() == Some(status))
        })
    }
}

/// A right answer: 201 with the incident, 200 with a page, or 503 in the error shape with
/// code `unavailable`. Anything else (a 500, a reset, a timeout) is returned as the reason.
fn wrong_answer(outcome: &Outcome) -> Option<String> {
    let (status, body) = match &outcome.answer {
        Ok(answer) => answer,
        Err(error) => return Some(format!("no answer: {error}")),
    };
    let right = match (outcome.what.starts_with("POST"), *status) {
        (true, 201) => body["incident_id"].is_string(),
        (false, 200) => body["incidents"].is_array() && body["total"].is_i64(),
        (_, 503) => body["error"]["code"] == "unavailable" && body["request_id"].is_string(),
        _ => false,
    };
    (!right).then(|| format!("{status} {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_load_is_503_then_every_replica_recovers() {
    coordination_engine::tls::install_default_provider();
    let Some(server) = PrivatePostgres::start().map(Arc::new) else {
        return;
    };
    let database = server.create_database("ha_outage").await;
    let mut dirs = Vec::new();
    let mut children = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..REPLICAS {
        let dir = tempfile::tempdir().expect("dir");
        let name = format!("replica-{i}");
        let env = [
            ("API_TOKEN", TOKEN),
            ("TLS_MODE", "off"),
            ("DATABASE_URL", database.as_str()),
            ("POD_NAME", name.as_str()),
        ];
        let (child, addr) = start_server(dir.path(), &env).await;
        children.push(child);
        addrs.push(addr);
        dirs.push(dir);
    }
    let load = Arc::new(Load {
        // A generous timeout: a request only waits for the store's own deadline (5 s), and a
        // slower answer than this is a failure, not something to wait for.
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        addrs: addrs.clone(),
        outcomes: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let clients: Vec<_> = (0..REPLICAS)
        .flat_map(|replica| (0..CLIENTS_PER_REPLICA).map(move |client| (replica, client)))
        .map(|(replica, client)| tokio::spawn(load.clone().client(replica, client)))
        .collect();

    let started = Instant::now();
    wait_for(
        "every replica to acknowledge incidents before the outage",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { load.every_replica_answered(201, started).then_some(()) },
    )
    .await;

    let stopping = Instant::now();
    tokio::task::spawn_blocking({
        let server = server.clone();
        move || server.stop()
    })
    .await
    .expect("stop");
    let down = Instant::now();
    eprintln!("PostgreSQL stopped in {:?}", down - stopping);
    // The outage lasts until every replica has refused a request with 503: proof that the
    // clients met it, whatever the speed of the machine.
    wait_for(
        "every replica to answer 503 while the database is down",
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async { load.every_replica_answered(503, down).then_some(()) },
    )
    .await;
    let outage = down.elapsed();
    tokio::task::spawn_blocking({
        let server = server.clone();
        move || server.start_again()
    })
    .await
    .expect("start");
    let back = Instant::now();
    eprintln!(
        "PostgreSQL was down for {outage:?} (restart took {:?})",
        back - down - outage
    );

    // Within 10 s of the database's return each replica lists and creates again, unaided.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    for (replica, addr) in addrs.iter().enumerate() {
        let recovered = wait_for(
            &format!("replica {replica} to serve again after the restart"),
            Duration::from_secs(10).saturating_sub(back.elapsed()),
            Duration::from_millis(50),
            || async {
                let list = probe
                    .get(format!("http://{addr}/api/v1/incidents?limit=1"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .ok()?;
                if list.status() != 200 {
                    return None;
                }
                let create = probe
                    .post(format!("http://{addr}/api/v1/incidents"))
                    .bearer_auth(TOKEN)
                    .json(&json!({"title": format!("after the restart on {replica}")}))
                    .send()
                    .await
                    .ok()?;
                (create.status() == 201).then(|| back.elapsed())
            },
        )
        .await;
        eprintln!("replica {replica} served again {recovered:?} after PostgreSQL returned");
    }
    // The load itself gets through again on every replica, then stops.
    let resumed = Instant::now();
    wait_for(
        "the load to be acknowledged again on every replica",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { load.every_replica_answered(201, resumed).then_some(()) },
    )
    .await;
    load.stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("every client finishes")
            .expect("no client panicked");
    }

    let outcomes = load.snapshot();
    let wrong: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            wrong_answer(o).map(|why| {
                format!(
                    "replica {} {} sent {:?} after the stop, answered after {:?}: {why}",
                    o.replica,
                    o.what,
                    o.sent.saturating_duration_since(down),
                    o.answered - o.sent
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");
    let count = |status| {
        outcomes
            .iter()
            .filter(|o| o.status() == Some(status))
            .count()
    };
    let slowest_refusal = outcomes
        .iter()
        .filter(|o| o.status() == Some(503))
        .map(|o| o.answered - o.sent)
        .max();
    eprintln!(
        "{} requests: {} created, {} listed, {} refused with 503 (the slowest after {:?})",
        outcomes.len(),
        count(201),
        count(200),
        count(503),
        slowest_refusal
    );

    // Nothing acknowledged is lost: each 201 is readable (from another replica than the one
    // that took it) with the title it was created with.
    for outcome in &outcomes {
        let Ok((201, body)) = &outcome.answer else {
            continue;
        };
        let id = body["incident_id"].as_str().expect("id");
        let other = addrs[(outcome.replica + 1) % REPLICAS];
        let stored: Value = load
            .http
            .get(format!("http://{other}/api/v1/incidents/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            stored["title"], body["title"],
            "{} acknowledged {id} as {}: {stored}",
            outcome.what, body["title"]
        );
    }

    // A quick restart while nobody asks anything: the pools still hold the connections the
    // old server closed, and none of them may be handed to a request once the database is
    // back. Bursts as wide as a pool fill it before and must all succeed after.
    let burst = |addr: SocketAddr| {
        let http = load.http.clone();
        async move {
            let answers = futures_util::future::join_all((0..POOL_WIDTH).map(|_| {
                http.get(format!("http://{addr}/api/v1/incidents?limit=1"))
                    .bearer_auth(TOKEN)
                    .send()
            }))
            .await;
            answers
                .into_iter()
                .filter_map(|answer| match answer {
                    Ok(response) if response.status() == 200 => None,
                    Ok(response) => Some(format!("{addr}: {}", response.status())),
                    Err(error) => Some(format!("{addr}: {error:?}")),
                })
                .collect::<Vec<_>>()
        }
    };
    for addr in &addrs {
        assert_eq!(
            burst(*addr).await,
            Vec::<String>::new(),
            "before the restart"
        );
    }
    tokio::task::spawn_blocking({
        let server = server.clone();
        move || {
            server.stop();
            server.start_again();
        }
    })
    .await
    .expect("restart");
    let mut failed = Vec::new();
    for addr in &addrs {
        failed.extend(burst(*addr).await);
    }
    assert!(
        failed.is_empty(),
        "requests after the database was back were refused: {failed:?}"
    );
    drop(children);
}

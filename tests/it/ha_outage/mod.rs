//! A PostgreSQL restart under load: three replicas on a private server that the test stops
//! and starts again while clients keep creating and listing incidents. The clients see 2xx or
//! 503 `unavailable`, nothing else; every acknowledged incident is there afterwards; and every
//! replica serves again within 10 s of the database returning, without being restarted.
//! Then a quick restart with no traffic: no connection the old server closed is handed to a
//! request once the database is back (the pool tests a connection before lending it).

mod load;
mod postgres;

use crate::helpers::wait_for;
use crate::process::start_server;
use load::{Load, Outcome, wrong_answer};
use postgres::PrivatePostgres;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "ha-outage-token";
const REPLICAS: usize = 3;
/// Client tasks per replica, each sending one request after the other.
const CLIENTS_PER_REPLICA: usize = 2;
/// Concurrent requests that take every connection of a replica's pool (`POSTGRES_CONNECTIONS`).
const POOL_WIDTH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_restart_under_load_is_503_then_every_replica_recovers() {
    coordination_engine::tls::install_default_provider();
    let Some(server) = PrivatePostgres::start().map(Arc::new) else {
        return;
    };
    let database = server.create_database("ha_outage").await;
    let (_dirs, children, addrs) = start_replicas(&database).await;
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

    let (down, back) = restart_once_every_replica_refused(&server, &load).await;
    assert_every_replica_serves_within_10s_of(back, &addrs).await;
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
    assert_only_right_answers(&outcomes, down);
    assert_nothing_acknowledged_is_lost(&load, &outcomes, &addrs).await;
    assert_a_quick_restart_lends_no_closed_connection(&server, &load, &addrs).await;
    drop(children);
}

/// `REPLICAS` engine processes on `database`, plain HTTP, named `replica-0…`.
async fn start_replicas(
    database: &str,
) -> (
    Vec<tempfile::TempDir>,
    Vec<tokio::process::Child>,
    Vec<SocketAddr>,
) {
    let mut dirs = Vec::new();
    let mut children = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..REPLICAS {
        let dir = tempfile::tempdir().expect("dir");
        let name = format!("replica-{i}");
        let env = [
            ("API_TOKEN", TOKEN),
            ("TLS_MODE", "off"),
            ("DATABASE_URL", database),
            ("POD_NAME", name.as_str()),
        ];
        let (child, addr) = start_server(dir.path(), &env).await;
        children.push(child);
        addrs.push(addr);
        dirs.push(dir);
    }
    (dirs, children, addrs)
}

/// Stops PostgreSQL, keeps it down until every replica has refused a request with 503, and
/// starts it again; returns when it went down and when it was back.
async fn restart_once_every_replica_refused(
    server: &Arc<PrivatePostgres>,
    load: &Load,
) -> (Instant, Instant) {
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
    (down, back)
}

/// Within 10 s of the database's return each replica lists and creates again, unaided.
async fn assert_every_replica_serves_within_10s_of(back: Instant, addrs: &[SocketAddr]) {
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
}

/// Every answer of the load was 2xx or 503 `unavailable` (see `wrong_answer`).
fn assert_only_right_answers(outcomes: &[Outcome], down: Instant) {
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
}

/// Nothing acknowledged is lost: each 201 is readable (from another replica than the one
/// that took it) with the title it was created with.
async fn assert_nothing_acknowledged_is_lost(
    load: &Load,
    outcomes: &[Outcome],
    addrs: &[SocketAddr],
) {
    for outcome in outcomes {
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
}

/// A quick restart while nobody asks anything: the pools still hold the connections the
/// old server closed, and none of them may be handed to a request once the database is
/// back. Bursts as wide as a pool fill it before and must all succeed after.
async fn assert_a_quick_restart_lends_no_closed_connection(
    server: &Arc<PrivatePostgres>,
    load: &Load,
    addrs: &[SocketAddr],
) {
    for addr in addrs {
        assert_eq!(
            burst(&load.http, *addr).await,
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
    for addr in addrs {
        failed.extend(burst(&load.http, *addr).await);
    }
    assert!(
        failed.is_empty(),
        "requests after the database was back were refused: {failed:?}"
    );
}

/// `POOL_WIDTH` concurrent lists on `addr`; returns every answer that was not 200.
async fn burst(http: &reqwest::Client, addr: SocketAddr) -> Vec<String> {
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

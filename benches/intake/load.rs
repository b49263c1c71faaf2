//! The intake benchmark's load: notifications and audit batches, posted to one server or to
//! several replicas at once, and the pages read back.

use crate::common::{self, Server, percentile};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn notification(batch: usize, size: usize) -> Value {
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
pub(crate) async fn post_committed(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Duration {
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
pub(crate) struct Timed {
    /// Items (alerts, events, requests) per second.
    pub(crate) rate: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

impl Timed {
    pub(crate) fn new(items: usize, elapsed: Duration, samples: &mut [Duration]) -> Self {
        Timed {
            rate: items as f64 / elapsed.as_secs_f64(),
            p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
        }
    }
}

/// Notifications of `size` new alerts, numbered on from `next_batch` (fingerprints stay
/// distinct within a database).
pub(crate) fn notifications(next_batch: &mut usize, size: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            *next_batch += 1;
            serde_json::to_vec(&notification(*next_batch, size)).expect("json")
        })
        .collect()
}

/// Posts `bodies` one after the other to `url`.
pub(crate) async fn post_sequentially(
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
pub(crate) fn audit_batches(sample: &str, batches: usize, next_id: &mut u64) -> Vec<Vec<u8>> {
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

pub(crate) const ALERTMANAGER: &str = "/webhooks/alertmanager";

/// Runs `senders` tasks per server at once, each posting its own share of `bodies` (or, with
/// `to_all`, every server receiving every body at once, as Alertmanager HA peers deliver).
/// `items`: what counts as done (distinct alerts committed).
pub(crate) async fn post_to_replicas(
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
pub(crate) async fn get_from_replicas(
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
pub(crate) async fn total_incidents(server: &Server) -> i64 {
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

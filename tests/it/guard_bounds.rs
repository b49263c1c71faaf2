//! Issue 15, items 1 and 10: no review can exhaust the engine, and no stream of denials can
//! flood its store. Memory and CPU are read from /proc for the real binary, spawned as a
//! process (its peak RSS is its own, not the test harness's).

use crate::helpers::{TestApp, https_client, spawn_app, spawn_app_with, wait_for};
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN: &str = "guard-bounds-test-token";
/// The admission route's body limit.
const ADMISSION_LIMIT: usize = 3 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// A managed Deployment `prod/<name>` of Application `app`, with `extra` under `spec`.
fn deployment(app: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "prod",
            "uid": format!("uid-{name}"),
            "annotations": {
                "argocd.argoproj.io/tracking-id": format!("{app}:apps/Deployment:prod/{name}")
            }
        },
        "spec": spec,
    })
}

fn review(user: &str, operation: &str, old: Option<Value>, new: Option<Value>) -> Value {
    let subject = new.as_ref().or(old.as_ref()).expect("an object");
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{user}-{}", subject["metadata"]["name"].as_str().unwrap_or("")),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": subject["metadata"]["name"],
            "namespace": "prod",
            "operation": operation,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": new,
            "oldObject": old,
        }
    })
}

/// The diff bomb of issue 15: an UPDATE whose old and new objects hold a huge array under a
/// 1000-character key; `differ` makes every element a change. Just under the body limit.
fn diff_bomb(differ: bool, limit: usize) -> (Vec<u8>, usize) {
    let key = "k".repeat(1000);
    // "0," per element, two arrays, and a little envelope.
    let elements = (limit - 4096) / 4;
    let old = deployment("shop", "cart", json!({ key.clone(): vec![0; elements] }));
    let new = deployment(
        "shop",
        "cart",
        json!({ key: vec![if differ { 1 } else { 0 }; elements] }),
    );
    let body =
        serde_json::to_vec(&review("mallory", "UPDATE", Some(old), Some(new))).expect("json");
    assert!(body.len() < limit, "{} bytes", body.len());
    (body, elements)
}

/// `VmHWM` (peak resident set) of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// utime + stime of a process.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The binary, serving on ephemeral ports; both addresses are read from its banner.
struct Server {
    child: tokio::process::Child,
    url: String,
    metrics_url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The address after `marker` on a banner line (`… listening on 127.0.0.1:1234)`,
/// `metrics: http://127.0.0.1:5678/metrics`).
fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split([')', '/']).next()?.trim().to_string())
}

impl Server {
    async fn start() -> Server {
        coordination_engine::tls::install_default_provider();
        let dir = tempfile::tempdir().expect("dir");
        // `GUARD_BOUNDS_BINARY` measures another build (docs/perf.md: the release binary).
        let binary = std::env::var("GUARD_BOUNDS_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_coordination-engine").to_string());
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .envs([
                ("PORT", "0"),
                ("METRICS_PORT", "0"),
                ("BIND_ADDRESS", "127.0.0.1"),
                ("LOG_LEVEL", "warn"),
                ("API_TOKEN", TOKEN),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let banner = async {
            let (mut api, mut metrics) = (None, None);
            while api.is_none() || metrics.is_none() {
                let line = stderr.next_line().await.expect("read").expect("banner");
                api = api.or_else(|| address_after(&line, "listening on "));
                metrics = metrics.or_else(|| address_after(&line, "metrics: http://"));
            }
            (api.expect("api"), metrics.expect("metrics"))
        };
        let (api, metrics) = tokio::time::timeout(Duration::from_secs(20), banner)
            .await
            .expect("the banner within 20 s");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let port = api.rsplit(':').next().expect("port");
        Server {
            child,
            url: format!("https://localhost:{port}"),
            metrics_url: format!("http://{metrics}/metrics"),
            client: https_client(&dir.path().join("data/tls/ca.crt")),
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    /// Posts a review without a token, as the API server does.
    async fn review(&self, body: Vec<u8>) -> Value {
        let response = self
            .client
            .post(format!("{}/webhooks/validate", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("review");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }
}

/// Posts one request and returns its answer and the server's CPU time spent meanwhile.
async fn timed<F: std::future::Future<Output = Value>>(pid: u32, request: F) -> (Value, Duration) {
    let before = cpu_time(pid);
    let answer = request.await;
    (answer, cpu_time(pid).saturating_sub(before))
}

#[tokio::test]
async fn a_diff_bomb_costs_under_256_mib_and_a_second_of_cpu_and_is_answered_in_full() {
    let server = Server::start().await;
    let pid = server.pid();

    // The same huge array on both sides: nothing changed but what is ignored.
    let (same, _) = diff_bomb(false, ADMISSION_LIMIT);
    let (answer, cpu) = timed(pid, server.review(same)).await;
    assert_eq!(answer["response"]["allowed"], true, "no drift");
    assert_eq!(
        answer["response"]["auditAnnotations"]["coordination-engine.io/reason"],
        "ignored_fields_only"
    );
    println!("diff bomb (same array): {} ms CPU", cpu.as_millis());
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");

    // Every element differs: the many-changed-paths case.
    let (differ, elements) = diff_bomb(true, ADMISSION_LIMIT);
    let (answer, cpu) = timed(pid, server.review(differ)).await;
    println!(
        "diff bomb (every element differs): {} ms CPU",
        cpu.as_millis()
    );
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"]
        .as_str()
        .expect("a denial message");
    assert!(
        message.len() < 16 * 1024,
        "{} bytes of message",
        message.len()
    );
    assert!(message.contains('…'), "the 1000-character key is clipped");
    let more: u64 = message
        .split_once(" more. ")
        .and_then(|(before, _)| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("\"and N more\" in {message}"));
    assert!(more > elements as u64 - 256, "{more} of {elements}");

    // The same budget on explain (within the API's 1 MiB limit).
    let (explain_bomb, explain_elements) = diff_bomb(true, 1024 * 1024);
    let (explained, cpu) = timed(pid, server.post("/api/v1/guard/explain", explain_bomb)).await;
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");
    let paths = explained["changed_paths"].as_array().expect("paths");
    let text: usize = paths.iter().filter_map(Value::as_str).map(str::len).sum();
    assert!(!paths.is_empty() && paths.len() <= 256, "{}", paths.len());
    assert!(text <= 64 * 1024, "{text} bytes of paths");
    assert_eq!(
        paths.len() as u64 + explained["more_changed_paths"].as_u64().expect("count"),
        explain_elements as u64
    );

    let peak = peak_rss(pid);
    println!("diff bombs: peak RSS (VmHWM) {} MiB", peak / MIB);
    assert!(peak < 256 * MIB, "peak RSS {} MiB", peak / MIB);
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

async fn metrics_text(metrics_url: &str) -> String {
    reqwest::get(metrics_url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_forged_denial_flood_opens_at_most_100_incidents() {
    let server = Server::start().await;
    let forged = 1_500;
    let not_recorded = |reason: &str| {
        format!("coordination_engine_denials_not_recorded_total{{reason=\"{reason}\"}}")
    };
    let before = metrics_text(&server.metrics_url).await;
    let before_limited = metric(&before, &not_recorded("rate_limited"));

    // Distinct users, objects and Applications, every one a denied DELETE; 10 at a time.
    let mut posted = 0;
    while posted < forged {
        let batch: Vec<_> = (posted..(posted + 10).min(forged))
            .map(|i| {
                let old = deployment(&format!("app-{i}"), &format!("obj-{i}"), json!({}));
                let body = review(&format!("user-{i}"), "DELETE", Some(old), None);
                let server = &server;
                async move {
                    let answer = server
                        .review(serde_json::to_vec(&body).expect("json"))
                        .await;
                    assert_eq!(answer["response"]["allowed"], false, "{answer}");
                }
            })
            .collect();
        posted += batch.len();
        futures_util::future::join_all(batch).await;
    }

    // Every denial is either an incident or counted as not recorded: wait until all are.
    let (incidents, limited) = wait_for(
        "the recorder to account for every denial",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || async {
            let text = metrics_text(&server.metrics_url).await;
            let counted: u64 = ["rate_limited", "queue_full", "store_unavailable"]
                .iter()
                .map(|r| metric(&text, &not_recorded(r)))
                .sum();
            let stored = server.get("/api/v1/incidents?source=admission").await["total"]
                .as_u64()
                .expect("total");
            (stored + counted >= forged as u64)
                .then(|| (stored, metric(&text, &not_recorded("rate_limited"))))
        },
    )
    .await;
    assert!(incidents <= 100, "{incidents} admission incidents");
    assert!(incidents > 0, "the first denials are recorded");
    assert!(limited > before_limited, "the excess is counted");
    let peak = peak_rss(server.pid());
    println!(
        "forged flood: {incidents} incidents of {forged} denials; peak RSS (VmHWM) {} MiB",
        peak / MIB
    );
    assert!(peak < 256 * MIB, "peak RSS {} MiB", peak / MIB);
}

/// Waits until the admission incidents of `name` satisfy `done`; returns them.
async fn incidents_of(
    app: &TestApp,
    name: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_for(
        what,
        Duration::from_secs(30),
        Duration::from_millis(50),
        || async {
            let all = app
                .get_json("/api/v1/incidents?source=admission&limit=1000")
                .await;
            let mine: Vec<Value> = all["incidents"]
                .as_array()
                .expect("incidents")
                .iter()
                .filter(|i| i["target"] == format!("Deployment/{name}"))
                .cloned()
                .collect();
            done(&mine).then_some(mine)
        },
    )
    .await
}

async fn deny(app: &TestApp, body: &Value) {
    let answer: Value = app
        .client
        .post(app.url("/webhooks/validate"))
        .json(body)
        .send()
        .await
        .expect("review")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
}

#[tokio::test]
async fn repeated_denials_of_one_application_object_keep_one_open_incident() {
    let app = spawn_app().await;
    let old = deployment("shop", "basket", json!({"replicas": 1}));
    let new = deployment("shop", "basket", json!({"replicas": 5}));
    for (user, op) in [("alice", "UPDATE"), ("bob", "UPDATE"), ("carol", "DELETE")] {
        let body = if op == "DELETE" {
            review(user, op, Some(old.clone()), None)
        } else {
            review(user, op, Some(old.clone()), Some(new.clone()))
        };
        deny(&app, &body).await;
    }
    // The recorder works in order: once a later, distinct object is recorded, so were these.
    deny(
        &app,
        &review(
            "dave",
            "DELETE",
            Some(deployment("shop", "flush", json!({}))),
            None,
        ),
    )
    .await;
    incidents_of(&app, "flush", "the flush denial to be recorded", |i| {
        i.len() == 1
    })
    .await;
    let basket = incidents_of(&app, "basket", "the basket incident", |i| !i.is_empty()).await;
    assert_eq!(basket.len(), 1, "one incident for three users: {basket:?}");
    assert_eq!(basket[0]["status"], "active");
    assert_eq!(basket[0]["annotations"]["argocd_application"], "shop");
}

#[tokio::test]
async fn denial_incidents_are_closed_after_the_ttl() {
    let app = spawn_app_with(|env| {
        env.insert("DENIAL_INCIDENT_TTL".into(), "1s".into());
    })
    .await;
    let old = deployment("shop", "cart", json!({}));
    let delete = review("alice", "DELETE", Some(old), None);
    deny(&app, &delete).await;
    let closed = incidents_of(&app, "cart", "the denial incident to be closed", |i| {
        i.len() == 1 && i[0]["status"] == "resolved"
    })
    .await;
    assert!(
        closed[0]["notes"]
            .to_string()
            .contains("DENIAL_INCIDENT_TTL"),
        "{}",
        closed[0]
    );
    // Closed is closed: the next denial of the object opens a new incident.
    deny(&app, &delete).await;
    incidents_of(&app, "cart", "a new incident after the closed one", |i| {
        i.len() == 2
    })
    .await;
}

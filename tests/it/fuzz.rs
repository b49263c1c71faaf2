//! Every parser of outside input, fed seeded hostile inputs through the real server (TLS,
//! token, routing, extractors, handlers, store): Alertmanager notifications, audit event
//! lists, admission reviews, trigger shapes, query strings and path ids, and the other API
//! bodies. Each answer must be a status the route documents, with the JSON error shape on a
//! 4xx; never a panic, a 5xx where no peer is missing, or a body that is not JSON. A panic in
//! a handler drops the connection; one in a spawned task (denial recorder, closer, pipeline)
//! is caught by a panic hook (`panics.rs`), checked after every input and at the end.
//!
//! Bounded by iteration counts: the inputs are the same on every run and every machine
//! (fixed seeds), so a failure names the seed and input number that reproduce it, and the
//! input is saved in the temp dir. All six targets send 7 000 inputs in about 10 s here
//! (2 cores); a wall-time cap per target only shortens the run on a machine far slower
//! than that. `FUZZ_SCALE=20` sends twenty times as many inputs (no cap), `FUZZ_SEED=n`
//! other ones.

mod mutate;
mod panics;

use crate::helpers::{TestApp, sample, spawn_app_with};
use mutate::{Rng, WORDS};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Inputs per body target (times `FUZZ_SCALE`).
const BODY_INPUTS: usize = 1000;
/// Inputs of the query-string target (times `FUZZ_SCALE`).
const QUERY_INPUTS: usize = 2000;
/// Largest generated body: under every route's limit, so each input reaches its parser.
const MAX_BODY: usize = 900 * 1024;

/// Wall-time cap per target, so a very slow machine still finishes: the inputs are the same,
/// only fewer of them are sent (the count is printed).
const TARGET_TIME_CAP: Duration = Duration::from_secs(12);

/// `FUZZ_SEED` (a number) shifts every target's sequence, to explore beyond what CI runs.
fn seeded(seed: u64) -> u64 {
    let shift = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    seed ^ shift.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn scaled(inputs: usize) -> usize {
    let scale = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    inputs * scale.max(1)
}

/// One request, and the statuses its route may answer.
struct Input {
    method: Method,
    path: String,
    /// Through the token-less compatibility listener (plain HTTP) instead of the API port.
    compat: bool,
    token: bool,
    body: Option<Vec<u8>>,
    allowed: &'static [u16],
}

/// The status, or why the answer is not a proper one.
async fn check(
    response: reqwest::Result<reqwest::Response>,
    allowed: &[u16],
) -> Result<u16, String> {
    let response = response.map_err(|e| format!("no response (a panic drops it): {e:?}"))?;
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("status {status}, body cut off: {e:?}"))?;
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(600)]).into_owned();
    if !allowed.contains(&status) {
        return Err(format!("status {status} (allowed {allowed:?}): {shown}"));
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("status {status}, body not JSON ({e}): {shown}"))?;
    if status >= 400 {
        let code = body["error"]["code"].as_str().unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if code.is_empty() || message.is_empty() {
            return Err(format!("status {status} without the error shape: {shown}"));
        }
        if header_id.is_none() || body["request_id"].as_str() != header_id.as_deref() {
            return Err(format!(
                "status {status}: request_id {:?} does not match X-Request-ID {header_id:?}",
                body["request_id"]
            ));
        }
    }
    Ok(status)
}

/// Writes the failing input where it can be replayed, and describes it.
fn failure(target: &str, seed: u64, iteration: usize, input: &Input, why: &str) -> String {
    let file = std::env::temp_dir().join(format!("fuzz-{target}-{seed:x}-{iteration}.body"));
    let body = input.body.as_deref().unwrap_or_default();
    let _ = std::fs::write(&file, body);
    format!(
        "fuzz target {target}, seed {seed:#x}, input {iteration}: {} {}{} → {why}\n\
         body ({} bytes, saved in {}): {}",
        input.method,
        if input.compat { "(compat) " } else { "" },
        input.path.chars().take(500).collect::<String>(),
        body.len(),
        file.display(),
        String::from_utf8_lossy(&body[..body.len().min(1000)])
    )
}

/// Mostly JSON; sometimes a variant a JSON route must accept, one it must answer 415, or none.
fn content_type(rng: &mut Rng) -> Option<&'static str> {
    if !rng.one_in(10) {
        return Some("application/json");
    }
    *rng.pick(&[
        Some("application/json; charset=utf-8"),
        Some("APPLICATION/JSON"),
        Some("application/merge-patch+json"),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some(""),
        Some(";"),
        None,
    ])
}

/// Sends `count` inputs from `next`, one after another on kept-alive connections, and
/// checks every answer; then checks that the server still serves. Returns the statuses.
async fn drive(
    app: &TestApp,
    target: &str,
    seed: u64,
    count: usize,
    mut next: impl FnMut(&mut Rng) -> Input,
) -> BTreeMap<u16, usize> {
    let plain = reqwest::Client::new();
    let seed = seeded(seed);
    let mut rng = Rng::new(seed);
    let mut statuses = BTreeMap::new();
    let started = Instant::now();
    let mut sent = 0;
    let mut panics = panics::Watch::start();
    for iteration in 0..count {
        if started.elapsed() > TARGET_TIME_CAP && std::env::var_os("FUZZ_SCALE").is_none() {
            eprintln!("fuzz {target}: time cap reached after {iteration} of {count} inputs");
            break;
        }
        sent += 1;
        let input = next(&mut rng);
        let (client, url) = match (input.compat, app.compat_addr) {
            (true, Some(compat)) => (&plain, format!("http://{compat}{}", input.path)),
            _ => (&app.client, app.url(&input.path)),
        };
        let mut request = client.request(input.method.clone(), url);
        if input.token {
            request = request.bearer_auth(&app.token);
        }
        if let Some(body) = &input.body {
            if let Some(content_type) = content_type(&mut rng) {
                request = request.header("content-type", content_type);
            }
            request = request.body(body.clone());
        }
        match check(request.send().await, input.allowed).await {
            Ok(status) => *statuses.entry(status).or_insert(0) += 1,
            Err(why) => panic!("{}", failure(target, seed, iteration, &input, &why)),
        }
        if let Some(why) = panics.new_panics() {
            panic!("{}", failure(target, seed, iteration, &input, &why));
        }
    }
    let health = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .expect("the server still answers after the fuzzing");
    assert_eq!(health.status(), 200, "{target}: still healthy");
    if let Some(why) = panics.new_panics() {
        panic!("fuzz target {target}, seed {seed:#x}, after the last input: {why}");
    }
    eprintln!(
        "fuzz {target} (seed {seed:#x}): {sent} inputs in {:.1?}, statuses {statuses:?}",
        started.elapsed()
    );
    statuses
}

/// Both outcomes occurred: the mutations reached past the parser and were also refused.
fn assert_mixed(target: &str, statuses: &BTreeMap<u16, usize>) {
    let ok: usize = statuses.range(200..300).map(|(_, n)| n).sum();
    let refused: usize = statuses.range(400..500).map(|(_, n)| n).sum();
    assert!(
        ok > 0 && refused > 0,
        "{target}: inputs should be both accepted and refused, got {statuses:?}"
    );
}

async fn app_without_pipeline(compat: bool) -> TestApp {
    spawn_app_with(|env| {
        // Parsing is under test; the pipeline would only add load.
        env.insert("PIPELINE_INTERVAL".into(), "0s".into());
        if compat {
            env.insert("COMPAT_HTTP_PORT".into(), "0".into());
        }
    })
    .await
}

fn post(path: &str, body: Vec<u8>, allowed: &'static [u16]) -> Input {
    Input {
        method: Method::POST,
        path: path.to_string(),
        compat: false,
        token: true,
        body: Some(body),
        allowed,
    }
}

/// A group of three alerts: a mutation that spoils one leaves two to store.
fn three_alerts() -> Value {
    let mut notification = sample("alertmanager", "alertmanager-sample.json");
    let alert = notification["alerts"][0].clone();
    notification["alerts"] = (0..3)
        .map(|i| {
            let mut a = alert.clone();
            a["fingerprint"] = json!(format!("{i:016x}"));
            a["labels"]["pod"] = json!(format!("api-{i}"));
            a
        })
        .collect();
    notification
}

#[tokio::test]
async fn fuzz_alertmanager_notifications() {
    let app = app_without_pipeline(false).await;
    let seeds: Vec<Value> = [
        "alertmanager-sample.json",
        "alertmanager-sample.raw.json",
        "alertmanager-sample-resolved.json",
        "alertmanager-sample-from-prometheus.json",
    ]
    .iter()
    .map(|name| sample("alertmanager", name))
    .chain([three_alerts()])
    .collect();
    let vocabulary = mutate::vocabulary(&seeds);
    let statuses = drive(&app, "alertmanager", 0xA1E7, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        post("/webhooks/alertmanager", body, &[200, 400, 413, 415, 422])
    })
    .await;
    assert_mixed("alertmanager", &statuses);
}

#[tokio::test]
async fn fuzz_audit_event_lists() {
    let app = app_without_pipeline(false).await;
    let seeds: Vec<Value> = [
        "argocd-sync.json",
        "engine-remediation.json",
        "forbidden-burst.json",
        "kubectl-delete-metadata-level.json",
        "kubectl-edit.json",
        "kubectl-scale.json",
        "protected-delete.json",
        "status-update.json",
        "unmanaged-patch.json",
    ]
    .iter()
    .map(|name| sample("audit", name))
    .collect();
    let vocabulary = mutate::vocabulary(&seeds);
    let statuses = drive(&app, "audit", 0xA0D1, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        post("/webhooks/audit", body, &[200, 400, 413])
    })
    .await;
    assert_mixed("audit", &statuses);
}

#[tokio::test]
async fn fuzz_admission_reviews() {
    let app = app_without_pipeline(false).await;
    let cases = sample("admission", "cases.json");
    let seeds: Vec<Value> = cases["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| case["review"].clone())
        .collect();
    let vocabulary = mutate::vocabulary(&seeds);
    let statuses = drive(&app, "admission", 0xAD01, scaled(BODY_INPUTS), |rng| {
        let body = mutate::body(&seeds, &vocabulary, rng, MAX_BODY);
        if rng.one_in(4) {
            // The same review through the explain route (token, JSON extractor).
            post("/api/v1/guard/explain", body, &[200, 400, 413, 415, 422])
        } else {
            Input {
                token: false,
                ..post("/webhooks/validate", body, &[200, 400, 413])
            }
        }
    })
    .await;
    assert_mixed("admission", &statuses);
}

#[tokio::test]
async fn fuzz_trigger_shapes() {
    let app = app_without_pipeline(true).await;
    // (seed, route): every trigger shape, and the manual incident the MCP server creates.
    let flat = json!({"namespace": "production", "resource_type": "pod", "resource_name": "api-1",
        "issue_type": "CrashLoopBackOff", "severity": "high", "dry_run": true,
        "metadata": {"source": "fuzz"}, "incident_id": "ext-1"});
    let nested = json!({"incident_id": "mcp-42", "namespace": "shop",
        "resource": {"kind": "Deployment", "name": "cart"},
        "issue": {"type": "pod_crash", "description": "", "severity": "critical"}, "dry_run": true});
    let node = json!({"resource_type": "node", "resource_name": "worker-1",
        "issue_type": "NodeNotReady", "dry_run": true});
    let coordination = json!({"incident_id": "ext-7", "description": "checkout down", "dry_run": true,
        "resources": [
            {"kind": "Deployment", "name": "checkout", "namespace": "shop", "issue": "crash_loop"},
            {"kind": "Node", "name": "worker-3", "issue": "node_not_ready"}]});
    let incident = json!({"title": "Checkout slow", "description": "p99 up", "severity": "high",
        "target": "Deployment/checkout", "namespace": "shop", "issueType": "latency",
        "labels": {"team": "shop"}, "confidence": 0.5, "source": "manual",
        "parameters": {"x": 1}});
    let single = [flat, nested, node];
    let vocabulary = mutate::vocabulary(
        &[
            single.to_vec(),
            vec![coordination.clone(), incident.clone()],
        ]
        .concat(),
    );
    let accepted: &[u16] = &[200, 201, 202, 400, 404, 409, 413, 415, 422, 429];
    let statuses = drive(&app, "triggers", 0x7216, scaled(BODY_INPUTS), |rng| {
        match rng.below(6) {
            0 => post(
                "/api/v1/coordination/trigger",
                mutate::body(
                    std::slice::from_ref(&coordination),
                    &vocabulary,
                    rng,
                    MAX_BODY,
                ),
                accepted,
            ),
            1 => post(
                "/api/v1/incidents",
                mutate::body(std::slice::from_ref(&incident), &vocabulary, rng, MAX_BODY),
                accepted,
            ),
            2 | 3 => {
                // The compatibility listener: no token, both of its prefixes.
                let path = rng.pick(&[
                    "/api/v1/remediation/trigger",
                    "/api/v1/api/v1/remediation/trigger",
                ]);
                Input {
                    compat: true,
                    token: false,
                    ..post(
                        path,
                        mutate::body(&single, &vocabulary, rng, MAX_BODY),
                        accepted,
                    )
                }
            }
            _ => post(
                "/api/v1/remediation/trigger",
                mutate::body(&single, &vocabulary, rng, MAX_BODY),
                accepted,
            ),
        }
    })
    .await;
    assert_mixed("triggers", &statuses);
}

/// Percent-encodes all but the unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query_value(rng: &mut Rng) -> String {
    use base64::Engine;
    match rng.below(9) {
        0 | 1 => mutate::nasty_time(rng).to_string(),
        2 | 3 => rng.pick(WORDS).to_string(),
        4 => rng
            .pick(&[
                "0",
                "1",
                "-1",
                "1000",
                "1001",
                "1.5",
                "0x10",
                "1e3",
                "9223372036854775807",
                "-9223372036854775808",
                "99999999999999999999",
            ])
            .to_string(),
        5 => {
            // A cursor: well-formed base64 of arbitrary content.
            let id = rng.pick(WORDS);
            let raw = format!("{}:{id}", rng.next() as i64);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        }
        6 => rng
            .pick(&[
                "active,resolved",
                "completed,failed,running",
                "all",
                ",,,",
                "critical,high",
            ])
            .to_string(),
        7 => ",".repeat(*rng.pick(&[10, 500])),
        _ => (0..rng.below(40))
            .map(|_| *rng.pick(&['a', '%', 'f', 'z', '+', '&', '=', '\u{0}', 'é']))
            .collect(),
    }
}

/// A query string: known and unknown names, encoded or raw (`%zz`, `%ff`, `&&`).
fn query(rng: &mut Rng) -> String {
    const NAMES: &[&str] = &[
        "since",
        "limit",
        "offset",
        "cursor",
        "status",
        "severity",
        "source",
        "namespace",
        "node",
        "mountpoint",
        "window",
        "pod",
        "incident_id",
        "reason",
        "x",
    ];
    let pairs: Vec<String> = (0..rng.below(5))
        .map(|_| {
            let name = rng.pick(NAMES).to_string();
            let value = query_value(rng);
            match rng.below(6) {
                0 => format!("{name}={value}").replace(' ', "+"),
                1 => name,
                2 => rng
                    .pick(&["%zz", "%ff%fe", "%", "&&", "=", "a=1=2", "limit[]=1"])
                    .to_string(),
                _ => format!("{}={}", encode(&name), encode(&value)),
            }
        })
        .collect();
    pairs.join("&")
}

#[tokio::test]
async fn fuzz_query_strings_and_path_ids() {
    let app = app_without_pipeline(true).await;
    // Routes that need a peer the test does not run (Prometheus, KServe) answer 503.
    const LISTS: &[u16] = &[200, 400, 404];
    const PEERS: &[u16] = &[200, 400, 404, 503];
    let routes: &[(&str, &[u16])] = &[
        ("/api/v1/incidents", LISTS),
        ("/api/v1/workflows", LISTS),
        ("/api/v1/coordination/workflows", LISTS),
        ("/api/v1/pause", LISTS),
        ("/api/v1/leases", LISTS),
        ("/api/v1/predict/disk-exhaustion", PEERS),
        ("/api/v1/predict/memory-leak", PEERS),
        ("/api/v1/recommendations/rightsizing", PEERS),
        ("/api/v1/capacity/trends", PEERS),
        ("/api/v1/cluster/status", PEERS),
        ("/api/v1/models", PEERS),
    ];
    let statuses = drive(&app, "queries", 0x9E57, scaled(QUERY_INPUTS), |rng| {
        let (path, allowed) = match rng.below(8) {
            0 => {
                // An id in the path instead of the query.
                let base = rng.pick(&["/api/v1/incidents/", "/api/v1/workflows/"]);
                (format!("{base}{}", encode(&query_value(rng))), LISTS)
            }
            1 => {
                let path = rng.pick(&["/api/v1/incidents", "/api/v1/api/v1/incidents"]);
                return Input {
                    method: Method::GET,
                    path: format!("{path}?{}", query(rng)),
                    compat: true,
                    token: false,
                    body: None,
                    allowed: LISTS,
                };
            }
            _ => {
                let (route, allowed) = *rng.pick(routes);
                (format!("{route}?{}", query(rng)), allowed)
            }
        };
        Input {
            method: Method::GET,
            path,
            compat: false,
            token: true,
            body: None,
            allowed,
        }
    })
    .await;
    assert_mixed("queries", &statuses);
}

#[tokio::test]
async fn fuzz_other_api_bodies() {
    let app = app_without_pipeline(false).await;
    let incident = app
        .create_incident(json!({"title": "fuzz target", "severity": "low"}))
        .await;
    let analyze = json!({"timeRange": "1h", "metrics": ["cpu", {"name": "memory"}],
        "threshold": 0.5, "modelName": "anomaly-detector", "namespace": "prod",
        "deployment": "api", "pod": "api-1", "labelSelector": "app=api",
        "includePredictions": true});
    let predict = json!({"hour": 10, "day_of_week": 2, "cpu_rolling_mean": 50.0,
        "memory_rolling_mean": 60.0, "scope": "namespace", "namespace": "prod",
        "deployment": "api", "pod": "api-1"});
    let pause = json!({"reason": "maintenance"});
    let change = json!({"status": "resolved", "action": "resolve", "note": "done"});
    let all = [
        analyze.clone(),
        predict.clone(),
        pause.clone(),
        change.clone(),
    ];
    let vocabulary = mutate::vocabulary(&all);
    // Prometheus and KServe do not run here: their routes answer 503 once the body is valid.
    const ALLOWED: &[u16] = &[200, 400, 404, 409, 413, 415, 422, 503];
    let change_path = format!("/api/v1/incidents/{incident}");
    let statuses = drive(&app, "api-bodies", 0xB0D7, scaled(BODY_INPUTS), |rng| {
        let (seed, path) = match rng.below(4) {
            0 => (&analyze, "/api/v1/anomalies/analyze"),
            1 => (&predict, "/api/v1/predict"),
            2 => (&pause, "/api/v1/pause?namespace=prod"),
            _ => {
                let body = mutate::body(std::slice::from_ref(&change), &vocabulary, rng, MAX_BODY);
                return Input {
                    method: Method::PATCH,
                    ..post(&change_path, body, ALLOWED)
                };
            }
        };
        post(
            path,
            mutate::body(std::slice::from_ref(seed), &vocabulary, rng, MAX_BODY),
            ALLOWED,
        )
    })
    .await;
    assert_mixed("api-bodies", &statuses);
}

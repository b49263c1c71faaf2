//! The fuzz driver: sends seeded inputs to the real server and checks every answer is one
//! its route documents, in the JSON error shape on a 4xx, with no panic anywhere.

use super::mutate::Rng;
use super::panics;
use crate::helpers::{TestApp, spawn_app_with};
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Inputs per body target (times `FUZZ_SCALE`).
pub(super) const BODY_INPUTS: usize = 1000;
/// Inputs of the query-string target (times `FUZZ_SCALE`).
pub(super) const QUERY_INPUTS: usize = 2000;
/// Largest generated body: under every route's limit, so each input reaches its parser.
pub(super) const MAX_BODY: usize = 900 * 1024;

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

pub(super) fn scaled(inputs: usize) -> usize {
    let scale = std::env::var("FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    inputs * scale.max(1)
}

/// One request, and the statuses its route may answer.
pub(super) struct Input {
    pub(super) method: Method,
    pub(super) path: String,
    /// Through the token-less compatibility listener (plain HTTP) instead of the API port.
    pub(super) compat: bool,
    pub(super) token: bool,
    pub(super) body: Option<Vec<u8>>,
    pub(super) allowed: &'static [u16],
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
pub(super) async fn drive(
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
pub(super) fn assert_mixed(target: &str, statuses: &BTreeMap<u16, usize>) {
    let ok: usize = statuses.range(200..300).map(|(_, n)| n).sum();
    let refused: usize = statuses.range(400..500).map(|(_, n)| n).sum();
    assert!(
        ok > 0 && refused > 0,
        "{target}: inputs should be both accepted and refused, got {statuses:?}"
    );
}

pub(super) async fn app_without_pipeline(compat: bool) -> TestApp {
    spawn_app_with(|env| {
        // Parsing is under test; the pipeline would only add load.
        env.insert("PIPELINE_INTERVAL".into(), "0s".into());
        if compat {
            env.insert("COMPAT_HTTP_PORT".into(), "0".into());
        }
    })
    .await
}

pub(super) fn post(path: &str, body: Vec<u8>, allowed: &'static [u16]) -> Input {
    Input {
        method: Method::POST,
        path: path.to_string(),
        compat: false,
        token: true,
        body: Some(body),
        allowed,
    }
}

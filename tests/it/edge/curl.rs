//! Answers decided before the body was read reach a real `curl`, 100 times each, on every
//! listener and over HTTP/1.1 and HTTP/2.

use crate::helpers::{TestApp, spawn_app_with};
use std::path::{Path, PathBuf};

/// A file of `size` bytes of JSON-ish filler in `dir`.
fn body_file(dir: &Path, name: &str, size: usize) -> PathBuf {
    let path = dir.join(name);
    let mut body = b"{\"filler\":\"".to_vec();
    body.resize(size - 2, b'x');
    body.extend_from_slice(b"\"}");
    std::fs::write(&path, body).expect("write body");
    path
}

/// How curl reaches the server.
#[derive(Clone, Copy)]
enum Via {
    /// The API listener: TLS, HTTP/1.1.
    Http1,
    /// The API listener: TLS, HTTP/2.
    Http2,
    /// The compatibility listener: plain HTTP/1.1.
    Compat,
    /// The metrics listener: plain HTTP/1.1, no token.
    Metrics,
}

/// One early-answer case: what curl sends and what it must read.
struct Case {
    name: &'static str,
    path: &'static str,
    token: bool,
    content_type: &'static str,
    body: PathBuf,
    via: Via,
    expected: &'static str,
}

/// Runs `curl` against the app `times` times; returns the failures (exit code, status).
async fn curl_many(app: &TestApp, case: &Case, times: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for attempt in 0..times {
        let mut command = tokio::process::Command::new("curl");
        command
            .args(["--silent", "--show-error", "--output", "/dev/null"])
            .args(["--write-out", "%{http_code}", "--max-time", "30"])
            .arg("--cacert")
            .arg(&app.ca_file)
            .args(["--request", "POST"])
            .args(["--header", &format!("Content-Type: {}", case.content_type)])
            .arg("--data-binary")
            .arg(format!("@{}", case.body.display()))
            .arg(match case.via {
                Via::Http2 => "--http2",
                Via::Http1 | Via::Compat | Via::Metrics => "--http1.1",
            })
            .arg(match case.via {
                Via::Compat => {
                    let compat = app.compat_addr.expect("compat listener enabled");
                    format!("http://{compat}{}", case.path)
                }
                Via::Metrics => format!("http://{}{}", app.metrics_addr, case.path),
                Via::Http1 | Via::Http2 => app.url(case.path),
            });
        if case.token {
            command.args(["--header", &format!("Authorization: Bearer {}", app.token)]);
        }
        let output = command.output().await.expect("curl runs");
        let status = String::from_utf8_lossy(&output.stdout).to_string();
        if output.status.code() != Some(0) || status != case.expected {
            failures.push(format!(
                "{} #{attempt}: exit {:?}, status {status:?}, {}",
                case.name,
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_early_answer_reaches_curl_100_times_out_of_100() {
    let app = spawn_app_with(|env| {
        env.insert("COMPAT_HTTP_PORT".into(), "0".into());
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    // Bodies large enough to be in flight when the answer is decided from the headers.
    let api_body = body_file(dir.path(), "api.json", 512 * 1024);
    let review = body_file(dir.path(), "review.json", 4 * 1024 * 1024);
    // More than the server drains: answered at once, then a lingering close.
    let huge = body_file(dir.path(), "huge.json", 20 * 1024 * 1024);
    // Over the audit route's 10 MiB, under what the server drains.
    let audit_over = body_file(dir.path(), "audit.json", 11 * 1024 * 1024);
    let (json, text) = ("application/json", "text/plain");
    let (h1, h2, compat, metrics) = (Via::Http1, Via::Http2, Via::Compat, Via::Metrics);
    // (name, path, with the token, content type, body, how, expected status)
    #[rustfmt::skip]
    let table = [
        ("401 token-less", "/api/v1/incidents", false, json, &api_body, h1, "401"),
        ("401 over HTTP/2", "/api/v1/incidents", false, json, &api_body, h2, "401"),
        ("413 review", "/webhooks/validate", false, json, &review, h1, "413"),
        ("413 over HTTP/2", "/webhooks/validate", false, json, &review, h2, "413"),
        ("413 over 16 MiB", "/webhooks/validate", false, json, &huge, h1, "413"),
        ("415 text body", "/api/v1/incidents", true, text, &api_body, h1, "415"),
        ("404 post", "/api/v1/no-such-route", true, json, &api_body, h1, "404"),
        ("401 webhook", "/webhooks/alertmanager", false, json, &review, h1, "401"),
        ("404 plain HTTP", "/api/v1/no-such-route", false, json, &api_body, compat, "404"),
        ("413 audit", "/webhooks/audit", true, json, &audit_over, h1, "413"),
        // Over 10 MiB too: refused for the token, not the size, so the body was never read.
        ("401 audit", "/webhooks/audit", false, json, &audit_over, h1, "401"),
        ("404 metrics port", "/no-such-route", false, json, &api_body, metrics, "404"),
        ("405 metrics port", "/metrics", false, json, &api_body, metrics, "405"),
    ];
    let cases: Vec<Case> = table
        .into_iter()
        .map(
            |(name, path, token, content_type, body, via, expected)| Case {
                name,
                path,
                token,
                content_type,
                body: body.clone(),
                via,
                expected,
            },
        )
        .collect();
    // The cases run side by side (more load, more chances for a race); each 100 times.
    let runs = cases.iter().map(|case| curl_many(&app, case, 100));
    let failures: Vec<String> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} curl runs did not read the status:\n{}",
        failures.len(),
        cases.len() * 100,
        failures.join("\n")
    );
}

//! The edges of the HTTP exchange: answers decided before the body was read reach the client
//! (real `curl`, 100 times each), unread bodies are drained so the connection stays usable,
//! and a body that trickles in is cut off by `BODY_READ_TIMEOUT` with a 408.

use crate::helpers::{TestApp, spawn_app, spawn_app_with, tls_connect, wait_for};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 response read off a raw stream.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Status line and headers, lower-cased.
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn closes_connection(&self) -> bool {
        self.head.contains("\r\nconnection: close\r\n")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// Reads HTTP/1.1 responses (`Content-Length` bodies) from a stream, keeping what it read
/// beyond one response for the next.
pub struct ResponseReader {
    buffered: Vec<u8>,
}

impl ResponseReader {
    pub fn new() -> Self {
        ResponseReader {
            buffered: Vec::new(),
        }
    }

    /// The next response (1xx included), or `None` when the stream ends or fails first.
    pub async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(at) = find(&self.buffered, b"\r\n\r\n") {
                break at + 4;
            }
            self.fill(stream).await?;
        };
        let head = String::from_utf8_lossy(&self.buffered[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(Some(0), |v| v.trim().parse().ok())?;
        while self.buffered.len() < head_end + length {
            self.fill(stream).await?;
        }
        let body = self.buffered[head_end..head_end + length].to_vec();
        self.buffered.drain(..head_end + length);
        Some(RawResponse { status, head, body })
    }

    async fn fill<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> Option<()> {
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                self.buffered.extend_from_slice(&chunk[..n]);
                Some(())
            }
        }
    }

    /// Whether the server closed the stream after the responses read so far (end of stream
    /// or TLS close, with nothing more sent).
    pub async fn closed<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> bool {
        self.buffered.is_empty() && self.fill(stream).await.is_none()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

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

/// The raw request head of a POST with a declared body.
fn post_head(path: &str, token: Option<&str>, length: usize) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn an_unread_body_is_drained_and_the_connection_serves_the_next_request() {
    // The drain must finish for the connection to stay open; on a loaded machine reading 4 MiB
    // can take seconds, so the body deadline is far out of reach here (its expiry, which
    // closes the connection, is tested on its own below).
    let app = spawn_app_with(|env| {
        env.insert("BODY_READ_TIMEOUT".into(), "300s".into());
    })
    .await;
    let mut stream = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    let mut reader = ResponseReader::new();
    let body = vec![b' '; 256 * 1024];

    // Token-less: 401 is decided from the headers, before any of the body is read.
    stream
        .write_all(post_head("/api/v1/incidents", None, body.len()).as_bytes())
        .await
        .expect("head");
    stream.write_all(&body).await.expect("body");
    let denied = reader.next(&mut stream).await.expect("a 401");
    assert_eq!(denied.status, 401, "{denied:?}");
    assert!(!denied.closes_connection(), "{}", denied.head);

    // Same connection: the body was drained, so the next request is parsed cleanly.
    let head = format!(
        "GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.expect("second");
    let health = reader.next(&mut stream).await.expect("an answer");
    assert_eq!(health.status, 200, "{health:?}");

    // Over the route's limit (3 MiB): 413, and the body is drained all the same.
    let review = vec![b' '; 4 * 1024 * 1024];
    let head = post_head("/webhooks/validate", None, review.len());
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&review).await.expect("body");
    let too_large = reader.next(&mut stream).await.expect("a 413");
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert_eq!(too_large.json()["error"]["code"], "payload_too_large");
    assert!(!too_large.closes_connection(), "{}", too_large.head);

    // More than the server drains (16 MiB): answered at once, and the connection closes.
    let head = post_head("/webhooks/validate", None, 32 * 1024 * 1024);
    stream.write_all(head.as_bytes()).await.expect("head");
    let too_large = reader.next(&mut stream).await.expect("a 413");
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert!(too_large.closes_connection(), "{}", too_large.head);
    assert!(reader.closed(&mut stream).await, "closed after the 413");
}

#[tokio::test]
async fn a_client_that_sends_its_whole_body_before_reading_still_reads_the_413() {
    let app = spawn_app().await;
    let mut stream = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    // Declared over what the server drains: the 413 is sent at once and the server closes,
    // while this client, like many, goes on sending before it reads anything. The lingering
    // close keeps reading (and discarding) meanwhile; a plain close would answer the incoming
    // bytes with a reset, and these writes would fail.
    let head = post_head("/webhooks/validate", None, 20 * 1024 * 1024);
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b' '; 64 * 1024];
    for sent in 0..128 {
        stream
            .write_all(&chunk)
            .await
            .unwrap_or_else(|e| panic!("write {sent} (of 8 MiB) failed: {e}"));
    }
    stream.flush().await.expect("flush");
    let mut reader = ResponseReader::new();
    let too_large = reader
        .next(&mut stream)
        .await
        .expect("the 413, not a reset");
    assert_eq!(too_large.status, 413, "{too_large:?}");
    assert!(too_large.closes_connection(), "{}", too_large.head);
    assert!(reader.closed(&mut stream).await, "then a clean close");
}

#[tokio::test]
async fn the_headers_of_a_later_request_on_a_kept_alive_connection_are_timed_too() {
    let app = spawn_app_with(|env| {
        env.insert("HEADER_READ_TIMEOUT".into(), "1s".into());
    })
    .await;
    let stream = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    second_request_trickling_its_headers_is_closed(stream, "/health").await;
}

#[tokio::test]
async fn the_metrics_port_times_the_headers_of_a_later_request_too() {
    let app = spawn_app_with(|env| {
        env.insert("HEADER_READ_TIMEOUT".into(), "1s".into());
    })
    .await;
    let stream = tokio::net::TcpStream::connect(app.metrics_addr)
        .await
        .expect("metrics port");
    second_request_trickling_its_headers_is_closed(stream, "/metrics").await;
}

/// One request answered and kept alive, then the next one's headers a byte every 300 ms
/// (12 s for all of them): the server must close once `HEADER_READ_TIMEOUT` (1 s) runs out.
async fn second_request_trickling_its_headers_is_closed<S>(stream: S, path: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(stream);
    let mut reader = ResponseReader::new();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes();
    write.write_all(&request).await.expect("first request");
    let first = reader.next(&mut read).await.expect("first answer");
    assert_eq!(first.status, 200, "{first:?}");
    assert!(!first.closes_connection(), "kept alive: {}", first.head);

    let writer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(300));
        for byte in request {
            tick.tick().await;
            if write.write_all(&[byte]).await.is_err() || write.flush().await.is_err() {
                break;
            }
        }
    });
    let closed = tokio::time::timeout(Duration::from_secs(30), reader.closed(&mut read))
        .await
        .expect("an outcome within 30 s");
    writer.abort();
    assert!(
        closed,
        "closed, not answered, once HEADER_READ_TIMEOUT ran out"
    );
}

/// Sends `head`, then the body one byte every 200 ms (never all of it); returns the response
/// and how long it took, and whether the server then closed the connection.
async fn trickle(app: &TestApp, head: String) -> (RawResponse, Duration, bool) {
    let stream = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    let (mut read, mut write) = tokio::io::split(stream);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await.expect("head");
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for _ in 0..200 {
            tick.tick().await;
            if write.write_all(b" ").await.is_err() || write.flush().await.is_err() {
                break;
            }
        }
    });
    let mut reader = ResponseReader::new();
    let response = tokio::time::timeout(Duration::from_secs(20), reader.next(&mut read))
        .await
        .expect("an answer within 20 s")
        .expect("a response, not a reset");
    let elapsed = started.elapsed();
    let closed = tokio::time::timeout(Duration::from_secs(20), reader.closed(&mut read))
        .await
        .expect("closed within 20 s");
    writer.abort();
    (response, elapsed, closed)
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_and_a_closed_connection_on_every_route() {
    let app = spawn_app_with(|env| {
        env.insert("BODY_READ_TIMEOUT".into(), "1s".into());
    })
    .await;
    let token = Some(app.token.as_str());
    let routes = [
        "/api/v1/incidents",
        "/api/v1/guard/explain",
        "/api/v1/remediation/trigger",
        "/webhooks/alertmanager",
        "/webhooks/validate",
        "/webhooks/audit",
    ];
    let runs = routes
        .iter()
        .map(|route| trickle(&app, post_head(route, token, 1000)));
    let results = futures_util::future::join_all(runs).await;
    for (route, (response, elapsed, closed)) in routes.iter().zip(results) {
        assert_eq!(response.status, 408, "{route}: {response:?}");
        assert_eq!(
            response.json()["error"]["code"],
            "request_timeout",
            "{route}"
        );
        assert!(response.closes_connection(), "{route}: {}", response.head);
        assert!(closed, "{route}: the connection is closed after the 408");
        // 1 s of timeout plus scheduling; a trickle of 1000 bytes would take 200 s.
        assert!(elapsed < Duration::from_secs(15), "{route}: {elapsed:?}");
    }
    let counted = wait_for(
        "the timeouts to be counted",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let metrics = app.metrics().await;
            metric_value(&metrics, "coordination_engine_body_read_timeouts_total")
                .filter(|n| *n >= routes.len() as f64)
        },
    )
    .await;
    assert_eq!(counted, routes.len() as f64);
}

#[tokio::test]
async fn a_trickling_body_after_an_early_answer_is_cut_off_too() {
    let app = spawn_app_with(|env| {
        env.insert("BODY_READ_TIMEOUT".into(), "1s".into());
    })
    .await;
    // Token-less: the 401 is decided at once; draining the body then runs out of time.
    let (response, elapsed, closed) =
        trickle(&app, post_head("/api/v1/incidents", None, 1000)).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert!(response.closes_connection(), "{}", response.head);
    assert!(closed);
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "coordination_engine_body_read_timeouts_total"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_less_audit_post_is_refused_before_its_body_is_read() {
    let app = spawn_app_with(|env| {
        env.insert("BODY_READ_TIMEOUT".into(), "1s".into());
    })
    .await;
    // Refused from the headers: the 401 stands while the trickling body is drained and cut
    // off. Reading the body first (up to 10 MiB into memory) would answer 408 instead.
    let (response, elapsed, closed) = trickle(&app, post_head("/webhooks/audit", None, 1000)).await;
    assert_eq!(response.status, 401, "{response:?}");
    assert_eq!(response.json()["error"]["code"], "unauthorized");
    assert!(response.closes_connection(), "{}", response.head);
    assert!(closed);
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}

/// The value of an unlabelled series in the Prometheus text format.
fn metric_value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn token_less_bodies_over_the_shared_budget_get_503_until_the_budget_is_free() {
    let budget = 4 * 1024 * 1024;
    let app = spawn_app_with(|env| {
        env.insert("TOKENLESS_BODY_BUDGET".into(), budget.to_string());
        // The held request must not be cut off while the others run.
        env.insert("BODY_READ_TIMEOUT".into(), "120s".into());
    })
    .await;
    let in_use =
        |metrics: &str| metric_value(metrics, "coordination_engine_body_budget_bytes_in_use");

    // Holds 3 MiB of the 4 MiB: the head and one byte, then nothing.
    let held_length = 3 * 1024 * 1024;
    let mut held = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    held.write_all(post_head("/webhooks/validate", None, held_length).as_bytes())
        .await
        .expect("head");
    held.write_all(b" ").await.expect("first byte");
    held.flush().await.expect("flush");
    wait_for(
        "the held body to be charged",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { in_use(&app.metrics().await).filter(|n| *n == held_length as f64) },
    )
    .await;

    // 2 MiB more does not fit: 503 with Retry-After, decided before the body is read, and
    // the body drained so the connection stays usable.
    let body = vec![b' '; 2 * 1024 * 1024];
    let mut other = tls_connect(app.addr, &[app.ca_file.as_path()]).await;
    let mut reader = ResponseReader::new();
    other
        .write_all(post_head("/webhooks/validate", None, body.len()).as_bytes())
        .await
        .expect("head");
    other.write_all(&body).await.expect("body");
    let refused = reader.next(&mut other).await.expect("a 503");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.json()["error"]["code"], "unavailable");
    assert!(refused.head.contains("retry-after: 1"), "{}", refused.head);
    assert!(!refused.closes_connection(), "{}", refused.head);
    let metrics = app.metrics().await;
    assert_eq!(
        metric_value(&metrics, "coordination_engine_body_budget_rejections_total"),
        Some(1.0),
        "{metrics}"
    );

    // The held body arrives (not a review: 400); its charge is returned.
    held.write_all(&vec![b' '; held_length - 1])
        .await
        .expect("rest of the body");
    let mut held_reader = ResponseReader::new();
    let answered = held_reader.next(&mut held).await.expect("an answer");
    assert_eq!(answered.status, 400, "{answered:?}");
    wait_for(
        "the budget to be free",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async { in_use(&app.metrics().await).filter(|n| *n == 0.0) },
    )
    .await;

    // The same 2 MiB on the same connection now fits: read, and answered on its merits.
    other
        .write_all(post_head("/webhooks/validate", None, body.len()).as_bytes())
        .await
        .expect("head");
    other.write_all(&body).await.expect("body");
    let read = reader.next(&mut other).await.expect("an answer");
    assert_eq!(read.status, 400, "{read:?}");
}

//! Headers and bodies that trickle in are cut off: `HEADER_READ_TIMEOUT` on every request of
//! a kept-alive connection, `BODY_READ_TIMEOUT` with a 408 and a closed connection.

use super::{RawResponse, ResponseReader, metric_value, post_head};
use crate::helpers::{TestApp, spawn_app_with, tls_connect, wait_for};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

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

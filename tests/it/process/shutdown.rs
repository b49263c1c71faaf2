//! Graceful shutdown: SIGTERM answers what is in flight, then exits 0.

use super::{BIN, line_containing};
use crate::edge::ResponseReader;
use crate::helpers::tls_connect;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The promise of docs/decisions/0008-graceful-shutdown-promise.md, with synchronization
/// points instead of timing: the TLS handshake (the server has accepted the connection), the
/// `100 Continue` (the server has read the request's headers) and the "SIGTERM received" line
/// (shutdown has begun). The server's own timeouts are set far above the test's deadlines, so
/// none of them can decide the outcome.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut child = spawn_with_timeouts_far_above_the_test(dir.path());
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();

    // The banner tells a new user where to go and how to authenticate.
    let api_line = line_containing(&mut stderr, "listening on").await;
    let addr: std::net::SocketAddr = api_line
        .rsplit("listening on ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .expect("banner names the address");
    line_containing(&mut stderr, "Authorization: Bearer $(cat data/api-token)").await;
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let token = std::fs::read_to_string(dir.path().join("data/api-token")).expect("token");
    let ca = dir.path().join("data/tls/ca.crt");

    // Connection A: accepted (the handshake is done), its request headers half sent.
    let mut headers_arriving = tls_connect(addr, &[ca.as_path()]).await;
    headers_arriving
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("partial request");
    headers_arriving.flush().await.expect("flush");

    // Connection B: headers complete, the body still to come.
    let body = br#"{"title":"sent during shutdown"}"#;
    let (mut body_pending, mut b_reader) = headers_read_body_pending(addr, &ca, &token, body).await;

    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    line_containing(&mut stdout, "SIGTERM received").await;
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

    // Both are answered in full, and each answer closes its connection (neither client
    // asked for that: the server is shutting down).
    body_pending.write_all(body).await.expect("body");
    let created = b_reader
        .next(&mut body_pending)
        .await
        .expect("B is answered");
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.closes_connection(), "{}", created.head);
    assert!(b_reader.closed(&mut body_pending).await, "B is closed");

    headers_arriving
        .write_all(b"\r\n")
        .await
        .expect("rest of the headers");
    let mut a_reader = ResponseReader::new();
    let health = a_reader
        .next(&mut headers_arriving)
        .await
        .expect("A is answered");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["status"], "ok");
    assert!(health.closes_connection(), "{}", health.head);
    assert!(a_reader.closed(&mut headers_arriving).await, "A is closed");
    drop((headers_arriving, body_pending));

    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits once its connections are answered")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

/// `serve` with JSON logs at info (the "SIGTERM received" line) and every timeout of its own
/// far above the test's deadlines.
fn spawn_with_timeouts_far_above_the_test(dir: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .envs([
            ("PORT", "0"),
            ("METRICS_PORT", "0"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info"),
            ("HEADER_READ_TIMEOUT", "300s"),
            ("BODY_READ_TIMEOUT", "300s"),
            ("SHUTDOWN_TIMEOUT", "300s"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn")
}

/// A connection whose `POST` headers the server has read (it answered `100 Continue`) and
/// whose `body` is still to come.
async fn headers_read_body_pending(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    token: &str,
    body: &[u8],
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ResponseReader,
) {
    let mut body_pending = tls_connect(addr, &[ca]).await;
    let head = format!(
        "POST /api/v1/incidents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        token.trim(),
        body.len()
    );
    body_pending.write_all(head.as_bytes()).await.expect("head");
    let mut b_reader = ResponseReader::new();
    let interim = b_reader
        .next(&mut body_pending)
        .await
        .expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");
    (body_pending, b_reader)
}

//! Unread bodies are drained so the connection serves the next request, and a client that
//! writes its whole body before reading still reads the early answer.

use super::{ResponseReader, post_head};
use crate::helpers::{spawn_app, spawn_app_with, tls_connect};
use tokio::io::AsyncWriteExt;

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

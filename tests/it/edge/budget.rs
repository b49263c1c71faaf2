//! Token-less bodies share one budget: over it they get a 503 until it is free again.

use super::{ResponseReader, metric_value, post_head};
use crate::helpers::{spawn_app_with, tls_connect, wait_for};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

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

//! Alertmanager intake benchmark: `cargo bench --bench intake` (writes docs/perf.md).
//!
//! The real server in-process (TLS on, SQLite with synchronous=FULL), notifications posted over
//! HTTPS with keep-alive, each answered only after its commit. Under `cargo test` it runs a
//! small smoke version and writes nothing.

mod common;

use common::{ms, percentile};
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::{Duration, Instant};

fn notification(batch: usize, size: usize) -> Value {
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
async fn post_committed(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Duration {
    let sent = Instant::now();
    let response = client
        .post(url)
        .bearer_auth(common::TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body");
    sent.elapsed()
}

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let (base, ca, _dir) = common::spawn_server().await;
    let url = format!("{base}/webhooks/alertmanager");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("pem")])
        .build()
        .expect("client");

    let mut report = String::from("## Alertmanager intake\n\n");
    let _ = writeln!(
        report,
        "One sender, sequential notifications of new alerts (each alert a new incident), HTTPS \
         with keep-alive; a notification is answered after its transaction is on disk.\n"
    );
    let _ = writeln!(
        report,
        "| alerts per notification | notifications | alerts/s committed | p50 per notification | p99 per notification |\n|---|---|---|---|---|"
    );
    let plan: &[(usize, usize)] = if full {
        &[(1, 1000), (100, 200), (1000, 30)]
    } else {
        &[(1, 5), (100, 2), (1000, 1)]
    };
    let mut batch_id = 0;
    for &(size, count) in plan {
        let bodies: Vec<Vec<u8>> = (0..count)
            .map(|_| {
                batch_id += 1;
                serde_json::to_vec(&notification(batch_id, size)).expect("json")
            })
            .collect();
        let mut samples = Vec::with_capacity(count);
        let started = Instant::now();
        for body in bodies {
            samples.push(post_committed(&client, &url, body).await);
        }
        let elapsed: Duration = started.elapsed();
        let rate = (size * count) as f64 / elapsed.as_secs_f64();
        let (p50, p99) = (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        );
        let _ = writeln!(
            report,
            "| {size} | {count} | {rate:.0} | {} | {} |",
            ms(p50),
            ms(p99)
        );
    }
    // Audit batches: 500 RequestResponse events each (kubectl patches of a managed Deployment,
    // so every event is judged through the full drift path and becomes an incident), and the
    // same with ignored events (ArgoCD's own syncs), the common case on a busy API server.
    let audit_url = url.replace("/webhooks/alertmanager", "/webhooks/audit");
    let samples_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/samples/audit");
    let load = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(samples_dir.join(name)).expect("sample"))
            .expect("json")
    };
    let _ = writeln!(
        report,
        "\n## Audit intake\n\nBatches of 500 `RequestResponse` events (as the API server's webhook \
         backend batches them), one sender, HTTPS keep-alive; answered after the commit.\n"
    );
    let _ = writeln!(
        report,
        "| events | batches | events/s committed | p50 per batch | p99 per batch |\n|---|---|---|---|---|"
    );
    let batches = if full { 40 } else { 2 };
    let mut audit_id = 0u64;
    for (label, sample) in [
        ("drift (each event an incident)", "kubectl-scale.json"),
        ("ArgoCD syncs (ignored)", "argocd-sync.json"),
    ] {
        let template = load(sample)["items"][0].clone();
        let bodies: Vec<Vec<u8>> = (0..batches)
            .map(|_| {
                let items: Vec<Value> = (0..500)
                    .map(|_| {
                        audit_id += 1;
                        let mut e = template.clone();
                        e["auditID"] = json!(format!("{audit_id:032x}"));
                        e
                    })
                    .collect();
                serde_json::to_vec(
                    &json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}),
                )
                .expect("json")
            })
            .collect();
        let mut samples = Vec::new();
        let started = Instant::now();
        for body in bodies {
            samples.push(post_committed(&client, &audit_url, body).await);
        }
        let rate = (500 * batches) as f64 / started.elapsed().as_secs_f64();
        let (p50, p99) = (
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
        );
        let _ = writeln!(
            report,
            "| {label} | {batches} | {rate:.0} | {} | {} |",
            ms(p50),
            ms(p99)
        );
    }
    print!("{report}");
    if full {
        common::write_section("intake", "cargo bench --bench intake", &report);
    }
}

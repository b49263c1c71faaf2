//! Admission guard benchmark: `cargo bench --bench guard` (writes docs/perf.md).
//!
//! 1. `review()` alone, and parse + review + encode (what the handler does per request), on a
//!    real UPDATE review of a Deployment (object and oldObject).
//! 2. The webhook over TLS with keep-alive: paced at 1 000 reviews/s, then unpaced.
//!
//! Under `cargo test` it runs a small smoke version and writes nothing.

mod common;

use common::{ms, percentile};
use coordination_engine::config::{self, Sources};
use coordination_engine::guard::admission::{AdmissionReview, validate};
use coordination_engine::guard::view::{AppInfo, IgnoreRule};
use coordination_engine::guard::{GuardConfig, GuardView, review};
use serde_json::Value;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn replicas_review() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/admission/cases.json");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("cases")).expect("json");
    cases["cases"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "kubectl set image on a managed deployment")
        .expect("case")["review"]
        .clone()
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() {
    coordination_engine::tls::install_default_provider();
    let full = std::env::args().any(|a| a == "--bench");
    let settings = config::load(&Sources::default()).expect("defaults");
    let mut view = GuardView::new(GuardConfig::from_settings(&settings));
    for i in 0..200 {
        let name = if i == 0 {
            "shop".to_string()
        } else {
            format!("app-{i}")
        };
        view.applications.insert(
            name.clone(),
            AppInfo {
                name,
                namespace: "argocd".into(),
                ignore_differences: vec![IgnoreRule {
                    group: "apps".into(),
                    kind: "Deployment".into(),
                    json_pointers: vec!["/spec/replicas".into()],
                    ..Default::default()
                }],
                self_heal: true,
            },
        );
    }
    let body = serde_json::to_vec(&replicas_review()).expect("json");
    let parsed: AdmissionReview = serde_json::from_slice(&body).expect("review");
    let request = validate(&parsed).expect("valid").clone();
    let now = chrono::Utc::now();

    let iterations = if full { 200_000 } else { 1_000 };
    let mut review_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let decision = review(&request, &view, now);
        review_samples.push(started.elapsed());
        assert_eq!(decision.reason, "manual_change");
    }
    let mut full_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let parsed: AdmissionReview = serde_json::from_slice(&body).expect("review");
        let request = validate(&parsed).expect("valid");
        let decision = review(request, &view, now);
        let encoded = serde_json::to_vec(&decision).expect("encode");
        full_samples.push(started.elapsed());
        assert!(!encoded.is_empty());
    }

    let mut report = String::from("## Admission guard\n\n");
    let _ = writeln!(
        report,
        "A real UPDATE review of a Deployment (object and oldObject, {} bytes) that changes the \
         image: a denial, the most expensive path (tracking-id parse, full diff, ignore rules of \
         the owning Application among 200).\n",
        body.len()
    );
    let _ = writeln!(
        report,
        "| step ({iterations} runs) | p50 | p99 |\n|---|---|---|"
    );
    let _ = writeln!(
        report,
        "| `review()` alone | {} | {} |",
        us(percentile(&mut review_samples, 0.5)),
        us(percentile(&mut review_samples, 0.99))
    );
    let _ = writeln!(
        report,
        "| parse + validate + `review()` + encode | {} | {} |\n",
        us(percentile(&mut full_samples, 0.5)),
        us(percentile(&mut full_samples, 0.99))
    );

    // Over TLS.
    let server = common::spawn_server(None, "bench").await;
    let (base, ca) = (&server.base, &server.ca);
    let url = Arc::new(format!("{base}/webhooks/validate"));
    let body = Arc::new(body);
    let senders = 8;
    let client = |_: usize| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca).expect("pem")])
            .http1_only()
            .build()
            .expect("client")
    };
    let _ = writeln!(
        report,
        "Over HTTPS: {senders} clients, each on its own HTTP/1.1 keep-alive connection (like the API \
         server's webhook client), same review.\n"
    );
    let _ = writeln!(
        report,
        "| load | reviews | reviews/s | p50 | p99 | max |\n|---|---|---|---|---|---|"
    );
    let seconds = if full { 10 } else { 1 };
    for (label, rate) in [
        ("paced at 1 000 reviews/s", Some(1000u64)),
        ("as fast as possible", None),
    ] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..senders {
            let (client, url, body) = (client(i), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut ticker = rate.map(|r| {
                    let mut t = tokio::time::interval(Duration::from_micros(
                        1_000_000 * senders as u64 / r,
                    ));
                    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    t
                });
                while Instant::now() < deadline {
                    if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                    }
                    let sent = Instant::now();
                    let response = client
                        .post(url.as_str())
                        .header("content-type", "application/json")
                        .body(body.as_ref().clone())
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(response.status(), 200);
                    response.bytes().await.expect("body");
                    samples.push(sent.elapsed());
                }
                samples
            }));
        }
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.expect("task"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let count = samples.len();
        let max = samples.iter().max().copied().unwrap_or_default();
        let _ = writeln!(
            report,
            "| {label} | {count} | {:.0} | {} | {} | {} |",
            count as f64 / elapsed,
            ms(percentile(&mut samples, 0.5)),
            ms(percentile(&mut samples, 0.99)),
            ms(max)
        );
    }
    print!("{report}");
    if full {
        common::write_section("guard", "cargo bench --bench guard", &report);
    }
}

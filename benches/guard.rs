//! Admission guard benchmark: `cargo bench --bench guard` (writes docs/perf.md).
//!
//! 1. `review()` alone, and parse + review + encode (what the handler does per request), on a
//!    real UPDATE review of a Deployment (object and oldObject).
//! 2. The webhook over TLS with keep-alive, served by the real binary in its own process: paced
//!    at 1 000 reviews/s, then unpaced; with the server's idle RSS and its peak (VmHWM).
//!
//! Under `cargo test` it runs a small smoke version and writes nothing.

mod common;

use common::{ms, percentile};
use coordination_engine::config::{self, Sources};
use coordination_engine::guard::admission::{AdmissionReview, validate};
use coordination_engine::guard::view::{AppInfo, IgnoreRule};
use coordination_engine::guard::{GuardConfig, GuardView, decide, review};
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
    let view = view_of_200_applications();
    let body = serde_json::to_vec(&replicas_review()).expect("json");

    let mut report = String::from("## Admission guard\n\n");
    let iterations = if full { 200_000 } else { 1_000 };
    in_process(&body, &view, iterations, &mut report);

    // Over TLS, against the real binary in its own process: its RSS is the server's alone.
    let server = ChildServer::start().await;
    let idle_rss = server.status_kib("VmRSS");
    let seconds = if full { 10 } else { 1 };
    over_https(&server, body, seconds, &mut report).await;
    let _ = writeln!(
        report,
        "\nThe server's memory (`/proc/<pid>/status` of the `coordination-engine serve` process): \
         {:.1} MiB resident when idle after startup (VmRSS), {:.1} MiB at most under the runs \
         above (VmHWM, the unpaced run being the heaviest).",
        idle_rss as f64 / 1024.0,
        server.status_kib("VmHWM") as f64 / 1024.0
    );
    print!("{report}");
    if full {
        common::write_section("guard", "cargo bench --bench guard", &report);
    }
}

/// The default guard with 200 self-healing Applications (`shop` first), each ignoring
/// `/spec/replicas` of Deployments.
fn view_of_200_applications() -> GuardView {
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
    view
}

/// Times `review()` alone, then what the handler does per request; writes the paragraph and
/// the step table.
fn in_process(body: &[u8], view: &GuardView, iterations: usize, report: &mut String) {
    let parsed: AdmissionReview = serde_json::from_slice(body).expect("review");
    let request = validate(&parsed).expect("valid").clone();
    let now = chrono::Utc::now();

    let mut review_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let decision = review(&request, view, now);
        review_samples.push(started.elapsed());
        assert_eq!(decision.reason, "manual_change");
    }
    let mut full_samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        // As the webhook reads (one strict pass, the objects borrowed from the body), decides
        // (without the rule trace) and writes its answer.
        let text = std::str::from_utf8(body).expect("utf-8");
        let parsed = AdmissionReview::read_fast(text).expect("review");
        let request = validate(&parsed).expect("valid");
        let decision = decide(request, view, now);
        let mut encoded = Vec::with_capacity(256 + decision.message.len());
        coordination_engine::api::guard::response_for(request, &decision).write_json(&mut encoded);
        full_samples.push(started.elapsed());
        assert!(!encoded.is_empty());
    }

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
        "| parse + validate + `decide()` (the webhook's untraced `review()`) + encode | {} | {} |\n",
        us(percentile(&mut full_samples, 0.5)),
        us(percentile(&mut full_samples, 0.99))
    );
}

/// The webhook over HTTPS, paced then unpaced, for `seconds` each; writes the paragraph and
/// the load table.
async fn over_https(server: &ChildServer, body: Vec<u8>, seconds: u64, report: &mut String) {
    let url = Arc::new(format!("{}/webhooks/validate", server.base));
    let body = Arc::new(body);
    let senders = 8;
    let _ = writeln!(
        report,
        "Over HTTPS: {senders} clients, each on its own HTTP/1.1 keep-alive connection (like the API \
         server's webhook client), same review.\n"
    );
    let _ = writeln!(
        report,
        "| load | reviews | reviews/s | p50 | p99 | max |\n|---|---|---|---|---|---|"
    );
    for (label, rate) in [
        ("paced at 1 000 reviews/s", Some(1000u64)),
        ("as fast as possible", None),
    ] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..senders {
            let client = https_client(&server.ca);
            let (url, body) = (url.clone(), body.clone());
            tasks.push(tokio::spawn(send_until(
                client, url, body, rate, senders, deadline,
            )));
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
}

/// One keep-alive HTTP/1.1 client trusting the server's CA.
fn https_client(ca: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca).expect("pem")])
        .http1_only()
        .build()
        .expect("client")
}

/// One sender: posts `body` until `deadline`, paced at its share (`rate / senders`) of `rate`
/// when given; the time of each answer.
async fn send_until(
    client: reqwest::Client,
    url: Arc<String>,
    body: Arc<Vec<u8>>,
    rate: Option<u64>,
    senders: usize,
    deadline: Instant,
) -> Vec<Duration> {
    let mut samples = Vec::new();
    let mut ticker = rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_micros(1_000_000 * senders as u64 / r));
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
}

/// `coordination-engine serve` (the binary cargo built for this benchmark) on a free port, with
/// its generated TLS material in a temp dir; killed when dropped.
struct ChildServer {
    child: tokio::process::Child,
    base: String,
    ca: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    async fn start() -> ChildServer {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let dir = tempfile::tempdir().expect("dir");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_coordination-engine"))
            .arg("serve")
            .env_clear()
            .envs([
                ("PORT", "0"),
                ("METRICS_PORT", "0"),
                ("BIND_ADDRESS", "127.0.0.1"),
                ("LOG_LEVEL", "warn"),
                ("API_TOKEN", common::TOKEN),
            ])
            .env("DATA_DIR", dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the server");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr: std::net::SocketAddr = loop {
            let line = lines
                .next_line()
                .await
                .expect("stderr")
                .expect("the server exited before listening");
            if let Some(rest) = line.rsplit("listening on ").next()
                && line.contains("listening on")
            {
                break rest.trim_end_matches(')').parse().expect("an address");
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let ca = std::fs::read(dir.path().join("tls/ca.crt")).expect("ca");
        ChildServer {
            child,
            base: format!("https://localhost:{}", addr.port()),
            ca,
            _dir: dir,
        }
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("field")
    }
}

//! The analytics routes against a real Prometheus: two days of synthetic series (a filling
//! disk, a leaking container, an over- and an under-provisioned pod, a namespace approaching
//! its quota) are backfilled with `promtool tsdb create-blocks-from openmetrics`, Prometheus
//! serves them on 127.0.0.1, and each route must find the truth the data was built from.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with, wait_for};
use crate::peers::{find_binary, free_port, spawn};
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::Duration;

const GIB: f64 = 1_073_741_824.0;
const MIB: f64 = 1_048_576.0;
const STEP: i64 = 60;
const SPAN: i64 = 2 * 86_400;
/// The disk fills by this much per day: 100 GiB left → 10 days.
const FILL_PER_DAY: f64 = 10.0 * GIB;
const LEAK_PER_DAY: f64 = 100.0 * MIB;
/// busy-0 restarts once a minute over the last this many seconds.
const CRASH_LOOP: i64 = 600;
/// A raw series (no catalog entry) that spikes to QUEUE_SPIKE in its last minutes.
const QUEUE_METRIC: &str = "shop_queue_depth";
const QUEUE_SPIKE: f64 = 100.0;

/// One metric family: `(labels, value at t)` per series, sampled every STEP over SPAN.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    series: &[(&str, &dyn Fn(f64) -> f64)],
    now: i64,
) {
    let family_name = if kind == "counter" {
        name.trim_end_matches("_total")
    } else {
        name
    };
    writeln!(out, "# TYPE {family_name} {kind}").expect("write");
    for (labels, value) in series {
        let mut t = now - SPAN;
        while t <= now {
            let age_days = (now - t) as f64 / 86_400.0;
            let elapsed = (t - (now - SPAN)) as f64;
            let v = value(if kind == "counter" { elapsed } else { age_days });
            writeln!(out, "{name}{{{labels}}} {v} {t}").expect("write");
            t += STEP;
        }
    }
}

/// A small deterministic wobble so fits are not trivially perfect.
fn wobble(x: f64, amplitude: f64) -> f64 {
    (x * 37.0).sin() * amplitude
}

fn openmetrics(now: i64) -> String {
    let mut out = String::new();
    let shop = |pod: &str| format!(r#"namespace="shop",pod="{pod}",container="app""#);
    family(
        &mut out,
        "node_filesystem_avail_bytes",
        "gauge",
        &[
            (
                r#"instance="worker-1:9100",device="/dev/sda1",fstype="xfs",mountpoint="/var""#,
                &|age| 100.0 * GIB + FILL_PER_DAY * age,
            ),
            (
                r#"instance="worker-1:9100",device="/dev/sda2",fstype="xfs",mountpoint="/""#,
                &|age| 40.0 * GIB + wobble(age, MIB),
            ),
            (
                r#"instance="worker-2:9100",device="tmpfs",fstype="tmpfs",mountpoint="/run""#,
                &|age| GIB - 0.5 * GIB * age,
            ),
        ],
        now,
    );
    family(
        &mut out,
        "node_filesystem_size_bytes",
        "gauge",
        &[
            (
                r#"instance="worker-1:9100",device="/dev/sda1",fstype="xfs",mountpoint="/var""#,
                &|_| 500.0 * GIB,
            ),
            (
                r#"instance="worker-1:9100",device="/dev/sda2",fstype="xfs",mountpoint="/""#,
                &|_| 100.0 * GIB,
            ),
        ],
        now,
    );
    let (leaky, steady, fat, busy) = (
        shop("leaky-0"),
        shop("steady-0"),
        shop("fat-0"),
        shop("busy-0"),
    );
    family(
        &mut out,
        "container_memory_working_set_bytes",
        "gauge",
        &[
            (&leaky, &|age| {
                200.0 * MIB + LEAK_PER_DAY * (2.0 - age) + wobble(age, 5.0 * MIB)
            }),
            (&steady, &|age| 300.0 * MIB + wobble(age, 5.0 * MIB)),
            (&fat, &|age| 100.0 * MIB + wobble(age, MIB)),
            (&busy, &|age| 450.0 * MIB + wobble(age, MIB)),
        ],
        now,
    );
    family(
        &mut out,
        "container_cpu_usage_seconds_total",
        "counter",
        &[
            (&leaky, &|s| 0.05 * s),
            (&steady, &|s| 0.05 * s),
            (&fat, &|s| 0.1 * s),
            (&busy, &|s| 0.5 * s),
        ],
        now,
    );
    family(
        &mut out,
        "container_cpu_cfs_periods_total",
        "counter",
        &[(&fat, &|s| 10.0 * s), (&busy, &|s| 10.0 * s)],
        now,
    );
    family(
        &mut out,
        "container_cpu_cfs_throttled_periods_total",
        "counter",
        &[(&fat, &|_| 0.0), (&busy, &|s| 5.0 * s)],
        now,
    );
    let fat_cpu = format!(r#"{fat},resource="cpu",unit="core""#);
    let fat_memory = format!(r#"{fat},resource="memory",unit="byte""#);
    let busy_cpu = format!(r#"{busy},resource="cpu",unit="core""#);
    let busy_memory = format!(r#"{busy},resource="memory",unit="byte""#);
    family(
        &mut out,
        "kube_pod_container_resource_requests",
        "gauge",
        &[
            (&fat_cpu, &|_| 2.0),
            (&fat_memory, &|_| 2.0 * GIB),
            (&busy_cpu, &|_| 0.1),
            (&busy_memory, &|_| 256.0 * MIB),
        ],
        now,
    );
    family(
        &mut out,
        "kube_pod_container_resource_limits",
        "gauge",
        &[
            (&fat_cpu, &|_| 4.0),
            (&fat_memory, &|_| 4.0 * GIB),
            (&busy_cpu, &|_| 0.2),
            (&busy_memory, &|_| 512.0 * MIB),
        ],
        now,
    );
    family(
        &mut out,
        "kube_resourcequota",
        "gauge",
        &[(
            r#"namespace="shop",resourcequota="shop-quota",resource="limits.memory",type="hard""#,
            &|_| 2.0 * GIB,
        )],
        now,
    );
    // busy-0 starts crash-looping 10 minutes before now: one restart a minute.
    family(
        &mut out,
        "kube_pod_container_status_restarts_total",
        "counter",
        &[
            (&busy, &|s| {
                ((s - (SPAN - CRASH_LOOP) as f64) / 60.0).floor().max(0.0)
            }),
            (&steady, &|_| 0.0),
        ],
        now,
    );
    // An application's own gauge, not in the catalog: busy-0's queue jumps in the last minutes.
    family(
        &mut out,
        QUEUE_METRIC,
        "gauge",
        &[
            (r#"namespace="shop",pod="busy-0""#, &|age| {
                if age * 86_400.0 < 200.0 {
                    QUEUE_SPIKE
                } else {
                    10.0
                }
            }),
            (r#"namespace="shop",pod="steady-0""#, &|_| 10.0),
        ],
        now,
    );
    let pods: Vec<String> = ["leaky-0", "steady-0", "fat-0", "busy-0"]
        .iter()
        .map(|p| format!(r#"namespace="shop",pod="{p}""#))
        .collect();
    let one: &dyn Fn(f64) -> f64 = &|_| 1.0;
    let pod_series: Vec<(&str, &dyn Fn(f64) -> f64)> =
        pods.iter().map(|p| (p.as_str(), one)).collect();
    family(&mut out, "kube_pod_info", "gauge", &pod_series, now);
    out.push_str("# EOF\n");
    out
}

/// A Prometheus serving the backfilled data, and the engine pointed at it.
struct Setup {
    app: TestApp,
    _prometheus: tokio::process::Child,
    _models: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

async fn setup() -> Option<Setup> {
    setup_with(false).await
}

/// With `models`, the real KServe model server scores anomalies too.
async fn setup_with(models: bool) -> Option<Setup> {
    // The probe client below is built before any engine starts: this test may run alone.
    coordination_engine::tls::install_default_provider();
    let prometheus = find_binary("PROMETHEUS_BIN", &["prometheus"])?;
    let promtool = find_binary("PROMTOOL_BIN", &["promtool"])?;
    let dir = tempfile::tempdir().expect("dir");
    let now = chrono::Utc::now().timestamp();
    let input = dir.path().join("series.om");
    std::fs::write(&input, openmetrics(now)).expect("write series");
    let tsdb = dir.path().join("tsdb");
    let backfill = std::process::Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&tsdb)
        .output()
        .expect("run promtool");
    assert!(
        backfill.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&backfill.stderr)
    );
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("config");
    let port = free_port();
    let child = spawn(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", tsdb.display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--storage.tsdb.retention.time=30d".to_string(),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    wait_for(
        "Prometheus to serve the backfilled series",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let answer: Value = probe
                .get(format!("{base}/api/v1/query"))
                .query(&[("query", "count(kube_pod_info)")])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (answer["data"]["result"][0]["value"][1] == "4").then_some(())
        },
    )
    .await;
    let (model_server, model_url) = if models {
        let port = free_port();
        let server = crate::peers::start_model_server(port).await?;
        (Some(server), Some(format!("http://127.0.0.1:{port}")))
    } else {
        (None, None)
    };
    let app = spawn_app_with(|env| {
        env.insert("PROMETHEUS_URL".into(), base);
        if let Some(url) = model_url {
            env.insert("ENABLE_KSERVE_INTEGRATION".into(), "true".into());
            env.insert("KSERVE_ANOMALY_DETECTOR_URL".into(), url.clone());
            env.insert("KSERVE_PREDICTIVE_ANALYTICS_URL".into(), url);
        }
    })
    .await;
    Some(Setup {
        app,
        _prometheus: child,
        _models: model_server,
        _dir: dir,
    })
}

fn int(value: &Value, field: &str) -> i64 {
    value[field].as_i64().unwrap_or_else(|| {
        panic!("{field} must be a JSON integer (Go decodes it into int): {value}")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_routes_find_the_truth_in_real_prometheus_data() {
    let Some(setup) = setup().await else { return };
    let app = &setup.app;

    // A disk with 100 GiB left, filling by 10 GiB a day: 10 days (within 10 %).
    let disk = app.get_json("/api/v1/predict/disk-exhaustion").await;
    let results = disk["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "tmpfs is left out: {disk}");
    let var = &results[0];
    assert_eq!(
        (var["node"].as_str(), var["mountpoint"].as_str()),
        (Some("worker-1"), Some("/var"))
    );
    let days = int(var, "days_until_full");
    assert!((9..=11).contains(&days), "{var}");
    let rate = var["daily_fill_rate_bytes"].as_f64().expect("rate");
    assert!((rate / FILL_PER_DAY - 1.0).abs() < 0.1, "{var}");
    assert_eq!(var["urgency"], "warning");
    assert_eq!(
        (
            var["total_bytes"].as_f64(),
            var["used_percent"].as_f64().map(f64::round)
        ),
        (Some(500.0 * GIB), Some(80.0))
    );
    assert_eq!(
        results[1]["urgency"]
            .as_str()
            .map(|u| u == "none" || u == "ok"),
        Some(true),
        "{disk}"
    );
    assert_eq!(int(&disk, "warning_count"), 1);
    assert_eq!(int(&disk, "critical_count"), 0);
    let filtered = app
        .get_json("/api/v1/predict/disk-exhaustion?node=worker-1&mountpoint=/")
        .await;
    assert_eq!(
        filtered["results"].as_array().map(Vec::len),
        Some(1),
        "{filtered}"
    );

    // The leaking container grows 100 MiB a day; the steady one does not leak.
    let leaks = app
        .get_json("/api/v1/predict/memory-leak?namespace=shop")
        .await;
    assert_eq!(int(&leaks, "leak_count"), 1, "{leaks}");
    let leaky = &leaks["results"][0];
    assert_eq!(
        (leaky["pod"].as_str(), leaky["leak_detected"].as_bool()),
        (Some("leaky-0"), Some(true))
    );
    let growth = leaky["daily_growth_bytes"].as_f64().expect("growth");
    assert!((growth / LEAK_PER_DAY - 1.0).abs() < 0.1, "{leaky}");
    assert!(leaky["growth_r_squared"].as_f64().expect("r2") > 0.9);

    // fat-0 asks for 2 cores and uses 0.1; busy-0 asks for 0.1 and uses 0.5, throttled 50 %.
    let sizing = app
        .get_json("/api/v1/recommendations/rightsizing?namespace=shop&window=7d")
        .await;
    assert_eq!(sizing["analysis_window"], "7d");
    let find = |pod: &str| {
        sizing["recommendations"]
            .as_array()
            .expect("recommendations")
            .iter()
            .find(|r| r["pod"] == pod)
            .cloned()
            .unwrap_or_else(|| panic!("no {pod} in {sizing}"))
    };
    let fat = find("fat-0");
    assert_eq!(fat["cpu_sizing"], "over-provisioned", "{fat}");
    assert_eq!(fat["memory_sizing"], "over-provisioned", "{fat}");
    assert_eq!(
        (
            fat["current_cpu_request"].as_str(),
            fat["current_memory_request"].as_str()
        ),
        (Some("2"), Some("2Gi"))
    );
    assert_eq!(
        fat["recommended_cpu_request"], "120m",
        "p95 0.1 core + 20 %"
    );
    assert!((fat["p95_cpu_usage_cores"].as_f64().expect("p95") - 0.1).abs() < 0.01);
    assert_eq!(fat["throttle_rate_pct"].as_f64(), Some(0.0));
    let busy = find("busy-0");
    assert_eq!(busy["cpu_sizing"], "under-provisioned", "{busy}");
    assert_eq!(busy["memory_sizing"], "under-provisioned", "{busy}");
    assert!((busy["throttle_rate_pct"].as_f64().expect("throttle") - 50.0).abs() < 1.0);
    assert!(
        find("steady-0")["throttle_rate_pct"].is_null(),
        "no CFS series: null, not 0"
    );
    assert!(int(&sizing, "over_provisioned_count") >= 1);
    assert!(int(&sizing, "under_provisioned_count") >= 1);
    int(&sizing, "right_sized_count");

    // The namespace's working set against its 2 GiB quota, growing 100 MiB a day.
    let capacity = app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(capacity["status"], "success", "{capacity}");
    assert_eq!(capacity["capacity_source"], "resourcequota");
    let used = capacity["current_usage_bytes"].as_f64().expect("usage");
    let truth = (2.0 * GIB - used) / LEAK_PER_DAY;
    let forecast = int(&capacity, "forecasted_exhaustion_days");
    assert!(
        (forecast as f64 - truth).abs() <= 1.0,
        "{forecast} vs {truth}: {capacity}"
    );
    assert!(int(&capacity, "days_until_85_percent") < forecast);
    int(&capacity, "recommended_replica_increase");

    // Every reply, field by field, as the MCP server's Go structs decode it (contract §4).
    use crate::compat::assert_go_fields as go;
    go(
        &disk,
        &[
            ("status", "string"),
            ("critical_count", "int"),
            ("warning_count", "int"),
        ],
    );
    for result in results {
        go(
            result,
            &[
                ("node", "string"),
                ("mountpoint", "string"),
                ("urgency", "string"),
                ("projected_full_date", "string"),
                ("available_bytes", "number"),
                ("total_bytes", "number"),
                ("used_percent", "number"),
                ("daily_fill_rate_bytes", "number"),
                ("days_until_full", "int"),
            ],
        );
    }
    go(
        &leaks,
        &[
            ("status", "string"),
            ("namespace", "string"),
            ("leak_count", "int"),
        ],
    );
    for result in leaks["results"].as_array().expect("results") {
        go(
            result,
            &[
                ("namespace", "string"),
                ("pod", "string"),
                ("container", "string"),
                ("current_memory_bytes", "number"),
                ("daily_growth_bytes", "number"),
                ("growth_r_squared", "number"),
                ("confidence", "number"),
                ("leak_detected", "bool"),
            ],
        );
    }
    go(
        &sizing,
        &[
            ("status", "string"),
            ("namespace", "string"),
            ("analysis_window", "string"),
            ("over_provisioned_count", "int"),
            ("under_provisioned_count", "int"),
            ("right_sized_count", "int"),
        ],
    );
    for r in sizing["recommendations"]
        .as_array()
        .expect("recommendations")
    {
        go(
            r,
            &[
                ("namespace", "string"),
                ("pod", "string"),
                ("container", "string"),
                ("current_cpu_request", "string"),
                ("current_cpu_limit", "string"),
                ("recommended_cpu_request", "string"),
                ("recommended_cpu_limit", "string"),
                ("current_memory_request", "string"),
                ("current_memory_limit", "string"),
                ("recommended_memory_request", "string"),
                ("recommended_memory_limit", "string"),
                ("cpu_sizing", "string"),
                ("memory_sizing", "string"),
                ("p95_cpu_usage_cores", "number"),
                ("p95_memory_usage_bytes", "number"),
                ("throttle_rate_pct", "number"),
            ],
        );
    }
    go(
        &capacity,
        &[
            ("status", "string"),
            ("namespace", "string"),
            ("projected_exhaustion_date", "string"),
            ("days_until_85_percent", "int"),
            ("forecasted_exhaustion_days", "int"),
            ("recommended_replica_increase", "int"),
            ("confidence", "number"),
        ],
    );

    // The engine's own status (contract #9).
    let status = app.get_json("/api/v1/cluster/status").await;
    go(&status, &[("status", "string"), ("timestamp", "string")]);
    go(
        &status["actions"],
        &[
            ("total", "int"),
            ("pending", "int"),
            ("running", "int"),
            ("completed", "int"),
            ("failed", "int"),
        ],
    );
    go(
        &status["conflicts"],
        &[("total", "int"), ("resolved", "int")],
    );
    go(
        &status["engine"],
        &[
            ("running", "bool"),
            ("queue_length", "int"),
            ("workers_count", "int"),
            ("uptime", "string"),
        ],
    );
    assert_eq!(status["engine"]["running"], true);
    int(&status["actions"], "total");
    int(&status["engine"], "queue_length");
}

#[tokio::test]
async fn analytics_without_prometheus_answer_503_naming_the_setting_and_refuse_bad_input() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/predict/disk-exhaustion",
        "/api/v1/predict/memory-leak",
        "/api/v1/recommendations/rightsizing?window=30d",
        "/api/v1/capacity/trends",
    ] {
        let response = app.get_authed(path).await;
        assert_eq!(response.status(), 503, "{path}");
        let (code, body) = error_body(response).await;
        assert_eq!(code, "not_configured", "{path}: {body}");
        assert_eq!(body["error"]["details"]["setting"], "PROMETHEUS_URL");
    }
    for path in [
        "/api/v1/recommendations/rightsizing?window=forever",
        "/api/v1/recommendations/rightsizing?window=365d",
        "/api/v1/predict/memory-leak?namespace=Not_A_Namespace",
        "/api/v1/predict/disk-exhaustion?node=%01evil",
    ] {
        let response = app.get_authed(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let (code, body) = error_body(response).await;
        assert_eq!(code, "bad_request", "{path}: {body}");
    }
    // The engine's own status needs no Prometheus.
    let status = app.get_json("/api/v1/cluster/status").await;
    assert_eq!(status["status"], "success");
}

/// What Go's encoding/json accepts for the anomalies reply (contract §4 #4): a wrong JSON type
/// fails the MCP server's whole call.
fn go_decodes_analysis(v: &Value) {
    let string = |v: &Value, f: &str| assert!(v[f].is_string(), "{f} must be a string: {v}");
    let number = |v: &Value, f: &str| assert!(v[f].is_number(), "{f} must be a number: {v}");
    for f in ["status", "time_range", "analyzed_at"] {
        string(v, f);
    }
    int(v, "anomalies_detected");
    number(v, "threshold");
    for a in v["anomalies"].as_array().expect("anomalies") {
        for f in [
            "metric",
            "type",
            "severity",
            "timestamp",
            "model",
            "explanation",
            "recommended_action",
        ] {
            string(a, f);
        }
        for f in [
            "anomaly_score",
            "confidence",
            "value",
            "expected_min",
            "expected_max",
        ] {
            number(a, f);
        }
        assert!(
            a["metrics"]
                .as_object()
                .expect("metrics")
                .values()
                .all(Value::is_number)
        );
    }
    assert!(
        v["recommendations"]
            .as_array()
            .expect("recommendations")
            .iter()
            .all(Value::is_string)
    );
    for alert in v["alerts"].as_array().expect("alerts") {
        for f in ["type", "message", "severity"] {
            string(alert, f);
        }
        assert!(alert["action_required"].is_boolean());
    }
    let summary = &v["summary"];
    int(summary, "total_metrics_analyzed");
    int(summary, "anomalies_found");
    assert!(
        summary["models_used"]
            .as_array()
            .expect("models")
            .iter()
            .all(Value::is_string)
    );
    assert!(
        summary["by_severity"]
            .as_object()
            .expect("by_severity")
            .values()
            .all(Value::is_i64)
    );
    let signals = &v["enriched_signals"];
    for f in [
        "cpu_throttle_rate",
        "http_error_rate",
        "http_response_time_p99_ms",
    ] {
        assert!(
            signals[f].is_number() || signals[f].is_null(),
            "{f}: {signals}"
        );
    }
    assert!(signals["throttling_detected"].is_boolean() && signals["http_degraded"].is_boolean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_servers_anomaly_requests_are_answered_with_go_compatible_types() {
    let Some(setup) = setup_with(true).await else {
        return;
    };
    let app = &setup.app;
    // analyze-anomalies, get-remediation-recommendations, get-throttled-pods (contract §3 #4),
    // and the Go engine's snake_case keys.
    let shapes = [
        json!({"timeRange": "1h", "metrics": ["cpu"], "threshold": 0.3, "modelName": "anomaly-detector", "namespace": "shop"}),
        json!({"timeRange": "6h", "metrics": ["cpu", "memory", "disk", "network"], "threshold": 0.7, "includePredictions": true}),
        json!({"timeRange": "1h", "metrics": ["cpu_usage"], "threshold": 0.25, "namespace": "shop"}),
        json!({"time_range": "1h", "metrics": [{"name": "memory"}], "threshold": 0.3, "model_name": "anomaly-detector", "namespace": "shop", "pod": "leaky-0"}),
    ];
    let mut answers = Vec::new();
    for shape in &shapes {
        let response = app.post_json("/api/v1/anomalies/analyze", shape).await;
        assert_eq!(response.status(), 200, "{shape}");
        let answer: Value = response.json().await.expect("json");
        go_decodes_analysis(&answer);
        answers.push(answer);
    }
    // The model scored the vectors.
    assert!(
        answers[0]["summary"]["models_used"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("anomaly-detector"))),
        "{}",
        answers[0]
    );
    // get-throttled-pods: busy-0 is throttled in half its periods; the tool splits the
    // explanation at the first "/" and reads metrics.throttle_rate_pct as a fraction.
    let throttled = answers[2]["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|a| a["type"] == "throttling")
        .unwrap_or_else(|| panic!("no throttling anomaly: {}", answers[2]));
    assert!(
        throttled["explanation"]
            .as_str()
            .is_some_and(|e| e.starts_with("shop/busy-0:"))
    );
    let rate = throttled["metrics"]["throttle_rate_pct"]
        .as_f64()
        .expect("rate");
    assert!((rate - 0.5).abs() < 0.02, "{throttled}");
    // Namespace-wide: busy-0's 5 throttled periods a second over 20 in all.
    let overall = answers[2]["enriched_signals"]["cpu_throttle_rate"]
        .as_f64()
        .expect("throttle rate");
    assert!((overall - 0.25).abs() < 0.01, "{}", answers[2]);
    assert!(
        answers[2]["enriched_signals"]["http_error_rate"].is_null(),
        "no HTTP series: null"
    );
    // The snake_case request was scoped to one pod.
    assert_eq!(
        int(&answers[3]["summary"], "total_metrics_analyzed"),
        1,
        "{}",
        answers[3]
    );
    // With Prometheus, /predict measures the namespace's usage against its requests instead of
    // taking the client's estimate: CPU 0.7 cores of 2.1 requested.
    let prediction: Value = app
        .post_json(
            "/api/v1/predict",
            &json!({"hour": 9, "day_of_week": 0, "cpu_rolling_mean": 99.0, "memory_rolling_mean": 99.0,
                    "scope": "namespace", "namespace": "shop"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        prediction["current_metrics"]["source"], "prometheus",
        "{prediction}"
    );
    let cpu = prediction["current_metrics"]["cpu_rolling_mean"]
        .as_f64()
        .expect("cpu");
    assert!((cpu - 100.0 * 0.7 / 2.1).abs() < 1.0, "{prediction}");
    let predicted = prediction["predictions"]["cpu_percent"]
        .as_f64()
        .expect("cpu");
    assert!(
        (predicted - (cpu * 1.5 + 0.25)).abs() < 0.01,
        "the model's answer: {prediction}"
    );
    // Bad requests.
    for bad in [
        json!({"metrics": ["gpu usage"]}),
        json!({"threshold": 2}),
        json!({"timeRange": "forever"}),
        json!({"modelName": "other-model"}),
        json!({"labelSelector": "app=web,"}),
    ] {
        let status = app
            .post_json("/api/v1/anomalies/analyze", &bad)
            .await
            .status();
        assert_eq!(status, 422, "{bad}");
    }
}

/// POSTs an anomaly request that must be answered 200 in Go-decodable types.
async fn analyze(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/v1/anomalies/analyze", &body).await;
    assert_eq!(response.status(), 200, "{body}");
    let answer: Value = response.json().await.expect("json");
    go_decodes_analysis(&answer);
    answer
}

/// The one anomaly of `metric` for `pod` in an answer.
fn anomaly_of<'a>(answer: &'a Value, metric: &str, pod: &str) -> &'a Value {
    answer["anomalies"]
        .as_array()
        .expect("anomalies")
        .iter()
        .find(|a| {
            a["metric"] == metric
                && a["explanation"]
                    .as_str()
                    .is_some_and(|e| e.starts_with(&format!("{pod}:")))
        })
        .unwrap_or_else(|| panic!("no {metric} anomaly for {pod}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_metric_the_user_types_is_a_catalog_query_a_raw_series_or_a_422() {
    let Some(setup) = setup().await else { return };
    let app = &setup.app;

    // The MCP server's analyze-anomalies call as it sends it (contract §3 #4), with the
    // user's metric passed through: busy-0 crash-loops in the last 10 minutes.
    let restarts = analyze(
        app,
        json!({"timeRange": "1h", "metrics": ["pod_restarts"], "threshold": 0.3,
               "modelName": "anomaly-detector", "namespace": "shop"}),
    )
    .await;
    let crash = anomaly_of(&restarts, "pod_restarts", "shop/busy-0");
    assert_eq!(crash["type"], "spike", "{crash}");
    assert!(crash["value"].as_f64().expect("value") >= 2.0, "{crash}");
    assert!(
        crash["recommended_action"]
            .as_str()
            .is_some_and(|a| a.contains("--previous")),
        "{crash}"
    );
    assert_eq!(
        int(&restarts["summary"], "total_metrics_analyzed"),
        2,
        "busy-0 and steady-0 have the series: {restarts}"
    );
    assert_eq!(restarts["metrics_without_data"], json!([]));
    assert!(restarts.get("message").is_none(), "{restarts}");
    // The other names of the same entry answer the same.
    let alias = analyze(
        app,
        json!({"metrics": ["Container_Restarts"], "namespace": "shop", "pod": "busy-0"}),
    )
    .await;
    anomaly_of(&alias, "container_restarts", "shop/busy-0");

    // A raw series by its name: the application's gauge jumped to 100 on busy-0 only.
    let raw = analyze(
        app,
        json!({"timeRange": "1h", "metrics": [QUEUE_METRIC], "threshold": 0.3,
               "modelName": "anomaly-detector", "namespace": "shop"}),
    )
    .await;
    let spike = anomaly_of(&raw, QUEUE_METRIC, "shop/busy-0");
    assert_eq!(spike["value"].as_f64(), Some(QUEUE_SPIKE), "{spike}");
    assert_eq!(
        int(&raw, "anomalies_detected"),
        1,
        "steady-0 is flat: {raw}"
    );
    // A raw counter is read as its rate, and the pod filter scopes it: busy-0 has 10 CFS
    // periods a second (threshold 0 reports every series, with its value).
    let counter = analyze(
        app,
        json!({"metrics": ["container_cpu_cfs_periods_total"], "threshold": 0,
               "namespace": "shop", "pod": "busy-0"}),
    )
    .await;
    assert_eq!(
        int(&counter["summary"], "total_metrics_analyzed"),
        1,
        "{counter}"
    );
    let rate = anomaly_of(&counter, "container_cpu_cfs_periods_total", "shop/busy-0")["value"]
        .as_f64()
        .expect("value");
    assert!((rate - 10.0).abs() < 0.5, "{counter}");

    // A valid name with no series, and a catalog entry whose series this cluster lacks: 200,
    // no anomalies, and a message naming both and what they need.
    let missing = analyze(
        app,
        json!({"timeRange": "1h", "metrics": ["no_such_metric_anywhere", "oom_kills"],
               "threshold": 0.3, "namespace": "shop"}),
    )
    .await;
    assert_eq!(int(&missing, "anomalies_detected"), 0, "{missing}");
    assert_eq!(
        missing["metrics_without_data"],
        json!(["no_such_metric_anywhere", "oom_kills"])
    );
    let message = missing["message"].as_str().expect("message");
    for said in [
        "no_such_metric_anywhere",
        "oom_kills",
        "container_oom_events_total",
        "namespace shop",
    ] {
        assert!(message.contains(said), "{said} in {message}");
    }

    // Every catalog entry's PromQL is accepted by the real Prometheus, scoped every way.
    use coordination_engine::analytics::metrics_catalog::CATALOG;
    let names: Vec<&str> = CATALOG.iter().map(|e| e.names[0]).collect();
    for chunk in names.chunks(10) {
        for scope in [
            json!({"namespace": "shop", "pod": "busy-0"}),
            json!({"namespace": "shop", "deployment": "web.v2"}),
            json!({"labelSelector": "app=web"}),
        ] {
            let mut body = scope.clone();
            body["metrics"] = json!(chunk);
            analyze(app, body).await;
        }
    }

    // Anything that is not a metric name never reaches Prometheus: a 422 naming it.
    let long = "a".repeat(201);
    for bad in [
        r#"up{job="x"} or vector(1)"#,
        "foo)",
        "pod restarts",
        "",
        "cpu\"}",
        r#"{__name__=~".+"}"#,
        long.as_str(),
    ] {
        let response = app
            .post_json(
                "/api/v1/anomalies/analyze",
                &json!({"metrics": ["cpu", bad], "namespace": "shop"}),
            )
            .await;
        assert_eq!(response.status(), 422, "{bad:?}");
        let (code, body) = error_body(response).await;
        assert_eq!(code, "validation_failed", "{body}");
        assert_eq!(body["error"]["details"]["field"], "metrics", "{body}");
        let named = body["error"]["details"]["metric"].as_str().expect("metric");
        assert!(
            bad.starts_with(named.trim_end_matches('…')),
            "{named} for {bad:?}"
        );
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains("Prometheus metric name")
                || message.contains("empty")
                || message.contains("longer"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thanos_path_sends_the_rotated_token_trusts_the_ca_and_reports_upstream_errors() {
    use crate::kube_mock::{MockApiServer, Writes};
    coordination_engine::tls::install_default_provider();
    let empty = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
    let vector = json!({"status": "success", "data": {"resultType": "vector", "result": []}});
    let tls_dir = tempfile::tempdir().expect("dir");
    let (thanos, ca) = MockApiServer::start_tls(
        std::collections::HashMap::new(),
        Writes::from([
            (
                ("GET".to_string(), "/api/v1/query_range".to_string()),
                vec![
                    (200, empty.clone()),
                    (200, empty),
                    (
                        400,
                        json!({"status": "error", "errorType": "bad_data", "error": "parse error"}),
                    ),
                ],
            ),
            (
                ("GET".to_string(), "/api/v1/query".to_string()),
                vec![(200, vector)],
            ),
        ]),
        tls_dir.path(),
    )
    .await;
    let token = tls_dir.path().join("token");
    std::fs::write(&token, "first-token\n").expect("token");
    let app = spawn_app_with(|env| {
        env.insert("PROMETHEUS_URL".into(), thanos.url.clone());
        env.insert("PROMETHEUS_TOKEN_FILE".into(), token.display().to_string());
        env.insert("PROMETHEUS_CA_FILE".into(), ca.display().to_string());
    })
    .await;
    let first = app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    assert_eq!(
        first["status"], "insufficient_data",
        "no series: no made-up numbers"
    );
    // The ServiceAccount token rotates: the next query reads the file again.
    std::fs::write(&token, "rotated-token").expect("token");
    app.get_json("/api/v1/capacity/trends?namespace=shop").await;
    let tokens: Vec<String> = thanos
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/query_range")
        .map(|r| r.authorization.clone())
        .collect();
    assert_eq!(tokens, vec!["Bearer first-token", "Bearer rotated-token"]);
    // Prometheus' own error comes back as a 502 with its message.
    let response = app
        .get_authed("/api/v1/capacity/trends?namespace=shop")
        .await;
    assert_eq!(response.status(), 502);
    let (code, body) = error_body(response).await;
    assert_eq!(code, "upstream_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("bad_data") && m.contains("parse error")),
        "{body}"
    );
    thanos.stop().await;
}

//! Each analytics route against the backfilled Prometheus finds the truth the series were
//! built from; without Prometheus each names the setting it needs.

use super::go_shapes;
use super::series::{FILL_PER_DAY, GIB, LEAK_PER_DAY};
use super::setup::{int, setup};
use crate::helpers::{TestApp, error_body, spawn_app};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_routes_find_the_truth_in_real_prometheus_data() {
    let Some(setup) = setup().await else { return };
    let app = &setup.app;
    let disk = disk_exhaustion(app).await;
    let leaks = memory_leaks(app).await;
    let sizing = rightsizing(app).await;
    let capacity = capacity_trends(app).await;

    // Every reply, field by field, as the MCP server's Go structs decode it (contract §4).
    go_shapes::disk_exhaustion(&disk);
    go_shapes::memory_leaks(&leaks);
    go_shapes::rightsizing(&sizing);
    go_shapes::capacity_trends(&capacity);

    // The engine's own status (contract #9).
    go_shapes::cluster_status(app).await;
}

async fn disk_exhaustion(app: &TestApp) -> Value {
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
    disk
}

async fn memory_leaks(app: &TestApp) -> Value {
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
    leaks
}

async fn rightsizing(app: &TestApp) -> Value {
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
    sizing
}

async fn capacity_trends(app: &TestApp) -> Value {
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
    capacity
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

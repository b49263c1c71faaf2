use super::*;

#[test]
fn initialised_routes_appear_before_any_request() {
    let metrics = Metrics::new();
    metrics.init_route("/health", "GET", 200);
    let text = metrics.render();
    assert!(text.contains(
        "coordination_engine_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 0"
    ), "{text}");
    assert!(
        text.contains("coordination_engine_tls_certificate_reloads_total{result=\"failure\"} 0")
    );
}

#[test]
fn two_apps_do_not_share_counters() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.http_requests
        .with_label_values(&["/x", "GET", "200"])
        .inc();
    assert_eq!(
        b.http_requests
            .with_label_values(&["/x", "GET", "200"])
            .get(),
        0
    );
}

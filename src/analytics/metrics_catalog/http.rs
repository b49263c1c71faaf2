//! Catalog entries of the application's own HTTP metrics: error rate, p99 latency.

use super::{Entry, braces, rate_of};

pub(super) const HTTP_ERROR_RATE: Entry = Entry {
    names: &["http_error_rate", "http_errors", "http_5xx", "error_rate"],
    needs: "http_requests_total with a code label (the application's own metrics)",
    // The 5xx fraction; 0, not absent, for pods that serve requests without errors.
    query: |c| {
        let all = rate_of("http_requests_total", &[], c);
        format!(
            "({} or {all} * 0) / {all}",
            rate_of("http_requests_total", &[r#"code=~"5..""#], c)
        )
    },
    on_spike: "check the application's logs and its dependencies; roll back a recent change if it started then",
    throttling: false,
};

pub(super) const HTTP_LATENCY: Entry = Entry {
    names: &[
        "http_latency",
        "http_latency_p99",
        "http_response_time",
        "latency",
        "response_time",
        "p99_latency",
    ],
    needs: "http_request_duration_seconds_bucket (the application's own histogram)",
    // p99 in milliseconds, like enriched_signals.http_response_time_p99_ms.
    query: |c| {
        format!(
            "1000 * histogram_quantile(0.99, sum by (namespace, pod, le) (rate(http_request_duration_seconds_bucket{}[{}])))",
            braces(&[], c.selector),
            c.window
        )
    },
    on_spike: "check slow dependencies (databases, downstream services) and the pod's CPU throttling",
    throttling: false,
};

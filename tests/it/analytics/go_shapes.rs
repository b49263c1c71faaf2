//! The analytics replies field by field as the MCP server's Go structs decode them
//! (contract §4): a wrong JSON type fails the MCP server's whole call.

use super::setup::int;
use crate::compat::assert_go_fields as go;
use crate::helpers::TestApp;
use serde_json::Value;

pub(super) fn disk_exhaustion(disk: &Value) {
    let results = disk["results"].as_array().expect("results");
    go(
        disk,
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
}

pub(super) fn memory_leaks(leaks: &Value) {
    go(
        leaks,
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
}

pub(super) fn rightsizing(sizing: &Value) {
    go(
        sizing,
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
}

pub(super) fn capacity_trends(capacity: &Value) {
    go(
        capacity,
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
}

/// The engine's own status (contract #9).
pub(super) async fn cluster_status(app: &TestApp) {
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

fn string(v: &Value, f: &str) {
    assert!(v[f].is_string(), "{f} must be a string: {v}");
}

fn number(v: &Value, f: &str) {
    assert!(v[f].is_number(), "{f} must be a number: {v}");
}

/// What Go's encoding/json accepts for the anomalies reply (contract §4 #4): a wrong JSON type
/// fails the MCP server's whole call.
pub(super) fn go_decodes_analysis(v: &Value) {
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
    go_decodes_summary_and_signals(v);
}

fn go_decodes_summary_and_signals(v: &Value) {
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

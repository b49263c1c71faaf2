//! The analytics routes the MCP server's tools call (its contract §2, #6–#9, #11): Prometheus
//! forecasts and recommendations, and the engine's own status. Query strings are untrusted:
//! names are checked, windows bounded, and values only ever reach PromQL escaped.

use super::AppState;
use super::params;
use crate::analytics::anomaly_request::{self, MetricsError};
use crate::analytics::{
    AnalyticsError, capacity, disk, leak, metrics_catalog, prometheus::Prometheus, rightsizing,
};
use crate::error::ApiError;
use crate::store::{PageRequest, PageStart, WorkflowFilter};
use crate::workflow::WorkflowStatus;
use actix_web::web;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

fn prometheus(state: &AppState) -> Result<&Prometheus, ApiError> {
    state
        .prometheus
        .as_ref()
        .ok_or_else(|| AnalyticsError::NotConfigured("PROMETHEUS_URL").into())
}

fn bad(field: &str, message: String) -> ApiError {
    ApiError::bad_request(format!("{field}: {message}"))
        .with_details(serde_json::json!({ "field": field }))
}

/// A window like `24h`, `7d` or `30d`, between 1 hour and 90 days.
fn window(field: &str, value: Option<&str>, default: &str) -> Result<(Duration, String), ApiError> {
    let text = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(default);
    let parsed = crate::config::parse_duration(text)
        .ok_or_else(|| bad(field, format!("{text:?} is not a duration like 24h or 30d")))?;
    if !(Duration::from_secs(3600)..=Duration::from_secs(90 * 86_400)).contains(&parsed) {
        return Err(bad(field, format!("{text} is outside 1h…90d")));
    }
    Ok((parsed, text.to_string()))
}

/// A free-form name (node, pod, mountpoint): bounded, no control characters.
fn name(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => Err(bad(
            field,
            format!("must be at most {max} printable characters"),
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DiskParams {
    /// Only this node.
    pub node: Option<String>,
    /// Only this mountpoint.
    pub mountpoint: Option<String>,
    /// Fit window (default 24h, 1h…90d).
    pub window: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/predict/disk-exhaustion", tag = "analytics", security(("bearer" = [])),
    params(DiskParams), responses((status = 200, body = disk::DiskExhaustion), (status = 503)))]
pub async fn disk_exhaustion(
    state: web::Data<AppState>,
    query: web::Query<DiskParams>,
) -> Result<web::Json<disk::DiskExhaustion>, ApiError> {
    let node = name("node", query.node.as_deref(), 253)?;
    let mountpoint = name("mountpoint", query.mountpoint.as_deref(), 4096)?;
    let (window, _) = window("window", query.window.as_deref(), "24h")?;
    let result = disk::forecast(
        prometheus(&state)?,
        node.as_deref(),
        mountpoint.as_deref(),
        window,
    )
    .await?;
    Ok(web::Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LeakParams {
    pub namespace: Option<String>,
    /// Fit window (default 24h, 1h…90d).
    pub window: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/predict/memory-leak", tag = "analytics", security(("bearer" = [])),
    params(LeakParams), responses((status = 200, body = leak::MemoryLeaks), (status = 503)))]
pub async fn memory_leak(
    state: web::Data<AppState>,
    query: web::Query<LeakParams>,
) -> Result<web::Json<leak::MemoryLeaks>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    let (window, _) = window("window", query.window.as_deref(), "24h")?;
    let result = leak::detect(prometheus(&state)?, namespace.as_deref(), window).await?;
    Ok(web::Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RightSizingParams {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    /// Analysis window (default 30d; the MCP tool sends 7d, 14d, 30d or 90d).
    pub window: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/recommendations/rightsizing", tag = "analytics", security(("bearer" = [])),
    params(RightSizingParams), responses((status = 200, body = rightsizing::RightSizing), (status = 503)))]
pub async fn rightsizing(
    state: web::Data<AppState>,
    query: web::Query<RightSizingParams>,
) -> Result<web::Json<rightsizing::RightSizing>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    let pod = name("pod", query.pod.as_deref(), 253)?;
    let (window, text) = window("window", query.window.as_deref(), "30d")?;
    let result = rightsizing::recommend(
        prometheus(&state)?,
        namespace.as_deref(),
        pod.as_deref(),
        window,
        &text,
    )
    .await?;
    Ok(web::Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CapacityParams {
    pub namespace: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/capacity/trends", tag = "analytics", security(("bearer" = [])),
    params(CapacityParams), responses((status = 200, body = capacity::CapacityTrend), (status = 503)))]
pub async fn capacity_trends(
    state: web::Data<AppState>,
    query: web::Query<CapacityParams>,
) -> Result<web::Json<capacity::CapacityTrend>, ApiError> {
    let namespace = params::namespace(query.namespace.as_deref())?;
    let result = capacity::trend(prometheus(&state)?, namespace.as_deref()).await?;
    Ok(web::Json(result))
}

#[derive(Serialize, ToSchema)]
pub struct ActionCounts {
    pub total: i64,
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ConflictCounts {
    /// Manual changes the guard refused (admission incidents).
    pub total: i64,
    pub resolved: i64,
}

#[derive(Serialize, ToSchema)]
pub struct EngineState {
    pub running: bool,
    /// Incidents waiting for the pipeline.
    pub queue_length: i64,
    /// Live workflows that may run at once.
    pub workers_count: i64,
    pub uptime: String,
}

#[derive(Serialize, ToSchema)]
pub struct ClusterStatus {
    pub status: &'static str,
    pub timestamp: String,
    pub actions: ActionCounts,
    pub conflicts: ConflictCounts,
    pub engine: EngineState,
}

/// Workflows with any of `statuses` (counted, not listed).
async fn count_workflows(state: &AppState, statuses: &[WorkflowStatus]) -> Result<i64, ApiError> {
    let filter = WorkflowFilter {
        statuses: statuses.to_vec(),
        ..Default::default()
    };
    let page = PageRequest {
        limit: 1,
        start: PageStart::Offset(0),
    };
    Ok(state.store.list_workflows(&filter, &page).await?.1)
}

#[utoipa::path(get, path = "/api/v1/cluster/status", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = ClusterStatus)))]
pub async fn cluster_status(
    state: web::Data<AppState>,
) -> Result<web::Json<ClusterStatus>, ApiError> {
    use WorkflowStatus::*;
    let admission = crate::store::IncidentFilter {
        source: Some(crate::incident::Source::Admission),
        ..Default::default()
    };
    let conflicts = state.store.summarize_incidents(&admission).await?;
    let uptime = state.started_at.elapsed().as_secs();
    Ok(web::Json(ClusterStatus {
        status: "success",
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        actions: ActionCounts {
            total: count_workflows(&state, &[]).await?,
            pending: count_workflows(&state, &[Pending, AwaitingApproval]).await?,
            running: count_workflows(&state, &[Running, Verifying]).await?,
            completed: count_workflows(&state, &[Succeeded, NotNeeded]).await?,
            failed: count_workflows(&state, &[Failed, Escalated, Interrupted]).await?,
        },
        conflicts: ConflictCounts {
            total: conflicts.total,
            resolved: conflicts.completed,
        },
        engine: EngineState {
            running: true,
            queue_length: state.store.queued_incidents(10_000).await?.len() as i64,
            workers_count: crate::pipeline::MAX_RUNNING as i64,
            uptime: format!(
                "{}h{:02}m{:02}s",
                uptime / 3600,
                uptime / 60 % 60,
                uptime % 60
            ),
        },
    }))
}

/// A metric as a name or `{"name": …}` (the MCP server sends names).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MetricSpec {
    Name(String),
    Object { name: String },
}

/// The anomaly request, camelCase (the MCP server) or snake_case (the Go engine's own keys).
#[derive(Debug, Deserialize, ToSchema)]
pub struct AnalyzeRequest {
    #[serde(alias = "timeRange")]
    pub time_range: Option<String>,
    /// Catalog names (`pod_restarts`, `http_latency`, …) or any Prometheus metric name, queried
    /// as a raw series (docs/analytics.md, "Metric names"); default cpu and memory.
    pub metrics: Option<Vec<MetricSpec>>,
    pub threshold: Option<f64>,
    #[serde(alias = "modelName")]
    pub model_name: Option<String>,
    pub namespace: Option<String>,
    pub deployment: Option<String>,
    pub pod: Option<String>,
    #[serde(alias = "labelSelector")]
    pub label_selector: Option<String>,
    #[serde(alias = "includePredictions")]
    pub include_predictions: Option<bool>,
}

/// The requested metrics, resolved (default cpu and memory); anything else is a 422 naming it.
fn requested_metrics(
    list: Option<Vec<MetricSpec>>,
) -> Result<Vec<metrics_catalog::Metric>, ApiError> {
    let names = list.map(|list| {
        list.into_iter()
            .map(|m| match m {
                MetricSpec::Name(n) | MetricSpec::Object { name: n } => n,
            })
            .collect()
    });
    anomaly_request::metrics(names).map_err(|error| match error {
        MetricsError::TooMany => super::validate::invalid(
            "metrics",
            format!("at most {} metrics", anomaly_request::MAX_METRICS),
        ),
        MetricsError::Invalid { metric, message } => super::validate::invalid("metrics", message)
            .with_details(serde_json::json!({"field": "metrics", "metric": metric})),
    })
}

#[utoipa::path(post, path = "/api/v1/anomalies/analyze", tag = "analytics", security(("bearer" = [])),
    request_body = AnalyzeRequest,
    responses((status = 200, body = crate::analytics::anomaly::Analysis), (status = 422), (status = 503)))]
pub async fn analyze_anomalies(
    state: web::Data<AppState>,
    body: super::json::JsonBody<AnalyzeRequest>,
) -> Result<web::Json<crate::analytics::anomaly::Analysis>, ApiError> {
    use crate::analytics::anomaly;
    let request = body.into_inner();
    let (range, range_text) = anomaly_request::time_range(request.time_range)?;
    let threshold = anomaly_request::threshold(request.threshold)?;
    let metrics = requested_metrics(request.metrics)?;
    anomaly_request::model(request.model_name.as_deref())?;
    let scope = anomaly::Scope {
        namespace: params::namespace(request.namespace.as_deref())?,
        pod: super::validate::object_name("pod", request.pod)?,
        deployment: super::validate::object_name("deployment", request.deployment)?,
        labels: anomaly_request::label_selector(request.label_selector.as_deref())?,
    };
    let result = anomaly::analyze(
        prometheus(&state)?,
        &state.models,
        &scope,
        &metrics,
        range,
        &range_text,
        threshold,
    )
    .await?;
    Ok(web::Json(result))
}

//! `GET /api/v1/models`, `GET /api/v1/models/{m}/health` and `POST /api/v1/predict` (the
//! predictive-analytics model; the MCP server's predict-resource-usage tool).

use super::AppState;
use super::json::JsonBody;
use super::params;
use super::validate::invalid;
use crate::analytics::{AnalyticsError, matcher};
use crate::error::ApiError;
use crate::ml::kserve::{ModelError, numbers};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct ModelState {
    pub name: String,
    pub url: String,
    /// The name in `/v1/models/{m}` (null until discovered).
    pub model: Option<String>,
    /// `explicit` (`KSERVE_*_MODEL`) or `discovered` (`GET /v1/models`).
    pub model_source: &'static str,
    pub ready: bool,
    /// `closed`, `open` or `half_open`.
    pub circuit: &'static str,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    pub enabled: bool,
    pub models: Vec<ModelState>,
}

async fn state_of(model: &crate::ml::kserve::Model) -> ModelState {
    let (ready, message) = match model.ready().await {
        Ok(true) => (true, "ready".to_string()),
        Ok(false) => (false, "the model says it is not ready".to_string()),
        Err(error) => (false, error.to_string()),
    };
    ModelState {
        name: model.name.clone(),
        url: model.base_url.clone(),
        model: model.served_name(),
        model_source: model.name_source().as_str(),
        ready,
        circuit: model.circuit().as_str(),
        message,
    }
}

#[utoipa::path(get, path = "/api/v1/models", tag = "ml", security(("bearer" = [])),
    responses((status = 200, body = ModelList)))]
pub async fn list(state: web::Data<AppState>) -> web::Json<ModelList> {
    let mut models = Vec::new();
    for model in state.models.all() {
        models.push(state_of(model).await);
    }
    web::Json(ModelList {
        enabled: state.settings.kserve.enabled,
        models,
    })
}

#[utoipa::path(get, path = "/api/v1/models/{name}/health", tag = "ml", security(("bearer" = [])),
    params(("name" = String, Path, description = "anomaly-detector or predictive-analytics")),
    responses((status = 200, body = ModelState), (status = 404), (status = 503)))]
pub async fn health(
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<web::Json<ModelState>, ApiError> {
    let model = state
        .models
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("model {name} is not configured")))?;
    let current = state_of(model).await;
    if current.ready {
        Ok(web::Json(current))
    } else {
        Err(
            ApiError::unavailable(format!("model {name}: {}", current.message))
                .with_details(serde_json::json!({ "circuit": current.circuit })),
        )
    }
}

/// The MCP server's predict-resource-usage request (contract §3 #5).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PredictRequest {
    pub hour: Option<i64>,
    /// Monday = 0 … Sunday = 6.
    pub day_of_week: Option<i64>,
    /// Percent (0–100), the client's estimate; replaced by Prometheus' when it is configured.
    pub cpu_rolling_mean: Option<f64>,
    pub memory_rolling_mean: Option<f64>,
    /// `pod`, `deployment`, `namespace` (default) or `cluster`.
    pub scope: Option<String>,
    pub namespace: Option<String>,
    pub deployment: Option<String>,
    pub pod: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Percentages {
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

#[derive(Serialize, ToSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    /// The model's own confidence, when it gives one (a third number).
    pub confidence: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct CurrentMetrics {
    pub cpu_rolling_mean: f64,
    pub memory_rolling_mean: f64,
    pub timestamp: String,
    /// `prometheus` (measured) or `request` (the client's estimate).
    pub source: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct TargetTime {
    pub hour: i64,
    pub day_of_week: i64,
    pub iso_timestamp: String,
}

#[derive(Serialize, ToSchema)]
pub struct Prediction {
    pub status: &'static str,
    pub scope: String,
    pub target: String,
    pub predictions: Percentages,
    pub model_info: ModelInfo,
    pub current_metrics: CurrentMetrics,
    pub target_time: TargetTime,
    pub trend: &'static str,
    pub recommendation: String,
}

fn bounded_int(field: &str, value: Option<i64>, max: i64, default: i64) -> Result<i64, ApiError> {
    let value = value.unwrap_or(default);
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(field, format!("must be from 0 to {max}")))
    }
}

fn percent(field: &str, value: Option<f64>) -> Result<f64, ApiError> {
    match value {
        None => Ok(0.0),
        Some(v) if v.is_finite() && (0.0..=1000.0).contains(&v) => Ok(v),
        Some(_) => Err(invalid(field, "must be a percentage")),
    }
}

/// The next time at `hour` on `day_of_week` (Monday = 0), from now, in UTC.
fn next_time(hour: i64, day_of_week: i64) -> String {
    use chrono::{Datelike, Duration, Timelike, Utc};
    let now = Utc::now();
    let today = i64::from(now.weekday().num_days_from_monday());
    let mut days = (day_of_week - today).rem_euclid(7);
    if days == 0 && hour <= i64::from(now.hour()) {
        days = 7;
    }
    let at = (now + Duration::days(days))
        .with_hour(hour as u32)
        .and_then(|t| t.with_minute(0))
        .and_then(|t| t.with_second(0))
        .unwrap_or(now);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// CPU and memory usage in percent of the requests of the scope, from Prometheus.
async fn measured(
    prometheus: &crate::analytics::prometheus::Prometheus,
    selector: &str,
) -> Result<Option<(f64, f64)>, AnalyticsError> {
    // `{a,b}` from the non-empty parts.
    let braces = |parts: &[&str]| {
        let parts: Vec<&str> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
        format!("{{{}}}", parts.join(","))
    };
    let percent = |usage: String, resource: &str| {
        let requested = braces(&[selector, &format!("resource=\"{resource}\"")]);
        format!("100 * sum({usage}) / sum(kube_pod_container_resource_requests{requested})")
    };
    let containers = braces(&["container!=\"\"", selector]);
    let cpu = prometheus
        .instant(&percent(
            format!("rate(container_cpu_usage_seconds_total{containers}[5m])"),
            "cpu",
        ))
        .await?;
    let memory = prometheus
        .instant(&percent(
            format!("container_memory_working_set_bytes{containers}"),
            "memory",
        ))
        .await?;
    Ok(match (cpu.first(), memory.first()) {
        (Some(c), Some(m)) if c.value.is_finite() && m.value.is_finite() => {
            Some((c.value, m.value))
        }
        _ => None,
    })
}

#[utoipa::path(post, path = "/api/v1/predict", tag = "ml", security(("bearer" = [])),
    request_body = PredictRequest,
    responses((status = 200, body = Prediction), (status = 422), (status = 503)))]
pub async fn predict(
    state: web::Data<AppState>,
    body: JsonBody<PredictRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let hour = bounded_int("hour", request.hour, 23, 0)?;
    let day_of_week = bounded_int("day_of_week", request.day_of_week, 6, 0)?;
    let scope = request.scope.unwrap_or_else(|| "namespace".into());
    if !["pod", "deployment", "namespace", "cluster"].contains(&scope.as_str()) {
        return Err(invalid(
            "scope",
            "must be pod, deployment, namespace or cluster",
        ));
    }
    let namespace = params::namespace(request.namespace.as_deref())?;
    let deployment = super::validate::object_name("deployment", request.deployment)?;
    let pod = super::validate::object_name("pod", request.pod)?;
    let model = state.models.predictive_analytics.as_ref().ok_or_else(|| {
        ApiError::from(AnalyticsError::NotConfigured(
            "KSERVE_PREDICTIVE_ANALYTICS_SERVICE (with ENABLE_KSERVE_INTEGRATION=true)",
        ))
    })?;
    let mut selector = Vec::new();
    if let Some(ns) = &namespace {
        selector.push(matcher("namespace", ns));
    }
    match (scope.as_str(), &pod, &deployment) {
        ("pod", Some(p), _) => selector.push(matcher("pod", p)),
        // Object names have no regex metacharacters but `.`.
        ("deployment", _, Some(d)) => {
            selector.push(format!("pod=~\"{}-.*\"", d.replace('.', "\\\\.")))
        }
        _ => {}
    }
    let target = match (scope.as_str(), &pod, &deployment) {
        ("pod", Some(p), _) => format!("{}/{p}", namespace.as_deref().unwrap_or("")),
        ("deployment", _, Some(d)) => format!("{}/{d}", namespace.as_deref().unwrap_or("")),
        ("cluster", _, _) => "cluster".into(),
        _ => namespace.clone().unwrap_or_else(|| "all namespaces".into()),
    };
    let (cpu_now, memory_now, source) = match &state.prometheus {
        Some(prometheus) => match measured(prometheus, &selector.join(",")).await? {
            Some((cpu, memory)) => (cpu, memory, "prometheus"),
            None => (
                percent("cpu_rolling_mean", request.cpu_rolling_mean)?,
                percent("memory_rolling_mean", request.memory_rolling_mean)?,
                "request",
            ),
        },
        None => (
            percent("cpu_rolling_mean", request.cpu_rolling_mean)?,
            percent("memory_rolling_mean", request.memory_rolling_mean)?,
            "request",
        ),
    };
    let predictions = model
        .predict(serde_json::json!([[
            hour,
            day_of_week,
            cpu_now,
            memory_now
        ]]))
        .await
        .map_err(|error| match error {
            ModelError::CircuitOpen { .. } => ApiError::unavailable(error.to_string()),
            ModelError::Failed { .. } => ApiError::new(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "upstream_error",
                error.to_string(),
            ),
        })?;
    // `[cpu, memory, confidence?]`, or an object with those fields by name.
    let values: Vec<f64> = match predictions.first() {
        Some(serde_json::Value::Object(fields)) => ["cpu_percent", "memory_percent", "confidence"]
            .iter()
            .map_while(|k| fields.get(*k).and_then(serde_json::Value::as_f64))
            .collect(),
        Some(other) => numbers(other),
        None => Vec::new(),
    };
    let (Some(cpu), Some(memory)) = (values.first().copied(), values.get(1).copied()) else {
        return Err(ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!(
                "{} answered no [cpu, memory] prediction: {predictions:?}",
                model.name
            ),
        ));
    };
    let trend = if cpu > cpu_now * 1.1 || memory > memory_now * 1.1 {
        "increasing"
    } else if cpu < cpu_now * 0.9 && memory < memory_now * 0.9 {
        "decreasing"
    } else {
        "stable"
    };
    let recommendation = if cpu >= 85.0 || memory >= 85.0 {
        format!(
            "expect {cpu:.0}% CPU and {memory:.0}% memory of requests: add capacity or replicas before then"
        )
    } else if cpu <= 20.0 && memory <= 20.0 {
        "usage stays low: the requests could be lowered (see /api/v1/recommendations/rightsizing)"
            .into()
    } else {
        "no action needed".into()
    };
    Ok(HttpResponse::Ok().json(Prediction {
        status: "success",
        scope,
        target,
        predictions: Percentages {
            cpu_percent: cpu,
            memory_percent: memory,
        },
        model_info: ModelInfo {
            name: model.name.clone(),
            version: "v1".into(),
            confidence: values.get(2).copied(),
        },
        current_metrics: CurrentMetrics {
            cpu_rolling_mean: cpu_now,
            memory_rolling_mean: memory_now,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            source,
        },
        target_time: TargetTime {
            hour,
            day_of_week,
            iso_timestamp: next_time(hour, day_of_week),
        },
        trend,
        recommendation,
    }))
}

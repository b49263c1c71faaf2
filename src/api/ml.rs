//! `GET /api/v1/models`, `GET /api/v1/models/{m}/health` and `POST /api/v1/predict` (the
//! predictive-analytics model; the MCP server's predict-resource-usage tool).

use super::AppState;
use super::json::JsonBody;
use super::params;
use super::validate::invalid;
use crate::analytics::AnalyticsError;
use crate::analytics::usage::{Objects, Scope};
use crate::error::ApiError;
use crate::ml::kserve::ModelError;
use crate::ml::predict::{self, PredictError, UsageRequest};
pub use crate::ml::predict::{CurrentMetrics, ModelInfo, Percentages, Prediction, TargetTime};
use actix_web::web;
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

fn bounded_int(field: &str, value: Option<i64>, max: i64, default: i64) -> Result<i64, ApiError> {
    let value = value.unwrap_or(default);
    if (0..=max).contains(&value) {
        Ok(value)
    } else {
        Err(invalid(field, format!("must be from 0 to {max}")))
    }
}

#[utoipa::path(post, path = "/api/v1/predict", tag = "ml", security(("bearer" = [])),
    request_body = PredictRequest,
    responses((status = 200, body = Prediction), (status = 422), (status = 503)))]
pub async fn predict(
    state: web::Data<AppState>,
    body: JsonBody<PredictRequest>,
) -> Result<web::Json<Prediction>, ApiError> {
    let request = body.into_inner();
    let hour = bounded_int("hour", request.hour, 23, 0)?;
    let day_of_week = bounded_int("day_of_week", request.day_of_week, 6, 0)?;
    let scope_name = request.scope.unwrap_or_else(|| "namespace".into());
    let scope = Scope::parse(&scope_name)
        .ok_or_else(|| invalid("scope", "must be pod, deployment, namespace or cluster"))?;
    let objects = Objects {
        namespace: params::namespace(request.namespace.as_deref())?,
        deployment: super::validate::object_name("deployment", request.deployment)?,
        pod: super::validate::object_name("pod", request.pod)?,
    };
    let model = state.models.predictive_analytics.as_ref().ok_or_else(|| {
        ApiError::from(AnalyticsError::NotConfigured(
            "KSERVE_PREDICTIVE_ANALYTICS_SERVICE (with ENABLE_KSERVE_INTEGRATION=true)",
        ))
    })?;
    let request = UsageRequest {
        hour,
        day_of_week,
        scope_name,
        scope,
        objects,
        cpu_estimate: request.cpu_rolling_mean,
        memory_estimate: request.memory_rolling_mean,
    };
    predict::predict(model, state.prometheus.as_ref(), request)
        .await
        .map(web::Json)
        .map_err(predict_error)
}

fn predict_error(error: PredictError) -> ApiError {
    let upstream = |message: String| {
        ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "upstream_error",
            message,
        )
    };
    match error {
        PredictError::Prometheus(error) => error.into(),
        PredictError::Estimate { field } => invalid(field, "must be a percentage"),
        PredictError::Model(error @ ModelError::CircuitOpen { .. }) => {
            ApiError::unavailable(error.to_string())
        }
        PredictError::Model(error @ ModelError::Failed { .. }) => upstream(error.to_string()),
        PredictError::NoPrediction(message) => upstream(message),
    }
}

//! Every route of the API listener and the metrics listener, in one place.

use super::views::Vocabulary;
use super::{
    AppState, analytics, audit, detect, guard, health, incidents, leases, ml, openapi, pause,
    remediation, webhooks, workflows,
};
use crate::auth::{ApiToken, require_token};
use crate::error::{ApiError, path_error, query_error};
use crate::http::body::{BodyReadTimeout, Draining, guard_body};
use crate::http::budget::{BodyBudget, UndeclaredCharge, limit_bodies};
use crate::metrics::Metrics;
use crate::request_context::{RouteSeries, request_context};
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};

/// Body limit of the REST API (SPEC §3). Webhook routes set their own.
pub const API_BODY_LIMIT: usize = 1024 * 1024;

/// `(method, pattern, success status)` of every API route; used to pre-create metric series.
pub const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/health", 200),
    ("GET", "/ready", 200),
    ("GET", "/api/v1/health", 200),
    ("GET", "/api/v1/openapi.json", 200),
    ("POST", "/api/v1/incidents", 201),
    ("GET", "/api/v1/incidents", 200),
    ("GET", "/api/v1/incidents/{id}", 200),
    ("PATCH", "/api/v1/incidents/{id}", 200),
    ("GET", "/api/v1/workflows", 200),
    ("GET", "/api/v1/workflows/{id}", 200),
    ("POST", "/api/v1/workflows/{id}/approve", 200),
    ("POST", "/api/v1/workflows/{id}/reject", 200),
    ("POST", "/api/v1/workflows/{id}/cancel", 200),
    ("GET", "/api/v1/coordination/workflows", 200),
    ("GET", "/api/v1/coordination/workflows/{id}", 200),
    ("GET", "/api/v1/pause", 200),
    ("POST", "/api/v1/pause", 200),
    ("DELETE", "/api/v1/pause", 200),
    ("GET", "/api/v1/leases", 200),
    ("GET", "/api/v1/predict/disk-exhaustion", 503),
    ("GET", "/api/v1/predict/memory-leak", 503),
    ("GET", "/api/v1/recommendations/rightsizing", 503),
    ("GET", "/api/v1/capacity/trends", 503),
    ("GET", "/api/v1/cluster/status", 200),
    ("POST", "/api/v1/anomalies/analyze", 200),
    ("POST", "/api/v1/predict", 200),
    ("GET", "/api/v1/models", 200),
    ("GET", "/api/v1/models/{name}/health", 200),
    ("POST", "/webhooks/alertmanager", 200),
    ("POST", "/webhooks/validate", 200),
    ("POST", "/api/v1/guard/explain", 200),
    ("POST", "/api/v1/remediation/trigger", 202),
    ("POST", "/api/v1/coordination/trigger", 202),
    ("POST", "/webhooks/audit", 200),
    ("GET", "/api/v1/detect/{kind}/{namespace}/{name}", 200),
];

/// Everything the API app needs, shared by all workers.
#[derive(Clone)]
pub struct Shared {
    pub state: web::Data<AppState>,
    pub metrics: web::Data<Metrics>,
    pub token: web::Data<ApiToken>,
    pub openapi: web::Data<openapi::OpenApiJson>,
    /// Set when a graceful shutdown begins (responses then close their connections).
    pub draining: Draining,
    /// Bytes of bodies the token-less routes may be receiving at once (all workers).
    pub body_budget: BodyBudget,
}

impl Shared {
    /// Around `state`: its metrics, the API token, the OpenAPI document, a draining flag not
    /// yet set, and the token-less routes' body budget from the settings.
    pub fn new(state: AppState, token: ApiToken) -> Shared {
        Shared {
            metrics: web::Data::new(state.metrics.clone()),
            body_budget: BodyBudget::new(state.settings.tokenless_body_budget),
            state: web::Data::new(state),
            token: web::Data::new(token),
            openapi: web::Data::new(openapi::OpenApiJson::render()),
            draining: Draining::default(),
        }
    }
}

/// The API app: routes, shared state, error mapping and middleware.
pub fn api_app(
    shared: Shared,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(BodyReadTimeout(shared.state.settings.body_read_timeout))
        .app_data(shared.draining)
        .app_data(shared.body_budget)
        .app_data(shared.state)
        .app_data(shared.metrics)
        .app_data(shared.token)
        .app_data(shared.openapi)
        .app_data(web::Data::new(Vocabulary::Current))
        .configure(extractor_config)
        .configure(routes)
        .default_service(web::to(not_found))
        // Inside `request_context`: its 408 carries the request id and is counted.
        .wrap(from_fn(guard_body))
        .wrap(from_fn(request_context))
}

/// Body limits and the mapping of extractor errors onto the error shape.
fn extractor_config(cfg: &mut web::ServiceConfig) {
    // JSON bodies go through `JsonBody`, which reads them under this limit.
    cfg.app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::PayloadConfig::new(API_BODY_LIMIT));
}

/// The compatibility listener (`COMPAT_HTTP_PORT`, plain HTTP, no token): the routes the Go
/// engine's MCP server calls, under `/api/v1` and under the doubled `/api/v1/api/v1` its Helm
/// chart produces, answering in the Go engine's status vocabulary.
pub fn compat_app(
    shared: Shared,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(BodyReadTimeout(shared.state.settings.body_read_timeout))
        .app_data(shared.draining)
        .app_data(shared.body_budget)
        .app_data(UndeclaredCharge(API_BODY_LIMIT))
        .app_data(shared.state)
        .app_data(shared.metrics)
        .app_data(web::Data::new(Vocabulary::Legacy))
        .configure(extractor_config)
        .service(web::resource("/health").route(web::get().to(health::liveness)))
        // The longer prefix first: `/api/v1` would otherwise swallow `/api/v1/api/v1/…`.
        .service(web::scope("/api/v1/api/v1").configure(compat_routes))
        .service(web::scope("/api/v1").configure(compat_routes))
        .default_service(web::to(not_found))
        // Token-less: every body shares TOKENLESS_BODY_BUDGET (inside `guard_body`, which
        // drains the body of a 503).
        .wrap(from_fn(limit_bodies))
        .wrap(from_fn(guard_body))
        .wrap(from_fn(request_context))
}

/// What the MCP server calls (its contract, §2). Later issues add their routes here.
fn compat_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/incidents")
            .route(web::get().to(incidents::list))
            .route(web::post().to(incidents::create)),
    )
    .service(web::resource("/remediation/trigger").route(web::post().to(remediation::trigger)))
    .configure(analytics_routes);
}

/// The analytics routes (served on both listeners: the MCP server's tools call them).
fn analytics_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/predict/disk-exhaustion").route(web::get().to(analytics::disk_exhaustion)),
    )
    .service(web::resource("/predict/memory-leak").route(web::get().to(analytics::memory_leak)))
    .service(
        web::resource("/recommendations/rightsizing").route(web::get().to(analytics::rightsizing)),
    )
    .service(web::resource("/capacity/trends").route(web::get().to(analytics::capacity_trends)))
    .service(web::resource("/cluster/status").route(web::get().to(analytics::cluster_status)))
    .service(
        web::resource("/anomalies/analyze").route(web::post().to(analytics::analyze_anomalies)),
    )
    .service(web::resource("/predict").route(web::post().to(ml::predict)));
}

/// The routes themselves. Public routes first: `/api/v1/openapi.json` must be matched before
/// the authenticated `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // `web::resource(..).route(..)`, not `cfg.route(..)`: a resource answers a wrong method
    // with 405, a guarded route would fall through to 404.
    cfg.service(web::resource("/health").route(web::get().to(health::liveness)))
        .service(web::resource("/ready").route(web::get().to(health::readiness)))
        .service(web::resource("/api/v1/openapi.json").route(web::get().to(openapi::document)))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(require_token))
                .service(web::resource("/health").route(web::get().to(health::detailed)))
                .configure(api_v1_routes)
                .default_service(web::to(not_found)),
        )
        // Admission reviews come from the API server over TLS, without our token (SPEC §3).
        .service(
            web::resource("/webhooks/validate")
                .app_data(RouteSeries::new("/webhooks/validate"))
                .app_data(web::PayloadConfig::new(guard::ADMISSION_BODY_LIMIT))
                .app_data(UndeclaredCharge(guard::ADMISSION_BODY_LIMIT))
                .route(web::post().to(guard::validate_review))
                // Token-less: its bodies share TOKENLESS_BODY_BUDGET.
                .wrap(from_fn(limit_bodies)),
        )
        // Token or verified client certificate: checked in the handler.
        .service(
            web::resource("/webhooks/audit")
                .app_data(RouteSeries::new("/webhooks/audit"))
                .app_data(web::PayloadConfig::new(audit::AUDIT_BODY_LIMIT))
                .route(web::post().to(audit::receive)),
        )
        .service(
            web::scope("/webhooks")
                .wrap(from_fn(require_token))
                .service(
                    web::resource("/alertmanager")
                        .app_data(RouteSeries::new("/webhooks/alertmanager"))
                        .app_data(web::PayloadConfig::new(webhooks::ALERTMANAGER_BODY_LIMIT))
                        .route(web::post().to(webhooks::alertmanager)),
                )
                .default_service(web::to(not_found)),
        );
}

/// The authenticated `/api/v1` routes (relative to the scope).
fn api_v1_routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(analytics_routes)
        .service(web::resource("/models").route(web::get().to(ml::list)))
        .service(web::resource("/models/{name}/health").route(web::get().to(ml::health)))
        .service(
            web::resource("/incidents")
                .route(web::get().to(incidents::list))
                .route(web::post().to(incidents::create)),
        )
        .service(
            web::resource("/incidents/{id}")
                .route(web::get().to(incidents::get))
                .route(web::patch().to(incidents::change)),
        )
        .service(web::resource("/workflows").route(web::get().to(workflows::list)))
        .service(web::resource("/workflows/{id}").route(web::get().to(workflows::get)))
        .service(web::resource("/workflows/{id}/approve").route(web::post().to(workflows::approve)))
        .service(web::resource("/workflows/{id}/reject").route(web::post().to(workflows::reject)))
        .service(web::resource("/workflows/{id}/cancel").route(web::post().to(workflows::cancel)))
        .service(
            web::resource("/coordination/workflows")
                .route(web::get().to(workflows::list_coordination)),
        )
        .service(
            web::resource("/coordination/workflows/{id}")
                .route(web::get().to(workflows::get_coordination)),
        )
        .service(web::resource("/guard/explain").route(web::post().to(guard::explain)))
        .service(
            web::resource("/detect/{kind}/{namespace}/{name}").route(web::get().to(detect::detect)),
        )
        .service(web::resource("/remediation/trigger").route(web::post().to(remediation::trigger)))
        .service(
            web::resource("/coordination/trigger")
                .route(web::post().to(remediation::coordination_trigger)),
        )
        .service(web::resource("/leases").route(web::get().to(leases::list)))
        .service(
            web::resource("/pause")
                .route(web::get().to(pause::list))
                .route(web::post().to(pause::pause))
                .route(web::delete().to(pause::resume)),
        );
}

async fn not_found() -> ApiError {
    ApiError::from_status(actix_web::http::StatusCode::NOT_FOUND)
}

/// The metrics app: `GET /metrics` in the Prometheus text format. Token-less, so under the
/// same body middleware as the other listeners: its early 404/405 to a POST drain the body,
/// and the headers of later keep-alive requests are timed (`head_clock.rs`).
pub fn metrics_app(
    metrics: web::Data<Metrics>,
    body_read_timeout: BodyReadTimeout,
    draining: Draining,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(body_read_timeout)
        .app_data(draining)
        .app_data(metrics)
        .service(web::resource("/metrics").route(web::get().to(render_metrics)))
        .default_service(web::to(not_found))
        .wrap(from_fn(guard_body))
        .wrap(from_fn(request_context))
}

async fn render_metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

impl actix_web::Responder for ApiError {
    type Body = BoxBody;
    fn respond_to(self, _req: &actix_web::HttpRequest) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

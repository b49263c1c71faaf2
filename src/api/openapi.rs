//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the handlers' types.

use super::{
    analytics, audit, detect, guard, health, incidents, leases, ml, pause, remediation, views,
    webhooks, workflows,
};
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coordination-engine",
        description = "Incidents in, GitOps-safe remediation out. All /api/v1 routes except this \
                       document need `Authorization: Bearer <token>`; every error has the shape \
                       {\"error\":{\"code\",\"message\",\"details\"?},\"request_id\"}."
    ),
    paths(
        health::liveness,
        health::readiness,
        health::detailed,
        document,
        incidents::create,
        incidents::list,
        incidents::get,
        incidents::change,
        workflows::list,
        workflows::get,
        workflows::approve,
        workflows::reject,
        workflows::cancel,
        workflows::list_coordination,
        workflows::get_coordination,
        pause::pause,
        pause::resume,
        pause::list,
        leases::list,
        analytics::disk_exhaustion,
        analytics::memory_leak,
        analytics::rightsizing,
        analytics::capacity_trends,
        analytics::cluster_status,
        analytics::analyze_anomalies,
        ml::predict,
        ml::list,
        ml::health,
        webhooks::alertmanager,
        guard::validate_review,
        guard::explain,
        remediation::trigger,
        remediation::coordination_trigger,
        audit::receive,
        detect::detect
    ),
    components(schemas(
        health::Liveness,
        health::Readiness,
        health::HealthReport,
        health::Component,
        health::ComponentStatus,
        views::IncidentView,
        incidents::CreateIncident,
        incidents::Created,
        incidents::IncidentList,
        incidents::ChangeIncident,
        workflows::WorkflowList,
        pause::PauseState,
        pause::PauseList,
        pause::PauseView,
        crate::pipeline::BudgetUsage,
        crate::pipeline::BucketUsage,
        leases::LeaseList,
        crate::analytics::disk::DiskExhaustion,
        crate::analytics::disk::DiskForecast,
        crate::analytics::leak::MemoryLeaks,
        crate::analytics::leak::LeakResult,
        crate::analytics::rightsizing::RightSizing,
        crate::analytics::rightsizing::Recommendation,
        crate::analytics::capacity::CapacityTrend,
        analytics::ClusterStatus,
        analytics::ActionCounts,
        analytics::ConflictCounts,
        analytics::EngineState,
        analytics::AnalyzeRequest,
        analytics::MetricSpec,
        crate::analytics::anomaly::Analysis,
        crate::analytics::anomaly::Anomaly,
        crate::analytics::anomaly::Alert,
        crate::analytics::anomaly::Summary,
        crate::analytics::anomaly::EnrichedSignals,
        ml::ModelState,
        ml::ModelList,
        ml::PredictRequest,
        ml::Prediction,
        ml::Percentages,
        ml::ModelInfo,
        ml::CurrentMetrics,
        ml::TargetTime,
        crate::store::LeaseRecord,
        webhooks::Accepted,
        webhooks::RejectedAlert,
        guard::ExplainShort,
        guard::Explanation,
        remediation::FlatTrigger,
        remediation::NestedTrigger,
        remediation::ResourceRef,
        remediation::IssueRef,
        remediation::Triggered,
        remediation::CoordinationTrigger,
        remediation::CoordinationResource,
        remediation::CoordinationTriggered,
        audit::AuditAccepted,
        detect::Detection
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, rendered once at startup.
pub struct OpenApiJson(pub String);

impl OpenApiJson {
    pub fn render() -> Self {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        OpenApiJson(doc.to_json().expect("the OpenAPI document is serialisable"))
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This OpenAPI 3 document")))]
pub async fn document(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

//! `GET /api/v1/leases`: the remediation leases in force (SPEC §6), so a person can see what
//! the engine may change on GitOps-managed objects right now, and until when.

use super::AppState;
use crate::error::ApiError;
use crate::store::LeaseRecord;
use actix_web::web;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct LeaseList {
    pub leases: Vec<LeaseRecord>,
}

#[utoipa::path(get, path = "/api/v1/leases", tag = "guard", security(("bearer" = [])),
    responses((status = 200, body = LeaseList)))]
pub async fn list(state: web::Data<AppState>) -> Result<web::Json<LeaseList>, ApiError> {
    Ok(web::Json(LeaseList {
        leases: state.store.active_leases(chrono::Utc::now()).await?,
    }))
}

//! `POST /webhooks/validate` (the ValidatingWebhookConfiguration endpoint) and
//! `POST /api/v1/guard/explain` (the same decision with its trace, recording nothing).

use super::AppState;
use super::json::{JsonBody, parse};
use crate::error::ApiError;
use crate::guard::admission::{
    AdmissionRequest, AdmissionReview, AuditAnnotations, GroupVersionKind, Operation, ResponseBody,
    ReviewResponse, Status, UserInfo, validate,
};
use crate::guard::clip::shown;
use crate::guard::doc::Doc;
use crate::guard::{Decision, Outcome, decide, review};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::time::Instant;
use utoipa::ToSchema;

/// Body limit of admission reviews (SPEC §3): an UPDATE carries object and oldObject.
pub const ADMISSION_BODY_LIMIT: usize = 3 * 1024 * 1024;

/// A malformed review is a 400, whatever was wrong with it.
fn malformed(error: ApiError) -> ApiError {
    if error.status == StatusCode::UNPROCESSABLE_ENTITY {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            ..error
        }
    } else {
        error
    }
}

/// The answer to a review (public for the guard benchmark, which encodes it as the webhook does).
pub fn response_for<'a>(
    request: &'a AdmissionRequest,
    decision: &'a Decision,
) -> ReviewResponse<'a> {
    let denied = decision.outcome == Outcome::Deny;
    ReviewResponse {
        api_version: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: ResponseBody {
            uid: &request.uid,
            allowed: !denied,
            status: denied.then_some(Status {
                code: 403,
                message: &decision.message,
                reason: "Forbidden",
            }),
            warnings: (decision.outcome == Outcome::Warn).then_some([decision.message.as_str()]),
            audit_annotations: AuditAnnotations {
                reason: decision.reason,
                application: decision.application.as_deref(),
            },
        },
    }
}

#[utoipa::path(post, path = "/webhooks/validate", tag = "guard",
    request_body(content = serde_json::Value, description = "AdmissionReview admission.k8s.io/v1"),
    responses(
        (status = 200, description = "AdmissionReview with the decision (a denial is allowed=false, code 403)"),
        (status = 400, description = "Malformed review"),
        (status = 413, description = "Over 3 MiB"),
        (status = 503, description = "TOKENLESS_BODY_BUDGET spent by bodies being received; retry after Retry-After")))]
pub async fn validate_review(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    // The fast reader first; serde for whatever it leaves (and for the error of a bad one).
    let fast = std::str::from_utf8(&body)
        .ok()
        .and_then(AdmissionReview::read_fast);
    let review_in = match fast {
        Some(review) => review,
        None => parse::<AdmissionReview>(&body).map_err(malformed)?,
    };
    let request = validate(&review_in).map_err(ApiError::bad_request)?;
    let now = Utc::now();
    // Without the rule trace: only explain shows it.
    let decision = decide(request, &state.guard.snapshot(), now);
    // Sized once: the answer is the message plus ~200 bytes of envelope.
    let mut body = Vec::with_capacity(256 + decision.message.len() + request.uid.len());
    response_for(request, &decision).write_json(&mut body);
    state
        .metrics
        .admission_reviews
        .with_label_values(&[decision.outcome.as_str(), decision.reason])
        .inc();
    state
        .metrics
        .admission_duration
        .observe(started.elapsed().as_secs_f64());
    let dry_run = request.dry_run.unwrap_or(false);
    // One span per review: its decision, the rule that decided and the Application, so every
    // line a review causes (the recorder's too) is one filter away. Built only when logged at
    // info: the webhook's hot path pays one level check otherwise (issue 18).
    let span = tracing::info_span!(
        "admission_review",
        uid = %shown(&request.uid),
        decision = decision.outcome.as_str(),
        rule = decision.reason,
        application = decision.application.as_deref().map(shown).as_deref(),
    );
    let _entered = span.enter();
    if decision.outcome == Outcome::Deny && !dry_run {
        state.denials.record(request, &decision, now);
    }
    tracing::info!(
        kind = %shown(&request.kind.kind),
        namespace = %shown(request.namespace()),
        name = %shown(request.object_name()),
        operation = request.operation.as_str(),
        user = %shown(&request.user_info.username),
        dry_run,
        "admission review"
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// The short form of an explain request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainShort {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: String,
    pub object: Option<Value>,
    #[serde(alias = "oldObject")]
    pub old_object: Option<Value>,
    #[serde(alias = "subResource")]
    pub sub_resource: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Explanation {
    /// allow, warn or deny.
    pub decision: String,
    pub allowed: bool,
    pub reason: String,
    pub message: String,
    pub application: Option<String>,
    /// The drift: at most 256 paths (64 KiB of text), the rest counted in
    /// `more_changed_paths`.
    pub changed_paths: Vec<String>,
    pub more_changed_paths: u64,
    /// The rules that fired, in order.
    pub trace: Vec<String>,
}

fn request_from_short(short: &ExplainShort) -> Result<AdmissionRequest<'_>, ApiError> {
    let operation: Operation = serde_json::from_value(Value::from(short.operation.to_uppercase()))
        .map_err(|_| {
            super::validate::invalid("operation", "expected CREATE, UPDATE, DELETE or CONNECT")
        })?;
    let subject = short
        .object
        .as_ref()
        .or(short.old_object.as_ref())
        .ok_or_else(|| super::validate::invalid("object", "object or old_object is required"))?;
    if !subject.is_object() {
        return Err(super::validate::invalid(
            "object",
            "must be a Kubernetes object",
        ));
    }
    let text = |pointer: &str| {
        subject
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let api_version = text("/apiVersion");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
    Ok(AdmissionRequest {
        uid: "explain".into(),
        kind: GroupVersionKind {
            group: Cow::Owned(group.to_string()),
            version: Cow::Owned(version.to_string()),
            kind: text("/kind").into(),
        },
        resource: Default::default(),
        sub_resource: short.sub_resource.as_deref().map(Cow::Borrowed),
        name: text("/metadata/name").into(),
        namespace: Some(text("/metadata/namespace"))
            .filter(|ns| !ns.is_empty())
            .map(Cow::Owned),
        operation,
        user_info: UserInfo {
            username: Cow::Borrowed(&short.user),
            groups: short
                .groups
                .iter()
                .map(|g| Cow::Borrowed(g.as_str()))
                .collect(),
        },
        object: short.object.as_ref().map(Doc::from_value),
        old_object: short.old_object.as_ref().map(Doc::from_value),
        dry_run: Some(true),
    })
}

#[utoipa::path(post, path = "/api/v1/guard/explain", tag = "guard", security(("bearer" = [])),
    request_body(content = ExplainShort, description = "An AdmissionReview, or the short form"),
    responses((status = 200, body = Explanation), (status = 400), (status = 422)))]
pub async fn explain(
    state: web::Data<AppState>,
    body: JsonBody<Value>,
) -> Result<web::Json<Explanation>, ApiError> {
    let body = body.into_inner();
    // The objects are read where they are (borrowed), never copied: they can be megabytes.
    let (review_in, short);
    let request = if body.get("apiVersion").is_some() {
        review_in = AdmissionReview::deserialize(&body)
            .map_err(|e| ApiError::bad_request(format!("not an AdmissionReview: {e}")))?;
        validate(&review_in).map_err(ApiError::bad_request)?
    } else {
        short = ExplainShort::deserialize(&body)
            .map_err(|e| super::validate::invalid("body", e.to_string()))?;
        &request_from_short(&short)?
    };
    let decision = review(request, &state.guard.snapshot(), Utc::now());
    Ok(web::Json(Explanation {
        decision: decision.outcome.as_str().into(),
        allowed: decision.outcome != Outcome::Deny,
        reason: decision.reason.into(),
        message: decision.message,
        application: decision.application,
        changed_paths: decision.changed_paths,
        more_changed_paths: decision.more_changed_paths,
        trace: decision.trace,
    }))
}

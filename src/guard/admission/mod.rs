//! AdmissionReview `admission.k8s.io/v1`: the request we read and the response we write.
//! Our own small types (not kube-core's) so that every malformed review gets a 400 naming the
//! field, and the response carries exactly what the API server reads.

mod answer;
mod read;

use super::doc::Doc;
use crate::clip::shown;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A review as the webhook reads it: `object` and `oldObject` borrow from the request body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview<'a> {
    pub api_version: String,
    pub kind: String,
    #[serde(borrow)]
    pub request: Option<AdmissionRequest<'a>>,
}

impl AdmissionReview<'static> {
    /// A review from an owned `Value` (tests, fixtures): its strings are copied.
    pub fn from_json(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        Deserialize::deserialize(value)
    }
}

// The strings of a review borrow from the body too (`Cow`: copied only when they hold JSON
// escapes): a review allocates for its objects' structure, not for each of its names.

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    pub group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub version: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct GroupVersionResource<'a> {
    #[serde(default, borrow)]
    pub group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub version: Cow<'a, str>,
    #[serde(default, borrow)]
    pub resource: Cow<'a, str>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo<'a> {
    #[serde(default, borrow)]
    pub username: Cow<'a, str>,
    #[serde(default, borrow)]
    pub groups: Vec<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    /// As the API server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    #[serde(borrow)]
    pub kind: GroupVersionKind<'a>,
    #[serde(default, borrow)]
    pub resource: GroupVersionResource<'a>,
    #[serde(default, borrow)]
    pub sub_resource: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    pub operation: Operation,
    #[serde(default, borrow)]
    pub user_info: UserInfo<'a>,
    #[serde(default, borrow)]
    pub object: Option<Doc<'a>>,
    #[serde(default, borrow)]
    pub old_object: Option<Doc<'a>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

impl<'a> AdmissionRequest<'a> {
    /// The object whose ownership decides: the old one for DELETE, else the new one.
    pub fn subject(&self) -> Option<&Doc<'a>> {
        match self.operation {
            Operation::Delete => self.old_object.as_ref().or(self.object.as_ref()),
            _ => self.object.as_ref().or(self.old_object.as_ref()),
        }
    }

    /// The object's name: the request's, else `metadata.name` of the subject.
    pub fn object_name(&self) -> &str {
        if !self.name.is_empty() {
            return &self.name;
        }
        self.subject()
            .and_then(|o| o.get("metadata"))
            .and_then(|m| m.get("name"))
            .and_then(Doc::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

/// Why a review is malformed (HTTP 400).
pub fn validate<'r, 'a>(
    review: &'r AdmissionReview<'a>,
) -> Result<&'r AdmissionRequest<'a>, String> {
    if review.api_version != "admission.k8s.io/v1" {
        return Err(format!(
            "apiVersion must be admission.k8s.io/v1, got {:?}",
            shown(&review.api_version)
        ));
    }
    if review.kind != "AdmissionReview" {
        return Err(format!(
            "kind must be AdmissionReview, got {:?}",
            shown(&review.kind)
        ));
    }
    let request = review.request.as_ref().ok_or("the review has no request")?;
    if request.uid.trim().is_empty() {
        return Err("request.uid is missing".into());
    }
    for (field, value) in [
        ("request.object", &request.object),
        ("request.oldObject", &request.old_object),
    ] {
        if let Some(v) = value
            && !v.is_object()
            && !v.is_null()
        {
            return Err(format!("{field} must be an object"));
        }
    }
    Ok(request)
}

/// The response body the API server reads. Borrowed from the request and the decision: the
/// answer is written straight from them, with no copies (issue 18).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResponse<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: ResponseBody<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseBody<'a> {
    pub uid: &'a str,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status<'a>>,
    /// One warning (`GUARD_MODE=warn`) or none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<[&'a str; 1]>,
    pub audit_annotations: AuditAnnotations<'a>,
}

#[derive(Debug, Serialize)]
pub struct Status<'a> {
    pub code: u16,
    pub message: &'a str,
    pub reason: &'static str,
}

/// `auditAnnotations`: the reason, and the owning Application when known. Written as a JSON
/// object with its keys in sorted order (as a `BTreeMap` wrote them before).
#[derive(Debug)]
pub struct AuditAnnotations<'a> {
    pub reason: &'a str,
    pub application: Option<&'a str>,
}

impl Serialize for AuditAnnotations<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map =
            serializer.serialize_map(Some(1 + usize::from(self.application.is_some())))?;
        // "…/argocd-application" sorts before "…/reason".
        if let Some(app) = self.application {
            map.serialize_entry("coordination-engine.io/argocd-application", app)?;
        }
        map.serialize_entry("coordination-engine.io/reason", self.reason)?;
        map.end()
    }
}

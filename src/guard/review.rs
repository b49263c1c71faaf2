//! `review()`: one AdmissionRequest and the in-memory view in, a decision with its reason out.
//! Pure: no I/O, no clock but the one passed in, no locks.

use super::admission::{AdmissionRequest, Operation};
use super::clip::shown;
use super::diff::{ChangedPaths, REVIEW_BUDGET, changed_paths};
use super::view::{GuardMode, GuardView, ParentMeta};
use crate::detect::tracking::{Ownership, ownership};
use chrono::{DateTime, Utc};
use rules::{
    covering_lease, denial_message, ignored_prefixes, is_exempt, not_guarded, parent_doc,
    scale_parent, target_of,
};
use serde::Serialize;

/// Label or annotation (on the object in Git, or on the namespace) that turns the guard off.
pub const OPT_OUT_KEY: &str = "coordination-engine.io/guard";
pub const OPT_OUT_VALUE: &str = "disabled";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    /// Allowed, with a warning to the user (`GUARD_MODE=warn`).
    Warn,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
        }
    }
}

/// The guard's answer, with the reason code (metrics, logs) and the rule trace (explain).
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: &'static str,
    pub message: String,
    pub application: Option<String>,
    /// The drift, within `diff::REVIEW_BUDGET`.
    pub changed_paths: Vec<String>,
    /// Further changed paths, counted but not built.
    pub more_changed_paths: u64,
    pub trace: Vec<String>,
}

/// Changed paths named in a denial message and in the trace (the rest are "and N more").
pub const PATHS_SHOWN: usize = 10;

/// Every reason code, for initialising metrics.
pub const REASONS: &[&str] = &[
    "guard_off",
    "not_a_change",
    "status_subresource",
    "opted_out",
    "not_managed",
    "gitops_identity",
    "exempt_identity",
    "ignored_fields_only",
    "remediation_lease",
    "parent_unknown",
    "manual_change",
];

struct Review {
    /// `None` when the caller does not want the trace (the webhook): no line is formatted.
    trace: Option<Vec<String>>,
    application: Option<String>,
    changed: ChangedPaths,
}

impl Review {
    /// Adds a line to the trace, if one is kept.
    fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(line());
        }
    }

    /// Adds the changed paths to the trace, if one is kept.
    fn note_drift(&mut self) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("drift: {}", self.changed.summary(PATHS_SHOWN)));
        }
    }

    fn done(self, outcome: Outcome, reason: &'static str, message: String) -> Decision {
        Decision {
            outcome,
            reason,
            message,
            application: self.application,
            changed_paths: self.changed.paths,
            more_changed_paths: self.changed.more,
            trace: self.trace.unwrap_or_default(),
        }
    }

    fn allow(mut self, reason: &'static str, why: String) -> Decision {
        self.note(|| format!("allow: {why}"));
        self.done(Outcome::Allow, reason, why)
    }
}

/// Decides one admission request, with the trace of the rules that fired (explain).
pub fn review(request: &AdmissionRequest, view: &GuardView, now: DateTime<Utc>) -> Decision {
    judge(request, view, now, Some(Vec::new()))
}

/// The same decision as [`review`] without the trace (empty): what the webhook answers with,
/// spared the formatting of lines nobody reads.
pub fn decide(request: &AdmissionRequest, view: &GuardView, now: DateTime<Utc>) -> Decision {
    judge(request, view, now, None)
}

fn judge(
    request: &AdmissionRequest,
    view: &GuardView,
    now: DateTime<Utc>,
    trace: Option<Vec<String>>,
) -> Decision {
    let mut r = Review {
        trace,
        application: None,
        changed: ChangedPaths::default(),
    };
    let mode = view.config.mode_for(request.namespace());
    if let Some((reason, why)) = not_guarded(request, view, mode) {
        return r.allow(reason, why);
    }
    let parent_meta = match judged_by_parent(request, view, &mut r) {
        Ok(parent) => parent,
        Err(why) => return r.allow("parent_unknown", why),
    };
    let parent = parent_meta.as_ref().map(parent_doc);
    let target = target_of(request, parent.as_ref());
    let Some(subject) = parent.as_ref().or(request.subject()) else {
        return r.allow("not_managed", "the review carries no object".into());
    };
    let (app, by) = match ownership(subject, &target, view) {
        Ownership::NotManaged(why) => return r.allow("not_managed", why),
        Ownership::Managed { app, by } => (app, by),
    };
    r.note(|| format!("managed by Application {app:?} ({by})"));
    r.application = Some(app.clone());
    if let Some((reason, why)) = is_exempt(view, request) {
        return r.allow(reason, why);
    }
    let ignored = ignored_prefixes(view, &app, &target);
    let objects = match (&request.old_object, &request.object) {
        (Some(old), Some(new)) if request.operation == Operation::Update => Some((old, new)),
        _ => None,
    };
    if request.operation == Operation::Update {
        if let Some((old, new)) = objects {
            r.changed = changed_paths(old, new, &ignored, REVIEW_BUDGET);
        }
        if r.changed.is_empty() {
            return r.allow(
                "ignored_fields_only",
                "only fields ArgoCD ignores changed".into(),
            );
        }
        r.note_drift();
    }
    if request.user_info.username == view.config.own_identity {
        if let Some(lease) = covering_lease(view, subject, objects, &ignored, now) {
            return r.allow(
                "remediation_lease",
                format!(
                    "the engine's change under the lease of incident {}",
                    lease.incident_id
                ),
            );
        }
        r.note(|| "the engine's own identity without a valid lease for these paths".into());
    }
    let message = denial_message(request, &target, &app, by, &r.changed);
    if mode == GuardMode::Warn {
        r.note(|| "GUARD_MODE=warn: allowed with a warning".into());
        return r.done(Outcome::Warn, "manual_change", message);
    }
    r.note(|| "deny".into());
    r.done(Outcome::Deny, "manual_change", message)
}

/// A Scale carries no annotations: it is judged by its parent, from the metadata cache.
/// `Ok(None)` for anything else.
fn judged_by_parent(
    request: &AdmissionRequest,
    view: &GuardView,
    r: &mut Review,
) -> Result<Option<ParentMeta>, String> {
    if request.sub_resource.as_deref() != Some("scale") {
        return Ok(None);
    }
    let parent = scale_parent(request, view)?;
    r.note(|| {
        format!(
            "scale subresource: judged by {} {}",
            shown(&parent.kind),
            shown(request.object_name())
        )
    });
    Ok(Some(parent))
}

mod rules;
#[cfg(test)]
pub(crate) mod tests;

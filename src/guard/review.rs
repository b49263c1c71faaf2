//! `review()`: one AdmissionRequest and the in-memory view in, a decision with its reason out.
//! Pure: no I/O, no clock but the one passed in, no locks.

use super::admission::{AdmissionRequest, Operation};
use super::clip::shown;
use super::diff::{ALWAYS_IGNORED, ChangedPaths, REVIEW_BUDGET, changed_paths, escape, only_under};
use super::doc::{Doc, Members};
use super::view::{GuardMode, GuardView};
use crate::detect::tracking::{ObjectRef, Ownership, ownership};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt::Write;

/// Label or annotation (on the object in Git, or on the namespace) that turns the guard off.
pub const OPT_OUT_KEY: &str = "coordination-engine.io/guard";
pub const OPT_OUT_VALUE: &str = "disabled";

/// Longest Kubernetes object name or namespace (DNS-1123 subdomain).
const MAX_NAME: usize = 253;

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

fn has_opt_out(object: Option<&Doc<'_>>) -> bool {
    let Some(metadata) = object.and_then(|o| o.get("metadata")) else {
        return false;
    };
    ["labels", "annotations"].iter().any(|field| {
        metadata
            .get(field)
            .and_then(|m| m.get(OPT_OUT_KEY))
            .and_then(Doc::as_str)
            == Some(OPT_OUT_VALUE)
    })
}

fn is_exempt(view: &GuardView, request: &AdmissionRequest) -> Option<(&'static str, String)> {
    let user: &str = &request.user_info.username;
    let config = &view.config;
    let shown_user = shown(user);
    if config.gitops_identities.contains(user) {
        return Some((
            "gitops_identity",
            format!("{shown_user} is an ArgoCD identity"),
        ));
    }
    if user.starts_with("system:serviceaccount:kube-system:")
        || user == "system:kube-controller-manager"
    {
        return Some((
            "exempt_identity",
            format!("{shown_user} is a Kubernetes controller"),
        ));
    }
    if config.exempt_users.contains(user) {
        return Some(("exempt_identity", format!("{shown_user} is an exempt user")));
    }
    request
        .user_info
        .groups
        .iter()
        .find(|g| config.exempt_groups.contains(g.as_ref()))
        .map(|g| {
            (
                "exempt_identity",
                format!("{shown_user} is in the exempt group {}", shown(g)),
            )
        })
}

/// JSON pointers whose changes are not drift: what ArgoCD always ignores, the allow-listed
/// annotations and labels, and the owning Application's `ignoreDifferences` for this object.
/// Sized by the configuration, never by the request.
fn ignored_prefixes<'v>(
    view: &'v GuardView,
    app: &str,
    target: &ObjectRef<'_>,
) -> Vec<Cow<'v, str>> {
    let config = &view.config;
    let mut prefixes: Vec<Cow<'v, str>> =
        ALWAYS_IGNORED.iter().map(|p| Cow::Borrowed(*p)).collect();
    for (field, list) in [
        ("annotations", &config.annotation_allow_list),
        ("labels", &config.label_allow_list),
    ] {
        prefixes.extend(
            list.iter()
                .map(|key| Cow::Owned(format!("/metadata/{field}/{}", escape(key)))),
        );
    }
    // A Scale's /spec/replicas is the parent's /spec/replicas, so the same ignore rules apply.
    if let Some(info) = view.applications.get(app) {
        prefixes.extend(
            info.ignore_differences
                .iter()
                .filter(|rule| {
                    rule.group == target.group
                        && rule.kind == target.kind
                        && rule.name.as_deref().is_none_or(|n| n == target.name)
                        && rule
                            .namespace
                            .as_deref()
                            .is_none_or(|n| n == target.namespace)
                })
                .flat_map(|rule| rule.json_pointers.iter())
                .map(|p| Cow::Borrowed(p.as_str())),
        );
    }
    prefixes
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
    let namespace = request.namespace();
    let mode = view.config.mode_for(namespace);
    if mode == GuardMode::Off {
        return r.allow(
            "guard_off",
            format!("GUARD_MODE is off for namespace {:?}", shown(namespace)),
        );
    }
    if request.operation == Operation::Connect {
        return r.allow(
            "not_a_change",
            "CONNECT (exec, attach, port-forward) changes no object".into(),
        );
    }
    if request.sub_resource.as_deref() == Some("status") {
        return r.allow(
            "status_subresource",
            "status is written by controllers, not Git".into(),
        );
    }
    if view.config.disabled_namespaces.contains(namespace) {
        return r.allow(
            "opted_out",
            format!("namespace {} opted out of the guard", shown(namespace)),
        );
    }
    // The old object decides for UPDATE too: adding the opt-out label by hand must not count.
    let opt_out_source = match request.operation {
        Operation::Create => request.object.as_ref(),
        _ => request.old_object.as_ref(),
    };
    if has_opt_out(opt_out_source) {
        return r.allow(
            "opted_out",
            format!("the object carries {OPT_OUT_KEY}={OPT_OUT_VALUE}"),
        );
    }
    let name = request.object_name();
    let is_scale = request.sub_resource.as_deref() == Some("scale");
    // A Scale carries no annotations: judge the parent object, from the metadata cache (which
    // holds only valid Kubernetes names: a longer one is not looked up, and not copied).
    let parent_meta = if is_scale {
        let cached = (name.len() <= MAX_NAME && namespace.len() <= MAX_NAME)
            .then(|| {
                view.parents.get(&(
                    request.resource.group.to_string(),
                    request.resource.resource.to_string(),
                    namespace.to_string(),
                    name.to_string(),
                ))
            })
            .flatten();
        match cached {
            Some(parent) => {
                r.note(|| {
                    format!(
                        "scale subresource: judged by {} {}",
                        shown(&parent.kind),
                        shown(name)
                    )
                });
                Some(parent)
            }
            None => {
                return r.allow(
                    "parent_unknown",
                    format!(
                        "scale of {}/{}: the parent is not in the metadata cache",
                        shown(&request.resource.resource),
                        shown(name)
                    ),
                );
            }
        }
    } else {
        None
    };
    let parent = parent_meta.as_ref().map(|parent| {
        Doc::Object(Members::new(vec![
            (
                Cow::Borrowed("kind"),
                Doc::String(Cow::Borrowed(&parent.kind)),
            ),
            (Cow::Borrowed("metadata"), Doc::from_value(&parent.metadata)),
        ]))
    });
    let kind = parent
        .as_ref()
        .and_then(|p| p.get("kind"))
        .and_then(Doc::as_str)
        .unwrap_or(&request.kind.kind);
    let target = ObjectRef {
        group: if is_scale {
            &request.resource.group
        } else {
            &request.kind.group
        },
        kind,
        namespace,
        name,
    };
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
        let drift = &r.changed;
        if let Some(trace) = &mut r.trace {
            trace.push(format!("drift: {}", drift.summary(PATHS_SHOWN)));
        }
    }
    if request.user_info.username == view.config.own_identity {
        let uid = subject
            .get("metadata")
            .and_then(|m| m.get("uid"))
            .and_then(Doc::as_str)
            .unwrap_or_default();
        // Checked by a second walk, not against the (budgeted) list: every change counts.
        let lease = view.leases.iter().find(|l| {
            l.object_uid == uid
                && l.expires_at > now
                && objects.is_some_and(|(old, new)| only_under(old, new, &ignored, &l.paths))
        });
        if let Some(lease) = lease {
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
    // One string written in place (the answer's largest part): no intermediate strings.
    let namespace = shown(namespace);
    let mut message = String::with_capacity(768);
    let _ = write!(
        message,
        "{} of {} ",
        request.operation.as_str(),
        shown(target.kind)
    );
    if !namespace.is_empty() {
        let _ = write!(message, "{namespace}/");
    }
    let _ = write!(
        message,
        "{} denied: it is managed by ArgoCD Application {app:?} ({by}), and a manual change is \
         drift that ArgoCD reverts or hides. Make the change in Git and let ArgoCD sync.",
        shown(name)
    );
    if !r.changed.is_empty() {
        let _ = write!(message, " Changed: {}.", r.changed.summary(PATHS_SHOWN));
    }
    let _ = write!(
        message,
        " Emergency: an exempt break-glass identity (GUARD_EXEMPT_GROUPS) can make it, after \
         disabling the Application's auto-sync, or an admin can set \
         GUARD_NAMESPACE_MODES={namespace}=warn."
    );
    if mode == GuardMode::Warn {
        r.note(|| "GUARD_MODE=warn: allowed with a warning".into());
        return r.done(Outcome::Warn, "manual_change", message);
    }
    r.note(|| "deny".into());
    r.done(Outcome::Deny, "manual_change", message)
}

#[cfg(test)]
pub(crate) mod tests;

//! The rules `judge` applies, one function each: who and what the guard leaves alone, the
//! parent a Scale is judged by, which changes are not drift, the lease that lets the engine's
//! own change through, and the denial message.

use super::{OPT_OUT_KEY, OPT_OUT_VALUE, PATHS_SHOWN};
use crate::detect::tracking::ObjectRef;
use crate::guard::admission::{AdmissionRequest, Operation};
use crate::guard::clip::shown;
use crate::guard::diff::{ALWAYS_IGNORED, ChangedPaths, escape, only_under};
use crate::guard::doc::{Doc, Members};
use crate::guard::view::{GuardMode, GuardView, Lease, ParentMeta};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::fmt::Write;

/// Longest Kubernetes object name or namespace (DNS-1123 subdomain).
const MAX_NAME: usize = 253;

/// Why the guard does not look at this request at all (`None`: it does): the guard is off
/// there, the request changes no object, it writes status, or the namespace or the object
/// opted out.
pub(super) fn not_guarded(
    request: &AdmissionRequest,
    view: &GuardView,
    mode: GuardMode,
) -> Option<(&'static str, String)> {
    let namespace = request.namespace();
    if mode == GuardMode::Off {
        return Some((
            "guard_off",
            format!("GUARD_MODE is off for namespace {:?}", shown(namespace)),
        ));
    }
    if request.operation == Operation::Connect {
        return Some((
            "not_a_change",
            "CONNECT (exec, attach, port-forward) changes no object".into(),
        ));
    }
    if request.sub_resource.as_deref() == Some("status") {
        return Some((
            "status_subresource",
            "status is written by controllers, not Git".into(),
        ));
    }
    if view.config.disabled_namespaces.contains(namespace) {
        return Some((
            "opted_out",
            format!("namespace {} opted out of the guard", shown(namespace)),
        ));
    }
    // The old object decides for UPDATE too: adding the opt-out label by hand must not count.
    let opt_out_source = match request.operation {
        Operation::Create => request.object.as_ref(),
        _ => request.old_object.as_ref(),
    };
    has_opt_out(opt_out_source).then(|| {
        (
            "opted_out",
            format!("the object carries {OPT_OUT_KEY}={OPT_OUT_VALUE}"),
        )
    })
}

/// The parent of a Scale from the metadata cache, which holds only valid Kubernetes names (a
/// longer one is not looked up, and not copied); the error says why it is not known.
pub(super) fn scale_parent(
    request: &AdmissionRequest,
    view: &GuardView,
) -> Result<ParentMeta, String> {
    let (name, namespace) = (request.object_name(), request.namespace());
    (name.len() <= MAX_NAME && namespace.len() <= MAX_NAME)
        .then(|| {
            view.parents.get(&(
                request.resource.group.to_string(),
                request.resource.resource.to_string(),
                namespace.to_string(),
                name.to_string(),
            ))
        })
        .flatten()
        .ok_or_else(|| {
            format!(
                "scale of {}/{}: the parent is not in the metadata cache",
                shown(&request.resource.resource),
                shown(name)
            )
        })
}

/// The parent as the document ownership reads, borrowed from the cache's copy.
pub(super) fn parent_doc(parent: &ParentMeta) -> Doc<'_> {
    Doc::Object(Members::new(vec![
        (
            Cow::Borrowed("kind"),
            Doc::String(Cow::Borrowed(&parent.kind)),
        ),
        (Cow::Borrowed("metadata"), Doc::from_value(&parent.metadata)),
    ]))
}

/// The object under review: a Scale's is its parent (by resource group and the parent's kind).
pub(super) fn target_of<'r>(
    request: &'r AdmissionRequest,
    parent: Option<&'r Doc<'_>>,
) -> ObjectRef<'r> {
    let kind = parent
        .and_then(|p| p.get("kind"))
        .and_then(Doc::as_str)
        .unwrap_or(&request.kind.kind);
    ObjectRef {
        group: if parent.is_some() {
            &request.resource.group
        } else {
            &request.kind.group
        },
        kind,
        namespace: request.namespace(),
        name: request.object_name(),
    }
}

/// The engine's lease on this object that covers every change (checked by a second walk, not
/// against the budgeted list: every change counts), if one is valid now.
pub(super) fn covering_lease<'v>(
    view: &'v GuardView,
    subject: &Doc<'_>,
    objects: Option<(&Doc<'_>, &Doc<'_>)>,
    ignored: &[Cow<'_, str>],
    now: DateTime<Utc>,
) -> Option<&'v Lease> {
    let uid = subject
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Doc::as_str)
        .unwrap_or_default();
    view.leases.iter().find(|l| {
        l.object_uid == uid
            && l.expires_at > now
            && objects.is_some_and(|(old, new)| only_under(old, new, ignored, &l.paths))
    })
}

/// What a denied user reads: what was refused and why, what changed, and the way through.
/// Written in place (the answer's largest part): no intermediate strings.
pub(super) fn denial_message(
    request: &AdmissionRequest,
    target: &ObjectRef<'_>,
    app: &str,
    by: &str,
    changed: &ChangedPaths,
) -> String {
    let namespace = shown(target.namespace);
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
        shown(target.name)
    );
    if !changed.is_empty() {
        let _ = write!(message, " Changed: {}.", changed.summary(PATHS_SHOWN));
    }
    let _ = write!(
        message,
        " Emergency: an exempt break-glass identity (GUARD_EXEMPT_GROUPS) can make it, after \
         disabling the Application's auto-sync, or an admin can set \
         GUARD_NAMESPACE_MODES={namespace}=warn."
    );
    message
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

pub(super) fn is_exempt(
    view: &GuardView,
    request: &AdmissionRequest,
) -> Option<(&'static str, String)> {
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
pub(super) fn ignored_prefixes<'v>(
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

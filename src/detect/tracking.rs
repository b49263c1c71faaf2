//! Is this object managed by ArgoCD, and by which Application? (SPEC §5.1, §6 rule 1.)

use crate::clip::shown;
use crate::guard::doc::JsonFields;
use crate::guard::view::{GuardView, TrackingMethod};

pub const TRACKING_ID_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";
pub const INSTALLATION_ID_ANNOTATION: &str = "argocd.argoproj.io/installation-id";

/// A parsed `<app>:<group>/<kind>:<namespace>/<name>`, borrowing the annotation (a review's
/// annotation can be megabytes: it is compared, never copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingId<'a> {
    pub app: &'a str,
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

pub fn parse_tracking_id(text: &str) -> Option<TrackingId<'_>> {
    let (app, rest) = text.split_once(':')?;
    let (group_kind, namespace_name) = rest.split_once(':')?;
    let (group, kind) = group_kind.split_once('/')?;
    let (namespace, name) = namespace_name.split_once('/')?;
    if app.is_empty() || kind.is_empty() || name.is_empty() {
        return None;
    }
    Some(TrackingId {
        app,
        group,
        kind,
        namespace,
        name,
    })
}

/// The identity of the object under review.
#[derive(Debug, Clone)]
pub struct ObjectRef<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// How the object was found to be managed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Not managed; the string says why (for the trace).
    NotManaged(String),
    Managed {
        /// Clipped to 256 bytes (no valid Application name is longer).
        app: String,
        by: &'static str,
    },
}

/// `metadata.<field>` (annotations or labels); a key looked up in anything but an object is
/// absent.
fn metadata_map<'a, J: JsonFields>(object: &'a J, field: &str) -> Option<&'a J> {
    object.field("metadata")?.field(field)
}

/// Rule 1: the tracking-id must name this very object (a copied annotation does not count);
/// the tracking label counts only with label tracking and an existing Application.
///
/// Generic over the document: the webhook's borrowed review and the `Value`s of caches, triggers
/// and audit events are read the same way.
pub fn ownership<J: JsonFields>(object: &J, target: &ObjectRef<'_>, view: &GuardView) -> Ownership {
    let annotations = metadata_map(object, "annotations");
    let annotation = |key: &str| annotations.and_then(|a| a.field(key)).and_then(J::text);
    if let (Some(ours), Some(theirs)) = (
        &view.argo.installation_id,
        annotation(INSTALLATION_ID_ANNOTATION),
    ) && ours != theirs
    {
        return Ownership::NotManaged(format!(
            "managed by another ArgoCD installation ({})",
            shown(theirs)
        ));
    }
    let method = view.argo.tracking;
    if matches!(
        method,
        TrackingMethod::Annotation | TrackingMethod::AnnotationAndLabel
    ) && let Some(raw) = annotation(TRACKING_ID_ANNOTATION)
    {
        return match parse_tracking_id(raw) {
            Some(id)
                if id.group == target.group
                    && id.kind == target.kind
                    && id.namespace == target.namespace
                    && id.name == target.name =>
            {
                Ownership::Managed {
                    app: shown(id.app).into_owned(),
                    by: "tracking-id annotation",
                }
            }
            Some(_) => Ownership::NotManaged(format!(
                "tracking-id {:?} names another object (copied annotation)",
                shown(raw)
            )),
            None => Ownership::NotManaged(format!("tracking-id {:?} does not parse", shown(raw))),
        };
    }
    if matches!(
        method,
        TrackingMethod::Label | TrackingMethod::AnnotationAndLabel
    ) && let Some(app) = metadata_map(object, "labels")
        .and_then(|l| l.field(&view.argo.label_key))
        .and_then(J::text)
    {
        // Every Helm chart sets app.kubernetes.io/instance: only an existing Application counts.
        return if view.applications.contains_key(app) {
            Ownership::Managed {
                app: shown(app).into_owned(),
                by: "tracking label",
            }
        } else {
            Ownership::NotManaged(format!(
                "label {}={} but no such Application",
                view.argo.label_key,
                shown(app)
            ))
        };
    }
    Ownership::NotManaged("no ArgoCD tracking marker".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_ids_parse_with_core_group_and_cluster_scope() {
        let id = parse_tracking_id("shop:apps/Deployment:prod/cart").expect("parses");
        assert_eq!((id.app, id.group, id.kind), ("shop", "apps", "Deployment"));
        let core = parse_tracking_id("shop:/ConfigMap:prod/settings").expect("parses");
        assert_eq!(core.group, "");
        let cluster = parse_tracking_id("infra:rbac.authorization.k8s.io/ClusterRole:/reader")
            .expect("parses");
        assert_eq!(cluster.namespace, "");
        let namespaced_app =
            parse_tracking_id("team-a_shop:apps/Deployment:prod/cart").expect("parses");
        assert_eq!(namespaced_app.app, "team-a_shop");
        for bad in [
            "",
            "shop",
            "shop:apps/Deployment",
            "shop:Deployment:prod/cart",
            ":apps/Deployment:prod/cart",
        ] {
            assert_eq!(parse_tracking_id(bad), None, "{bad:?}");
        }
    }
}

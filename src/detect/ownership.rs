//! How an object is deployed (SPEC §5.1): ArgoCD, Helm, an operator, or by hand. Pure: the
//! cluster layer fetches the owner chain (Pod → ReplicaSet → Deployment …) and the guard's view
//! of ArgoCD; this decides, with a confidence and the evidence.

use crate::detect::tracking::{ObjectRef, Ownership, ownership};
use crate::guard::GuardView;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Who deploys an object (serialized `manual`, `argocd`, `helm`, `operator`, `cluster`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Nobody else: the engine may patch it.
    Manual,
    Argocd,
    Helm,
    Operator,
    /// Cluster infrastructure (nodes, ClusterOperators): no deployment method.
    Cluster,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Manual => "manual",
            Method::Argocd => "argocd",
            Method::Helm => "helm",
            Method::Operator => "operator",
            Method::Cluster => "cluster",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DeploymentMethod {
    pub method: Method,
    pub confidence: f64,
    pub evidence: String,
    /// The owning ArgoCD Application or Helm release.
    pub owner: Option<String>,
}

/// Helm's marker of the release an object belongs to.
pub const HELM_RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";

/// API groups of built-in controllers: an owner outside them is a custom resource.
const BUILTIN_GROUPS: &[&str] = &["", "apps", "batch", "v1"];

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

fn text<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// `chain`: the object first, then its controllers up to the top (`apiVersion`, `kind`,
/// `metadata` each).
pub fn deployment_method(chain: &[Value], view: &GuardView) -> DeploymentMethod {
    let Some(top) = chain.last() else {
        return DeploymentMethod {
            method: Method::Manual,
            confidence: 0.6,
            evidence: "no object".into(),
            owner: None,
        };
    };
    // `Kind name`, how the evidence names the object.
    let who = format!(
        "{} {}",
        text(top, "/kind").unwrap_or_default(),
        text(top, "/metadata/name").unwrap_or_default()
    );
    // The markers, strongest first: the first one found decides.
    argocd(top, view, &who)
        .or_else(|| helm(top, &who))
        .or_else(|| custom_resource_owner(top, &who))
        .or_else(|| olm(top, &who))
        .unwrap_or_else(|| DeploymentMethod {
            method: Method::Manual,
            confidence: 0.6,
            evidence: format!("{who}: no ArgoCD, Helm or operator marker"),
            owner: None,
        })
}

/// Tracked by an ArgoCD Application the guard knows.
fn argocd(top: &Value, view: &GuardView, who: &str) -> Option<DeploymentMethod> {
    let target = ObjectRef {
        group: group_of(text(top, "/apiVersion").unwrap_or_default()),
        kind: text(top, "/kind").unwrap_or_default(),
        namespace: text(top, "/metadata/namespace").unwrap_or_default(),
        name: text(top, "/metadata/name").unwrap_or_default(),
    };
    match ownership(top, &target, view) {
        Ownership::Managed { app, by } => Some(DeploymentMethod {
            method: Method::Argocd,
            confidence: 0.95,
            evidence: format!("{who}: {by} of Application {app}"),
            owner: Some(app),
        }),
        _ => None,
    }
}

/// Helm's release annotation, or else its `managed-by` label.
fn helm(top: &Value, who: &str) -> Option<DeploymentMethod> {
    let annotation = top
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(HELM_RELEASE_ANNOTATION))
        .and_then(Value::as_str);
    let label = |key: &str| {
        top.pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    if let Some(release) = annotation {
        return Some(DeploymentMethod {
            method: Method::Helm,
            confidence: 0.9,
            evidence: format!("{who}: annotation meta.helm.sh/release-name={release}"),
            owner: Some(release.to_string()),
        });
    }
    label("app.kubernetes.io/managed-by")
        .is_some_and(|v| v.eq_ignore_ascii_case("helm"))
        .then(|| DeploymentMethod {
            method: Method::Helm,
            confidence: 0.8,
            evidence: format!("{who}: label app.kubernetes.io/managed-by=Helm"),
            owner: label("app.kubernetes.io/instance").map(String::from),
        })
}

/// A controller outside the built-in API groups: an operator's custom resource.
fn custom_resource_owner(top: &Value, who: &str) -> Option<DeploymentMethod> {
    let owner = top
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| {
            r.get("controller").and_then(Value::as_bool) == Some(true)
                && !BUILTIN_GROUPS.contains(&group_of(
                    r.get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ))
        })?;
    let owner_kind = owner
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let owner_name = owner
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some(DeploymentMethod {
        method: Method::Operator,
        confidence: 0.8,
        evidence: format!("{who} is controlled by the custom resource {owner_kind}/{owner_name}"),
        owner: Some(format!("{owner_kind}/{owner_name}")),
    })
}

/// A label of the Operator Lifecycle Manager.
fn olm(top: &Value, who: &str) -> Option<DeploymentMethod> {
    let key = top
        .pointer("/metadata/labels")
        .and_then(Value::as_object)?
        .keys()
        .find(|k| k.starts_with("olm.") || k.starts_with("operators.coreos.com/"))?;
    Some(DeploymentMethod {
        method: Method::Operator,
        confidence: 0.8,
        evidence: format!("{who}: OLM label {key}"),
        owner: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view() -> GuardView {
        let settings = crate::config::load(&crate::config::Sources::default()).expect("defaults");
        GuardView::new(crate::guard::GuardConfig::from_settings(&settings))
    }

    fn deployment(annotations: Value, labels: Value, owners: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "cart", "namespace": "shop", "annotations": annotations, "labels": labels, "ownerReferences": owners}})
    }

    #[test]
    fn methods_by_marker() {
        let cases = [
            (
                deployment(
                    json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart"}),
                    json!({}),
                    json!([]),
                ),
                "argocd",
            ),
            // A copied tracking-id of another object is not ArgoCD.
            (
                deployment(
                    json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/other"}),
                    json!({}),
                    json!([]),
                ),
                "manual",
            ),
            (
                deployment(
                    json!({"meta.helm.sh/release-name": "cart"}),
                    json!({}),
                    json!([]),
                ),
                "helm",
            ),
            (
                deployment(
                    json!({}),
                    json!({"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "cart"}),
                    json!([]),
                ),
                "helm",
            ),
            (
                deployment(
                    json!({}),
                    json!({}),
                    json!([{"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka", "name": "k", "controller": true}]),
                ),
                "operator",
            ),
            (
                deployment(json!({}), json!({"olm.owner": "x"}), json!([])),
                "operator",
            ),
            (
                deployment(json!({}), json!({"app": "cart"}), json!([])),
                "manual",
            ),
        ];
        for (object, expected) in cases {
            let found = deployment_method(std::slice::from_ref(&object), &view());
            assert_eq!(
                found.method.as_str(),
                expected,
                "{object}: {}",
                found.evidence
            );
        }
    }

    #[test]
    fn the_top_of_the_chain_decides() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cart-1", "namespace": "shop"}});
        let top = deployment(
            json!({"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:shop/cart"}),
            json!({}),
            json!([]),
        );
        let found = deployment_method(&[pod, top], &view());
        assert_eq!(
            (found.method.as_str(), found.owner.as_deref()),
            ("argocd", Some("shop"))
        );
    }
}

//! The RBAC self-check (SPEC §3): asks the API server, with one SelfSubjectAccessReview per
//! (verb, resource) of [`super::rbac`], what this ServiceAccount may do, so that a missing
//! permission shows up in `/api/v1/health` before the first remediation needs it rather than
//! as a 403 in the middle of one.
//!
//! The answer is cached and refreshed every [`REFRESH`]: the health endpoint never calls the
//! API server for it. Core and ArgoCD permissions are required. Each optional feature (nodes,
//! OpenShift, OLM, Helm history) is a chart toggle: all of its permissions missing means the
//! toggle is off (its steps escalate instead); only some of them missing is a broken grant.

use super::rbac::{API_CALLS, ARGOCD_NAMESPACE_CALLS, ApiCall, Feature};
use futures_util::StreamExt;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often the permissions are checked again (a ClusterRole can change under a running pod).
pub const REFRESH: Duration = Duration::from_secs(300);
/// How long one whole check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(20);
/// Reviews in flight at once: about 40 in total, answered from the API server's cache.
const CONCURRENCY: usize = 8;

/// One permission, in `kubectl auth can-i` terms: `verb`, `resource[.group]`, namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    pub group: &'static str,
    /// `pods` or `pods/eviction`.
    pub resource: &'static str,
    /// `None`: cluster-wide.
    pub namespace: Option<String>,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (resource, subresource) = split_subresource(self.resource);
        write!(f, "{} {resource}", self.verb)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(sub) = subresource {
            write!(f, "/{sub}")?;
        }
        if let Some(namespace) = &self.namespace {
            write!(f, " in {namespace}")?;
        }
        Ok(())
    }
}

fn split_subresource(resource: &str) -> (&str, Option<&str>) {
    match resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub)),
        None => (resource, None),
    }
}

/// What one check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessReport {
    /// Required (core, ArgoCD) or partially granted features' permissions that are missing.
    pub missing: Vec<String>,
    /// Optional features with none of their permissions: the chart toggle is off.
    pub features_off: Vec<&'static str>,
    /// Permissions checked.
    pub checked: usize,
}

impl AccessReport {
    /// Sorts the reviews' answers into required-missing, features off, partial grants.
    pub fn from_answers(answers: &[(Feature, Permission, bool)]) -> AccessReport {
        let mut report = AccessReport {
            checked: answers.len(),
            ..AccessReport::default()
        };
        for feature in FEATURES {
            let of_feature: Vec<_> = answers.iter().filter(|(f, ..)| *f == feature).collect();
            let denied: Vec<String> = of_feature
                .iter()
                .filter(|(_, _, allowed)| !allowed)
                .map(|(_, permission, _)| permission.to_string())
                .collect();
            let optional = !matches!(feature, Feature::Core | Feature::ArgoCd);
            if optional && !denied.is_empty() && denied.len() == of_feature.len() {
                report.features_off.push(feature_name(feature));
            } else {
                report.missing.extend(denied);
            }
        }
        report.missing.sort();
        report
    }
}

const FEATURES: [Feature; 6] = [
    Feature::Core,
    Feature::ArgoCd,
    Feature::Nodes,
    Feature::OpenShift,
    Feature::Olm,
    Feature::Helm,
];

/// The chart value that grants a feature, as users know it.
pub fn feature_name(feature: Feature) -> &'static str {
    match feature {
        Feature::Core => "core",
        Feature::ArgoCd => "argocd (argocd.enabled)",
        Feature::Nodes => "nodes (rbac.nodes)",
        Feature::OpenShift => "openshift (rbac.openshift)",
        Feature::Olm => "olm (rbac.olm)",
        Feature::Helm => "helm history (rbac.helm)",
    }
}

/// Every permission of the RBAC table, the ArgoCD ConfigMap one once per ArgoCD namespace.
pub fn permissions(argocd_namespaces: &[String]) -> Vec<(Feature, Permission)> {
    let expand = |call: &ApiCall, namespace: Option<&String>| -> Vec<(Feature, Permission)> {
        call.resources
            .iter()
            .flat_map(|resource| {
                call.verbs.iter().map(move |verb| {
                    (
                        call.feature,
                        Permission {
                            verb,
                            group: call.group,
                            resource,
                            namespace: namespace.cloned(),
                        },
                    )
                })
            })
            .collect()
    };
    let mut all: Vec<_> = API_CALLS.iter().flat_map(|c| expand(c, None)).collect();
    for namespace in argocd_namespaces {
        all.extend(expand(&ARGOCD_NAMESPACE_CALLS, Some(namespace)));
    }
    all
}

/// The latest check, shared by the refresher (writer) and the health endpoint (readers).
#[derive(Clone, Default)]
pub struct AccessCheck {
    latest: Arc<RwLock<Option<Checked>>>,
}

#[derive(Clone, Debug)]
pub struct Checked {
    pub at: Instant,
    /// `Err`: the reviews could not be made (API server unreachable, reviews refused).
    pub result: Result<AccessReport, String>,
}

impl AccessCheck {
    /// The latest result; `None` until the first check has finished.
    pub fn latest(&self) -> Option<Checked> {
        self.latest.read().ok().and_then(|latest| latest.clone())
    }

    fn store(&self, result: Result<AccessReport, String>) {
        if let Ok(mut latest) = self.latest.write() {
            *latest = Some(Checked {
                at: Instant::now(),
                result,
            });
        }
    }

    /// Checks now and every [`REFRESH`] after, for as long as the process runs.
    pub fn spawn_refresher(&self, client: kube::Client, argocd_namespaces: Vec<String>) {
        let this = self.clone();
        tokio::spawn(async move {
            let permissions = permissions(&argocd_namespaces);
            loop {
                let result = tokio::time::timeout(CHECK_TIMEOUT, check(&client, &permissions))
                    .await
                    .unwrap_or_else(|_| {
                        Err(format!(
                            "the access reviews took longer than {}s",
                            CHECK_TIMEOUT.as_secs()
                        ))
                    });
                match &result {
                    Ok(report) if !report.missing.is_empty() => tracing::warn!(
                        missing = %report.missing.join(", "),
                        "the ServiceAccount lacks permissions the engine uses (docs/rbac.md)"
                    ),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "cannot check the ServiceAccount's permissions")
                    }
                }
                this.store(result);
                tokio::time::sleep(REFRESH).await;
            }
        });
    }
}

/// One SelfSubjectAccessReview per permission.
async fn check(
    client: &kube::Client,
    permissions: &[(Feature, Permission)],
) -> Result<AccessReport, String> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let answers: Vec<Result<(Feature, Permission, bool), String>> =
        futures_util::stream::iter(permissions.iter().cloned())
            .map(|(feature, permission)| {
                let api = api.clone();
                async move {
                    let review = review_of(&permission);
                    let answer = api
                        .create(&PostParams::default(), &review)
                        .await
                        .map_err(|e| format!("SelfSubjectAccessReview for {permission}: {e}"))?;
                    let allowed = answer.status.is_some_and(|status| status.allowed);
                    Ok((feature, permission, allowed))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    let answers: Vec<_> = answers.into_iter().collect::<Result<_, _>>()?;
    Ok(AccessReport::from_answers(&answers))
}

fn review_of(permission: &Permission) -> SelfSubjectAccessReview {
    let (resource, subresource) = split_subresource(permission.resource);
    SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(permission.group.to_string()),
                resource: Some(resource.to_string()),
                subresource: subresource.map(str::to_string),
                verb: Some(permission.verb.to_string()),
                namespace: permission.namespace.clone(),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(denied: &[&str]) -> Vec<(Feature, Permission, bool)> {
        permissions(&["argocd".to_string()])
            .into_iter()
            .map(|(feature, permission)| {
                let allowed = !denied.contains(&permission.to_string().as_str());
                (feature, permission, allowed)
            })
            .collect()
    }

    #[test]
    fn permissions_are_named_as_kubectl_auth_can_i_names_them() {
        let names: Vec<String> = permissions(&["argocd".to_string()])
            .iter()
            .map(|(_, p)| p.to_string())
            .collect();
        for expected in [
            "delete pods",
            "patch deployments.apps",
            "patch deployments.apps/scale",
            "create pods/eviction",
            "patch applications.argoproj.io",
            "list configmaps in argocd",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} in {names:?}"
            );
        }
    }

    #[test]
    fn every_permission_granted_reports_nothing_missing() {
        let report = AccessReport::from_answers(&answers(&[]));
        assert_eq!(report.missing, Vec::<String>::new());
        assert!(report.features_off.is_empty());
        assert_eq!(report.checked, permissions(&["argocd".into()]).len());
    }

    #[test]
    fn a_missing_core_permission_is_reported_by_name() {
        let report = AccessReport::from_answers(&answers(&["delete pods"]));
        assert_eq!(report.missing, vec!["delete pods".to_string()]);
    }

    #[test]
    fn an_optional_feature_without_any_permission_is_off_not_missing() {
        let report = AccessReport::from_answers(&answers(&[
            "list clusterserviceversions.operators.coreos.com",
            "list secrets",
        ]));
        assert!(report.missing.is_empty(), "{report:?}");
        assert_eq!(
            report.features_off,
            vec!["olm (rbac.olm)", "helm history (rbac.helm)"]
        );
    }

    #[test]
    fn an_optional_feature_granted_in_part_is_a_broken_grant() {
        let report = AccessReport::from_answers(&answers(&["create pods/eviction"]));
        assert_eq!(report.missing, vec!["create pods/eviction".to_string()]);
        assert!(report.features_off.is_empty());
    }

    #[test]
    fn a_subresource_review_names_resource_and_subresource_apart() {
        let review = review_of(&Permission {
            verb: "create",
            group: "",
            resource: "pods/eviction",
            namespace: None,
        });
        let attributes = review.spec.resource_attributes.expect("attributes");
        assert_eq!(attributes.resource.as_deref(), Some("pods"));
        assert_eq!(attributes.subresource.as_deref(), Some("eviction"));
        assert_eq!(attributes.group.as_deref(), Some(""));
    }
}

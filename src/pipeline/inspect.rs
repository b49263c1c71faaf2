//! Evidence before a restart: what the pods' container states and scheduling say a restart
//! cannot fix escalates at once, with the change needed where it must be made.

use super::Pipeline;
use super::rung::Rung;
use crate::cluster::{Cluster, Workload};
use crate::detect::ownership::{DeploymentMethod, Method};
use crate::execute::inspect;
use crate::plan::Step;

impl Pipeline {
    /// Reads the pods' container states and scheduling: what a restart cannot fix escalates
    /// now, with the change that is needed where it must be made.
    pub(super) async fn inspect(
        &self,
        cluster: &dyn Cluster,
        step: &Step,
        method: &DeploymentMethod,
        workload: Option<&Workload>,
    ) -> Rung {
        let target = &step.target;
        let ns = target.namespace.as_deref().unwrap_or_default();
        let deployed = format!("deployed by {}: {}", method.method, method.evidence);
        if target.namespace.is_none() {
            return Rung::Done {
                detail: deployed,
                verify: None,
            };
        }
        let pods = cluster
            .pods((&target.kind, ns, &target.name), workload)
            .await;
        self.count("list", &pods);
        let pods = match pods {
            Ok(pods) => pods,
            Err(error) => {
                return Rung::Done {
                    detail: format!("{deployed}; cannot read the pods: {error}"),
                    verify: None,
                };
            }
        };
        let owner = method.owner.as_deref().unwrap_or("?");
        let (workload_kind, workload_name) = workload
            .map(|(k, _, n)| (k.as_str(), n.as_str()))
            .unwrap_or((target.kind.as_str(), target.name.as_str()));
        let where_it_lives = match method.method {
            Method::Argocd => format!("in Git for ArgoCD Application {owner}"),
            Method::Helm => format!("in the values of Helm release {owner}, then upgrade it"),
            Method::Operator => format!("in the custom resource {owner}"),
            _ => format!("in {workload_kind} {ns}/{workload_name}"),
        };
        match inspect::judge(&pods) {
            inspect::Finding::BadImage {
                container,
                image,
                why,
            } => Rung::Escalate {
                reason: format!(
                    "container {container} of {workload_kind} {ns}/{workload_name} cannot pull its image {image} ({why}); a restart cannot fix that"
                ),
                needed: format!(
                    "change spec.template.spec.containers[{container}].image from {image} to an image that exists, {where_it_lives}"
                ),
            },
            inspect::Finding::BadConfig { container, why } => Rung::Escalate {
                reason: format!(
                    "container {container} of {workload_kind} {ns}/{workload_name} cannot be created ({why})"
                ),
                needed: format!(
                    "create the ConfigMap/Secret it needs, or fix the reference {where_it_lives}"
                ),
            },
            inspect::Finding::Unschedulable(why) => Rung::Escalate {
                reason: format!(
                    "no node can take the pods of {workload_kind} {ns}/{workload_name}: {why}"
                ),
                needed: format!(
                    "add capacity, or lower the requests or relax the affinity {where_it_lives}; a restart would not place them"
                ),
            },
            inspect::Finding::Restartable(summary) => Rung::Done {
                detail: format!("{deployed}; evidence: {summary}"),
                verify: None,
            },
        }
    }
}

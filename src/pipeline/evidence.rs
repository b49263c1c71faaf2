//! Evidence first (SPEC §5.3): before its first write, a live workflow re-reads its target and
//! confirms the symptom it was triggered for. A trigger (from the API, the compatibility
//! listener or an alert) is a claim; what the cluster shows now decides whether anything is
//! written. Symptoms: a Node not Ready; pods of the workload crash-looping, not ready or
//! failing (or fewer available than wanted); a ClusterOperator degraded or unavailable; the
//! ArgoCD Application of a GitOps workload out of sync or degraded.

use super::Pipeline;
use super::symptom::{Evidence, judge, node_symptom, pod_symptom, workload_symptom};
use crate::cluster::Cluster;
use crate::detect::ownership::DeploymentMethod;
use crate::execute::{ExecError, argocd, platform};
use crate::plan::StepTarget;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// What the ladder's target is, as the evidence check needs it.
pub(super) struct Observed<'a> {
    pub target: &'a StepTarget,
    /// The target object as ownership detection read it (namespaced targets).
    pub object: Option<&'a Value>,
    /// The top workload's object, when the target belongs to one.
    pub workload_object: Option<&'a Value>,
    pub workload: Option<&'a (String, String, String)>,
    pub method: &'a DeploymentMethod,
}

impl Pipeline {
    /// Re-reads the target and says whether the symptom is there.
    pub(super) async fn observe(
        &self,
        cluster: &dyn Cluster,
        seen: &Observed<'_>,
    ) -> Result<Evidence, ExecError> {
        let target = seen.target;
        let now = Utc::now();
        match (target.kind.as_str(), target.namespace.as_deref()) {
            ("Node", None) => {
                let node = cluster.node(&target.name).await;
                self.count("get", &node);
                Ok(match node_symptom(&node?) {
                    Some(symptom) => Evidence::Present(symptom),
                    None => Evidence::Absent(format!("node {} is Ready", target.name)),
                })
            }
            ("ClusterOperator", None) => {
                let operator = cluster.cluster_operator(&target.name).await;
                self.count("get", &operator);
                let (healthy, detail) = platform::health(&operator?);
                let text = format!("ClusterOperator {}: {detail}", target.name);
                Ok(if healthy {
                    Evidence::Absent(text)
                } else {
                    Evidence::Present(text)
                })
            }
            (_, Some(namespace)) => self.observe_workload(cluster, seen, namespace, now).await,
            (kind, None) => Ok(Evidence::Absent(format!(
                "the engine has no symptom to check for a cluster-scoped {kind}"
            ))),
        }
    }

    /// A pod: itself. A workload: its availability, its pods, and (GitOps) its Application.
    async fn observe_workload(
        &self,
        cluster: &dyn Cluster,
        seen: &Observed<'_>,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<Evidence, ExecError> {
        let target = seen.target;
        if target.kind == "Pod" {
            return Ok(observe_pod(seen, namespace, now));
        }
        if let Some(symptom) = seen.workload_object.and_then(workload_symptom) {
            return Ok(Evidence::Present(symptom));
        }
        let pods = cluster
            .pods((&target.kind, namespace, &target.name), seen.workload)
            .await;
        self.count("list", &pods);
        let pods = pods?;
        let findings: Vec<String> = pods.iter().filter_map(|p| pod_symptom(p, now)).collect();
        let healthy = format!(
            "{} {namespace}/{}: all pods available, {} pod(s) Ready, no recent restart",
            target.kind,
            target.name,
            pods.len()
        );
        let evidence = judge(findings, healthy);
        if matches!(evidence, Evidence::Present(_))
            || seen.method.method != crate::detect::ownership::Method::Argocd
        {
            return Ok(evidence);
        }
        // A GitOps workload whose pods look fine may still be what its Application reports.
        let (true, Some(owner)) = (cluster.has_argocd(), &seen.method.owner) else {
            return Ok(evidence);
        };
        Ok(self.observe_application(cluster, owner, evidence).await)
    }

    /// Adds what the Application of tracking name `owner` reports to the pods' `evidence`:
    /// OutOfSync or Degraded is the symptom; unreadable, the pods' word stands.
    async fn observe_application(
        &self,
        cluster: &dyn Cluster,
        owner: &str,
        evidence: Evidence,
    ) -> Evidence {
        let app = argocd::locate(owner, &self.guard.snapshot(), &self.argocd_namespaces);
        let fetched = cluster.application(&app).await;
        self.count("get", &fetched);
        let application = match fetched {
            Ok(application) => application,
            Err(error) => {
                return match evidence {
                    Evidence::Absent(pods) => {
                        Evidence::Absent(format!("{pods}; Application {app} unreadable: {error}"))
                    }
                    present => present,
                };
            }
        };
        let status = |p: &str| {
            application
                .pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("Unknown")
                .to_string()
        };
        let (sync, health) = (
            status("/status/sync/status"),
            status("/status/health/status"),
        );
        let text = format!("Application {app}: {sync}, {health}");
        if sync == "OutOfSync" || health == "Degraded" {
            Evidence::Present(text)
        } else {
            match evidence {
                Evidence::Absent(pods) => Evidence::Absent(format!("{pods}; {text}")),
                present => present,
            }
        }
    }
}

/// A pod target: the pod as ownership detection read it (unreadable: no symptom to act on).
fn observe_pod(seen: &Observed<'_>, namespace: &str, now: DateTime<Utc>) -> Evidence {
    let target = seen.target;
    let pod: Option<Pod> = seen
        .object
        .and_then(|o| serde_json::from_value(o.clone()).ok());
    let Some(pod) = pod else {
        return Evidence::Absent(format!("pod {namespace}/{} could not be read", target.name));
    };
    match pod_symptom(&pod, now) {
        Some(symptom) => Evidence::Present(symptom),
        None => Evidence::Absent(format!(
            "pod {namespace}/{} is Ready, no recent restart",
            target.name
        )),
    }
}

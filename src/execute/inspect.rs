//! Evidence before action: the pods' container states and scheduling. Some failures are never
//! fixed by a restart (an image that cannot be pulled, a missing ConfigMap or Secret, a pod no
//! node can take); those escalate at once with the evidence and what must change, instead of
//! climbing a ladder of blind restarts.

use super::{ExecError, with_retry, workload};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

/// What the pods say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// An image cannot be pulled: `(container, image, reason: message)`.
    BadImage {
        container: String,
        image: String,
        why: String,
    },
    /// A container cannot be created (missing ConfigMap/Secret, bad config).
    BadConfig { container: String, why: String },
    /// No node can take the pod.
    Unschedulable(String),
    /// Nothing a restart cannot address; the summary of what was seen.
    Restartable(String),
}

const IMAGE_REASONS: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];
const CONFIG_REASONS: &[&str] = &["CreateContainerConfigError", "CreateContainerError"];

/// Judges pods (pure).
pub fn judge(pods: &[Pod]) -> Finding {
    let mut seen = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = &pod.status else { continue };
        if let Some(unscheduled) = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        }) {
            return Finding::Unschedulable(format!(
                "pod {name}: {}",
                unscheduled.message.as_deref().unwrap_or("no node fits")
            ));
        }
        let containers = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for container in containers {
            if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                let reason = waiting.reason.clone().unwrap_or_default();
                let why = format!(
                    "{reason}: {}",
                    waiting.message.as_deref().unwrap_or_default()
                );
                if IMAGE_REASONS.contains(&reason.as_str()) {
                    return Finding::BadImage {
                        container: container.name.clone(),
                        image: container.image.clone(),
                        why,
                    };
                }
                if CONFIG_REASONS.contains(&reason.as_str()) {
                    return Finding::BadConfig {
                        container: container.name.clone(),
                        why,
                    };
                }
                seen.push(format!("{name}/{}: waiting ({reason})", container.name));
            }
            if let Some(last) = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
            {
                seen.push(format!(
                    "{name}/{}: last exit {} ({}), {} restarts",
                    container.name,
                    last.exit_code,
                    last.reason.as_deref().unwrap_or("?"),
                    container.restart_count
                ));
            }
        }
    }
    Finding::Restartable(if seen.is_empty() {
        format!("{} pod(s), no waiting or terminated container", pods.len())
    } else {
        seen.join("; ")
    })
}

/// The target pod, or the pods of the target's workload.
pub async fn pods(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
    top: Option<&(String, String, String)>,
) -> Result<Vec<Pod>, ExecError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    if kind == "Pod" {
        let pod = with_retry(|| async { Ok(api.get(name).await?) }).await?;
        return Ok(vec![pod]);
    }
    let Some((kind, namespace, name)) = top else {
        return Ok(Vec::new());
    };
    let selector = workload::selector(client, kind, namespace, name).await?;
    let params = ListParams::default().labels(&selector);
    let list = with_retry(|| async { Ok(api.list(&params).await?) }).await?;
    Ok(list.items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).expect("pod")
    }

    #[test]
    fn image_config_and_scheduling_failures_are_not_restartable() {
        let bad_image = pod(
            json!({"containerStatuses": [{"name": "web", "image": "shop:1.2-typo", "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"shop:1.2-typo\""}}}]}),
        );
        assert_eq!(
            judge(&[bad_image]),
            Finding::BadImage {
                container: "web".into(),
                image: "shop:1.2-typo".into(),
                why: "ImagePullBackOff: Back-off pulling image \"shop:1.2-typo\"".into()
            }
        );
        let missing_secret = pod(
            json!({"containerStatuses": [{"name": "web", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret \"db\" not found"}}}]}),
        );
        assert!(
            matches!(judge(&[missing_secret]), Finding::BadConfig { why, .. } if why.contains("secret \"db\" not found"))
        );
        let pending = pod(
            json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient cpu."}]}),
        );
        assert_eq!(
            judge(&[pending]),
            Finding::Unschedulable("pod p: 0/3 nodes are available: 3 Insufficient cpu.".into())
        );
        let crashing = pod(
            json!({"containerStatuses": [{"name": "web", "image": "i", "imageID": "", "ready": false,
            "restartCount": 7, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        assert_eq!(
            judge(&[crashing]),
            Finding::Restartable(
                "p/web: waiting (CrashLoopBackOff); p/web: last exit 137 (OOMKilled), 7 restarts"
                    .into()
            )
        );
    }
}

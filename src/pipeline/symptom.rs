//! The symptoms the evidence check looks for (pure): a pod that cannot run or keeps
//! restarting, a workload short of available pods or past its progress deadline, a node not
//! Ready.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::Value;

/// What the target showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Evidence {
    /// The symptom is there: what was seen.
    Present(String),
    /// The target is healthy: what was seen instead.
    Absent(String),
}

/// A container that last terminated this recently (and restarted) is crash-looping, even if it
/// is Ready for the moment between two crashes: 15 minutes, in seconds.
const RECENT_RESTART_SECONDS: i64 = 15 * 60;

/// Waiting reasons that mean the container cannot run.
const FAILING_WAITS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Findings listed in the evidence (the rest is counted).
const MAX_FINDINGS: usize = 3;

/// The symptom a pod shows, if any (pure).
pub(super) fn pod_symptom(pod: &Pod, now: DateTime<Utc>) -> Option<String> {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.as_ref();
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => return None,
        Some("Failed") => {
            let reason = status.and_then(|s| s.reason.as_deref()).unwrap_or("Failed");
            return Some(format!("pod {name} failed ({reason})"));
        }
        _ => {}
    }
    let conditions = status.and_then(|s| s.conditions.as_ref());
    if let Some(unscheduled) = conditions.into_iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    }) {
        return Some(format!(
            "pod {name} cannot be scheduled: {}",
            unscheduled.message.as_deref().unwrap_or("no node fits")
        ));
    }
    let containers = status.into_iter().flat_map(|s| {
        s.init_container_statuses
            .iter()
            .flatten()
            .chain(s.container_statuses.iter().flatten())
    });
    for container in containers {
        let waiting = container
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        if let Some(reason) = waiting.filter(|r| FAILING_WAITS.contains(r)) {
            return Some(format!(
                "pod {name}: container {} is {reason}",
                container.name
            ));
        }
        let last = container
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if let Some(last) = last.filter(|_| container.restart_count > 0) {
            let recent = last
                .finished_at
                .as_ref()
                .is_none_or(|t| now.timestamp() - t.0.as_second() <= RECENT_RESTART_SECONDS);
            if recent {
                return Some(format!(
                    "pod {name}: container {} restarted {} times, last exit {} ({})",
                    container.name,
                    container.restart_count,
                    last.exit_code,
                    last.reason.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    let ready = conditions
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str());
    if ready != Some("True") {
        return Some(format!(
            "pod {name} is not Ready (Ready={})",
            ready.unwrap_or("absent")
        ));
    }
    None
}

/// Fewer pods available than the workload wants, or a rollout past its deadline (pure, on the
/// workload's JSON).
pub(super) fn workload_symptom(object: &Value) -> Option<String> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = format!(
        "{}/{}",
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    );
    let number = |p: &str| object.pointer(p).and_then(Value::as_i64);
    let (desired, available) = match kind {
        "DaemonSet" => (
            number("/status/desiredNumberScheduled").unwrap_or(0),
            number("/status/numberAvailable").unwrap_or(0),
        ),
        "StatefulSet" => (
            number("/spec/replicas").unwrap_or(1),
            number("/status/readyReplicas").unwrap_or(0),
        ),
        _ => (
            number("/spec/replicas").unwrap_or(1),
            number("/status/availableReplicas").unwrap_or(0),
        ),
    };
    let stalled = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded"));
    if stalled {
        return Some(format!("{kind} {name}: rollout past its progress deadline"));
    }
    (available < desired).then(|| format!("{kind} {name}: {available}/{desired} available"))
}

/// `Present` with the first findings, or `Absent` with `healthy`.
pub(super) fn judge(findings: Vec<String>, healthy: String) -> Evidence {
    if findings.is_empty() {
        return Evidence::Absent(healthy);
    }
    let more = findings.len().saturating_sub(MAX_FINDINGS);
    let mut seen = findings
        .into_iter()
        .take(MAX_FINDINGS)
        .collect::<Vec<_>>()
        .join("; ");
    if more > 0 {
        seen.push_str(&format!("; and {more} more"));
    }
    Evidence::Present(seen)
}

/// Ready=True, or what the Ready condition says (pure).
pub(super) fn node_symptom(node: &Node) -> Option<String> {
    let name = node.metadata.name.as_deref().unwrap_or("?");
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    match ready {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(format!(
            "node {name} is not Ready (Ready={}{})",
            c.status,
            c.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )),
        None => Some(format!("node {name} reports no Ready condition")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).expect("pod")
    }

    #[test]
    fn a_ready_pod_without_recent_restarts_shows_no_symptom() {
        let now = Utc::now();
        let ready = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 3,
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": (now - chrono::Duration::hours(2)).to_rfc3339()}}}]});
        assert_eq!(pod_symptom(&pod(ready.clone()), now), None);
        // The same pod, its last crash a minute ago: crash-looping, though Ready right now.
        let mut crashing = ready;
        crashing["containerStatuses"][0]["lastState"]["terminated"]["finishedAt"] =
            json!((now - chrono::Duration::minutes(1)).to_rfc3339());
        assert!(pod_symptom(&pod(crashing), now).is_some_and(|s| s.contains("restarted 3 times")),);
        let waiting = json!({"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": false,
            "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]});
        assert_eq!(
            pod_symptom(&pod(waiting), now).as_deref(),
            Some("pod p: container c is CrashLoopBackOff")
        );
        let not_ready = json!({"conditions": [{"type": "Ready", "status": "False"}]});
        assert_eq!(
            pod_symptom(&pod(not_ready), now).as_deref(),
            Some("pod p is not Ready (Ready=False)")
        );
        assert_eq!(pod_symptom(&pod(json!({"phase": "Succeeded"})), now), None);
    }

    #[test]
    fn a_workload_short_of_available_pods_shows_the_symptom() {
        let deployment = |available: i64| {
            json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "prod"},
                   "spec": {"replicas": 2}, "status": {"availableReplicas": available}})
        };
        assert_eq!(
            workload_symptom(&deployment(1)).as_deref(),
            Some("Deployment prod/api: 1/2 available")
        );
        assert_eq!(workload_symptom(&deployment(2)), None);
    }

    #[test]
    fn a_node_is_sick_unless_ready_is_true() {
        let node = |conditions: Value| -> Node {
            serde_json::from_value(
                json!({"metadata": {"name": "n"}, "status": {"conditions": conditions}}),
            )
            .expect("node")
        };
        assert_eq!(
            node_symptom(&node(json!([{"type": "Ready", "status": "True"}]))),
            None
        );
        assert_eq!(
            node_symptom(&node(
                json!([{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}])
            ))
            .as_deref(),
            Some("node n is not Ready (Ready=Unknown: NodeStatusUnknown)")
        );
        let findings: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        assert_eq!(
            judge(findings, String::new()),
            Evidence::Present("f0; f1; f2; and 2 more".into())
        );
    }
}

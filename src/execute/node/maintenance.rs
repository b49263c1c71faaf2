//! The maintenance gate: MachineConfigPools updating or the cluster upgrading mean wait; a
//! degraded pool means escalate.

use super::super::ExecError;
use super::NodeOutcome;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What the maintenance gate sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maintenance {
    Clear,
    /// Wait: a pool is rolling out a MachineConfig, or the cluster is upgrading.
    Busy(String),
    /// Escalate: a pool is degraded (its conditions).
    Degraded(String),
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn is_true(object: &Value, kind: &str) -> bool {
    condition(object, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// Judges MachineConfigPools and the ClusterVersion (pure).
pub fn judge_maintenance(pools: &[Value], versions: &[Value]) -> Maintenance {
    let name = |o: &Value| {
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for pool in pools {
        if is_true(pool, "Degraded") {
            let conditions: Vec<String> = ["Degraded", "NodeDegraded", "RenderDegraded"]
                .iter()
                .filter_map(|k| condition(pool, k))
                .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.get("type").and_then(Value::as_str).unwrap_or_default(),
                        c.get("message").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect();
            return Maintenance::Degraded(format!(
                "MachineConfigPool {} is degraded ({})",
                name(pool),
                conditions.join("; ")
            ));
        }
    }
    if let Some(pool) = pools.iter().find(|p| is_true(p, "Updating")) {
        return Maintenance::Busy(format!("MachineConfigPool {} is updating", name(pool)));
    }
    if let Some(version) = versions.iter().find(|v| is_true(v, "Progressing")) {
        let target = version
            .pointer("/status/desired/version")
            .and_then(Value::as_str)
            .unwrap_or("a new version");
        return Maintenance::Busy(format!("the cluster is upgrading to {target}"));
    }
    Maintenance::Clear
}

/// Lists an OpenShift cluster-scoped resource; an API the cluster does not have is empty.
async fn list_cluster(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Result<Vec<Value>, ExecError> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    );
    super::super::list_optional(api).await
}

/// Waits while the maintenance gate is busy, polling at 0.5 s doubling to 10 s, up to
/// `timeout`. Returns what it waited for (empty when it did not wait).
pub async fn await_maintenance(
    client: &kube::Client,
    timeout: Duration,
) -> Result<Result<String, NodeOutcome>, ExecError> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(500);
    let mut waited: Option<String> = None;
    loop {
        let pools = list_cluster(
            client,
            "machineconfiguration.openshift.io",
            "v1",
            "MachineConfigPool",
            "machineconfigpools",
        )
        .await?;
        let versions = list_cluster(
            client,
            "config.openshift.io",
            "v1",
            "ClusterVersion",
            "clusterversions",
        )
        .await?;
        match judge_maintenance(&pools, &versions) {
            Maintenance::Clear => {
                return Ok(Ok(waited
                    .map(|w| format!("waited for maintenance ({w}); "))
                    .unwrap_or_default()));
            }
            Maintenance::Degraded(reason) => {
                return Ok(Err(NodeOutcome::Escalate {
                    reason,
                    needed:
                        "repair the MachineConfigPool (oc describe mcp) before node remediation"
                            .into(),
                }));
            }
            Maintenance::Busy(what) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(Err(NodeOutcome::Escalate {
                        reason: format!("{what} for longer than {}s", timeout.as_secs()),
                        needed: "let the maintenance finish, then trigger again".into(),
                    }));
                }
                waited = Some(what);
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

use super::drain::evictable;
use super::*;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

fn with_conditions(name: &str, conditions: &[(&str, &str)]) -> Value {
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(t, s)| json!({"type": t, "status": s, "message": format!("{t} says so")}))
        .collect();
    json!({"metadata": {"name": name}, "status": {"conditions": conditions, "desired": {"version": "4.19.3"}}})
}

#[test]
fn the_maintenance_gate_waits_for_updates_and_escalates_degraded_pools() {
    let idle = with_conditions("worker", &[("Updating", "False"), ("Degraded", "False")]);
    let updating = with_conditions("worker", &[("Updating", "True")]);
    let degraded = with_conditions("master", &[("Degraded", "True"), ("NodeDegraded", "True")]);
    let upgrading = with_conditions("version", &[("Progressing", "True")]);
    let stable = with_conditions("version", &[("Progressing", "False")]);
    assert_eq!(judge_maintenance(&[], &[]), Maintenance::Clear);
    assert_eq!(
        judge_maintenance(std::slice::from_ref(&idle), std::slice::from_ref(&stable)),
        Maintenance::Clear
    );
    assert_eq!(
        judge_maintenance(&[idle.clone(), updating], &[stable]),
        Maintenance::Busy("MachineConfigPool worker is updating".into())
    );
    assert_eq!(
        judge_maintenance(std::slice::from_ref(&idle), &[upgrading]),
        Maintenance::Busy("the cluster is upgrading to 4.19.3".into())
    );
    assert!(matches!(
        judge_maintenance(&[idle, degraded], &[]),
        Maintenance::Degraded(m) if m.contains("master") && m.contains("NodeDegraded: NodeDegraded says so")
    ));
}

#[test]
fn daemonset_mirror_finished_and_terminating_pods_are_not_evicted() {
    let pod = |extra: Value| -> Pod {
        let mut base =
            json!({"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Running"}});
        json_patch::merge(&mut base, &extra);
        serde_json::from_value(base).expect("pod")
    };
    assert!(evictable(&pod(json!({}))));
    assert!(!evictable(&pod(json!({"metadata": {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u"}]}}))));
    assert!(!evictable(&pod(
        json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}})
    )));
    assert!(!evictable(&pod(json!({"status": {"phase": "Succeeded"}}))));
    assert!(!evictable(&pod(
        json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
    )));
}

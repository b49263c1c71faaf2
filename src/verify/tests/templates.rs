//! How pods are matched to the template the controller rolls out, and read as their
//! containers' states.

use super::super::observe::{Template, deadline_exceeded, is_new, pod_state, template_of};
use serde_json::json;

fn pod(value: serde_json::Value) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(value).expect("pod")
}

#[test]
fn pods_are_matched_to_the_template_the_controller_rolls_out() {
    let owned_by = |rs: &str| {
        pod(
            json!({"metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": rs, "uid": "u", "controller": true}]}}),
        )
    };
    let labelled =
        |key: &str, value: &str| pod(json!({"metadata": {"name": "p", "labels": {key: value}}}));
    let current = Template::ReplicaSet(Some("web-5f7".into()));
    assert!(is_new(&current, &owned_by("web-5f7")));
    assert!(!is_new(&current, &owned_by("web-9c1")));
    assert!(!is_new(&Template::ReplicaSet(None), &owned_by("web-9c1")));
    assert!(!is_new(&Template::NotObserved, &owned_by("web-5f7")));
    assert!(is_new(&Template::Unknown, &owned_by("web-9c1")));

    let set = json!({"metadata": {"generation": 4}, "status": {"observedGeneration": 4, "updateRevision": "db-7b"}});
    assert_eq!(
        template_of("StatefulSet", &set),
        Template::Revision("db-7b".into())
    );
    assert!(is_new(
        &template_of("StatefulSet", &set),
        &labelled("controller-revision-hash", "db-7b")
    ));
    assert!(!is_new(
        &template_of("StatefulSet", &set),
        &labelled("controller-revision-hash", "db-6a")
    ));
    let daemons = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3}});
    assert!(is_new(
        &template_of("DaemonSet", &daemons),
        &labelled("pod-template-generation", "3")
    ));
    assert!(!is_new(
        &template_of("DaemonSet", &daemons),
        &labelled("pod-template-generation", "2")
    ));
    // Not observed yet: the pods there are the previous template's.
    let unseen = json!({"metadata": {"generation": 5}, "status": {"observedGeneration": 4, "updateRevision": "db-7b"}});
    assert_eq!(template_of("StatefulSet", &unseen), Template::NotObserved);
}

#[test]
fn the_progress_deadline_counts_only_for_the_current_generation() {
    let condition = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"web-2\" has timed out progressing."}]);
    let current = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": condition}});
    assert_eq!(
        deadline_exceeded(&current).as_deref(),
        Some("ReplicaSet \"web-2\" has timed out progressing.")
    );
    // A restart bumped the generation: the old rollout's verdict says nothing about the new one.
    let restarted = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2, "conditions": condition}});
    assert_eq!(deadline_exceeded(&restarted), None);
    let progressing = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
        "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
    assert_eq!(deadline_exceeded(&progressing), None);
}

#[test]
fn a_pod_reads_as_its_containers_states() {
    let crashing = pod(
        json!({"metadata": {"name": "web-1"}, "spec": {"nodeName": "n1", "containers": []},
        "status": {"conditions": [{"type": "Ready", "status": "False"}],
        "initContainerStatuses": [{"name": "init", "image": "i", "imageID": "", "ready": true, "restartCount": 1}],
        "containerStatuses": [{"name": "web", "image": "i", "imageID": "", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}}]}}),
    );
    let state = pod_state(&crashing, true);
    assert_eq!(state.name, "web-1");
    assert!(!state.ready && state.new_template);
    assert_eq!(state.node.as_deref(), Some("n1"));
    assert_eq!(state.containers.len(), 2);
    assert_eq!(
        state.containers[1].waiting.as_deref(),
        Some("CrashLoopBackOff")
    );
    assert_eq!(state.containers[1].message.as_deref(), Some("back-off 40s"));
    assert_eq!(state.containers.iter().map(|c| c.restarts).sum::<i32>(), 4);
}

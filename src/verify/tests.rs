//! Table tests of the checkpoint's decision over observations, and of how pods are matched to
//! the workload's new template.

use super::assess::*;
use super::observe::{Template, deadline_exceeded, is_new, pod_state, template_of};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(120);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// `(name, new template, ready, restarts, waiting reason)`.
type Pod<'a> = (&'a str, bool, bool, i32, Option<&'a str>);

fn pods(items: &[Pod]) -> Vec<PodState> {
    items
        .iter()
        .map(|(name, new, ready, restarts, waiting)| PodState {
            name: name.to_string(),
            new_template: *new,
            ready: *ready,
            node: Some("node-a".into()),
            containers: vec![ContainerState {
                name: "web".into(),
                restarts: *restarts,
                waiting: waiting.map(str::to_string),
                message: waiting.map(|_| "back-off".to_string()),
            }],
        })
        .collect()
}

fn rollout(complete: bool) -> Rollout {
    Rollout {
        complete,
        detail: "Deployment prod/web: rolled".into(),
        deadline_exceeded: None,
    }
}

fn workload(complete: bool, items: &[Pod]) -> Observation {
    Observation::Workload {
        rollout: rollout(complete),
        pods: pods(items),
        nodes: BTreeMap::from([("node-a".to_string(), true)]),
    }
}

/// A baseline taken at `first`, then tracked through `seen` (at their times).
fn baseline(first: &Observation, seen: &[(u64, &Observation)]) -> Baseline {
    let mut baseline = Baseline::new(first, SETTLE);
    for (at, observation) in seen {
        baseline.track(observation, secs(*at));
    }
    baseline
}

fn failed_with(verdict: &Verdict, text: &str) -> bool {
    matches!(verdict, Verdict::Failed(evidence) if evidence.contains(text))
}

#[test]
fn conclusive_evidence_on_the_new_template_fails_at_once() {
    // The first observation: the new pod just started, an old one still serves.
    let first = workload(
        false,
        &[
            ("new-1", true, false, 0, None),
            ("old-1", false, true, 4, None),
        ],
    );
    let base = baseline(&first, &[]);
    let cases: Vec<(&str, Observation, &str)> = vec![
        (
            "crash loop",
            workload(
                false,
                &[("new-1", true, false, 1, Some("CrashLoopBackOff"))],
            ),
            "pod new-1 of the new template: container web is in CrashLoopBackOff: back-off",
        ),
        (
            "image pull back-off",
            workload(
                false,
                &[("new-1", true, false, 0, Some("ImagePullBackOff"))],
            ),
            "in ImagePullBackOff",
        ),
        (
            "image pull error",
            workload(false, &[("new-1", true, false, 0, Some("ErrImagePull"))]),
            "in ErrImagePull",
        ),
        (
            "missing config",
            workload(
                false,
                &[("new-1", true, false, 0, Some("CreateContainerConfigError"))],
            ),
            "in CreateContainerConfigError",
        ),
        (
            "restarted since the baseline, Ready between crashes",
            workload(true, &[("new-1", true, true, 1, None)]),
            "containers of the new template still restarting: new-1 (0 → 1)",
        ),
        (
            "a new pod seen after the baseline already restarted",
            workload(false, &[("new-2", true, true, 2, None)]),
            "still restarting: new-2 (0 → 2)",
        ),
    ];
    for (case, observation, evidence) in cases {
        let verdict = assess(&observation, &base, secs(3));
        assert!(failed_with(&verdict, evidence), "{case}: {verdict:?}");
    }
    let mut gave_up = workload(false, &[("new-1", true, false, 0, None)]);
    if let Observation::Workload { rollout, .. } = &mut gave_up {
        rollout.deadline_exceeded = Some("ReplicaSet \"web-2\" has timed out progressing.".into());
    }
    assert!(failed_with(
        &assess(&gave_up, &base, secs(3)),
        "ProgressDeadlineExceeded: ReplicaSet \"web-2\" has timed out progressing."
    ));
    let mut node_down = workload(false, &[("new-1", true, false, 0, None)]);
    if let Observation::Workload { nodes, .. } = &mut node_down {
        nodes.insert("node-a".into(), false);
    }
    assert!(failed_with(
        &assess(&node_down, &base, secs(3)),
        "node node-a of the new template's pods went NotReady again"
    ));
}

#[test]
fn old_pods_and_restarts_before_the_baseline_are_not_evidence() {
    // The new pod restarted twice before the first observation; the old pod crash-loops.
    let first = workload(
        false,
        &[
            ("new-1", true, false, 2, None),
            ("old-1", false, false, 4, None),
        ],
    );
    let base = baseline(&first, &[]);
    let cases: Vec<(&str, Observation)> = vec![
        (
            "the new pod's restarts stay at the baseline",
            workload(false, &[("new-1", true, false, 2, None)]),
        ),
        (
            "an old pod restarts and waits in CrashLoopBackOff",
            workload(
                false,
                &[
                    ("new-1", true, false, 2, None),
                    ("old-1", false, false, 9, Some("CrashLoopBackOff")),
                ],
            ),
        ),
        (
            "a container waits for another reason (being created)",
            workload(
                false,
                &[("new-1", true, false, 2, Some("ContainerCreating"))],
            ),
        ),
    ];
    for (case, observation) in cases {
        let verdict = assess(&observation, &base, secs(3));
        assert!(
            matches!(verdict, Verdict::Pending(_)),
            "{case}: {verdict:?}"
        );
    }
    // A node NotReady from the start did not go NotReady *again*.
    let mut down_from_start = workload(false, &[("new-1", true, false, 2, None)]);
    if let Observation::Workload { nodes, .. } = &mut down_from_start {
        nodes.insert("node-a".into(), false);
    }
    let base = baseline(&down_from_start, &[]);
    assert!(matches!(
        assess(&down_from_start, &base, secs(3)),
        Verdict::Pending(_)
    ));
}

#[test]
fn pending_until_rolled_out_ready_and_settled() {
    let healthy = workload(true, &[("new-1", true, true, 0, None)]);
    let cases: Vec<(&str, Observation, Baseline, u64, &str)> = vec![
        (
            "rollout not complete",
            workload(false, &[("new-1", true, true, 0, None)]),
            baseline(&healthy, &[]),
            5,
            "Deployment prod/web: rolled",
        ),
        (
            "a pod not Ready",
            workload(true, &[("new-1", true, false, 0, None)]),
            baseline(&healthy, &[]),
            5,
            "pods not Ready: new-1",
        ),
        (
            "healthy for the first time: the settle window starts",
            healthy.clone(),
            baseline(&healthy, &[]),
            5,
            "1 pods Ready, settling",
        ),
        (
            "healthy, but not for the settle window yet",
            healthy.clone(),
            baseline(&healthy, &[(5, &healthy)]),
            34,
            "settling",
        ),
        (
            "healthy again after a dip: the window starts over",
            healthy.clone(),
            baseline(
                &healthy,
                &[
                    (1, &healthy),
                    (20, &workload(true, &[("new-1", true, false, 0, None)])),
                    (25, &healthy),
                ],
            ),
            40,
            "settling",
        ),
    ];
    for (case, observation, base, at, detail) in cases {
        match assess(&observation, &base, secs(at)) {
            Verdict::Pending(seen) => assert!(seen.contains(detail), "{case}: {seen}"),
            other => panic!("{case}: {other:?}"),
        }
    }
}

#[test]
fn an_old_pod_restarting_restarts_the_settle_window_without_failing() {
    let at = |old_restarts| {
        workload(
            true,
            &[
                ("new-1", true, true, 0, None),
                ("old-1", false, true, old_restarts, None),
            ],
        )
    };
    let base = baseline(&at(3), &[(1, &at(3))]);
    match assess(&at(4), &base, secs(40)) {
        Verdict::Pending(seen) => {
            assert!(seen.contains("still restarting: old-1 (3 → 4)"), "{seen}")
        }
        other => panic!("{other:?}"),
    }
    // Tracked: the window starts again at 40 s, and passes 30 s later.
    let base = baseline(&at(3), &[(1, &at(3)), (40, &at(4))]);
    assert!(matches!(
        assess(&at(4), &base, secs(69)),
        Verdict::Pending(_)
    ));
    assert!(matches!(
        assess(&at(4), &base, secs(70)),
        Verdict::Passed(_)
    ));
}

#[test]
fn passes_once_healthy_for_the_settle_window() {
    let healthy = workload(
        true,
        &[
            ("new-1", true, true, 0, None),
            ("new-2", true, true, 3, None),
        ],
    );
    let base = baseline(&healthy, &[(2, &healthy)]);
    assert_eq!(
        assess(&healthy, &base, secs(32)),
        Verdict::Passed("Deployment prod/web: rolled; 2 pods Ready, no restart for 30s".into())
    );
}

#[test]
fn node_and_cluster_operator_checkpoints() {
    let node = |ready, left: &[&str]| Observation::Node {
        name: "worker-1".into(),
        ready,
        left: left.iter().map(|s| s.to_string()).collect(),
    };
    let was_ready = baseline(&node(Some(true), &["prod/a"]), &[]);
    let was_down = baseline(&node(Some(false), &["prod/a"]), &[]);
    let cases: Vec<(&str, Observation, &Baseline, Verdict)> = vec![
        (
            "drained",
            node(Some(true), &[]),
            &was_ready,
            Verdict::Passed("node worker-1: no evictable pod left".into()),
        ),
        (
            "pods left",
            node(Some(false), &["prod/a"]),
            &was_down,
            Verdict::Pending("node worker-1 still runs prod/a".into()),
        ),
        (
            "NotReady again after it was Ready",
            node(Some(false), &["prod/a"]),
            &was_ready,
            Verdict::Failed("node worker-1 went NotReady again".into()),
        ),
        (
            "readiness unknown is not evidence",
            node(None, &["prod/a"]),
            &was_ready,
            Verdict::Pending("node worker-1 still runs prod/a".into()),
        ),
    ];
    for (case, observation, base, expected) in cases {
        assert_eq!(assess(&observation, base, secs(1)), expected, "{case}");
    }
    let operator = |healthy| Observation::ClusterOperator {
        healthy,
        detail: "ClusterOperator dns: Available=True, Degraded=False".into(),
    };
    let base = baseline(&operator(false), &[]);
    assert!(matches!(
        assess(&operator(true), &base, secs(1)),
        Verdict::Passed(_)
    ));
    assert!(matches!(
        assess(&operator(false), &base, secs(1)),
        Verdict::Pending(_)
    ));
}

#[test]
fn pending_past_the_timeout_is_a_timeout_and_evidence_ends_it_before() {
    let pending = || Verdict::Pending("waiting".into());
    let cases = [
        (pending(), secs(119), None),
        (
            pending(),
            TIMEOUT,
            Some(Checkpoint::TimedOut("waiting".into())),
        ),
        (
            pending(),
            secs(500),
            Some(Checkpoint::TimedOut("waiting".into())),
        ),
        (
            Verdict::Failed("crash".into()),
            secs(2),
            Some(Checkpoint::Failed("crash".into())),
        ),
        (
            Verdict::Passed("ok".into()),
            secs(200),
            Some(Checkpoint::Passed("ok".into())),
        ),
    ];
    for (verdict, elapsed, expected) in cases {
        assert_eq!(conclude(verdict, elapsed, TIMEOUT), expected, "{elapsed:?}");
    }
}

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

//! A workload's checkpoint: conclusive evidence on the new template fails at once; old pods
//! and earlier restarts are not evidence; it passes once rolled out, ready and settled.

use super::*;

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

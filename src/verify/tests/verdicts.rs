//! Checkpoints of nodes and ClusterOperators, and how any checkpoint concludes against its
//! timeout.

use super::*;

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

//! Table tests of the checkpoint's decision over observations (`workload`, `verdicts`), and
//! of how pods are matched to the workload's new template (`templates`).

use super::assess::*;
use std::collections::BTreeMap;
use std::time::Duration;

mod templates;
mod verdicts;
mod workload;

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

//! The checkpoint's decision, pure: what one observation of the cluster says, given the
//! checkpoint's first observation (the baseline) and the time since it began. No kube reads
//! here: `observe` gathers the observation, the loop in `mod.rs` polls.
//!
//! A checkpoint fails as soon as the evidence is conclusive (a pod of the new template that
//! cannot start or keeps crashing, a Deployment whose controller gave up, a node that went
//! NotReady); it passes when the workload is rolled out, Ready and stopped restarting for the
//! settle window; anything else is pending until the timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Waiting reasons of a container that waiting longer does not fix: the evidence is conclusive.
pub const CONCLUSIVE_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
];

/// One container of a pod as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    pub name: String,
    pub restarts: i32,
    /// `state.waiting.reason`, when the container waits.
    pub waiting: Option<String>,
    /// `state.waiting.message`.
    pub message: Option<String>,
}

/// One pod of the workload (terminating pods are left out).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodState {
    pub name: String,
    /// Created from the workload's current template (the rollout's target). Pods of an older
    /// template are still counted for readiness, never as evidence of failure.
    pub new_template: bool,
    pub ready: bool,
    /// `spec.nodeName`, once scheduled.
    pub node: Option<String>,
    /// Init containers and containers.
    pub containers: Vec<ContainerState>,
}

impl PodState {
    fn restarts(&self) -> i32 {
        self.containers.iter().map(|c| c.restarts).sum()
    }
}

/// The workload controller's view of its rollout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rollout {
    /// Current generation observed, every replica updated and available.
    pub complete: bool,
    /// What the status says, for the step's detail.
    pub detail: String,
    /// The `Progressing` condition's message when the controller gave up on the rollout
    /// (`ProgressDeadlineExceeded`) for the current generation.
    pub deadline_exceeded: Option<String>,
}

/// What one poll of a checkpoint saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    Workload {
        rollout: Rollout,
        pods: Vec<PodState>,
        /// Readiness of the nodes the new template's pods run on.
        nodes: BTreeMap<String, bool>,
    },
    Node {
        name: String,
        /// `None`: unknown (the node could not be read).
        ready: Option<bool>,
        /// Evictable pods still on it, as `namespace/name`.
        left: Vec<String>,
    },
    ClusterOperator {
        healthy: bool,
        detail: String,
    },
}

/// What a checkpoint's later observations are compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Restart counts per pod at the first observation (a pod seen later starts at 0).
    restarts: BTreeMap<String, i32>,
    /// Nodes Ready at the first observation.
    ready_nodes: BTreeSet<String>,
    /// How long a workload must stay healthy without a restart to pass.
    settle: Duration,
    /// Since when (time into the checkpoint) the workload looks healthy, and its restart
    /// counts then; `None` while it does not.
    healthy: Option<(Duration, BTreeMap<String, i32>)>,
}

/// The decision on one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed(String),
    /// Conclusive evidence that the step did not heal the target.
    Failed(String),
    /// Not yet; what was seen.
    Pending(String),
}

/// How a checkpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    Passed(String),
    /// Conclusive evidence before the timeout.
    Failed(String),
    TimedOut(String),
}

fn restart_counts(pods: &[PodState]) -> BTreeMap<String, i32> {
    pods.iter()
        .map(|p| (p.name.clone(), p.restarts()))
        .collect()
}

impl Baseline {
    /// The baseline of a checkpoint whose first observation is `first`.
    pub fn new(first: &Observation, settle: Duration) -> Self {
        let (restarts, ready_nodes) = match first {
            Observation::Workload { pods, nodes, .. } => (
                restart_counts(pods),
                nodes
                    .iter()
                    .filter(|(_, ready)| **ready)
                    .map(|(n, _)| n.clone())
                    .collect(),
            ),
            Observation::Node {
                name,
                ready: Some(true),
                ..
            } => (BTreeMap::new(), BTreeSet::from([name.clone()])),
            _ => Default::default(),
        };
        Baseline {
            restarts,
            ready_nodes,
            settle,
            healthy: None,
        }
    }

    /// After a pending verdict: starts, keeps or resets the settle window.
    pub fn track(&mut self, observation: &Observation, elapsed: Duration) {
        let Observation::Workload { rollout, pods, .. } = observation else {
            return;
        };
        if !healthy(rollout, pods) {
            self.healthy = None;
            return;
        }
        let counts = restart_counts(pods);
        let restarted = match &self.healthy {
            None => true,
            Some((_, before)) => !grown(before, pods).is_empty(),
        };
        if restarted {
            self.healthy = Some((elapsed, counts));
        }
    }
}

fn healthy(rollout: &Rollout, pods: &[PodState]) -> bool {
    rollout.complete && pods.iter().all(|p| p.ready)
}

/// Pods whose restart count grew since `before` (a pod not in `before` counts from 0 only
/// when `from_zero`), as `name (a → b)`.
fn grown_from(before: &BTreeMap<String, i32>, pods: &[&PodState], from_zero: bool) -> Vec<String> {
    pods.iter()
        .filter_map(|pod| {
            let then = match before.get(&pod.name) {
                Some(then) => *then,
                None if from_zero => 0,
                None => return None,
            };
            let now = pod.restarts();
            (now > then).then(|| format!("{} ({then} → {now})", pod.name))
        })
        .collect()
}

fn grown(before: &BTreeMap<String, i32>, pods: &[PodState]) -> Vec<String> {
    grown_from(before, &pods.iter().collect::<Vec<_>>(), false)
}

/// The decision on `observation`, `elapsed` into the checkpoint.
pub fn assess(observation: &Observation, baseline: &Baseline, elapsed: Duration) -> Verdict {
    match observation {
        Observation::Workload {
            rollout,
            pods,
            nodes,
        } => workload(rollout, pods, nodes, baseline, elapsed),
        Observation::Node { name, ready, left } => {
            if *ready == Some(false) && baseline.ready_nodes.contains(name) {
                return Verdict::Failed(format!("node {name} went NotReady again"));
            }
            if left.is_empty() {
                Verdict::Passed(format!("node {name}: no evictable pod left"))
            } else {
                Verdict::Pending(format!("node {name} still runs {}", left.join(", ")))
            }
        }
        Observation::ClusterOperator { healthy, detail } => match healthy {
            true => Verdict::Passed(detail.clone()),
            false => Verdict::Pending(detail.clone()),
        },
    }
}

/// Conclusive evidence that the workload's new template does not run, if any.
fn failure(
    rollout: &Rollout,
    pods: &[PodState],
    nodes: &BTreeMap<String, bool>,
    baseline: &Baseline,
) -> Option<String> {
    if let Some(message) = &rollout.deadline_exceeded {
        return Some(format!(
            "{}; the rollout exceeded its progress deadline (ProgressDeadlineExceeded: {message})",
            rollout.detail
        ));
    }
    let new: Vec<&PodState> = pods.iter().filter(|p| p.new_template).collect();
    for pod in &new {
        for container in &pod.containers {
            let Some(reason) = container.waiting.as_deref() else {
                continue;
            };
            if CONCLUSIVE_WAITING.contains(&reason) {
                let message = container
                    .message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                return Some(format!(
                    "pod {} of the new template: container {} is in {reason}{message}",
                    pod.name, container.name
                ));
            }
        }
    }
    let restarting = grown_from(&baseline.restarts, &new, true);
    if !restarting.is_empty() {
        return Some(format!(
            "containers of the new template still restarting: {}",
            restarting.join(", ")
        ));
    }
    let down: Vec<&str> = nodes
        .iter()
        .filter(|(name, ready)| !**ready && baseline.ready_nodes.contains(*name))
        .map(|(name, _)| name.as_str())
        .collect();
    (!down.is_empty()).then(|| {
        format!(
            "node {} of the new template's pods went NotReady again",
            down.join(", ")
        )
    })
}

fn workload(
    rollout: &Rollout,
    pods: &[PodState],
    nodes: &BTreeMap<String, bool>,
    baseline: &Baseline,
    elapsed: Duration,
) -> Verdict {
    if let Some(evidence) = failure(rollout, pods, nodes, baseline) {
        return Verdict::Failed(evidence);
    }
    let detail = &rollout.detail;
    if !rollout.complete {
        return Verdict::Pending(detail.clone());
    }
    let not_ready: Vec<&str> = pods
        .iter()
        .filter(|p| !p.ready)
        .map(|p| p.name.as_str())
        .collect();
    if !not_ready.is_empty() {
        return Verdict::Pending(format!(
            "{detail}; pods not Ready: {}",
            not_ready.join(", ")
        ));
    }
    let Some((since, before)) = &baseline.healthy else {
        return Verdict::Pending(format!("{detail}; {} pods Ready, settling", pods.len()));
    };
    // An old pod restarting (the new template's were judged above) restarts the settle window.
    let restarting = grown(before, pods);
    if !restarting.is_empty() {
        return Verdict::Pending(format!(
            "{detail}; containers still restarting: {}",
            restarting.join(", ")
        ));
    }
    if elapsed.saturating_sub(*since) >= baseline.settle {
        return Verdict::Passed(format!(
            "{detail}; {} pods Ready, no restart for {}s",
            pods.len(),
            baseline.settle.as_secs_f64().round()
        ));
    }
    Verdict::Pending(format!("{detail}; {} pods Ready, settling", pods.len()))
}

/// How the checkpoint ends with `verdict` at `elapsed`, if it ends: pending past the timeout
/// is a timeout.
pub fn conclude(verdict: Verdict, elapsed: Duration, timeout: Duration) -> Option<Checkpoint> {
    match verdict {
        Verdict::Passed(detail) => Some(Checkpoint::Passed(detail)),
        Verdict::Failed(evidence) => Some(Checkpoint::Failed(evidence)),
        Verdict::Pending(detail) if elapsed >= timeout => Some(Checkpoint::TimedOut(detail)),
        Verdict::Pending(_) => None,
    }
}

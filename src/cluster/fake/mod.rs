//! An in-memory `Cluster` for unit tests: it records every call it receives (in order, as
//! text a test compares whole), and answers from what the test set up. What changes over time
//! (a rollout's progress, a ClusterOperator recovering, a node draining) is a script: each
//! poll takes the next answer, and the last one repeats.

use super::{EvictablePod, ObjectRef, Workload};
use crate::execute::ExecError;
use crate::execute::argocd::SyncOutcome;
use crate::execute::helm::Revision;
use crate::execute::node::NodeOutcome;
use crate::verify::assess::{PodState, Rollout};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

mod answers;

/// Answers that change from one call to the next: each call takes the next, the last repeats.
#[derive(Debug, Clone)]
pub struct Script<T: Clone>(VecDeque<T>);

impl<T: Clone> Script<T> {
    pub fn of(answers: impl IntoIterator<Item = T>) -> Self {
        Script(answers.into_iter().collect())
    }

    fn next(&mut self) -> Option<T> {
        if self.0.len() > 1 {
            self.0.pop_front()
        } else {
            self.0.front().cloned()
        }
    }
}

/// What the fake answers; tests fill it in before (or while) the pipeline runs.
#[derive(Default)]
pub struct World {
    /// Objects by `Kind/namespace/name` (pods, ReplicaSets, workloads) for `get` and
    /// `owner_chain`.
    pub objects: HashMap<String, Value>,
    /// What `pods` answers, whatever it is asked (the workload's pods).
    pub pods: Vec<Value>,
    pub nodes: HashMap<String, Value>,
    /// Per node: whether it is Ready, poll after poll (absent: unknown).
    pub node_ready: HashMap<String, Script<bool>>,
    /// Per workload (`Kind/namespace/name`): its rollout and pods, poll after poll.
    pub workload_states: HashMap<String, Script<(Rollout, Vec<PodState>)>>,
    pub evictable: HashMap<String, Script<Vec<EvictablePod>>>,
    pub cluster_operators: HashMap<String, Script<Value>>,
    pub autoscalers: HashMap<String, String>,
    pub helm_history: HashMap<String, Vec<Revision>>,
    /// `false`: no helm binary (the rollback escalates with the command).
    pub helm_available: bool,
    pub csvs: Vec<Value>,
    pub maintenance: Option<Result<String, NodeOutcome>>,
    pub cordon: Option<NodeOutcome>,
    pub argocd: bool,
    pub applications: HashMap<String, Value>,
    pub sync_outcome: Option<SyncOutcome>,
    pub previous_revision: Option<String>,
    /// Calls that fail, by the name they are recorded under (`scale`, `delete_pod`, …).
    pub failures: HashMap<&'static str, String>,
}

/// The in-memory cluster.
#[derive(Default)]
pub struct FakeCluster {
    world: Mutex<World>,
    calls: Mutex<Vec<String>>,
}

fn key((kind, namespace, name): ObjectRef<'_>) -> String {
    format!("{kind}/{namespace}/{name}")
}

fn workload_key(workload: &Workload) -> String {
    key((&workload.0, &workload.1, &workload.2))
}

fn dry(dry_run: bool) -> &'static str {
    if dry_run { " (dry run)" } else { "" }
}

fn from_json<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, ExecError> {
    serde_json::from_value(value.clone()).map_err(|e| ExecError::Permanent(e.to_string()))
}

impl FakeCluster {
    pub fn new(world: World) -> Self {
        FakeCluster {
            world: Mutex::new(world),
            calls: Mutex::default(),
        }
    }

    /// Changes what the fake answers from now on.
    pub fn change(&self, change: impl FnOnce(&mut World)) {
        change(&mut self.world());
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    /// The calls that change the cluster (or ArgoCD, or a Helm release), in order.
    pub fn writes(&self) -> Vec<String> {
        const WRITES: &[&str] = &[
            "delete_pod",
            "rollout_restart",
            "rollback_deployment",
            "scale",
            "cordon",
            "drain",
            "uncordon",
            "restart_operator_pods",
            "helm_rollback",
            "nudge_operator",
            "sync_application",
            "restart_through_argocd",
            "set_self_heal",
        ];
        self.calls()
            .into_iter()
            .filter(|c| WRITES.contains(&c.split(' ').next().unwrap_or_default()))
            .collect()
    }

    /// The reasons of the Events recorded, in order.
    pub fn events(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.strip_prefix("event ").map(String::from))
            .collect()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("world")
    }

    /// Records `call`; its scripted failure, if any.
    fn record(&self, name: &'static str, call: String) -> Result<(), ExecError> {
        self.calls.lock().expect("calls").push(call);
        match self.world().failures.get(name) {
            Some(why) => Err(ExecError::Permanent(why.clone())),
            None => Ok(()),
        }
    }

    fn object(&self, object: ObjectRef<'_>) -> Result<Value, ExecError> {
        self.world()
            .objects
            .get(&key(object))
            .cloned()
            .ok_or_else(|| {
                ExecError::Permanent(format!(
                    "the API server answered 404 NotFound: {}",
                    key(object)
                ))
            })
    }
}

/// The controller of `object` that the owner chain follows, as `(kind, name)`.
fn controller(object: &Value) -> Option<(String, String)> {
    let owner = object
        .pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    let kind = owner.get("kind")?.as_str()?;
    let name = owner.get("name")?.as_str()?;
    ["ReplicaSet", "Deployment", "StatefulSet", "DaemonSet"]
        .contains(&kind)
        .then(|| (kind.into(), name.into()))
}

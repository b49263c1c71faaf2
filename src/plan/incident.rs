//! Plans for what the sources report: one incident (the queue, the remediation trigger) or
//! several resources at once (the coordination trigger). Both come down to
//! [`for_signal`]: a target's signal diagnosed, then its ladder. Pure.

use super::{Plan, StepTarget, is_cluster_scoped, plan};
use crate::detect::{Layer, LayerFinding, Signal, diagnose};
use crate::incident::Incident;

/// The plan for one target whose symptom is `signal`: its layers diagnosed, the ladder of
/// `issue_type` from the root cause.
pub fn for_signal(issue_type: &str, target: StepTarget, signal: &Signal<'_>) -> Plan {
    let (layers, root) = diagnose(std::slice::from_ref(signal));
    plan(issue_type, target, &layers, root)
}

/// The step target of an incident (its object, or the incident itself when it names none).
pub fn incident_target(incident: &Incident) -> StepTarget {
    let (kind, name) = match &incident.target {
        Some(t) => (t.kind.clone(), t.name.clone()),
        None => (String::new(), incident.title.clone()),
    };
    StepTarget {
        namespace: incident
            .namespace
            .clone()
            .filter(|_| !is_cluster_scoped(&kind)),
        kind,
        name,
    }
}

/// The text an incident's layer is read from.
fn incident_text(incident: &Incident) -> String {
    format!(
        "{} {} {}",
        incident.issue_type, incident.title, incident.description
    )
}

/// An incident's signal: its target's kind, its namespace and alert name, `text`.
fn incident_signal<'a>(incident: &'a Incident, kind: &'a str, text: &'a str) -> Signal<'a> {
    Signal {
        kind,
        namespace: incident.namespace.as_deref(),
        alertname: incident.labels.get("alertname").map(String::as_str),
        text,
    }
}

/// Layer detection (SPEC §5.1) of one incident: its affected layers and the root cause.
fn diagnose_incident(incident: &Incident) -> (Vec<LayerFinding>, Layer) {
    let target = incident_target(incident);
    let text = incident_text(incident);
    diagnose(&[incident_signal(incident, &target.kind, &text)])
}

/// The layer an incident is counted under in `incidents_total`: the root cause its plan starts
/// from (keyword detection, known when the incident is created).
pub fn incident_layer(incident: &Incident) -> Layer {
    diagnose_incident(incident).1
}

/// The plan for one incident.
pub fn for_incident(incident: &Incident) -> Plan {
    let target = incident_target(incident);
    let text = incident_text(incident);
    let kind = target.kind.clone();
    let signal = incident_signal(incident, &kind, &text);
    for_signal(&incident.issue_type, target, &signal)
}

/// One resource of a coordinated incident and its issue type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub target: StepTarget,
    pub issue_type: String,
}

/// One `multi_layer` plan over several resources: each resource's plan (as [`for_signal`]
/// makes it, from its issue and the shared `description`), lowest layer first, steps
/// renumbered; the affected layers and the root cause over all of them.
pub fn for_resources(resources: &[Resource], description: &str) -> Plan {
    let texts: Vec<String> = resources
        .iter()
        .map(|r| format!("{} {description}", r.issue_type))
        .collect();
    let signals: Vec<Signal> = resources
        .iter()
        .zip(&texts)
        .map(|(r, text)| Signal {
            kind: &r.target.kind,
            namespace: r.target.namespace.as_deref(),
            alertname: None,
            text,
        })
        .collect();
    let mut per_resource: Vec<Plan> = resources
        .iter()
        .zip(&signals)
        .map(|(r, signal)| for_signal(&r.issue_type, r.target.clone(), signal))
        .collect();
    // Stable: resources of one layer keep the order they were sent in.
    per_resource.sort_by_key(|p| p.root_cause_layer);
    let (layers, root) = diagnose(&signals);
    let mut steps: Vec<_> = per_resource.into_iter().flat_map(|p| p.steps).collect();
    for (i, step) in steps.iter_mut().enumerate() {
        step.order = i as u32 + 1;
    }
    Plan {
        issue_type: "multi_layer".into(),
        root_cause_layer: root,
        affected_layers: layers.iter().map(|l| l.layer).collect(),
        estimated_duration_seconds: steps.iter().map(|s| s.timeout_seconds).sum(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{Severity, Source, Target};
    use crate::plan::Action;
    use chrono::Utc;

    fn resource(kind: &str, namespace: Option<&str>, name: &str, issue: &str) -> Resource {
        Resource {
            target: StepTarget {
                kind: kind.into(),
                namespace: namespace.map(Into::into),
                name: name.into(),
            },
            issue_type: issue.into(),
        }
    }

    fn incident(kind: &str, namespace: Option<&str>, name: &str, issue: &str) -> Incident {
        let mut incident = Incident::new(
            Source::Api,
            format!("{issue} on {kind}/{name}"),
            Severity::High,
            Utc::now(),
        );
        incident.namespace = namespace.map(Into::into);
        incident.target = Some(Target {
            kind: kind.into(),
            name: name.into(),
        });
        incident.issue_type = issue.into();
        incident
    }

    #[test]
    fn a_coordinated_plan_runs_the_lowest_layer_first_and_numbers_every_step() {
        let plan = for_resources(
            &[
                resource("Deployment", Some("shop"), "cart", "crash_loop"),
                resource("Node", None, "worker-1", "node_not_ready"),
            ],
            "cart crashes since worker-1 went away",
        );
        assert_eq!(plan.issue_type, "multi_layer");
        assert_eq!(plan.root_cause_layer, Layer::Infrastructure);
        assert_eq!(
            plan.affected_layers,
            vec![Layer::Infrastructure, Layer::Application]
        );
        let steps: Vec<(u32, &str, Action)> = plan
            .steps
            .iter()
            .map(|s| (s.order, s.target.name.as_str(), s.action))
            .collect();
        use Action::*;
        assert_eq!(
            steps,
            vec![
                (1, "worker-1", InspectEvents),
                (2, "worker-1", Cordon),
                (3, "worker-1", Drain),
                (4, "worker-1", Escalate),
                (5, "cart", RolloutRestart),
                (6, "cart", Rollback),
                (7, "cart", Escalate),
            ]
        );
        assert_eq!(
            plan.estimated_duration_seconds,
            plan.steps.iter().map(|s| s.timeout_seconds).sum::<u64>()
        );
    }

    #[test]
    fn each_resource_of_a_coordinated_plan_gets_the_steps_it_would_get_alone() {
        let cart = resource("Deployment", Some("shop"), "cart", "crash_loop");
        let together = for_resources(
            &[
                cart.clone(),
                resource("Node", None, "worker-1", "node_not_ready"),
            ],
            "x",
        );
        let alone = for_resources(std::slice::from_ref(&cart), "x");
        let of_cart = |p: &Plan| -> Vec<_> {
            p.steps
                .iter()
                .filter(|s| s.target == cart.target)
                .map(|s| (s.action, s.layer, s.channel.clone(), s.timeout_seconds))
                .collect()
        };
        assert_eq!(of_cart(&together), of_cart(&alone));
    }

    #[test]
    fn an_incident_and_a_single_resource_with_the_same_symptom_get_the_same_steps() {
        let incident = incident("Pod", Some("shop"), "cart-1", "crash_loop");
        let from_incident = for_incident(&incident);
        assert_eq!(incident_layer(&incident), from_incident.root_cause_layer);
        let from_resource = for_resources(
            &[resource("Pod", Some("shop"), "cart-1", "crash_loop")],
            &incident.title,
        );
        let steps = |p: &Plan| {
            p.steps
                .iter()
                .map(|s| (s.action, s.layer, s.target.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(&from_incident), steps(&from_resource));
    }

    #[test]
    fn a_cluster_scoped_target_drops_the_namespace_it_came_with() {
        let node = incident("Node", Some("monitoring"), "worker-1", "node_not_ready");
        assert_eq!(incident_target(&node).namespace, None);
        assert_eq!(incident_layer(&node), Layer::Infrastructure);
        let pod = incident("Pod", Some("shop"), "cart-1", "crash_loop");
        assert_eq!(incident_target(&pod).namespace.as_deref(), Some("shop"));
    }
}

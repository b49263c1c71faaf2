//! Routing as a value: which channel carries an action on a target, given who deploys it
//! (pure). `rung()` performs the call this decides; the plan shows its channel. The manual
//! channel never patches what ArgoCD, Helm or an operator owns: those actions are refused
//! (escalated) unless the owner's own channel can carry them.

use crate::detect::ownership::Method;
use crate::plan::{Action, Channel};

/// What routing knows about the target.
#[derive(Debug, Clone, Copy)]
pub(super) struct Routing<'a> {
    pub method: Method,
    /// The owner (Application, release, custom resource) is known.
    pub owner: bool,
    /// The target has a top workload (Deployment, StatefulSet, DaemonSet).
    pub workload: bool,
    /// The ArgoCD channel is configured.
    pub argocd: bool,
    /// Actions the engine takes itself on an ArgoCD-managed workload under a remediation lease.
    pub leased: &'a [Action],
}

/// The call that carries an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelCall {
    /// The engine patches an ArgoCD-managed workload under a remediation lease.
    Leased,
    /// ArgoCD syncs the workload and runs its restart action.
    ArgocdRestart,
    /// A GitOps rollback is a change in Git: escalated with the revision to revert to.
    ArgocdRevert,
    /// `helm rollback` to the last good revision.
    HelmRollback,
    /// The operator is asked to reconcile the operand's custom resource.
    OperatorNudge,
    /// The manual channel does not patch what someone else deploys: escalated.
    Refused,
    /// The action itself, through this channel (the Kubernetes API for workloads and pods,
    /// the node and platform channels, a human for `escalate`).
    Direct(Channel),
}

impl ChannelCall {
    /// The channel that carries the call (`human` when it escalates).
    pub fn channel(self) -> Channel {
        match self {
            ChannelCall::Leased => Channel::Kubernetes,
            ChannelCall::ArgocdRestart => Channel::Argocd,
            ChannelCall::HelmRollback => Channel::Helm,
            ChannelCall::OperatorNudge => Channel::Operator,
            ChannelCall::ArgocdRevert | ChannelCall::Refused => Channel::Human,
            ChannelCall::Direct(channel) => channel,
        }
    }
}

/// The call for `action` on a target routed by `routing`.
pub(super) fn route(action: Action, routing: &Routing) -> ChannelCall {
    let Routing {
        method,
        owner,
        workload,
        argocd,
        leased,
    } = *routing;
    if method == Method::Argocd && leased.contains(&action) && workload {
        return ChannelCall::Leased;
    }
    if method == Method::Argocd && argocd && owner {
        match action {
            Action::RolloutRestart if workload => return ChannelCall::ArgocdRestart,
            Action::Rollback => return ChannelCall::ArgocdRevert,
            _ => {}
        }
    }
    match (method, action) {
        (Method::Helm, Action::Rollback) if workload => return ChannelCall::HelmRollback,
        (Method::Operator, Action::RolloutRestart) if workload => {
            return ChannelCall::OperatorNudge;
        }
        _ => {}
    }
    let patches = matches!(
        action,
        Action::RolloutRestart | Action::Rollback | Action::ScaleUp
    );
    // Helm does not reconcile: a rollout restart of a release's workload is the usual way to
    // restart it and survives the next upgrade (decision 0006).
    let allowed =
        method == Method::Manual || (method == Method::Helm && action == Action::RolloutRestart);
    if patches && !allowed {
        return ChannelCall::Refused;
    }
    ChannelCall::Direct(match action {
        Action::Cordon | Action::Drain => Channel::Node,
        Action::RestartOperatorPods => Channel::Platform,
        Action::Escalate => Channel::Human,
        _ => Channel::Kubernetes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use ChannelCall::*;

    const ACTIONS: [Action; 9] = [
        InspectEvents,
        DeletePod,
        RolloutRestart,
        Rollback,
        ScaleUp,
        Cordon,
        Drain,
        RestartOperatorPods,
        Escalate,
    ];

    /// Actions that are the same whoever deploys the target.
    fn common(action: Action) -> Option<ChannelCall> {
        match action {
            InspectEvents | DeletePod => Some(Direct(Channel::Kubernetes)),
            Cordon | Drain => Some(Direct(Channel::Node)),
            RestartOperatorPods => Some(Direct(Channel::Platform)),
            Escalate => Some(Direct(Channel::Human)),
            _ => None,
        }
    }

    fn routing(method: Method) -> Routing<'static> {
        Routing {
            method,
            owner: true,
            workload: true,
            argocd: true,
            leased: &[],
        }
    }

    #[test]
    fn every_action_on_every_deployment_method() {
        let table: [(Method, [ChannelCall; 3]); 5] = [
            // (method, [rollout_restart, rollback, scale_up])
            (Method::Manual, [Direct(Channel::Kubernetes); 3]),
            (Method::Argocd, [ArgocdRestart, ArgocdRevert, Refused]),
            (
                Method::Helm,
                [Direct(Channel::Kubernetes), HelmRollback, Refused],
            ),
            (Method::Operator, [OperatorNudge, Refused, Refused]),
            (Method::Cluster, [Refused, Refused, Refused]),
        ];
        for (method, writes) in table {
            for action in ACTIONS {
                let expected = common(action).unwrap_or_else(|| match action {
                    RolloutRestart => writes[0],
                    Rollback => writes[1],
                    _ => writes[2],
                });
                assert_eq!(
                    route(action, &routing(method)),
                    expected,
                    "{action:?} on {method}"
                );
            }
        }
    }

    #[test]
    fn what_someone_else_deploys_is_never_patched_by_the_manual_channel() {
        for method in [
            Method::Argocd,
            Method::Helm,
            Method::Operator,
            Method::Cluster,
        ] {
            for argocd in [true, false] {
                for action in [RolloutRestart, Rollback, ScaleUp] {
                    let call = route(
                        action,
                        &Routing {
                            argocd,
                            ..routing(method)
                        },
                    );
                    let manual = call == Direct(Channel::Kubernetes);
                    // The one exception: Helm does not reconcile (decision 0006).
                    let exception = method == Method::Helm && action == RolloutRestart;
                    assert!(!manual || exception, "{action:?} on {method}: {call:?}");
                }
            }
        }
    }

    #[test]
    fn leases_the_argocd_channel_and_a_missing_workload_change_the_route() {
        let leased = [ScaleUp, RolloutRestart];
        let argo = Routing {
            leased: &leased,
            ..routing(Method::Argocd)
        };
        assert_eq!(route(ScaleUp, &argo), Leased);
        assert_eq!(route(RolloutRestart, &argo), Leased);
        assert_eq!(
            route(Rollback, &argo),
            ArgocdRevert,
            "never leased: Git decides"
        );
        let no_workload = Routing {
            workload: false,
            ..argo
        };
        assert_eq!(route(ScaleUp, &no_workload), Refused);
        assert_eq!(route(RolloutRestart, &no_workload), Refused);
        // Without the ArgoCD channel (or the Application), a restart is refused.
        for (argocd, owner) in [(false, true), (true, false)] {
            let bare = Routing {
                argocd,
                owner,
                ..routing(Method::Argocd)
            };
            assert_eq!(route(RolloutRestart, &bare), Refused);
        }
        let headless = |method| Routing {
            workload: false,
            ..routing(method)
        };
        assert_eq!(route(Rollback, &headless(Method::Helm)), Refused);
        assert_eq!(route(RolloutRestart, &headless(Method::Operator)), Refused);
        assert_eq!(
            route(RolloutRestart, &headless(Method::Manual)),
            Direct(Channel::Kubernetes),
            "the manual channel says the workload is missing itself"
        );
    }

    #[test]
    fn the_recorded_channel_of_each_call() {
        let cases = [
            (Leased, Channel::Kubernetes),
            (ArgocdRestart, Channel::Argocd),
            (ArgocdRevert, Channel::Human),
            (HelmRollback, Channel::Helm),
            (OperatorNudge, Channel::Operator),
            (Refused, Channel::Human),
            (Direct(Channel::Node), Channel::Node),
        ];
        for (call, channel) in cases {
            assert_eq!(call.channel(), channel, "{call:?}");
        }
    }
}

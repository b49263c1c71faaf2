use super::*;

fn sig<'a>(
    kind: &'a str,
    ns: Option<&'a str>,
    alert: Option<&'a str>,
    text: &'a str,
) -> Signal<'a> {
    Signal {
        kind,
        namespace: ns,
        alertname: alert,
        text,
    }
}

/// Asserts the layer found for each signal, naming the signal and the evidence when not.
fn assert_layers(cases: Vec<(Signal, Layer)>) {
    for (signal, expected) in cases {
        let found = layer_of(&signal);
        assert_eq!(found.layer, expected, "{signal:?}: {}", found.evidence);
    }
}

/// Nodes, machines, kubelets and disks, by kind, alert name or text.
fn infrastructure_signals() -> Vec<(Signal<'static>, Layer)> {
    use Layer::*;
    vec![
        (sig("Node", None, None, ""), Infrastructure),
        (sig("MachineConfigPool", None, None, ""), Infrastructure),
        (
            sig("Machine", Some("openshift-machine-api"), None, ""),
            Infrastructure,
        ),
        (sig("", None, Some("KubeNodeNotReady"), ""), Infrastructure),
        (sig("", None, Some("KubeletDown"), ""), Infrastructure),
        (
            sig("", None, Some("NodeFilesystemSpaceFillingUp"), ""),
            Infrastructure,
        ),
        (sig("", None, Some("MCDDrainError"), ""), Infrastructure),
        (
            sig("Instance", None, None, "disk pressure on worker"),
            Infrastructure,
        ),
        (
            sig("", None, None, "kubelet stopped posting status"),
            Infrastructure,
        ),
    ]
}

/// Cluster operators, etcd, ingress and anything in a platform namespace.
fn platform_signals() -> Vec<(Signal<'static>, Layer)> {
    use Layer::*;
    vec![
        (sig("ClusterOperator", None, None, ""), Platform),
        (sig("", None, Some("ClusterOperatorDegraded"), ""), Platform),
        (sig("", None, Some("etcdMembersDown"), ""), Platform),
        (sig("Pod", Some("openshift-ingress"), None, ""), Platform),
        (sig("Deployment", Some("kube-system"), None, ""), Platform),
        (
            sig(
                "Pod",
                Some("openshift-monitoring"),
                Some("KubePodCrashLooping"),
                "",
            ),
            Platform,
        ),
        (
            sig(
                "IngressController",
                Some("openshift-ingress-operator"),
                None,
                "",
            ),
            Platform,
        ),
        (
            sig("", None, None, "the ingress router returns 503"),
            Platform,
        ),
        (sig("", None, None, "etcd leader changes"), Platform),
    ]
}

/// Workloads in user namespaces, and the default when nothing points lower.
fn application_signals() -> Vec<(Signal<'static>, Layer)> {
    use Layer::*;
    vec![
        (
            sig("Pod", Some("shop"), Some("KubePodCrashLooping"), ""),
            Application,
        ),
        (
            sig("Deployment", Some("shop"), None, "replicas mismatch"),
            Application,
        ),
        (sig("StatefulSet", Some("db"), None, ""), Application),
        (sig("Job", Some("batch"), None, ""), Application),
        (
            sig("", Some("shop"), None, "checkout latency is high"),
            Application,
        ),
        (sig("", None, None, ""), Application),
    ]
}

/// The Go engine's substring false positives: words that contain a lower layer's keyword.
fn substring_false_positives() -> Vec<(Signal<'static>, Layer)> {
    use Layer::*;
    vec![
        (
            sig("", Some("web"), None, "nodejs process exits"),
            Application,
        ),
        (
            sig(
                "",
                Some("web"),
                None,
                "could not resolve host api.example.com",
            ),
            Application,
        ),
        (
            sig("", Some("web"), None, "POST /orders returns 500"),
            Application,
        ),
        (
            sig("", Some("web"), None, "ghost blog is down"),
            Application,
        ),
        (
            sig("", Some("web"), None, "diskless cache miss rate high"),
            Application,
        ),
        (
            sig("", Some("web"), None, "operators of the shop team paged"),
            Application,
        ),
        (
            sig(
                "Deployment",
                Some("web"),
                None,
                "node affinity prevents scheduling",
            ),
            Application,
        ),
    ]
}

#[test]
fn layers_of_the_usual_signals() {
    let cases: Vec<(Signal, Layer)> = [
        infrastructure_signals(),
        platform_signals(),
        application_signals(),
        substring_false_positives(),
    ]
    .concat();
    assert!(cases.len() >= 30);
    assert_layers(cases);
}

#[test]
fn infrastructure_signals_point_at_the_infrastructure() {
    assert_layers(infrastructure_signals());
}

#[test]
fn platform_signals_point_at_the_platform() {
    assert_layers(platform_signals());
}

#[test]
fn application_signals_point_at_the_application() {
    assert_layers(application_signals());
}

#[test]
fn words_that_merely_contain_a_keyword_stay_in_the_application() {
    assert_layers(substring_false_positives());
}

#[test]
fn the_root_cause_is_the_lowest_affected_layer() {
    let (layers, root) = diagnose(&[
        sig("Deployment", Some("shop"), None, ""),
        sig("Node", None, None, ""),
        sig("ClusterOperator", None, None, ""),
    ]);
    assert_eq!(root, Layer::Infrastructure);
    assert_eq!(
        layers.iter().map(|l| l.layer).collect::<Vec<_>>(),
        vec![Layer::Infrastructure, Layer::Platform, Layer::Application]
    );
    let (_, only_app) = diagnose(&[sig("Pod", Some("shop"), None, "")]);
    assert_eq!(only_app, Layer::Application);
}

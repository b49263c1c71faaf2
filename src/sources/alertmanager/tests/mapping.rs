//! From an accepted alert to its record: issue type, severity, target, identity.

use super::*;

#[test]
fn every_sample_parses_and_maps() {
    for name in [
        "alertmanager-sample.json",
        "alertmanager-sample.raw.json",
        "alertmanager-sample-resolved.json",
        "alertmanager-sample-from-prometheus.json",
    ] {
        let payload = sample(name);
        let intake = records(&payload, &IssueTypes::default(), now()).expect(name);
        assert!(intake.skipped.is_empty(), "{name}: {:?}", intake.skipped);
        assert_eq!(intake.records.len(), payload.alerts.total, "{name}");
        for record in &intake.records {
            assert!(record.key.contains('@'), "{name}");
            assert_eq!(record.incident.source, Source::Alertmanager);
        }
    }
}

#[test]
fn a_crash_looping_pod_alert_becomes_a_critical_crash_loop_incident() {
    let payload = sample("alertmanager-sample.json");
    let record = &accepted(&payload)[0];
    let incident = &record.incident;
    assert_eq!(incident.issue_type, "crash_loop");
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.namespace.as_deref(), Some("prod"));
    assert_eq!(
        incident.target,
        Some(Target {
            kind: "Pod".into(),
            name: "api-7d9f".into()
        })
    );
    assert_eq!(incident.title, "Pod api-7d9f is crash looping");
    assert_eq!(incident.fingerprint.as_deref(), Some("faeeacf5ff6beaf7"));
    assert_eq!(
        incident.annotations["runbook_url"],
        "https://runbooks.example/crashloop"
    );
    assert_eq!(
        incident.annotations["generator_url"],
        "http://prometheus.local/graph?g0.expr=up"
    );
    assert_eq!(incident.status, IncidentStatus::Active);
    assert!(record.actionable);
    assert!(!record.resolved);
    assert_eq!(
        record.ends_at, None,
        "the zero endsAt of a firing alert is no end"
    );
    assert_eq!(incident.first_seen, first_alert(&payload).starts_at);
}

#[test]
fn firing_and_resolved_notifications_of_one_alert_share_the_identity() {
    let firing = &accepted(&sample("alertmanager-sample.json"))[0];
    let resolved = &accepted(&sample("alertmanager-sample-resolved.json"))[0];
    assert_eq!(firing.key, resolved.key);
    assert!(resolved.resolved);
    assert!(resolved.ends_at.is_some());
    assert_eq!(resolved.incident.status, IncidentStatus::Resolved);
}

#[test]
fn unknown_alert_names_are_unknown_incidents_not_errors() {
    let payload = sample("alertmanager-sample-from-prometheus.json");
    let record = &accepted(&payload)[0];
    assert_eq!(record.incident.issue_type, "unknown");
    assert!(!record.actionable);
}

#[test]
fn users_extend_and_override_the_mapping() {
    let types = IssueTypes::with_overrides("MyAppDown=app_down, KubePodCrashLooping=restart_storm")
        .expect("valid");
    assert_eq!(types.lookup("MyAppDown"), Some("app_down"));
    assert_eq!(types.lookup("KubePodCrashLooping"), Some("restart_storm"));
    assert_eq!(types.lookup("KubeNodeNotReady"), Some("node_not_ready"));
    assert!(IssueTypes::with_overrides("NoEquals").is_err());
    assert!(IssueTypes::with_overrides("=x").is_err());
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (labels, expected namespace, expected (kind, name)).
type TargetCase<'a> = (
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    Option<(&'a str, &'a str)>,
);

#[test]
fn targets_come_from_the_most_specific_label() {
    let cases: &[TargetCase] = &[
        (
            &[("namespace", "a"), ("pod", "p"), ("deployment", "d")],
            Some("a"),
            Some(("Pod", "p")),
        ),
        (
            &[("namespace", "a"), ("deployment", "d")],
            Some("a"),
            Some(("Deployment", "d")),
        ),
        (
            &[("namespace", "a"), ("statefulset", "s")],
            Some("a"),
            Some(("StatefulSet", "s")),
        ),
        (
            &[("namespace", "a"), ("daemonset", "ds")],
            Some("a"),
            Some(("DaemonSet", "ds")),
        ),
        (
            &[("namespace", "a"), ("job_name", "j")],
            Some("a"),
            Some(("Job", "j")),
        ),
        (&[("node", "worker-1")], None, Some(("Node", "worker-1"))),
        (
            &[
                ("namespace", "monitoring"),
                ("exported_namespace", "shop"),
                ("exported_pod", "cart-1"),
            ],
            Some("shop"),
            Some(("Pod", "cart-1")),
        ),
        (
            &[("instance", "10.0.0.1:9100")],
            None,
            Some(("Instance", "10.0.0.1:9100")),
        ),
        (&[("namespace", "a")], Some("a"), None),
    ];
    for (pairs, ns, expected) in cases {
        let (namespace, target) = target(&labels(pairs), "X");
        assert_eq!(namespace.as_deref(), *ns, "{pairs:?}");
        assert_eq!(
            target.map(|t| (t.kind, t.name)),
            expected.map(|(k, n)| (k.to_string(), n.to_string())),
            "{pairs:?}"
        );
    }
    let (_, operator) = target(&labels(&[("name", "ingress")]), "ClusterOperatorDegraded");
    assert_eq!(
        operator,
        Some(Target {
            kind: "ClusterOperator".into(),
            name: "ingress".into()
        })
    );
}

#[test]
fn prometheus_severity_words_map_onto_ours() {
    assert_eq!(severity(Some("critical")), Severity::Critical);
    assert_eq!(severity(Some("warning")), Severity::Medium);
    assert_eq!(severity(Some("info")), Severity::Info);
    assert_eq!(severity(Some("error")), Severity::High);
    assert_eq!(severity(Some("weird")), Severity::Medium);
    assert_eq!(severity(None), Severity::Medium);
}

#[test]
fn long_annotations_are_truncated_on_a_character_boundary() {
    let mut json = sample_json("alertmanager-sample.json");
    json["alerts"][0]["annotations"]["summary"] = "é".repeat(1000).into();
    let record = &accepted(&payload(json))[0];
    assert_eq!(record.incident.title.chars().count(), 512);
}

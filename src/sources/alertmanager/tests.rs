use super::*;
use chrono::TimeZone;

fn sample_json(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/alertmanager")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("sample exists");
    serde_json::from_str(&text).expect("sample is JSON")
}

fn payload(json: serde_json::Value) -> Payload {
    serde_json::from_value(json).expect("the envelope parses")
}

fn sample(name: &str) -> Payload {
    payload(sample_json(name))
}

fn first_alert(payload: &Payload) -> &Alert {
    payload.alerts.entries[0].as_ref().expect("a valid alert")
}

/// The records of a notification that must be accepted.
fn accepted(payload: &Payload) -> Vec<AlertRecord> {
    records(payload, &IssueTypes::default(), now())
        .expect("accepted")
        .records
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid time")
}

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
fn a_bad_envelope_or_too_many_alerts_refuse_the_notification() {
    let mut wrong_version = sample_json("alertmanager-sample.json");
    wrong_version["version"] = "3".into();
    match records(&payload(wrong_version), &IssueTypes::default(), now()) {
        Err(Rejection::Invalid { field, .. }) => assert_eq!(field, "version"),
        other => panic!("version 3 must be refused: {other:?}"),
    }
    let mut too_many = sample_json("alertmanager-sample.json");
    let alert = too_many["alerts"][0].clone();
    too_many["alerts"] = vec![alert; MAX_ALERTS_PER_BATCH + 1].into();
    let too_many = payload(too_many);
    assert_eq!(
        too_many.alerts.entries.len(),
        MAX_ALERTS_PER_BATCH,
        "alerts past the limit are counted, not kept"
    );
    assert_eq!(
        records(&too_many, &IssueTypes::default(), now()).map(|i| i.records.len()),
        Err(Rejection::TooManyAlerts(MAX_ALERTS_PER_BATCH + 1))
    );
    let mut envelope_status = sample_json("alertmanager-sample.json");
    envelope_status["status"] = "burning".into();
    assert!(serde_json::from_value::<Payload>(envelope_status).is_err());
}

/// (how the good alert is spoiled, expected field, expected reason).
type SpoilCase = (
    &'static str,
    fn(&mut serde_json::Value),
    &'static str,
    &'static str,
);

const SPOILED: &[SpoilCase] = &[
    (
        "no alertname",
        |a| {
            a["labels"].as_object_mut().map(|l| l.remove("alertname"));
        },
        "labels.alertname",
        "missing_alertname",
    ),
    (
        "empty alertname",
        |a| a["labels"]["alertname"] = "".into(),
        "labels.alertname",
        "missing_alertname",
    ),
    (
        "no labels",
        |a| a["labels"] = serde_json::json!({}),
        "labels",
        "missing_alertname",
    ),
    (
        "label not a string",
        |a| a["labels"]["x"] = 1.into(),
        "labels.x",
        "malformed",
    ),
    (
        "129 labels",
        |a| {
            for i in 0..MAX_LABELS {
                a["labels"][format!("l{i}")] = "v".into();
            }
        },
        "labels",
        "oversize",
    ),
    (
        "huge label value",
        |a| a["labels"]["pod"] = "p".repeat(MAX_LABEL_VALUE + 1).into(),
        "labels",
        "oversize",
    ),
    (
        "startsAt before year 0",
        |a| a["startsAt"] = "-262143-01-01T00:00:00Z".into(),
        "startsAt",
        "bad_time",
    ),
    (
        "startsAt after 9999",
        |a| a["startsAt"] = "+10000-01-01T00:00:00Z".into(),
        "startsAt",
        "bad_time",
    ),
    (
        "startsAt missing",
        |a| {
            a.as_object_mut().map(|o| o.remove("startsAt"));
        },
        "startsAt",
        "bad_time",
    ),
    (
        "startsAt a number",
        |a| a["startsAt"] = 1.into(),
        "startsAt",
        "bad_time",
    ),
    (
        "endsAt unparsable",
        |a| a["endsAt"] = "soon".into(),
        "endsAt",
        "bad_time",
    ),
    (
        "bad status",
        |a| a["status"] = "burning".into(),
        "status",
        "bad_status",
    ),
    (
        "no status",
        |a| {
            a.as_object_mut().map(|o| o.remove("status"));
        },
        "status",
        "bad_status",
    ),
    (
        "blank fingerprint",
        |a| a["fingerprint"] = " ".into(),
        "fingerprint",
        "bad_fingerprint",
    ),
    (
        "long fingerprint",
        |a| a["fingerprint"] = "f".repeat(65).into(),
        "fingerprint",
        "bad_fingerprint",
    ),
    ("not an object", |a| *a = 42.into(), "", "malformed"),
];

#[test]
fn each_bad_alert_is_skipped_with_its_reason_and_the_good_ones_stay() {
    for (name, spoil, field, reason) in SPOILED {
        let mut json = sample_json("alertmanager-sample.json");
        let good = json["alerts"][0].clone();
        let mut bad = good.clone();
        spoil(&mut bad);
        let mut second = good.clone();
        second["fingerprint"] = "0000000000000002".into();
        json["alerts"] = serde_json::json!([good, bad, second]);
        let intake = records(&payload(json), &IssueTypes::default(), now()).expect(name);
        assert_eq!(intake.records.len(), 2, "{name}");
        assert_eq!(intake.skipped.len(), 1, "{name}");
        let skipped = &intake.skipped[0];
        let expected_field = if field.is_empty() {
            "alerts[1]".to_string()
        } else {
            format!("alerts[1].{field}")
        };
        assert_eq!(
            (skipped.index, skipped.field.as_str(), skipped.reason),
            (1, expected_field.as_str(), *reason),
            "{name}: {skipped:?}"
        );
        assert!(REJECT_REASONS.contains(&skipped.reason), "{name}");
        assert!(skipped.message.len() <= 1024, "{name}");
        if *name == "no alertname" {
            assert_eq!(
                skipped.fingerprint, "faeeacf5ff6beaf7",
                "logged by fingerprint"
            );
        }
    }
}

#[test]
fn a_notification_with_no_usable_alert_is_refused() {
    let mut json = sample_json("alertmanager-sample.json");
    json["alerts"][0]["labels"]
        .as_object_mut()
        .map(|l| l.remove("alertname"));
    match records(&payload(json), &IssueTypes::default(), now()) {
        Err(Rejection::NothingUsable(skipped)) => {
            assert_eq!(skipped.len(), 1);
            assert_eq!(skipped[0].reason, "missing_alertname");
        }
        other => panic!("nothing usable must be refused: {other:?}"),
    }
    let mut empty = sample_json("alertmanager-sample.json");
    empty["alerts"] = serde_json::json!([]);
    let intake = records(&payload(empty), &IssueTypes::default(), now()).expect("empty is fine");
    assert!(intake.records.is_empty() && intake.skipped.is_empty());
}

#[test]
fn a_huge_offending_value_is_not_copied_into_the_report() {
    let mut json = sample_json("alertmanager-sample.json");
    json["alerts"][0]["status"] = "x".repeat(1_000_000).into();
    let good = sample_json("alertmanager-sample.json")["alerts"][0].clone();
    json["alerts"]
        .as_array_mut()
        .expect("array")
        .push(good.clone());
    // And a huge label key, which the path of the error (the `field`) names.
    let mut bad_key = good.clone();
    bad_key["labels"] = serde_json::json!({ "k".repeat(1_000_000): 5 });
    json["alerts"].as_array_mut().expect("array").push(bad_key);
    let intake = records(&payload(json), &IssueTypes::default(), now()).expect("one good alert");
    assert_eq!(intake.skipped.len(), 2);
    for skipped in &intake.skipped {
        assert!(skipped.message.len() <= crate::clip::SHOWN_MAX + '…'.len_utf8());
        assert!(
            skipped.field.len() <= crate::clip::SHOWN_MAX + 64,
            "{}",
            skipped.field.len()
        );
    }
}

#[test]
fn long_annotations_are_truncated_on_a_character_boundary() {
    let mut json = sample_json("alertmanager-sample.json");
    json["alerts"][0]["annotations"]["summary"] = "é".repeat(1000).into();
    let record = &accepted(&payload(json))[0];
    assert_eq!(record.incident.title.chars().count(), 512);
}

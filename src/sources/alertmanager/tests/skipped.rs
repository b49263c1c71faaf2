//! What is refused: the whole notification, or one alert of it (skipped, with a reason).

use super::*;

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

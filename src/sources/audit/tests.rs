use super::*;

#[test]
fn resources_become_kinds() {
    assert_eq!(kind_of("deployments"), "Deployment");
    assert_eq!(kind_of("configmaps"), "ConfigMap");
    assert_eq!(kind_of("statefulsets"), "StatefulSet");
    assert_eq!(kind_of("policies"), "Policy");
    assert_eq!(kind_of("applications"), "Application");
}

#[test]
fn a_huge_username_gets_a_bounded_key_that_tells_it_apart() {
    let huge = "u".repeat(1024 * 1024);
    let (a, b) = (
        denied_key(&format!("{huge}a")),
        denied_key(&format!("{huge}b")),
    );
    assert!(a.len() <= KEY_MAX + 64, "key of {} bytes", a.len());
    assert_ne!(a, b, "two names with one prefix stay apart");
    assert_eq!(
        a,
        denied_key(&format!("{huge}a")),
        "the same on every replica"
    );
    assert_eq!(denied_key("alice"), "alice");
    let mut event = sample_event("forbidden-burst.json");
    event.user.username = format!("{huge}a");
    let judged = judge(&event, &view(), &AuditRules::default(), Utc::now());
    assert_eq!(judged.denied.map(|d| d.identity), Some(a));
    let incident = burst_incident(&event, 5, &AuditRules::default(), Utc::now());
    let shown = serde_json::to_string(&incident).expect("json");
    assert!(shown.len() < 8 * 1024, "incident of {} bytes", shown.len());
}

fn sample_event(name: &str) -> Event {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/audit")
        .join(name);
    let list: EventList =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("parses");
    validate(&list).expect("valid");
    list.items.into_iter().next().expect("one event")
}

fn view() -> GuardView {
    let settings = crate::config::load(&crate::config::Sources::default()).expect("defaults");
    GuardView::new(crate::guard::GuardConfig::from_settings(&settings))
}

#[test]
fn a_metadata_level_delete_is_judged_from_the_guard_cache() {
    let event = sample_event("kubectl-delete-metadata-level.json");
    let rules = AuditRules::default();
    let empty = view();
    assert_eq!(judge(&event, &empty, &rules, Utc::now()).outcome, "ignored");
    let cached = view();
    cached.parents.insert(
        ("apps".into(), "deployments".into(), "prod".into(), "cart".into()),
        crate::guard::view::ParentMeta {
            kind: "Deployment".into(),
            metadata: serde_json::json!({"name": "cart", "namespace": "prod",
                "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart"}}),
        },
    );
    let judged = judge(&event, &cached, &rules, Utc::now());
    assert_eq!(judged.outcome, "gitops_drift");
    assert_eq!(
        judged.incident.expect("incident").annotations["argocd_application"],
        "shop"
    );
}

#[test]
fn break_glass_groups_and_the_engine_are_not_drift() {
    let mut event = sample_event("kubectl-scale.json");
    let rules = AuditRules::default();
    let mut v = view();
    v.config.exempt_groups.insert("break-glass".into());
    assert_eq!(
        judge(&event, &v, &rules, Utc::now()).outcome,
        "gitops_drift"
    );
    event.user.groups.push("break-glass".into());
    assert_eq!(judge(&event, &v, &rules, Utc::now()).outcome, "ignored");
    let engine = sample_event("engine-remediation.json");
    assert_eq!(
        judge(&engine, &view(), &rules, Utc::now()).outcome,
        "ignored"
    );
}

#[test]
fn a_403_is_counted_in_the_window_before_it_and_nothing_else_is() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/audit/forbidden-burst.json");
    let list: EventList =
        serde_json::from_str(&std::fs::read_to_string(path).expect("sample")).expect("parses");
    let rules = AuditRules::default();
    for event in &list.items {
        let judged = judge(event, &view(), &rules, Utc::now());
        let denied = judged.denied.expect("a 403 to count");
        assert_eq!(
            judged.outcome, "ignored",
            "until the store says it is a burst"
        );
        assert_eq!(denied.at - denied.since, chrono::Duration::seconds(60));
    }
    let scale = sample_event("kubectl-scale.json");
    assert!(judge(&scale, &view(), &rules, Utc::now()).denied.is_none());
}

//! The table of `webhooks/samples/admission/cases.json`, run through `review()`.

use super::*;
use crate::guard::admission::{AdmissionReview, validate};
use crate::guard::view::{
    AppInfo, ArgoSettings, DEFAULT_GITOPS_IDENTITIES, GuardConfig, IgnoreRule, Lease, ParentMeta,
    TrackingMethod,
};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

pub const ENGINE: &str = "system:serviceaccount:self-healing-platform:coordination-engine";

#[derive(Deserialize, Default)]
#[serde(default)]
struct ViewSpec {
    tracking: Option<String>,
    installation_id: Option<String>,
    applications: Vec<AppSpec>,
    leases: Vec<LeaseSpec>,
    parents: Vec<ParentSpec>,
    mode: Option<String>,
    namespace_modes: HashMap<String, String>,
    disabled_namespaces: Vec<String>,
    exempt_users: Vec<String>,
    exempt_groups: Vec<String>,
    annotation_allow_list: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppSpec {
    name: String,
    namespace: String,
    #[serde(default)]
    ignore_differences: Vec<IgnoreSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IgnoreSpec {
    group: String,
    kind: String,
    name: Option<String>,
    json_pointers: Vec<String>,
}

#[derive(Deserialize)]
struct LeaseSpec {
    incident_id: String,
    object_uid: String,
    paths: Vec<String>,
    expires_in_seconds: i64,
}

#[derive(Deserialize)]
struct ParentSpec {
    group: String,
    resource: String,
    namespace: String,
    name: String,
    kind: String,
    metadata: Value,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    view: ViewSpec,
    review: Value,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    outcome: String,
    reason: String,
}

pub fn default_config() -> GuardConfig {
    GuardConfig {
        mode: GuardMode::Enforce,
        namespace_modes: HashMap::new(),
        disabled_namespaces: HashSet::new(),
        gitops_identities: DEFAULT_GITOPS_IDENTITIES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        exempt_users: HashSet::new(),
        exempt_groups: HashSet::new(),
        own_identity: ENGINE.into(),
        annotation_allow_list: HashSet::new(),
        label_allow_list: HashSet::new(),
    }
}

fn build_view(spec: ViewSpec, now: DateTime<Utc>) -> GuardView {
    let mut config = default_config();
    if let Some(mode) = spec.mode {
        config.mode = mode.parse().expect("mode");
    }
    config.namespace_modes = spec
        .namespace_modes
        .into_iter()
        .map(|(ns, m)| (ns, m.parse().expect("mode")))
        .collect();
    config.disabled_namespaces = spec.disabled_namespaces.into_iter().collect();
    config.exempt_users = spec.exempt_users.into_iter().collect();
    config.exempt_groups = spec.exempt_groups.into_iter().collect();
    config.annotation_allow_list = spec.annotation_allow_list.into_iter().collect();
    let mut view = GuardView::new(config);
    view.argo = ArgoSettings {
        tracking: match spec.tracking.as_deref() {
            Some("label") => TrackingMethod::Label,
            Some("annotation+label") => TrackingMethod::AnnotationAndLabel,
            _ => TrackingMethod::Annotation,
        },
        installation_id: spec.installation_id,
        ..ArgoSettings::default()
    };
    for app in spec.applications {
        let info = AppInfo {
            name: app.name.clone(),
            namespace: app.namespace,
            ignore_differences: app
                .ignore_differences
                .into_iter()
                .map(|i| IgnoreRule {
                    group: i.group,
                    kind: i.kind,
                    name: i.name,
                    namespace: None,
                    json_pointers: i.json_pointers,
                })
                .collect(),
            self_heal: true,
        };
        view.applications.insert(app.name, info);
    }
    view.leases = spec
        .leases
        .into_iter()
        .map(|l| Lease {
            incident_id: l.incident_id,
            object_uid: l.object_uid,
            paths: l.paths,
            expires_at: now + chrono::Duration::seconds(l.expires_in_seconds),
        })
        .collect();
    for p in spec.parents {
        view.parents.insert(
            (p.group, p.resource, p.namespace, p.name),
            ParentMeta {
                kind: p.kind,
                metadata: p.metadata,
            },
        );
    }
    view
}

fn cases() -> Vec<Case> {
    #[derive(Deserialize)]
    struct File {
        cases: Vec<Case>,
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/admission/cases.json");
    let file: File = serde_json::from_str(&std::fs::read_to_string(path).expect("cases.json"))
        .expect("cases parse");
    file.cases
}

#[test]
fn every_case_in_the_table_gets_its_expected_decision() {
    let now = Utc::now();
    let cases = cases();
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let review_in = AdmissionReview::from_json(case.review).expect(&case.name);
        let request = validate(&review_in).expect(&case.name);
        let view = build_view(case.view, now);
        let decision = review(request, &view, now);
        // The webhook's untraced decision is the same in everything but the trace.
        let untraced = decide(request, &view, now);
        assert!(untraced.trace.is_empty(), "{}", case.name);
        assert_eq!(
            serde_json::to_value(Decision {
                trace: decision.trace.clone(),
                ..untraced
            })
            .expect("json"),
            serde_json::to_value(&decision).expect("json"),
            "{}",
            case.name
        );
        if decision.outcome.as_str() != case.expect.outcome || decision.reason != case.expect.reason
        {
            failures.push(format!(
                "{}: expected {} {}, got {} {} ({:?})",
                case.name,
                case.expect.outcome,
                case.expect.reason,
                decision.outcome.as_str(),
                decision.reason,
                decision.trace
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_denial_names_the_application_and_says_to_change_git() {
    let now = Utc::now();
    let case = cases()
        .into_iter()
        .find(|c| c.name == "kubectl edit of replicas on a managed deployment")
        .expect("case");
    let review_in = AdmissionReview::from_json(case.review).expect("review");
    let decision = review(
        validate(&review_in).expect("valid"),
        &build_view(case.view, now),
        now,
    );
    assert_eq!(decision.outcome, Outcome::Deny);
    assert_eq!(decision.application.as_deref(), Some("shop"));
    assert_eq!(decision.changed_paths, vec!["/spec/replicas"]);
    assert!(
        decision.message.contains("\"shop\""),
        "{}",
        decision.message
    );
    assert!(decision.message.contains("Git"), "{}", decision.message);
    assert!(
        decision.message.contains("/spec/replicas"),
        "{}",
        decision.message
    );
    assert!(
        decision.message.contains("Emergency"),
        "{}",
        decision.message
    );
}

fn engine_update(old_items: Value, new_items: Value, extra: Value) -> AdmissionReview<'static> {
    engine_update_both(old_items, new_items, serde_json::json!(1), extra)
}

/// An UPDATE by the engine whose old and new `spec.zzz` are `old_extra` and `extra`.
fn engine_update_both(
    old_items: Value,
    new_items: Value,
    old_extra: Value,
    extra: Value,
) -> AdmissionReview<'static> {
    let object = |items: Value, extra: Value| {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "prod", "uid": "uid-cart",
                "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart"}},
            "spec": {"items": items, "zzz": extra}})
    };
    AdmissionReview::from_json(serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "1", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "name": "cart", "namespace": "prod", "operation": "UPDATE",
            "userInfo": {"username": ENGINE},
            "oldObject": object(old_items, old_extra),
            "object": object(new_items, extra)}}))
    .expect("review")
}

#[test]
fn a_lease_must_cover_changes_past_the_diff_budget_too() {
    let now = Utc::now();
    let mut view = GuardView::new(default_config());
    view.leases.push(Lease {
        incident_id: "inc-1".into(),
        object_uid: "uid-cart".into(),
        paths: vec!["/spec/items".into()],
        expires_at: now + chrono::Duration::minutes(5),
    });
    let (old, new) = (
        serde_json::json!(vec![0; 1000]),
        serde_json::json!(vec![1; 1000]),
    );
    let covered = engine_update(old.clone(), new.clone(), serde_json::json!(1));
    let decision = review(validate(&covered).expect("valid"), &view, now);
    assert_eq!(decision.reason, "remediation_lease", "{:?}", decision.trace);

    // One more change, after the 1 000 the budget cannot list: not under the lease.
    let hidden = engine_update(old, new, serde_json::json!(2));
    let decision = review(validate(&hidden).expect("valid"), &view, now);
    assert_eq!(decision.outcome, Outcome::Deny, "{:?}", decision.trace);
    assert_eq!(decision.changed_paths.len(), 256);
    assert_eq!(decision.more_changed_paths, 1000 + 1 - 256);
    assert!(
        decision.message.contains("and 991 more"),
        "{}",
        decision.message
    );
}

#[test]
fn a_denial_of_long_deep_paths_stays_small_in_the_message_and_the_incident() {
    let now = Utc::now();
    let view = GuardView::new(default_config());
    // 12 changed leaves, each ~2 KiB of path (5 levels of 400-byte keys): well within the
    // diff budget, so every path is built, and the summary names ten of them.
    let deep = |leaf: u32| {
        let mut extra = serde_json::json!({});
        for top in 0..12 {
            let mut node = serde_json::json!(leaf);
            for level in 0..5 {
                node = serde_json::json!({ format!("{level}{}", "k".repeat(400)): node });
            }
            extra[format!("top{top}")] = node;
        }
        extra
    };
    let denied = engine_update_both(
        serde_json::json!([]),
        serde_json::json!([]),
        deep(1),
        deep(2),
    );
    let request = validate(&denied).expect("valid");
    let decision = review(request, &view, now);
    assert_eq!(decision.outcome, Outcome::Deny, "{:?}", decision.trace);
    assert_eq!(decision.changed_paths.len(), 12);
    assert!(decision.changed_paths.iter().all(|p| p.len() > 2000));
    assert!(
        decision.message.len() < 8 * 1024,
        "message of {} bytes",
        decision.message.len()
    );
    assert!(
        decision.message.contains("and 2 more"),
        "{}",
        decision.message
    );
    let incident = crate::guard::record::denial_incident(request, &decision, now);
    assert!(
        incident.description.len() <= 4096 + '…'.len_utf8(),
        "description of {} bytes",
        incident.description.len()
    );
    assert!(incident.annotations.values().all(|v| v.len() <= 4096 + 64));
}

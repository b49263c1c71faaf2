//! The guard's watches against a mock API server: what they request, and that a change to an
//! Application's ignoreDifferences is seen by the next review.

use crate::kube_mock::MockApiServer;
use coordination_engine::cluster::argocd::spawn_watchers;
use coordination_engine::config::{self, Sources};
use coordination_engine::guard::admission::{AdmissionReview, validate};
use coordination_engine::guard::view::TrackingMethod;
use coordination_engine::guard::{GuardConfig, GuardView, SharedView, review};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const APPS: &str = "/apis/argoproj.io/v1alpha1/applications";
const ARGOCD_CMS: &str = "/api/v1/namespaces/argocd/configmaps";
const GITOPS_CMS: &str = "/api/v1/namespaces/openshift-gitops/configmaps";

fn application(ignore: Value, resource_version: &str) -> Value {
    json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "shop", "namespace": "argocd", "resourceVersion": resource_version, "uid": "app-1"},
           "spec": {"ignoreDifferences": ignore, "syncPolicy": {"automated": {"selfHeal": true}}}})
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items})
}

async fn eventually<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

fn replicas_review() -> AdmissionReview {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("webhooks/samples/admission/cases.json");
    let cases: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("cases")).expect("json");
    let case = cases["cases"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["name"] == "kubectl edit of replicas on a managed deployment")
        .expect("case")
        .clone();
    serde_json::from_value(case["review"].clone()).expect("review")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignore_differences_change_is_seen_by_the_next_review() {
    coordination_engine::tls::install_default_provider();
    let argocd_cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": "argocd", "resourceVersion": "5"},
        "data": {"application.resourceTrackingMethod": "annotation+label", "application.instanceLabelKey": "app.kubernetes.io/instance"}});
    let mock = MockApiServer::start(HashMap::from([
        (
            APPS.to_string(),
            list("ApplicationList", vec![application(json!([]), "7")]),
        ),
        (
            ARGOCD_CMS.to_string(),
            list("ConfigMapList", vec![argocd_cm]),
        ),
        (GITOPS_CMS.to_string(), list("ConfigMapList", vec![])),
    ]))
    .await;
    let settings = config::load(&Sources::default()).expect("defaults");
    let view = SharedView::new(GuardView::new(GuardConfig::from_settings(&settings)));
    spawn_watchers(
        mock.client(),
        view.clone(),
        settings.argocd_namespaces.clone(),
    );

    let synced = eventually("the first list", || {
        let snapshot = view.snapshot();
        (snapshot.applications_synced
            && snapshot.argo.tracking == TrackingMethod::AnnotationAndLabel)
            .then_some(snapshot)
    })
    .await;
    assert!(synced.applications.contains_key("shop"));
    let review_in = replicas_review();
    let request = validate(&review_in).expect("valid");
    assert_eq!(
        review(request, &view.snapshot(), chrono::Utc::now()).reason,
        "manual_change"
    );

    // The Application now ignores /spec/replicas (an HPA owns them).
    eventually("the watch to open", || {
        mock.requests()
            .iter()
            .any(|r| r.path == APPS && r.query.get("watch").map(String::as_str) == Some("true"))
            .then_some(())
    })
    .await;
    let ignore =
        json!([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]);
    assert!(
        mock.send(
            APPS,
            json!({"type": "MODIFIED", "object": application(ignore, "8")})
        ) > 0
    );
    eventually("the review to see the change", || {
        let decision = review(request, &view.snapshot(), chrono::Utc::now());
        (decision.reason == "ignored_fields_only").then_some(())
    })
    .await;

    // Deleting the Application: its objects are no longer known (tracking-id still names it,
    // so the annotation keeps them managed; ignoreDifferences no longer applies).
    assert!(
        mock.send(
            APPS,
            json!({"type": "DELETED", "object": application(json!([]), "9")})
        ) > 0
    );
    eventually("the deletion", || {
        (!view.snapshot().applications.contains_key("shop")).then_some(())
    })
    .await;

    // Exactly what the watches asked for.
    let requests = mock.requests();
    let apps: Vec<_> = requests.iter().filter(|r| r.path == APPS).collect();
    assert!(apps.iter().all(|r| r.method == "GET"));
    assert!(
        !apps[0].query.contains_key("watch"),
        "a list first: {:?}",
        apps[0]
    );
    let watch = apps
        .iter()
        .find(|r| r.query.get("watch").map(String::as_str) == Some("true"))
        .expect("a watch");
    assert_eq!(
        watch.query.get("resourceVersion").map(String::as_str),
        Some("10"),
        "the watch resumes from the list"
    );
    for path in [ARGOCD_CMS, GITOPS_CMS] {
        let cm = requests
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{path} requested"));
        assert_eq!(
            cm.query.get("fieldSelector").map(String::as_str),
            Some("metadata.name=argocd-cm"),
            "{path}"
        );
    }
    assert!(
        requests
            .iter()
            .all(|r| r.path == APPS || r.path == ARGOCD_CMS || r.path == GITOPS_CMS),
        "no other calls: {requests:?}"
    );
    mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_argocd_is_synced_with_no_applications() {
    coordination_engine::tls::install_default_provider();
    let mock = MockApiServer::start(HashMap::new()).await;
    let settings = config::load(&Sources::default()).expect("defaults");
    let view = SharedView::new(GuardView::new(GuardConfig::from_settings(&settings)));
    spawn_watchers(mock.client(), view.clone(), vec!["argocd".into()]);
    eventually("sync despite 404", || {
        view.snapshot().applications_synced.then_some(())
    })
    .await;
    assert!(view.snapshot().applications.is_empty());
    mock.stop().await;
}

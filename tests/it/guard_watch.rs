//! The guard's watches against a mock API server: what they request, and that a change to an
//! Application's ignoreDifferences is seen by the next review.

use crate::kube_mock::MockApiServer;
use coordination_engine::config::{self, Sources};
use coordination_engine::guard::admission::{AdmissionReview, validate};
use coordination_engine::guard::view::TrackingMethod;
use coordination_engine::guard::{GuardConfig, GuardView, SharedView, review};
use coordination_engine::watch::argocd::spawn_watchers;
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

fn replicas_review() -> AdmissionReview<'static> {
    let case = crate::helpers::admission_case("kubectl edit of replicas on a managed deployment");
    AdmissionReview::from_json(case["review"].clone()).expect("review")
}

/// A mock API server with one Application ("shop", no ignoreDifferences) and argocd-cm, and
/// the guard's Argo CD watchers running against it.
async fn start_argocd_watchers() -> (MockApiServer, SharedView) {
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
    (mock, view)
}

/// A list first, then a watch resuming from it; argocd-cm by name in both namespaces; nothing else.
fn assert_exactly_what_the_watches_asked_for(mock: &MockApiServer) {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ignore_differences_change_is_seen_by_the_next_review() {
    let (mock, view) = start_argocd_watchers().await;

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

    assert_exactly_what_the_watches_asked_for(&mock);
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

fn scale_review(user: &str) -> AdmissionReview<'static> {
    AdmissionReview::from_json(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "scale-1", "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "subResource": "scale", "name": "cart", "namespace": "prod", "operation": "UPDATE",
            "userInfo": {"username": user},
            "object": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "cart", "namespace": "prod"}, "spec": {"replicas": 6}},
            "oldObject": {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "cart", "namespace": "prod"}, "spec": {"replicas": 2}}
        }
    }))
    .expect("review")
}

/// A mock API server whose metadata lists hold one Argo CD-tracked Deployment ("prod/cart"),
/// and the parent watchers running against it until the cache holds it.
async fn start_parent_watchers() -> (MockApiServer, SharedView) {
    coordination_engine::tls::install_default_provider();
    let deployment_meta = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": "cart", "namespace": "prod", "uid": "uid-cart", "resourceVersion": "3",
            "labels": {"app": "cart"},
            "annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart",
                            "kubectl.kubernetes.io/last-applied-configuration": "{…large…}"}}});
    let meta_list = |items: Vec<Value>| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {"resourceVersion": "10"}, "items": items});
    let mock = MockApiServer::start(HashMap::from([
        (
            "/apis/apps/v1/deployments".to_string(),
            meta_list(vec![deployment_meta]),
        ),
        ("/apis/apps/v1/statefulsets".to_string(), meta_list(vec![])),
        ("/apis/apps/v1/replicasets".to_string(), meta_list(vec![])),
    ]))
    .await;
    let settings = config::load(&Sources::default()).expect("defaults");
    let view = SharedView::new(GuardView::new(GuardConfig::from_settings(&settings)));
    coordination_engine::watch::parents::spawn_watchers(
        mock.client(),
        view.snapshot().parents.clone(),
    );
    eventually("the metadata cache", || {
        (!view.snapshot().parents.is_empty()).then_some(())
    })
    .await;
    (mock, view)
}

/// Each kind's watch lists on its own schedule, so wait for each kind's first request.
async fn assert_metadata_only_for_every_scalable_kind(mock: &MockApiServer) {
    for path in [
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/statefulsets",
        "/apis/apps/v1/replicasets",
    ] {
        let first = eventually(&format!("{path} to be listed"), || {
            mock.requests().into_iter().find(|r| r.path == path)
        })
        .await;
        assert!(
            first.accept.contains("as=PartialObjectMetadataList"),
            "{path}: {}",
            first.accept
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_requests_are_judged_by_the_parent_from_the_metadata_cache() {
    let (mock, view) = start_parent_watchers().await;

    let by_alice = scale_review("alice");
    let decision = review(
        validate(&by_alice).expect("valid"),
        &view.snapshot(),
        chrono::Utc::now(),
    );
    assert_eq!(
        (decision.outcome.as_str(), decision.reason),
        ("deny", "manual_change")
    );
    assert_eq!(decision.application.as_deref(), Some("shop"));
    assert_eq!(decision.changed_paths, vec!["/spec/replicas"]);
    let by_hpa = scale_review("system:serviceaccount:kube-system:horizontal-pod-autoscaler");
    let decision = review(
        validate(&by_hpa).expect("valid"),
        &view.snapshot(),
        chrono::Utc::now(),
    );
    assert_eq!(decision.reason, "exempt_identity");

    // Only what the guard reads is kept (not last-applied-configuration).
    let key = (
        "apps".to_string(),
        "deployments".to_string(),
        "prod".to_string(),
        "cart".to_string(),
    );
    let cached = view.snapshot().parents.get(&key).expect("cached");
    assert!(
        cached.metadata["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );

    // A deletion leaves the cache.
    eventually("the watch to open", || {
        mock.requests()
            .iter()
            .any(|r| {
                r.path == "/apis/apps/v1/deployments"
                    && r.query.get("watch").map(String::as_str) == Some("true")
            })
            .then_some(())
    })
    .await;
    let mut deleted = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
        "metadata": {"name": "cart", "namespace": "prod", "uid": "uid-cart", "resourceVersion": "11"}});
    deleted["metadata"]["labels"] = json!({});
    assert!(
        mock.send(
            "/apis/apps/v1/deployments",
            json!({"type": "DELETED", "object": deleted})
        ) > 0
    );
    eventually("the deletion", || {
        view.snapshot().parents.get(&key).is_none().then_some(())
    })
    .await;

    assert_metadata_only_for_every_scalable_kind(&mock).await;
    mock.stop().await;
}

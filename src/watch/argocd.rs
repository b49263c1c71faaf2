//! Watches that keep the guard's view of ArgoCD current: Applications (all namespaces) and
//! `argocd-cm` in the ArgoCD namespaces. kube-rs watchers (list, then watch, with backoff);
//! each change publishes a new `GuardView` snapshot. Parsing is pure and unit-tested.

use crate::guard::SharedView;
use crate::guard::view::{AppInfo, ArgoSettings, IgnoreRule, TrackingMethod};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

pub const ARGOCD_CM: &str = "argocd-cm";

/// The name an Application has in tracking ids: `<name>` in a control-plane namespace,
/// `<namespace>_<name>` elsewhere ("apps in any namespace").
pub fn tracking_name(namespace: &str, name: &str, control_namespaces: &[String]) -> String {
    if control_namespaces.iter().any(|ns| ns == namespace) {
        name.to_string()
    } else {
        format!("{namespace}_{name}")
    }
}

/// A jq path ArgoCD accepts in `jqPathExpressions`, when it is a plain field path
/// (`.spec.replicas`), as a JSON pointer. Other jq expressions are not understood (and so do
/// not exempt anything).
fn jq_to_pointer(jq: &str) -> Option<String> {
    let rest = jq.strip_prefix('.')?;
    let valid = !rest.is_empty()
        && rest.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    valid.then(|| format!("/{}", rest.replace('.', "/")))
}

/// What the guard needs of an Application object.
pub fn app_info(object: &Value) -> Option<AppInfo> {
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).map(String::from);
    let name = text("/metadata/name")?;
    let namespace = text("/metadata/namespace").unwrap_or_default();
    let ignore_differences = object
        .pointer("/spec/ignoreDifferences")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|rule| {
                    let field = |f: &str| rule.get(f).and_then(Value::as_str).map(String::from);
                    let strings = |f: &str| {
                        rule.get(f)
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(Value::as_str)
                                    .map(String::from)
                                    .collect::<Vec<_>>()
                            })
                            .unwrap_or_default()
                    };
                    let mut json_pointers = strings("jsonPointers");
                    json_pointers.extend(
                        strings("jqPathExpressions")
                            .iter()
                            .filter_map(|jq| jq_to_pointer(jq)),
                    );
                    IgnoreRule {
                        group: field("group").unwrap_or_default(),
                        kind: field("kind").unwrap_or_default(),
                        name: field("name"),
                        namespace: field("namespace"),
                        json_pointers,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let self_heal = object
        .pointer("/spec/syncPolicy/automated/selfHeal")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some(AppInfo {
        name,
        namespace,
        ignore_differences,
        self_heal,
    })
}

/// ArgoCD's settings from the data of `argocd-cm`.
pub fn argo_settings(data: &BTreeMap<String, String>) -> ArgoSettings {
    let defaults = ArgoSettings::default();
    ArgoSettings {
        tracking: match data
            .get("application.resourceTrackingMethod")
            .map(|s| s.trim())
        {
            Some("label") => TrackingMethod::Label,
            Some("annotation+label") => TrackingMethod::AnnotationAndLabel,
            _ => TrackingMethod::Annotation,
        },
        label_key: data
            .get("application.instanceLabelKey")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(defaults.label_key),
        installation_id: data
            .get("installationID")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    }
}

fn is_not_found(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
            | watcher::Error::WatchStartFailed(kube::Error::Api(status))
            if status.code == 404
    )
}

/// Starts the watches. They run until the process stops, retrying with backoff.
pub fn spawn_watchers(client: kube::Client, view: SharedView, argocd_namespaces: Vec<String>) {
    tokio::spawn(watch_applications(
        client.clone(),
        view.clone(),
        argocd_namespaces.clone(),
    ));
    for namespace in argocd_namespaces {
        tokio::spawn(watch_argocd_cm(client.clone(), view.clone(), namespace));
    }
}

async fn watch_applications(client: kube::Client, view: SharedView, control: Vec<String>) {
    let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "applications");
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let mut known: HashMap<(String, String), AppInfo> = HashMap::new();
    let mut listing: HashMap<(String, String), AppInfo> = HashMap::new();
    let key = |info: &AppInfo| (info.namespace.clone(), info.name.clone());
    let publish = |known: &HashMap<(String, String), AppInfo>| {
        let apps = known
            .values()
            .map(|info| {
                (
                    tracking_name(&info.namespace, &info.name, &control),
                    info.clone(),
                )
            })
            .collect();
        view.update(|v| {
            v.applications = apps;
            v.applications_synced = true;
            v.applications_api_missing = false;
        });
    };
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures_util::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let parse = |object: &DynamicObject| {
            serde_json::to_value(object)
                .ok()
                .as_ref()
                .and_then(app_info)
        };
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(object)) => {
                if let Some(info) = parse(&object) {
                    listing.insert(key(&info), info);
                }
            }
            Ok(Event::InitDone) => {
                known = std::mem::take(&mut listing);
                tracing::info!(applications = known.len(), "ArgoCD Applications synced");
                publish(&known);
            }
            Ok(Event::Apply(object)) => {
                if let Some(info) = parse(&object) {
                    known.insert(key(&info), info);
                    publish(&known);
                }
            }
            Ok(Event::Delete(object)) => {
                if let Some(info) = parse(&object) {
                    known.remove(&key(&info));
                    publish(&known);
                }
            }
            Err(error) if is_not_found(&error) => {
                // No Application CRD: not an ArgoCD cluster (yet). Nothing is managed.
                view.update(|v| {
                    v.applications_synced = true;
                    v.applications_api_missing = true;
                });
                tracing::debug!(%error, "no ArgoCD Application API in this cluster");
            }
            Err(error) => tracing::warn!(%error, "watching ArgoCD Applications failed; retrying"),
        }
    }
}

async fn watch_argocd_cm(client: kube::Client, view: SharedView, namespace: String) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={ARGOCD_CM}"));
    let stream = watcher::watcher(api, config).default_backoff();
    futures_util::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(cm)) | Ok(Event::InitApply(cm)) => {
                let settings = argo_settings(&cm.data.unwrap_or_default());
                tracing::info!(%namespace, tracking = ?settings.tracking, label_key = %settings.label_key, "argocd-cm read");
                view.update(|v| v.argo = settings);
            }
            Ok(Event::Delete(_)) => view.update(|v| v.argo = ArgoSettings::default()),
            Ok(Event::Init) | Ok(Event::InitDone) => {}
            Err(error) => tracing::warn!(%namespace, %error, "watching argocd-cm failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn applications_outside_the_control_namespaces_are_namespaced_in_tracking_ids() {
        let control = vec!["argocd".to_string(), "openshift-gitops".to_string()];
        assert_eq!(tracking_name("argocd", "shop", &control), "shop");
        assert_eq!(tracking_name("team-a", "shop", &control), "team-a_shop");
    }

    #[test]
    fn ignore_differences_are_read_with_pointers_and_plain_jq_paths() {
        let app = json!({"metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"syncPolicy": {"automated": {"selfHeal": true}}, "ignoreDifferences": [
            {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]},
            {"kind": "ConfigMap", "name": "settings", "jqPathExpressions": [".data.generated", ".data[] | select(.x)"]}
        ]}});
        let info = app_info(&app).expect("parses");
        assert!(info.self_heal);
        assert_eq!(info.ignore_differences.len(), 2);
        assert_eq!(
            info.ignore_differences[0].json_pointers,
            vec!["/spec/replicas"]
        );
        assert_eq!(info.ignore_differences[1].group, "");
        assert_eq!(info.ignore_differences[1].name.as_deref(), Some("settings"));
        assert_eq!(
            info.ignore_differences[1].json_pointers,
            vec!["/data/generated"],
            "complex jq is not guessed"
        );
    }

    #[test]
    fn argocd_cm_selects_tracking_and_label_key() {
        let data = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(
            argo_settings(&data(&[])).tracking,
            TrackingMethod::Annotation
        );
        let label = argo_settings(&data(&[
            ("application.resourceTrackingMethod", "label"),
            (
                "application.instanceLabelKey",
                "argocd.argoproj.io/instance",
            ),
            ("installationID", "prod-argo"),
        ]));
        assert_eq!(label.tracking, TrackingMethod::Label);
        assert_eq!(label.label_key, "argocd.argoproj.io/instance");
        assert_eq!(label.installation_id.as_deref(), Some("prod-argo"));
        let both = argo_settings(&data(&[(
            "application.resourceTrackingMethod",
            "annotation+label",
        )]));
        assert_eq!(both.tracking, TrackingMethod::AnnotationAndLabel);
    }
}

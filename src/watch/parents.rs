//! Metadata-only watches of the scalable workloads, so a `kubectl scale` (whose `Scale` object
//! carries no annotations) is judged by its parent's ArgoCD markers, and a trigger's ownership
//! detection walks ReplicaSet → Deployment without asking the API server. Metadata only: cheap
//! even for 100 000 objects, and only the keys the guard and ownership detection read are kept.

use crate::detect::ownership::HELM_RELEASE_ANNOTATION;
use crate::detect::tracking::{INSTALLATION_ID_ANNOTATION, TRACKING_ID_ANNOTATION};
use crate::guard::review::OPT_OUT_KEY;
use crate::guard::view::{ParentCache, ParentKey, ParentMeta};
use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Map, Value, json};

/// `(group, version, kind, plural)` of the workloads with a `scale` subresource we guard.
pub const SCALABLE: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
];

/// Annotations worth keeping: the guard's ArgoCD and opt-out markers, Helm's release marker
/// (ownership detection).
const KEPT_ANNOTATIONS: &[&str] = &[
    TRACKING_ID_ANNOTATION,
    INSTALLATION_ID_ANNOTATION,
    OPT_OUT_KEY,
    HELM_RELEASE_ANNOTATION,
];

/// The cache entry of one object: its labels, the annotations above, its uid and its
/// controller (the only owner reference ownership detection follows).
fn entry(
    group: &str,
    plural: &str,
    kind: &str,
    meta: &PartialObjectMeta<DynamicObject>,
) -> Option<(ParentKey, ParentMeta)> {
    let m = &meta.metadata;
    let name = m.name.clone()?;
    let annotations: Map<String, Value> = m
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| KEPT_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let key = (
        group.to_string(),
        plural.to_string(),
        m.namespace.clone().unwrap_or_default(),
        name.clone(),
    );
    let controller: Vec<Value> = m
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true))
        .map(|r| json!({"apiVersion": r.api_version, "kind": r.kind, "name": r.name, "controller": true}))
        .collect();
    let metadata = json!({
        "name": name,
        "namespace": m.namespace,
        "uid": m.uid,
        "labels": m.labels.clone().unwrap_or_default(),
        "annotations": annotations,
        "ownerReferences": controller,
    });
    Some((
        key,
        ParentMeta {
            kind: kind.to_string(),
            metadata,
        },
    ))
}

/// The object `kind` `namespace`/`name` as the cache holds it (`apiVersion`, `kind`, `metadata`:
/// what ownership detection reads), if it is a cached kind and the cache has it.
pub fn cached_object(
    cache: &ParentCache,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<Value> {
    let &(group, version, kind, plural) = SCALABLE.iter().find(|(_, _, k, _)| *k == kind)?;
    let key = (
        group.to_string(),
        plural.to_string(),
        namespace.to_string(),
        name.to_string(),
    );
    let meta = cache.get(&key)?;
    Some(
        json!({"apiVersion": format!("{group}/{version}"), "kind": kind, "metadata": meta.metadata}),
    )
}

/// Starts one metadata watch per scalable resource.
pub fn spawn_watchers(client: kube::Client, cache: ParentCache) {
    for &(group, version, kind, plural) in SCALABLE {
        tokio::spawn(watch(
            client.clone(),
            cache.clone(),
            group,
            version,
            kind,
            plural,
        ));
    }
}

async fn watch(
    client: kube::Client,
    cache: ParentCache,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    // `Api<PartialObjectMeta<_>>` asks the API server for metadata only.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &resource);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures_util::pin_mut!(stream);
    let mut listing = Vec::new();
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(meta)) => listing.extend(entry(group, plural, kind, &meta)),
            Ok(Event::InitDone) => {
                let entries = std::mem::take(&mut listing);
                tracing::info!(kind, objects = entries.len(), "metadata cache synced");
                cache.replace_resource(group, plural, entries);
            }
            Ok(Event::Apply(meta)) => {
                if let Some((key, value)) = entry(group, plural, kind, &meta) {
                    cache.insert(key, value);
                }
            }
            Ok(Event::Delete(meta)) => {
                if let Some((key, _)) = entry(group, plural, kind, &meta) {
                    cache.remove(&key);
                }
            }
            Err(error) => tracing::warn!(kind, %error, "metadata watch failed; retrying"),
        }
    }
}

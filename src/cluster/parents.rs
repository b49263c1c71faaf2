//! Metadata-only watches of the scalable workloads, so a `kubectl scale` (whose `Scale` object
//! carries no annotations) is judged by its parent's ArgoCD markers. Metadata only: cheap even
//! for 100 000 objects, and only the keys the guard reads are kept.

use crate::guard::review::OPT_OUT_KEY;
use crate::guard::tracking::{INSTALLATION_ID_ANNOTATION, TRACKING_ID_ANNOTATION};
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

/// The cache entry of one object: its labels, the ArgoCD/opt-out annotations, its uid.
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
        .filter(|(k, _)| {
            [
                TRACKING_ID_ANNOTATION,
                INSTALLATION_ID_ANNOTATION,
                OPT_OUT_KEY,
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect();
    let key = (
        group.to_string(),
        plural.to_string(),
        m.namespace.clone().unwrap_or_default(),
        name.clone(),
    );
    let metadata = json!({
        "name": name,
        "namespace": m.namespace,
        "uid": m.uid,
        "labels": m.labels.clone().unwrap_or_default(),
        "annotations": annotations,
    });
    Some((
        key,
        ParentMeta {
            kind: kind.to_string(),
            metadata,
        },
    ))
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

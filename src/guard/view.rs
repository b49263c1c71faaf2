//! `GuardView`: everything a review may consult, in memory. Rebuilt by the watchers (ArgoCD
//! settings, Applications) and the lease table; swapped atomically so a review reads one
//! consistent snapshot without locks held.

use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// `enforce` denies, `warn` allows with a warning, `off` allows silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    Enforce,
    Warn,
    Off,
}

impl std::str::FromStr for GuardMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enforce" => Ok(GuardMode::Enforce),
            "warn" => Ok(GuardMode::Warn),
            "off" => Ok(GuardMode::Off),
            other => Err(format!("{other:?} is not one of enforce, warn, off")),
        }
    }
}

/// How ArgoCD marks the objects it manages (`argocd-cm` `application.resourceTrackingMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackingMethod {
    Annotation,
    Label,
    AnnotationAndLabel,
}

/// ArgoCD's settings, from `argocd-cm`.
#[derive(Debug, Clone)]
pub struct ArgoSettings {
    pub tracking: TrackingMethod,
    /// `application.instanceLabelKey`.
    pub label_key: String,
    /// `installationID`: objects annotated with another installation's id are not ours to guard.
    pub installation_id: Option<String>,
}

impl Default for ArgoSettings {
    /// ArgoCD 3's defaults: annotation tracking, `app.kubernetes.io/instance`.
    fn default() -> Self {
        ArgoSettings {
            tracking: TrackingMethod::Annotation,
            label_key: "app.kubernetes.io/instance".into(),
            installation_id: None,
        }
    }
}

/// One `ignoreDifferences` entry of an Application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IgnoreRule {
    pub group: String,
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub json_pointers: Vec<String>,
}

/// What the guard needs of an ArgoCD Application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppInfo {
    pub name: String,
    pub namespace: String,
    pub ignore_differences: Vec<IgnoreRule>,
    pub self_heal: bool,
}

/// The engine's own permission to change an object (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    pub incident_id: String,
    pub object_uid: String,
    /// JSON pointers the change may touch (prefixes).
    pub paths: Vec<String>,
    pub expires_at: DateTime<Utc>,
}

/// Settings of the guard itself (from the configuration).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub mode: GuardMode,
    pub namespace_modes: HashMap<String, GuardMode>,
    /// Namespaces that opted out (also: the namespace label, once the namespace watch runs).
    pub disabled_namespaces: HashSet<String>,
    /// `system:serviceaccount:<ns>:<name>` of ArgoCD's controller and server.
    pub gitops_identities: HashSet<String>,
    pub exempt_users: HashSet<String>,
    pub exempt_groups: HashSet<String>,
    /// The engine's own ServiceAccount user name (exempt only under a lease).
    pub own_identity: String,
    /// Annotations and labels whose change is not drift (empty by default).
    pub annotation_allow_list: HashSet<String>,
    pub label_allow_list: HashSet<String>,
}

impl GuardConfig {
    pub fn mode_for(&self, namespace: &str) -> GuardMode {
        self.namespace_modes
            .get(namespace)
            .copied()
            .unwrap_or(self.mode)
    }
}

/// Default GitOps identities: ArgoCD's application controller and server, upstream and
/// OpenShift GitOps.
pub const DEFAULT_GITOPS_IDENTITIES: &[&str] = &[
    "system:serviceaccount:argocd:argocd-application-controller",
    "system:serviceaccount:argocd:argocd-server",
    "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-application-controller",
    "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-server",
];

/// Metadata of a guarded object, from the metadata-only watch: what a `scale` subresource
/// request (whose `Scale` object has no annotations) is judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentMeta {
    pub kind: String,
    /// The object's `metadata` (labels, annotations, uid).
    pub metadata: serde_json::Value,
}

/// `(group, resource, namespace, name)`, as a scale request names its parent.
pub type ParentKey = (String, String, String, String);

/// The metadata cache of scalable objects. Shared (not copied) between snapshots: it can hold
/// 100 000 entries, and copying it on every watch event would cost more than the lock.
#[derive(Debug, Clone, Default)]
pub struct ParentCache(Arc<RwLock<HashMap<ParentKey, ParentMeta>>>);

impl ParentCache {
    pub fn get(&self, key: &ParentKey) -> Option<ParentMeta> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(key)
            .cloned()
    }

    pub fn insert(&self, key: ParentKey, meta: ParentMeta) {
        self.write().insert(key, meta);
    }

    pub fn remove(&self, key: &ParentKey) {
        self.write().remove(key);
    }

    /// Replaces every entry of one resource (after a relist).
    pub fn replace_resource(
        &self,
        group: &str,
        resource: &str,
        entries: Vec<(ParentKey, ParentMeta)>,
    ) {
        let mut map = self.write();
        map.retain(|(g, r, _, _), _| !(g == group && r == resource));
        map.extend(entries);
    }

    pub fn len(&self) -> usize {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ParentKey, ParentMeta>> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The state a review consults.
#[derive(Debug, Clone)]
pub struct GuardView {
    pub config: GuardConfig,
    pub argo: ArgoSettings,
    /// By the name used in tracking ids: `<name>`, or `<namespace>_<name>` for Applications
    /// outside the control-plane namespaces.
    pub applications: HashMap<String, AppInfo>,
    pub leases: Vec<Lease>,
    pub parents: ParentCache,
    /// The Application watch finished its first list (or found no Application API).
    pub applications_synced: bool,
    /// The API server has no Application API (no ArgoCD installed): nothing is managed.
    pub applications_api_missing: bool,
}

impl GuardView {
    pub fn new(config: GuardConfig) -> Self {
        GuardView {
            config,
            argo: ArgoSettings::default(),
            applications: HashMap::new(),
            leases: Vec::new(),
            parents: ParentCache::default(),
            applications_synced: false,
            applications_api_missing: false,
        }
    }
}

/// The live view, shared by the review handlers (readers) and the watchers (writers).
#[derive(Clone)]
pub struct SharedView(Arc<RwLock<Arc<GuardView>>>);

impl SharedView {
    pub fn new(view: GuardView) -> Self {
        SharedView(Arc::new(RwLock::new(Arc::new(view))))
    }

    /// A consistent snapshot (an `Arc` clone: no lock is held during the review).
    pub fn snapshot(&self) -> Arc<GuardView> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Applies `change` to a copy and publishes it.
    pub fn update(&self, change: impl FnOnce(&mut GuardView)) {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = (**guard).clone();
        change(&mut next);
        *guard = Arc::new(next);
    }
}

impl GuardConfig {
    /// The guard's configuration from the settings.
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        let guard = &settings.guard;
        let set = |list: &[String]| list.iter().cloned().collect::<HashSet<String>>();
        let mut gitops_identities: HashSet<String> = DEFAULT_GITOPS_IDENTITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        gitops_identities.extend(guard.gitops_identities.iter().cloned());
        GuardConfig {
            mode: guard.mode,
            namespace_modes: guard.namespace_modes.iter().cloned().collect(),
            disabled_namespaces: set(&guard.disabled_namespaces),
            gitops_identities,
            exempt_users: set(&guard.exempt_users),
            exempt_groups: set(&guard.exempt_groups),
            own_identity: format!(
                "system:serviceaccount:{}:{}",
                settings.namespace, settings.service_account
            ),
            annotation_allow_list: set(&guard.annotation_allow_list),
            label_allow_list: set(&guard.label_allow_list),
        }
    }
}

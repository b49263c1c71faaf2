//! Storm buckets: what the storm budget counts and a storm pauses.

/// What the storm budget counts and a storm pauses: one namespace, or one kind of
/// cluster-scoped target (nodes, cluster operators, …). A bucket's pause holds only that
/// bucket: a storm of node workflows never stops the remediation of workloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    Namespace(String),
    Kind(String),
}

/// Pauses of kind buckets are stored under this prefix; no namespace name holds a `:`.
const KIND_PAUSE_PREFIX: &str = "kind:";

impl Bucket {
    /// The bucket of a target: its namespace, or its kind when it is cluster-scoped. `None`
    /// (counted in the cluster budget only) when neither can name it: no kind, a namespaced
    /// kind without a namespace (an alert without a `namespace` label), or a namespace the API
    /// would refuse. Every bucket is one `/api/v1/pause` can name, so every pause a storm
    /// stores can be lifted with `resume_call`.
    pub fn of(kind: &str, namespace: Option<&str>) -> Option<Self> {
        if crate::plan::is_cluster_scoped(kind) {
            return Some(Bucket::Kind(kind.to_string()));
        }
        if kind.is_empty() {
            return None;
        }
        namespace
            .filter(|ns| crate::api::validate::is_dns_label(ns))
            .map(|ns| Bucket::Namespace(ns.to_string()))
    }

    /// The bucket of a workflow's `target_key` (`namespace/Kind/name`).
    pub fn of_target_key(key: &str) -> Option<Self> {
        let mut parts = key.splitn(3, '/');
        let (namespace, kind) = (parts.next()?, parts.next()?);
        Bucket::of(kind, Some(namespace))
    }

    /// The API call that lifts this bucket's pause (what an escalation tells the operator).
    pub fn resume_call(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("DELETE /api/v1/pause?namespace={ns}"),
            Bucket::Kind(kind) => format!("DELETE /api/v1/pause?kind={kind}"),
        }
    }

    /// The key a pause of this bucket is stored under (the store's `namespace` column).
    pub fn pause_key(&self) -> String {
        match self {
            Bucket::Namespace(ns) => ns.clone(),
            Bucket::Kind(kind) => format!("{KIND_PAUSE_PREFIX}{kind}"),
        }
    }

    /// The bucket a stored pause holds.
    pub fn from_pause_key(key: &str) -> Self {
        match key.strip_prefix(KIND_PAUSE_PREFIX) {
            Some(kind) => Bucket::Kind(kind.to_string()),
            None => Bucket::Namespace(key.to_string()),
        }
    }

    /// `namespace/shop` or `kind/Node`: how the API names a bucket.
    pub fn label(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("namespace/{ns}"),
            Bucket::Kind(kind) => format!("kind/{kind}"),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Bucket::Namespace(ns) => format!("namespace {ns}"),
            Bucket::Kind(kind) => format!("cluster-scoped {kind} targets"),
        }
    }
}

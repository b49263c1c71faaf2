//! The engine's core objects: the guard's view, the models, leadership, the `Cluster`
//! implementation and the pipeline that executes through it.

use super::{StartupError, leader, outbound};
use crate::cluster::{Connection, SharedCluster};
use crate::config::Settings;
use crate::leader::lock::LeaseLock;
use crate::metrics::Metrics;
use crate::store::SqlStore;
use std::sync::Arc;

/// What the API state and the servers share.
pub(super) struct Engine {
    pub guard_view: crate::guard::SharedView,
    pub models: Arc<crate::ml::Models>,
    pub leadership: crate::leader::Leadership,
    pub attached: Option<SharedCluster>,
    pub pipeline: Arc<crate::pipeline::Pipeline>,
}

/// What only the background tasks take over (see `background::start`).
pub(super) struct Handoff {
    pub election_lock: Option<Arc<dyn LeaseLock>>,
    /// The leader-fenced client, when attached.
    pub fenced: Option<kube::Client>,
}

/// Builds the core objects; starts only the models' readiness watch.
pub(super) fn assemble(
    settings: &Settings,
    cluster: &Connection,
    store: &Arc<SqlStore>,
    metrics: &Metrics,
) -> Result<(Engine, Handoff), StartupError> {
    let guard_view = crate::guard::SharedView::new(crate::guard::GuardView::new(
        crate::guard::GuardConfig::from_settings(settings),
    ));
    let models =
        Arc::new(crate::ml::Models::from_settings(settings).map_err(StartupError::KServe)?);
    // A model missing at startup is degraded, not fatal: it is looked for again.
    models.spawn_readiness_watch();
    let (leadership, election_lock) = leader::leadership(settings, store, metrics, cluster);
    // Every write of the pipeline goes through the leader fence; the RBAC self-check's
    // access reviews pass it on every replica.
    let fenced = match cluster {
        Connection::Configured { client, .. } => Some(crate::leader::fence::replica_client(
            client,
            leadership.clone(),
            true,
        )),
        Connection::Detached => None,
    };
    let attached = attached_cluster(settings, cluster, fenced.as_ref(), metrics)?;
    let pipeline = Arc::new(
        crate::pipeline::Pipeline::new(
            store.clone(),
            metrics.clone(),
            attached.clone(),
            guard_view.clone(),
            settings.workload_checkpoint_timeout,
        )
        .with_approval(&settings.approval_required_actions)
        .with_argocd_namespaces(settings.argocd_namespaces.clone())
        .with_channels(settings.channels.clone())
        .with_models(models.clone())
        .with_leadership(leadership.clone()),
    );
    let engine = Engine {
        guard_view,
        models,
        leadership,
        attached,
        pipeline,
    };
    Ok((
        engine,
        Handoff {
            election_lock,
            fenced,
        },
    ))
}

/// The one place the implementation is picked: kube-rs over the fenced client, or none
/// (detached).
fn attached_cluster(
    settings: &Settings,
    cluster: &Connection,
    fenced: Option<&kube::Client>,
    metrics: &Metrics,
) -> Result<Option<SharedCluster>, StartupError> {
    let (Connection::Configured { source, .. }, Some(fenced)) = (cluster, fenced) else {
        return Ok(None);
    };
    Ok(Some(Arc::new(
        crate::cluster::kube::KubeCluster::new(fenced.clone(), source.clone())
            .with_argocd(outbound::argocd_channel(settings, cluster, metrics)?)
            .with_helm(
                settings.channels.helm_bin.clone(),
                settings.channels.kubeconfig.clone(),
            ),
    )))
}

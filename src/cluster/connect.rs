//! The connection to the Kubernetes API server, or its absence ("detached" mode).
//!
//! Attached when `KUBECONFIG` is set or the process runs in a pod; detached otherwise. In
//! detached mode every workflow is planned and recorded but executed as a dry run. Only
//! `startup` holds a `Connection`: everything else asks the `Cluster` trait built on it.

use super::ClusterProbe;
use crate::config::Settings;
use std::time::{Duration, Instant};

/// How long a health probe waits for the API server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("KUBECONFIG {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(String),
}

/// How the engine reaches the cluster.
#[derive(Clone)]
pub enum Connection {
    Detached,
    Configured {
        client: kube::Client,
        /// Where the configuration came from (`kubeconfig <path>` or `in-cluster`).
        source: String,
    },
}

impl Connection {
    /// Builds the client from the settings (no network call: a missing cluster is not an
    /// error, a broken kubeconfig is).
    pub async fn connect(settings: &Settings) -> Result<Connection, ClusterError> {
        if let Some(paths) = &settings.kubeconfig {
            let config = kubeconfig(paths).await?;
            let client = client_from(config)?;
            return Ok(Connection::Configured {
                client,
                source: format!("kubeconfig {paths}"),
            });
        }
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            let config =
                kube::Config::incluster().map_err(|e| ClusterError::InCluster(e.to_string()))?;
            let client = client_from(config)?;
            return Ok(Connection::Configured {
                client,
                source: "in-cluster".into(),
            });
        }
        Ok(Connection::Detached)
    }

    /// The client, when attached.
    pub fn client(&self) -> Option<&kube::Client> {
        match self {
            Connection::Configured { client, .. } => Some(client),
            Connection::Detached => None,
        }
    }
}

/// Asks the API server for its version, with a short timeout.
pub async fn probe(client: &kube::Client, source: &str) -> ClusterProbe {
    let started = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => ClusterProbe {
            reachable: true,
            latency: Some(started.elapsed()),
            message: format!("Kubernetes {} via {source}", info.git_version),
        },
        Ok(Err(error)) => ClusterProbe {
            reachable: false,
            latency: Some(started.elapsed()),
            message: format!("API server unreachable via {source}: {error}; detached mode"),
        },
        Err(_) => ClusterProbe {
            reachable: false,
            latency: Some(started.elapsed()),
            message: format!(
                "API server did not answer within {}s via {source}; detached mode",
                PROBE_TIMEOUT.as_secs()
            ),
        },
    }
}

/// Reads a `KUBECONFIG` value (one path or several joined by ':', merged in order).
/// The client, without kube's built-in retry layer: it retries 429/503/504 up to 15 times with
/// a backoff that grows to minutes, which would hide a PodDisruptionBudget's refusal from the
/// drain (bounded by `DRAIN_TIMEOUT`) and stretch every step's timeout. The channels retry
/// transient errors themselves, boundedly (`execute::with_retry`).
fn client_from(mut config: kube::Config) -> Result<kube::Client, ClusterError> {
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| ClusterError::Client(e.to_string()))
}

async fn kubeconfig(paths: &str) -> Result<kube::Config, ClusterError> {
    let error = |reason: String| ClusterError::Kubeconfig {
        path: paths.to_string(),
        reason,
    };
    let mut merged: Option<kube::config::Kubeconfig> = None;
    for path in paths.split(':').filter(|p| !p.is_empty()) {
        let file =
            kube::config::Kubeconfig::read_from(path).map_err(|e| error(format!("{path}: {e}")))?;
        merged = Some(match merged {
            None => file,
            Some(acc) => acc.merge(file).map_err(|e| error(e.to_string()))?,
        });
    }
    let merged = merged.ok_or_else(|| error("no path given".into()))?;
    kube::Config::from_custom_kubeconfig(merged, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| error(e.to_string()))
}

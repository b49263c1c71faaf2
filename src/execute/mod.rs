//! Execution channels (SPEC §5.4), the kube-rs internals of `cluster::kube::KubeCluster`: the
//! pipeline never calls them, it asks the `cluster::Cluster` trait. `workload.rs` is the
//! manual channel (pod deletion, rollout restart, rollback, scale), `argocd.rs`, `helm.rs`,
//! `operator.rs`, `node.rs` and `platform.rs` the others; every write carries the field
//! manager `coordination-engine` and transient errors are retried, boundedly. The pure parts
//! (release history, maintenance gate, CSV health, pod findings) and the domain types the
//! trait speaks in (`AppRef`, `Revision`, `NodeOutcome`, …) live here too.

pub mod argocd;
pub mod helm;
pub mod inspect;
pub mod node;
pub mod operator;
pub mod platform;
pub mod workload;

/// The field manager of every write (the audit rules and the guard recognise it).
pub const FIELD_MANAGER: &str = "coordination-engine";

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Worth retrying (409 conflict, 429, 5xx, connection errors).
    #[error("transient: {0}")]
    Transient(String),
    /// Retrying cannot help (403 forbidden, 404, 422): the step fails with this reason.
    #[error("{0}")]
    Permanent(String),
}

impl From<kube::Error> for ExecError {
    fn from(error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(status) if matches!(status.code, 409 | 429) || status.code >= 500 => {
                ExecError::Transient(format!(
                    "{} {}: {}",
                    status.code, status.reason, status.message
                ))
            }
            kube::Error::Api(status) => ExecError::Permanent(format!(
                "the API server answered {} {}: {}",
                status.code, status.reason, status.message
            )),
            other => ExecError::Transient(other.to_string()),
        }
    }
}

/// Runs `call` up to 4 times while it fails transiently, with a short doubling pause.
pub async fn with_retry<T, F, Fut>(mut call: F) -> Result<T, ExecError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ExecError>>,
{
    let mut pause = std::time::Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(ExecError::Transient(reason)) if attempt < 4 => {
                tracing::debug!(%reason, attempt, "transient API error; retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Lists objects of an API the cluster may not have (OpenShift's, OLM's): none when the API
/// server answers 404.
pub async fn list_optional(
    api: kube::Api<kube::api::DynamicObject>,
) -> Result<Vec<serde_json::Value>, ExecError> {
    match api.list(&Default::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(error) => Err(error.into()),
    }
}

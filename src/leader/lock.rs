//! Where the election's record lives: a Kubernetes Lease, or a row in the database. Both offer
//! the same compare-and-set: create if absent, replace only the version that was read.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

/// The election's record (the fields of a Lease's spec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRecord {
    /// Empty when released.
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
    pub duration_secs: i64,
    /// How many times the holder changed.
    pub transitions: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Someone else wrote first (the version read is stale, or the lock already exists).
    #[error("another replica wrote the lock first")]
    Conflict,
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait LeaseLock: Send + Sync + 'static {
    /// The record and its version, or `None` when the lock does not exist yet.
    async fn read(&self) -> Result<Option<(LockRecord, String)>, LockError>;
    async fn create(&self, record: &LockRecord) -> Result<(), LockError>;
    /// Replaces the record only if it is still at `version`.
    async fn replace(&self, record: &LockRecord, version: &str) -> Result<(), LockError>;
}

/// A `coordination.k8s.io/v1` Lease; its `resourceVersion` is the version.
pub struct KubeLease {
    api: Api<Lease>,
    name: String,
}

impl KubeLease {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        KubeLease {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
        }
    }

    fn lease(&self, record: &LockRecord, version: Option<&str>) -> Lease {
        let micro = |t: DateTime<Utc>| {
            k8s_openapi::jiff::Timestamp::from_microsecond(t.timestamp_micros())
                .ok()
                .map(MicroTime)
        };
        Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: version.map(str::to_string),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(record.holder.clone()),
                lease_duration_seconds: i32::try_from(record.duration_secs).ok(),
                acquire_time: micro(record.acquired_at),
                renew_time: micro(record.renewed_at),
                lease_transitions: i32::try_from(record.transitions).ok(),
                ..Default::default()
            }),
        }
    }
}

fn kube_error(error: kube::Error) -> LockError {
    match &error {
        kube::Error::Api(status) if status.code == 409 => LockError::Conflict,
        _ => LockError::Unavailable(error.to_string()),
    }
}

#[async_trait]
impl LeaseLock for KubeLease {
    async fn read(&self) -> Result<Option<(LockRecord, String)>, LockError> {
        let Some(lease) = self.api.get_opt(&self.name).await.map_err(kube_error)? else {
            return Ok(None);
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let spec = lease.spec.unwrap_or_default();
        let time = |t: Option<MicroTime>| {
            t.and_then(|t| DateTime::from_timestamp_micros(t.0.as_microsecond()))
                .unwrap_or(DateTime::UNIX_EPOCH)
        };
        let record = LockRecord {
            holder: spec.holder_identity.unwrap_or_default(),
            acquired_at: time(spec.acquire_time),
            renewed_at: time(spec.renew_time),
            duration_secs: i64::from(spec.lease_duration_seconds.unwrap_or(15)),
            transitions: i64::from(spec.lease_transitions.unwrap_or(0)),
        };
        Ok(Some((record, version)))
    }

    async fn create(&self, record: &LockRecord) -> Result<(), LockError> {
        self.api
            .create(&PostParams::default(), &self.lease(record, None))
            .await
            .map(|_| ())
            .map_err(kube_error)
    }

    async fn replace(&self, record: &LockRecord, version: &str) -> Result<(), LockError> {
        self.api
            .replace(
                &self.name,
                &PostParams::default(),
                &self.lease(record, Some(version)),
            )
            .await
            .map(|_| ())
            .map_err(kube_error)
    }
}

/// A row of the `leader_lock` table (PostgreSQL, detached); its `version` column counts writes.
pub struct DatabaseLock {
    store: std::sync::Arc<crate::store::SqlStore>,
    name: String,
}

impl DatabaseLock {
    pub fn new(store: std::sync::Arc<crate::store::SqlStore>, name: &str) -> Self {
        DatabaseLock {
            store,
            name: name.to_string(),
        }
    }
}

#[async_trait]
impl LeaseLock for DatabaseLock {
    async fn read(&self) -> Result<Option<(LockRecord, String)>, LockError> {
        self.store.read_leader_lock(&self.name).await
    }

    async fn create(&self, record: &LockRecord) -> Result<(), LockError> {
        self.store.create_leader_lock(&self.name, record).await
    }

    async fn replace(&self, record: &LockRecord, version: &str) -> Result<(), LockError> {
        self.store
            .replace_leader_lock(&self.name, record, version)
            .await
    }
}

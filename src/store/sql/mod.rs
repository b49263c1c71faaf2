//! The store on SQL: SQLite (embedded, one replica) or PostgreSQL (several replicas), one
//! implementation over sqlx's `Any` driver. The schema and every statement are portable SQL
//! (`$n` placeholders, BIGINT microsecond timestamps, TEXT JSON documents); the only dialect
//! difference is row locking (`rows::for_update`).
//!
//! SQLite runs in WAL mode under `DATA_DIR`: one writer connection (SQLite allows one writer at
//! a time; queueing in the pool is fairer and faster than retrying `SQLITE_BUSY`) and a few
//! read-only connections, which WAL lets run beside the writer. `synchronous=FULL`: a commit
//! is on disk before we acknowledge it. PostgreSQL uses one pool for both; its concurrent
//! writers are serialised by unique indexes and row locks, and a transaction that loses such a
//! race is run again (`retry_raced`), where it finds the winner's row.

use super::StoreError;
use crate::metrics::Metrics;
use sqlx::AnyPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) mod builder;
mod bulk;
mod changes;
mod connect;
mod denials;
mod denied_access;
mod gates;
mod leader;
mod leases;
mod pauses;
mod queue;
mod retention;
mod rows;
mod summary;

mod operations;
pub use connect::{Backend, DB_FILE};

/// How often a transaction that lost a race to a concurrent writer is run again.
const RACE_RETRIES: usize = 4;

pub struct SqlStore {
    writer: AnyPool,
    readers: AnyPool,
    metrics: Metrics,
    /// The SQLite file, or the PostgreSQL URL without its password.
    path: PathBuf,
    backend: Backend,
}

/// Maps a driver error: a unique-key or serialisation conflict with a concurrent writer is
/// `Raced` (the caller's retry will see the winner's row), anything else `Unavailable`.
fn unavailable(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error {
        // 40001 serialization_failure, 40P01 deadlock_detected (PostgreSQL).
        let code = db.code();
        if db.is_unique_violation() || matches!(code.as_deref(), Some("40001" | "40P01")) {
            return StoreError::Raced(db.message().to_string());
        }
    }
    StoreError::Unavailable(error.to_string())
}

/// Runs a transaction again while it loses races to concurrent writers (other replicas).
async fn retry_raced<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(StoreError::Raced(why)) if tries < RACE_RETRIES => {
                tries += 1;
                tracing::debug!(%why, tries, "store write raced another writer; running it again");
            }
            other => return other,
        }
    }
}

impl SqlStore {
    /// The embedded store: opens (creating if needed) the SQLite database in `data_dir` and
    /// applies pending migrations. `busy_timeout`: how long a caller waits for a connection or
    /// a lock before the store counts as unavailable (503).
    pub async fn open(
        data_dir: &Path,
        busy_timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let path = data_dir.join(DB_FILE);
        let (writer, readers) = connect::open_sqlite(&path, busy_timeout).await?;
        Ok(SqlStore {
            writer,
            readers,
            metrics,
            path,
            backend: Backend::Sqlite,
        })
    }

    /// The shared store: connects to PostgreSQL at `url` (with `password` when given) and
    /// applies pending migrations (one replica at a time).
    pub async fn connect_postgres(
        url: &str,
        password: Option<&str>,
        busy_timeout: Duration,
        metrics: Metrics,
    ) -> Result<Self, StoreError> {
        let (pool, redacted) = connect::open_postgres(url, password, busy_timeout).await?;
        Ok(SqlStore {
            writer: pool.clone(),
            readers: pool,
            metrics,
            path: PathBuf::from(redacted),
            backend: Backend::Postgres,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection; later calls fail as `Unavailable`. Used at shutdown (and by
    /// tests to simulate an outage).
    pub async fn close(&self) {
        self.writer.close().await;
        self.readers.close().await;
    }

    fn observe(&self, op: &str, started: Instant) {
        self.metrics
            .store_duration
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests;

//! The leader election's lock as a row (`leader_lock`), for replicas without a Kubernetes
//! Lease: compare-and-set on a version counter.

use super::SqlStore;
use crate::leader::lock::{LockError, LockRecord};
use crate::store::to_micros;
use chrono::DateTime;
use sqlx::Row;

fn lock_error(error: sqlx::Error) -> LockError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => LockError::Conflict,
        _ => LockError::Unavailable(error.to_string()),
    }
}

impl SqlStore {
    pub async fn read_leader_lock(
        &self,
        name: &str,
    ) -> Result<Option<(LockRecord, String)>, LockError> {
        let row = sqlx::query(
            "SELECT holder, acquired_at, renewed_at, duration_secs, transitions, version \
             FROM leader_lock WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.writer)
        .await
        .map_err(lock_error)?;
        let Some(row) = row else { return Ok(None) };
        let time = |micros: i64| DateTime::from_timestamp_micros(micros).unwrap_or_default();
        let record = LockRecord {
            holder: row.get(0),
            acquired_at: time(row.get(1)),
            renewed_at: time(row.get(2)),
            duration_secs: row.get(3),
            transitions: row.get(4),
        };
        Ok(Some((record, row.get::<i64, _>(5).to_string())))
    }

    pub async fn create_leader_lock(
        &self,
        name: &str,
        record: &LockRecord,
    ) -> Result<(), LockError> {
        sqlx::query(
            "INSERT INTO leader_lock (name, holder, acquired_at, renewed_at, duration_secs, \
             transitions, version) VALUES ($1, $2, $3, $4, $5, $6, 1)",
        )
        .bind(name)
        .bind(&record.holder)
        .bind(to_micros(record.acquired_at))
        .bind(to_micros(record.renewed_at))
        .bind(record.duration_secs)
        .bind(record.transitions)
        .execute(&self.writer)
        .await
        .map_err(lock_error)?;
        Ok(())
    }

    pub async fn replace_leader_lock(
        &self,
        name: &str,
        record: &LockRecord,
        version: &str,
    ) -> Result<(), LockError> {
        let version: i64 = version.parse().map_err(|_| LockError::Conflict)?;
        let result = sqlx::query(
            "UPDATE leader_lock SET holder = $2, acquired_at = $3, renewed_at = $4, \
             duration_secs = $5, transitions = $6, version = version + 1 \
             WHERE name = $1 AND version = $7",
        )
        .bind(name)
        .bind(&record.holder)
        .bind(to_micros(record.acquired_at))
        .bind(to_micros(record.renewed_at))
        .bind(record.duration_secs)
        .bind(record.transitions)
        .bind(version)
        .execute(&self.writer)
        .await
        .map_err(lock_error)?;
        if result.rows_affected() == 1 {
            Ok(())
        } else {
            Err(LockError::Conflict)
        }
    }
}

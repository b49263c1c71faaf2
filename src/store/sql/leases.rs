//! Remediation leases: one row per lease, the record as a JSON document.

use super::unavailable;
use crate::store::{LeaseRecord, StoreError, to_micros};
use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

pub(super) async fn insert(writer: &AnyPool, lease: &LeaseRecord) -> Result<(), StoreError> {
    let doc = serde_json::to_string(lease).map_err(|e| StoreError::Corrupt {
        id: lease.id.clone(),
        reason: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO leases (id, incident_id, object_uid, created_at, expires_at, doc) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&lease.id)
    .bind(&lease.incident_id)
    .bind(&lease.object_uid)
    .bind(to_micros(lease.created_at))
    .bind(to_micros(lease.expires_at))
    .bind(doc)
    .execute(writer)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Leases not expired at `now` (a handful of rows: leases are rare and short). Read-only: the
/// guard's refresher calls it every few seconds; expired rows go with the retention purge.
pub(super) async fn active(
    readers: &AnyPool,
    now: DateTime<Utc>,
) -> Result<Vec<LeaseRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, doc FROM leases WHERE expires_at > $1 ORDER BY created_at DESC, id",
    )
    .bind(to_micros(now))
    .fetch_all(readers)
    .await
    .map_err(unavailable)?;
    rows.iter()
        .map(|row| {
            let id: String = row.get(0);
            let doc: String = row.get(1);
            serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt {
                id,
                reason: e.to_string(),
            })
        })
        .collect()
}

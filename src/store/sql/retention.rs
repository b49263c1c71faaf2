//! The retention purge: closed incidents (and their workflows) past the retention, with the
//! counters kept true, and the leases and audit rows of the same age.

use super::unavailable;
use crate::store::StoreError;
use sqlx::{AnyConnection, Row};

/// Deletes what closed before `cutoff` (microseconds), inside the caller's transaction.
pub(super) async fn purge(tx: &mut AnyConnection, cutoff: i64) -> Result<u64, StoreError> {
    // Take the purged rows out of the counters first, in the same transaction.
    let groups = sqlx::query(
        "SELECT status, severity, COALESCE(namespace, ''), source, COUNT(*) FROM incidents \
         WHERE closed_at IS NOT NULL AND closed_at < $1 \
         GROUP BY status, severity, COALESCE(namespace, ''), source",
    )
    .bind(cutoff)
    .fetch_all(&mut *tx)
    .await
    .map_err(unavailable)?;
    for row in groups {
        sqlx::query(
            "UPDATE incident_counts SET n = n - $1 \
             WHERE status = $2 AND severity = $3 AND namespace = $4 AND source = $5",
        )
        .bind(row.get::<i64, _>(4))
        .bind(row.get::<String, _>(0))
        .bind(row.get::<String, _>(1))
        .bind(row.get::<String, _>(2))
        .bind(row.get::<String, _>(3))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    }
    // Workflows go with their incident (ON DELETE CASCADE).
    let result =
        sqlx::query("DELETE FROM incidents WHERE closed_at IS NOT NULL AND closed_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    // Expired leases and old auditIDs age out with the same retention (the API server
    // resends audit batches within seconds, not days).
    for sql in [
        "DELETE FROM leases WHERE expires_at < $1",
        "DELETE FROM audit_seen WHERE seen_at < $1",
        "DELETE FROM audit_denied WHERE at < $1",
        "DELETE FROM audit_denied_reported WHERE at < $1",
    ] {
        sqlx::query(sql)
            .bind(cutoff)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
    }
    Ok(result.rows_affected())
}

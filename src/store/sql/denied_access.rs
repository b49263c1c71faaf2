//! 403 counts per identity for the audit rule "access denied burst", shared by the replicas.

use super::{SqlStore, unavailable};
use crate::sources::audit::DeniedAccess;
use crate::store::{StoreError, to_micros};
use sqlx::Row;

/// 403s are kept this long after their own time (longer than any burst window).
const KEEP: chrono::Duration = chrono::Duration::minutes(15);

impl SqlStore {
    pub(super) async fn note_denied_access_once(
        &self,
        audit_id: &str,
        denied: &DeniedAccess,
        threshold: u32,
    ) -> Result<Option<u32>, StoreError> {
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let inserted = sqlx::query(
            "INSERT INTO audit_denied (audit_id, identity, at) VALUES ($1, $2, $3) \
             ON CONFLICT (audit_id) DO NOTHING",
        )
        .bind(audit_id)
        .bind(&denied.identity)
        .bind(to_micros(denied.at))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if inserted.rows_affected() == 0 {
            // Already counted (a resent batch, or the same event on another replica).
            tx.commit().await.map_err(unavailable)?;
            return Ok(None);
        }
        // Old rows go as new ones come (an index range, usually empty).
        // Judged by the earlier of our clock and the event's: a future-dated event cannot
        // delete the counts of the present.
        let horizon = chrono::Utc::now().min(denied.at);
        let expired = horizon.checked_sub_signed(KEEP).unwrap_or(horizon);
        sqlx::query("DELETE FROM audit_denied WHERE at < $1")
            .bind(to_micros(expired))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM audit_denied WHERE identity = $1 AND at >= $2 AND at <= $3",
        )
        .bind(&denied.identity)
        .bind(to_micros(denied.since))
        .bind(to_micros(denied.at))
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?
        .get(0);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        if count < threshold {
            tx.commit().await.map_err(unavailable)?;
            return Ok(None);
        }
        // Reported at most once per window: the upsert only wins when the last report is
        // older than the window (atomic on both backends, whichever replica gets here first).
        let reported = sqlx::query(
            "INSERT INTO audit_denied_reported (identity, at) VALUES ($1, $2) \
             ON CONFLICT (identity) DO UPDATE SET at = excluded.at \
             WHERE audit_denied_reported.at < $3 RETURNING identity",
        )
        .bind(&denied.identity)
        .bind(to_micros(denied.at))
        .bind(to_micros(denied.since))
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(reported.map(|_| count))
    }
}

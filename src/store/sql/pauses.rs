//! Pauses: one row per scope (a namespace, or `*` for the whole cluster).

use super::unavailable;
use crate::store::{Pause, StoreError, to_micros};
use chrono::DateTime;
use sqlx::{AnyPool, Row};

pub(super) async fn set(writer: &AnyPool, pause: &Pause) -> Result<(), StoreError> {
    let scope = pause.namespace.clone().unwrap_or_else(|| "*".into());
    sqlx::query(
        "INSERT INTO pauses (scope, namespace, reason, since) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (scope) DO UPDATE SET reason = excluded.reason",
    )
    .bind(scope)
    .bind(&pause.namespace)
    .bind(&pause.reason)
    .bind(to_micros(pause.since))
    .execute(writer)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// `true` when a pause was there.
pub(super) async fn clear(writer: &AnyPool, namespace: Option<&str>) -> Result<bool, StoreError> {
    let result = sqlx::query("DELETE FROM pauses WHERE scope = $1")
        .bind(namespace.unwrap_or("*"))
        .execute(writer)
        .await
        .map_err(unavailable)?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn list(readers: &AnyPool) -> Result<Vec<Pause>, StoreError> {
    let rows = sqlx::query("SELECT namespace, reason, since FROM pauses ORDER BY scope")
        .fetch_all(readers)
        .await
        .map_err(unavailable)?;
    rows.into_iter()
        .map(|row| {
            let since: i64 = row.get(2);
            Ok(Pause {
                namespace: row.get(0),
                reason: row.get(1),
                since: DateTime::from_timestamp_micros(since).ok_or_else(|| {
                    StoreError::Corrupt {
                        id: "pauses".into(),
                        reason: format!("bad timestamp {since}"),
                    }
                })?,
            })
        })
        .collect()
}

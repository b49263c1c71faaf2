//! Admission denials: one open incident per (Application, object), a per-minute budget of new
//! ones, and closing them after `DENIAL_INCIDENT_TTL` without a denial.

use super::builder::SqlBuilder;
use super::rows::{CountDeltas, decode, for_update};
use super::{SqlStore, unavailable};
use crate::incident::{Incident, IncidentStatus, Note, Source};
use crate::store::{DenialRecorded, StoreError, to_micros};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// Open incidents closed per transaction (keeps each write short).
pub(super) const CLOSE_BATCH: i64 = 200;

pub(super) async fn record(
    conn: &mut sqlx::AnyConnection,
    incident: &Incident,
    key: &str,
    per_minute: u32,
    now: DateTime<Utc>,
    counts: &mut CountDeltas,
) -> Result<DenialRecorded, StoreError> {
    let mut select = SqlBuilder::new("SELECT id, doc FROM incidents WHERE denial_key = ");
    select
        .bind(key.to_string())
        .push(" AND closed_at IS NULL")
        .push(for_update(conn));
    let open = select
        .build()?
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?;
    if let Some(row) = open {
        let id: String = row.get(0);
        let previous: Incident = decode(&id, &row.get::<String, _>(1))?;
        let mut refreshed = previous.clone();
        refreshed.last_seen = now;
        refreshed.updated_at = now;
        refreshed.occurrences = refreshed.occurrences.saturating_add(1);
        SqlStore::write_incident(conn, &refreshed, Some(&previous), counts).await?;
        return Ok(DenialRecorded::Refreshed(id));
    }
    let minute_ago = now - chrono::Duration::minutes(1);
    let recent: i64 =
        sqlx::query("SELECT COUNT(*) FROM incidents WHERE created_at >= $1 AND source = $2")
            .bind(to_micros(minute_ago))
            .bind(Source::Admission.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable)?
            .get(0);
    if recent >= i64::from(per_minute) {
        return Ok(DenialRecorded::RateLimited);
    }
    SqlStore::write_incident(conn, incident, None, counts).await?;
    sqlx::query("UPDATE incidents SET denial_key = $1 WHERE id = $2")
        .bind(key)
        .bind(&incident.id)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(DenialRecorded::Created(incident.id.clone()))
}

/// Resolves up to `CLOSE_BATCH` open admission incidents last updated before `cutoff`;
/// returns how many.
pub(super) async fn close_batch(
    conn: &mut sqlx::AnyConnection,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
    counts: &mut CountDeltas,
) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT id, doc FROM incidents \
         WHERE source = $1 AND closed_at IS NULL AND updated_at < $2 LIMIT $3",
    )
    .bind(Source::Admission.as_str())
    .bind(to_micros(cutoff))
    .bind(CLOSE_BATCH)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    for row in &rows {
        let id: String = row.get(0);
        let previous: Incident = decode(&id, &row.get::<String, _>(1))?;
        let mut closed = previous.clone();
        closed.status = IncidentStatus::Resolved;
        closed.resolved_at = Some(now);
        closed.updated_at = now;
        closed.notes.push(Note {
            at: now,
            text: "Closed: no further denial within DENIAL_INCIDENT_TTL.".into(),
        });
        SqlStore::write_incident(conn, &closed, Some(&previous), counts).await?;
    }
    Ok(rows.len() as u64)
}

//! The pipeline's queue: one row per incident to handle, with a generation so that a requeue
//! while the consumer works is not lost by its dequeue.

use super::unavailable;
use crate::store::{QueueEntry, StoreError, to_micros};
use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

pub(super) async fn entries(readers: &AnyPool, limit: i64) -> Result<Vec<QueueEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT incident_id, generation FROM incident_queue \
         ORDER BY enqueued_at, incident_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(readers)
    .await
    .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|row| QueueEntry {
            incident_id: row.get(0),
            generation: row.get(1),
        })
        .collect())
}

pub(super) async fn enqueue(
    writer: &AnyPool,
    incident_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // A missing incident (purged meanwhile) is a foreign-key error: nothing to queue.
    sqlx::query(
        "INSERT INTO incident_queue (incident_id, enqueued_at) \
         SELECT id, $2 FROM incidents WHERE id = $1 \
         ON CONFLICT (incident_id) DO UPDATE SET generation = incident_queue.generation + 1",
    )
    .bind(incident_id)
    .bind(to_micros(now))
    .execute(writer)
    .await
    .map_err(unavailable)?;
    Ok(())
}

pub(super) async fn dequeue(writer: &AnyPool, entry: &QueueEntry) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM incident_queue WHERE incident_id = $1 AND generation = $2")
        .bind(&entry.incident_id)
        .bind(entry.generation)
        .execute(writer)
        .await
        .map_err(unavailable)?;
    Ok(())
}

//! Batch paths of the store: one round trip per chunk of rows instead of one per row.
//! sqlx runs SQLite on a worker thread, so every statement costs a channel round trip; for an
//! Alertmanager notification of 100 alerts that was most of the time (see docs/perf.md).

use super::builder::SqlBuilder;
use super::rows::{CountDeltas, alert_key, closed_at, count_key, decode, encode, for_update};
use super::unavailable;
use crate::incident::{Incident, IncidentStatus};
use crate::sources::alertmanager::AlertRecord;
use crate::store::{AlertBatchOutcome, StoreError, to_micros};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

/// Rows per multi-row statement (10 parameters each, far below SQLite's 32 766 limit).
const CHUNK: usize = 500;

/// Inserts new incidents with multi-row INSERTs.
pub(super) async fn insert_new(
    conn: &mut AnyConnection,
    incidents: &[Incident],
    counts: &mut CountDeltas,
) -> Result<(), StoreError> {
    for chunk in incidents.chunks(CHUNK) {
        let rows = chunk
            .iter()
            .map(|incident| Ok((incident, encode(incident)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut builder = SqlBuilder::new(
            "INSERT INTO incidents (source, severity, status, namespace, created_at, updated_at, \
             closed_at, doc, id, alert_key)",
        );
        builder.values(rows, |row, (incident, doc)| {
            row.bind(incident.source.as_str())
                .bind(incident.severity.as_str())
                .bind(incident.status.as_str())
                .bind(incident.namespace.clone())
                .bind(to_micros(incident.created_at))
                .bind(to_micros(incident.updated_at))
                .bind(closed_at(incident))
                .bind(doc)
                .bind(incident.id.clone())
                .bind(alert_key(incident));
        });
        builder
            .build()?
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        for incident in chunk {
            *counts.entry(count_key(incident)).or_default() += 1;
        }
    }
    Ok(())
}

/// The stored incidents of these alert identities.
async fn find_by_alert_keys(
    conn: &mut AnyConnection,
    keys: &[String],
) -> Result<HashMap<String, Incident>, StoreError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut builder =
            SqlBuilder::new("SELECT alert_key, id, doc FROM incidents WHERE alert_key IN ");
        builder.list(chunk.iter().cloned());
        // Redeliveries of one alert on two replicas at once update it one after the other.
        builder.push(for_update(conn));
        for row in builder
            .build()?
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?
        {
            let id: String = row.get(1);
            found.insert(row.get(0), decode(&id, &row.get::<String, _>(2))?);
        }
    }
    Ok(found)
}

async fn enqueue(
    conn: &mut AnyConnection,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(CHUNK) {
        let mut builder = SqlBuilder::new("INSERT INTO incident_queue (incident_id, enqueued_at)");
        builder.values(chunk, |row, id| {
            row.bind(id.clone()).bind(to_micros(now));
        });
        builder
            .build()?
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

/// Records auditIDs, returning those not seen before (multi-row, one statement per chunk).
pub(super) async fn mark_audit_seen(
    conn: &mut AnyConnection,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut fresh = std::collections::HashSet::new();
    for chunk in ids.chunks(CHUNK) {
        let mut builder = SqlBuilder::new("INSERT INTO audit_seen (audit_id, seen_at)");
        builder.values(chunk, |row, id| {
            row.bind(id.clone()).bind(to_micros(now));
        });
        builder.push(" ON CONFLICT (audit_id) DO NOTHING RETURNING audit_id");
        for row in builder
            .build()?
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?
        {
            fresh.insert(row.get::<String, _>(0));
        }
    }
    Ok(fresh)
}

/// What happens to one incident during a notification.
enum Slot {
    /// Created by this notification (index into `new`).
    New(usize),
    /// Already stored: (as stored, as it will be written).
    Existing(Box<(Incident, Incident)>),
}

/// Applies a notification inside the caller's transaction.
pub(super) async fn record_alerts(
    conn: &mut AnyConnection,
    records: &[AlertRecord],
    now: DateTime<Utc>,
    counts: &mut CountDeltas,
) -> Result<(AlertBatchOutcome, Vec<(Incident, Incident)>), StoreError> {
    let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
    let mut stored = find_by_alert_keys(conn, &keys).await?;
    let mut slots: HashMap<&str, Slot> = HashMap::new();
    let mut new: Vec<Incident> = Vec::new();
    let mut queue: Vec<String> = Vec::new();
    let mut outcome = AlertBatchOutcome::default();

    for record in records {
        let slot = match slots.remove(record.key.as_str()) {
            Some(slot) => slot,
            None => match stored.remove(&record.key) {
                Some(previous) => Slot::Existing(Box::new((previous.clone(), previous))),
                None => {
                    new.push(record.incident.clone());
                    if record.actionable && !record.resolved {
                        queue.push(record.incident.id.clone());
                    }
                    outcome.created += 1;
                    outcome.incident_ids.push(record.incident.id.clone());
                    slots.insert(&record.key, Slot::New(new.len() - 1));
                    continue;
                }
            },
        };
        // A delivery of an alert we already have (stored, or earlier in this notification).
        let slot = redeliver(slot, &mut new, record, now, &mut outcome);
        slots.insert(&record.key, slot);
    }

    insert_new(conn, &new, counts).await?;
    enqueue(conn, &queue, now).await?;
    let updates = slots
        .into_values()
        .filter_map(|slot| match slot {
            Slot::Existing(pair) => Some(*pair),
            Slot::New(_) => None,
        })
        .collect();
    Ok((outcome, updates))
}

/// Counts a redelivery on the incident in `slot` and resolves it when the alert resolved.
fn redeliver(
    slot: Slot,
    new: &mut [Incident],
    record: &AlertRecord,
    now: DateTime<Utc>,
    outcome: &mut AlertBatchOutcome,
) -> Slot {
    let mut apply = |incident: &mut Incident| {
        incident.last_seen = now;
        incident.occurrences += 1;
        incident.updated_at = now;
        if record.resolved && !incident.status.is_terminal() {
            incident.status = IncidentStatus::Resolved;
            incident.resolved_at = Some(record.ends_at.unwrap_or(now));
            outcome.resolved += 1;
        } else {
            outcome.deduplicated += 1;
        }
        outcome.incident_ids.push(incident.id.clone());
    };
    match slot {
        Slot::New(index) => {
            apply(&mut new[index]);
            Slot::New(index)
        }
        Slot::Existing(mut pair) => {
            apply(&mut pair.1);
            Slot::Existing(pair)
        }
    }
}

//! Row-level helpers of the SQLite store: encoding, the incident counters, migrations, list
//! queries, and the writes every operation shares.

use super::builder::SqlBuilder;
use super::gates::GateColumns;
use super::{SqlStore, unavailable};
use crate::incident::Incident;
use crate::store::query::{Bind, push_where};
use crate::store::schema::{MIGRATIONS, VERSION_TABLE};
use crate::store::{Page, PageRequest, PageStart, StoreError, to_micros};
use crate::workflow::Workflow;
use chrono::Utc;
use sqlx::{AnyConnection, AnyPool, Row};

impl SqlStore {
    pub(super) async fn read_incident(
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Incident, StoreError> {
        Self::read_incident_with(conn, id, "").await
    }

    /// Reads an incident the caller's transaction is about to rewrite: on PostgreSQL the row
    /// stays locked until commit, so two replicas changing one incident never lose an update.
    pub(super) async fn read_incident_to_change(
        conn: &mut AnyConnection,
        id: &str,
    ) -> Result<Incident, StoreError> {
        let lock = for_update(conn);
        Self::read_incident_with(conn, id, lock).await
    }

    async fn read_incident_with(
        conn: &mut AnyConnection,
        id: &str,
        lock: &'static str,
    ) -> Result<Incident, StoreError> {
        let mut builder = SqlBuilder::new("SELECT doc FROM incidents WHERE id = ");
        builder.bind(id.to_string()).push(lock);
        let row = builder
            .build()?
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("incident {id}")))?;
        decode(id, &row.get::<String, _>(0))
    }

    /// Inserts (`previous: None`) or updates an incident, keeping `incident_counts` in step.
    pub(super) async fn write_incident(
        conn: &mut AnyConnection,
        incident: &Incident,
        previous: Option<&Incident>,
        counts: &mut CountDeltas,
    ) -> Result<(), StoreError> {
        let insert = previous.is_none();
        let sql = if insert {
            "INSERT INTO incidents (source, severity, status, namespace, created_at, updated_at, \
             closed_at, doc, id, alert_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        } else {
            "UPDATE incidents SET source = $1, severity = $2, status = $3, namespace = $4, \
             created_at = $5, updated_at = $6, closed_at = $7, doc = $8, \
             alert_key = COALESCE(alert_key, $10) WHERE id = $9"
        };
        sqlx::query(sql)
            .bind(incident.source.as_str())
            .bind(incident.severity.as_str())
            .bind(incident.status.as_str())
            .bind(&incident.namespace)
            .bind(to_micros(incident.created_at))
            .bind(to_micros(incident.updated_at))
            .bind(closed_at(incident))
            .bind(encode(incident)?)
            .bind(&incident.id)
            .bind(alert_key(incident))
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        let key = count_key(incident);
        match previous.map(count_key) {
            Some(old) if old == key => {}
            Some(old) => {
                *counts.entry(old).or_default() -= 1;
                *counts.entry(key).or_default() += 1;
            }
            None => *counts.entry(key).or_default() += 1,
        }
        Ok(())
    }

    pub(super) async fn write_workflow(
        conn: &mut AnyConnection,
        workflow: &Workflow,
        insert: bool,
    ) -> Result<bool, StoreError> {
        // A cancelled workflow stays cancelled: the runner's next write is refused, which is
        // how a cancellation stops it at the step boundary. An interrupted one stays
        // interrupted: a new leader marked it, and the old leader's late writes are refused.
        let sql = if insert {
            "INSERT INTO workflows (incident_id, kind, status, namespace, created_at, updated_at, \
             doc, id, target_key, finished_at, spends_budget, budget_bucket) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        } else {
            "UPDATE workflows SET incident_id = $1, kind = $2, status = $3, namespace = $4, \
             created_at = $5, updated_at = $6, doc = $7, target_key = $9, finished_at = $10, \
             spends_budget = $11, budget_bucket = $12 \
             WHERE id = $8 AND status NOT IN ('cancelled', 'interrupted')"
        };
        let gate = GateColumns::of(workflow);
        let result = sqlx::query(sql)
            .bind(&workflow.incident_id)
            .bind(workflow.kind.as_str())
            .bind(workflow.status.as_str())
            .bind(&workflow.namespace)
            .bind(to_micros(workflow.created_at))
            .bind(to_micros(workflow.updated_at))
            .bind(encode(workflow)?)
            .bind(&workflow.id)
            .bind(&workflow.target_key)
            .bind(gate.finished_at)
            .bind(gate.spends_budget)
            .bind(gate.budget_bucket)
            .execute(&mut *conn)
            .await
            .map_err(|error| match &error {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    StoreError::Conflict(format!(
                        "another workflow is already active for {}",
                        workflow.target_key.as_deref().unwrap_or("this target")
                    ))
                }
                _ => unavailable(error),
            })?;
        Ok(result.rows_affected() > 0)
    }
}

/// When a closed incident was closed (what retention compares), `None` while open.
pub(super) fn closed_at(incident: &Incident) -> Option<i64> {
    incident
        .status
        .is_terminal()
        .then(|| to_micros(incident.resolved_at.unwrap_or(incident.updated_at)))
}

/// `fingerprint@startsAt` (µs) of an Alertmanager incident: the identity of its alert.
pub(super) fn alert_key(incident: &Incident) -> Option<String> {
    match (&incident.source, &incident.fingerprint) {
        (crate::incident::Source::Alertmanager, Some(fingerprint)) => Some(format!(
            "{fingerprint}@{}",
            incident.first_seen.timestamp_micros()
        )),
        _ => None,
    }
}

/// The `incident_counts` dimensions of an incident.
pub(super) type CountKey = (&'static str, &'static str, String, &'static str);

pub(super) fn count_key(incident: &Incident) -> CountKey {
    (
        incident.status.as_str(),
        incident.severity.as_str(),
        incident.namespace.clone().unwrap_or_default(),
        incident.source.as_str(),
    )
}

/// Counter changes of one transaction, applied once per key at commit. Ordered: on PostgreSQL
/// each upsert locks its counter row until commit, and concurrent transactions (replicas
/// taking alerts at once) that locked shared counters in different orders deadlocked (each
/// then waited `deadlock_timeout`, 1 s, and after 4 retries answered 503; docs/perf.md).
pub(super) type CountDeltas = std::collections::BTreeMap<CountKey, i64>;

/// Counter rows per upsert statement (5 values each, far below both backends' limits).
const COUNTS_PER_STATEMENT: usize = 500;

/// Applies `counts` in key order, in one multi-row upsert (one round trip) per 500 keys.
pub(super) async fn flush_counts(
    conn: &mut AnyConnection,
    counts: CountDeltas,
) -> Result<(), StoreError> {
    let changed: Vec<(CountKey, i64)> = counts.into_iter().filter(|(_, d)| *d != 0).collect();
    for chunk in changed.chunks(COUNTS_PER_STATEMENT) {
        let mut builder =
            SqlBuilder::new("INSERT INTO incident_counts (status, severity, namespace, source, n)");
        builder.values(
            chunk,
            |row, ((status, severity, namespace, source), delta)| {
                row.bind(*status)
                    .bind(*severity)
                    .bind(namespace.clone())
                    .bind(*source)
                    .bind(*delta);
            },
        );
        builder.push(
            " ON CONFLICT (status, severity, namespace, source) \
             DO UPDATE SET n = incident_counts.n + excluded.n",
        );
        builder
            .build()?
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
    }
    Ok(())
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(format!("encode: {e}")))
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(id: &str, doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// ` FOR UPDATE` on PostgreSQL, nothing on SQLite (whose single writer already serialises
/// every write transaction, and whose grammar has no row locks).
pub(super) fn for_update(conn: &AnyConnection) -> &'static str {
    if is_postgres(conn) { " FOR UPDATE" } else { "" }
}

pub(super) fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name() == "PostgreSQL"
}

/// Any PostgreSQL advisory lock key of our own: replicas starting together migrate one at a
/// time (the second finds the work done).
const MIGRATION_LOCK: i64 = 0x636f_6f72_645f_6d31;

/// Applies every migration newer than the recorded version, each in its own transaction.
pub(super) async fn migrate(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let postgres = is_postgres(&conn);
    if postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = migrate_locked(&mut conn).await;
    if postgres {
        // The lock is per session: release it before the connection returns to the pool.
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn migrate_locked(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    sqlx::query(VERSION_TABLE).execute(&mut *conn).await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        .fetch_one(&mut *conn)
        .await?
        .get(0);
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        if *version == 8 {
            super::gates::backfill(&mut tx).await?;
        }
        sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(version)
            .bind(name)
            .bind(to_micros(Utc::now()))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, name, "applied store migration");
    }
    Ok(())
}

/// Runs a list query: `SELECT doc, created_at, id FROM <table> <where> ORDER BY … LIMIT`.
pub(super) async fn list_docs<T: serde::de::DeserializeOwned>(
    pool: &AnyPool,
    table: &str,
    (where_sql, binds): (String, Vec<Bind>),
    page: &PageRequest,
) -> Result<Page<T>, StoreError> {
    let mut builder = SqlBuilder::new(format!("SELECT doc, created_at, id FROM {table}"));
    push_where(&mut builder, &where_sql, binds);
    // One row more than asked tells whether there is a next page.
    builder.push(" ORDER BY created_at DESC, id DESC LIMIT ");
    builder.bind(page.limit + 1);
    if let PageStart::Offset(offset) = page.start {
        builder.push(" OFFSET ");
        builder.bind(offset);
    }
    let rows = builder
        .build()?
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    let has_more = rows.len() as i64 > page.limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(page.limit as usize) {
        let id: String = row.get(2);
        items.push(decode(&id, &row.get::<String, _>(0))?);
        last = Some((row.get::<i64, _>(1), id));
    }
    let next = match (has_more, last) {
        (true, Some((created_at_us, id))) => Some(PageStart::After { created_at_us, id }),
        _ => None,
    };
    Ok(Page { items, next })
}

pub(super) async fn count(
    pool: &AnyPool,
    table: &str,
    (where_sql, binds): (String, Vec<Bind>),
) -> Result<i64, StoreError> {
    let mut builder = SqlBuilder::new(format!("SELECT COUNT(*) FROM {table}"));
    push_where(&mut builder, &where_sql, binds);
    let row = builder
        .build()?
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    Ok(row.get(0))
}

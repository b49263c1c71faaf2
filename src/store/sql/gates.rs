//! The gates' questions (SPEC §5.3), each answered from an index so that a trigger costs the
//! same with ten workflows in the store or a million: is the target held, how often and when
//! did it last fail, how many live workflows spent the storm budget in the window.

use super::unavailable;
use crate::store::{StoreError, TargetHistory, to_micros};
use crate::workflow::Workflow;
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};

/// The columns the gates query, computed from the document on every write.
pub(super) struct GateColumns {
    pub finished_at: Option<i64>,
    pub spends_budget: i64,
    pub budget_bucket: Option<String>,
}

impl GateColumns {
    pub fn of(workflow: &Workflow) -> Self {
        GateColumns {
            finished_at: workflow.finished_at.map(to_micros),
            spends_budget: i64::from(workflow.spends_budget()),
            budget_bucket: workflow.bucket().map(|b| b.pause_key()),
        }
    }
}

pub(super) async fn target_history(
    readers: &AnyPool,
    target_key: &str,
) -> Result<TargetHistory, StoreError> {
    let mut conn = readers.acquire().await.map_err(unavailable)?;
    // The statuses of the partial unique index `workflows_one_active_per_target`.
    let active: Option<String> = sqlx::query_scalar(
        "SELECT id FROM workflows WHERE target_key = $1 \
         AND status IN ('pending', 'awaiting_approval', 'running', 'verifying') LIMIT 1",
    )
    .bind(target_key)
    .fetch_optional(&mut *conn)
    .await
    .map_err(unavailable)?;
    let failed = sqlx::query(
        "SELECT COUNT(*), MAX(finished_at) FROM workflows WHERE target_key = $1 \
         AND status IN ('failed', 'escalated') AND finished_at IS NOT NULL",
    )
    .bind(target_key)
    .fetch_one(&mut *conn)
    .await
    .map_err(unavailable)?;
    let count: i64 = failed.get(0);
    let last: Option<i64> = failed.get(1);
    Ok(TargetHistory {
        active_workflow: active,
        failed_attempts: u32::try_from(count).unwrap_or(u32::MAX),
        last_failed_at: last.and_then(DateTime::from_timestamp_micros),
    })
}

pub(super) async fn budget_spent_since(
    readers: &AnyPool,
    since: DateTime<Utc>,
) -> Result<Vec<(Option<String>, u32)>, StoreError> {
    let rows = sqlx::query(
        "SELECT budget_bucket, COUNT(*) FROM workflows \
         WHERE spends_budget = 1 AND created_at >= $1 GROUP BY budget_bucket",
    )
    .bind(to_micros(since))
    .fetch_all(readers)
    .await
    .map_err(unavailable)?;
    Ok(rows
        .iter()
        .map(|row| {
            let n: i64 = row.get(1);
            (row.get(0), u32::try_from(n).unwrap_or(u32::MAX))
        })
        .collect())
}

/// Fills the gate columns of rows written before they existed (migration 8), in chunks so a
/// large table is never held in memory. A document that no longer parses spends nothing (it
/// is reported as corrupt when read).
pub(super) async fn backfill(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    loop {
        let rows =
            sqlx::query("SELECT id, doc FROM workflows WHERE spends_budget IS NULL LIMIT 500")
                .fetch_all(&mut *conn)
                .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let id: String = row.get(0);
            let doc: String = row.get(1);
            let columns = match serde_json::from_str::<Workflow>(&doc) {
                Ok(workflow) => GateColumns::of(&workflow),
                Err(_) => GateColumns {
                    finished_at: None,
                    spends_budget: 0,
                    budget_bucket: None,
                },
            };
            sqlx::query(
                "UPDATE workflows SET finished_at = $1, spends_budget = $2, budget_bucket = $3 \
                 WHERE id = $4",
            )
            .bind(columns.finished_at)
            .bind(columns.spends_budget)
            .bind(columns.budget_bucket)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
    }
}

//! Changes checked inside the transaction: an incident's status and notes, a human's action
//! on a workflow (approve, reject, cancel). The row is locked while it is read and rewritten.

use super::builder::SqlBuilder;
use super::rows::{CountDeltas, decode, flush_counts, for_update};
use super::{SqlStore, unavailable};
use crate::incident::{Incident, IncidentStatus, Note};
use crate::store::{IncidentChange, StoreError};
use crate::workflow::{HumanAction, Workflow};
use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};

pub(super) async fn change_incident(
    tx: &mut AnyConnection,
    id: &str,
    change: IncidentChange,
    now: DateTime<Utc>,
) -> Result<Incident, StoreError> {
    let mut counts = CountDeltas::default();
    let previous = SqlStore::read_incident_to_change(tx, id).await?;
    let mut incident = previous.clone();
    if let Some(to) = change.status
        && to != incident.status
    {
        if !incident.status.can_become(to) {
            return Err(StoreError::Conflict(format!(
                "incident {id} is {} and cannot become {to}",
                incident.status
            )));
        }
        incident.status = to;
        if to == IncidentStatus::Resolved {
            incident.resolved_at = Some(now);
        }
    }
    if let Some(text) = change.note {
        incident.notes.push(Note { at: now, text });
    }
    incident.updated_at = now;
    SqlStore::write_incident(tx, &incident, Some(&previous), &mut counts).await?;
    flush_counts(tx, counts).await?;
    Ok(incident)
}

pub(super) async fn act_on_workflow(
    tx: &mut AnyConnection,
    id: &str,
    action: HumanAction,
    now: DateTime<Utc>,
) -> Result<Workflow, StoreError> {
    let mut select = SqlBuilder::new("SELECT doc FROM workflows WHERE id = ");
    select.bind(id.to_string()).push(for_update(tx));
    let row = select
        .build()?
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::NotFound(format!("workflow {id}")))?;
    let mut workflow: Workflow = decode(id, &row.get::<String, _>(0))?;
    let next = action.apply(workflow.status).map_err(|why| {
        StoreError::Conflict(format!("cannot {} workflow {id}: {why}", action.as_str()))
    })?;
    workflow.status = next;
    workflow.updated_at = now;
    if next.is_terminal() {
        workflow.finished_at = Some(now);
        if action == HumanAction::Reject {
            workflow.error = Some("rejected by an operator".into());
        }
    }
    SqlStore::write_workflow(tx, &workflow, false).await?;
    Ok(workflow)
}

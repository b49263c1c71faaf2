//! The `Store` operations on SQL: each a transaction on the writer pool (run again when it
//! loses a race to another replica) or a read on the reader pool, timed into the store
//! duration histogram.

use super::rows::{CountDeltas, count, decode, flush_counts, list_docs};
use super::{
    Backend, SqlStore, bulk, changes, denials, gates, leases, pauses, queue, retention,
    retry_raced, summary, unavailable,
};
use crate::incident::Incident;
use crate::sources::alertmanager::AlertRecord;
use crate::store::query::{incident_where, workflow_where};
use crate::store::{
    AlertBatchOutcome, AuditOutcome, DenialRecorded, IncidentChange, IncidentFilter,
    IncidentSummary, LeaseRecord, Page, PageRequest, Pause, QueueEntry, Store, StoreError,
    TargetHistory, WorkflowFilter, to_micros,
};
use crate::workflow::{HumanAction, Workflow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::time::{Duration, Instant};

#[async_trait]
impl Store for SqlStore {
    fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => "SQLite (WAL) under DATA_DIR".into(),
            Backend::Postgres => format!("PostgreSQL {}", self.path.display()),
        }
    }

    async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        sqlx::query("SELECT 1")
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(started.elapsed())
    }

    async fn insert_incident(&self, incident: &Incident) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let mut counts = CountDeltas::default();
        Self::write_incident(&mut tx, incident, None, &mut counts).await?;
        flush_counts(&mut tx, counts).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("insert_incident", started);
        Ok(())
    }

    async fn insert_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let mut counts = CountDeltas::default();
        bulk::insert_new(&mut tx, incidents, &mut counts).await?;
        flush_counts(&mut tx, counts).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("insert_incidents", started);
        Ok(())
    }

    async fn record_alerts(
        &self,
        records: &[AlertRecord],
        now: DateTime<Utc>,
    ) -> Result<AlertBatchOutcome, StoreError> {
        let started = Instant::now();
        // Alertmanager HA peers deliver one notification to several replicas at once: the
        // loser of the race on an alert's unique key runs again and finds the winner's incident.
        let outcome = retry_raced(|| async move {
            let mut tx = self.writer.begin().await.map_err(unavailable)?;
            let mut counts = CountDeltas::default();
            let (outcome, updates) =
                bulk::record_alerts(&mut tx, records, now, &mut counts).await?;
            for (previous, incident) in updates {
                Self::write_incident(&mut tx, &incident, Some(&previous), &mut counts).await?;
            }
            flush_counts(&mut tx, counts).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(outcome)
        })
        .await?;
        self.observe("record_alerts", started);
        Ok(outcome)
    }

    async fn queue_entries(&self, limit: i64) -> Result<Vec<QueueEntry>, StoreError> {
        queue::entries(&self.readers, limit).await
    }

    async fn record_audit(
        &self,
        audit_ids: &[String],
        incidents: Vec<(String, Incident)>,
        now: DateTime<Utc>,
    ) -> Result<AuditOutcome, StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let mut counts = CountDeltas::default();
        let mut fresh = bulk::mark_audit_seen(&mut tx, audit_ids, now).await?;
        let outcome_new = fresh.len() as u64;
        // An incident only for an event seen for the first time (and once per auditID).
        let new_incidents: Vec<Incident> = incidents
            .into_iter()
            .filter(|(audit_id, _)| fresh.remove(audit_id))
            .map(|(_, incident)| incident)
            .collect();
        bulk::insert_new(&mut tx, &new_incidents, &mut counts).await?;
        flush_counts(&mut tx, counts).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("record_audit", started);
        Ok(AuditOutcome {
            new_events: outcome_new,
            duplicates: audit_ids.len() as u64 - outcome_new,
            incident_ids: new_incidents.into_iter().map(|i| i.id).collect(),
        })
    }

    async fn enqueue(&self, incident_id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        queue::enqueue(&self.writer, incident_id, now).await
    }

    async fn dequeue(&self, entry: &QueueEntry) -> Result<(), StoreError> {
        queue::dequeue(&self.writer, entry).await
    }

    async fn get_incident(&self, id: &str) -> Result<Incident, StoreError> {
        let started = Instant::now();
        let mut conn = self.readers.acquire().await.map_err(unavailable)?;
        let incident = Self::read_incident(&mut conn, id).await;
        self.observe("get_incident", started);
        incident
    }

    async fn change_incident(
        &self,
        id: &str,
        change: IncidentChange,
        now: DateTime<Utc>,
    ) -> Result<Incident, StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let incident = changes::change_incident(&mut tx, id, change, now).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("change_incident", started);
        Ok(incident)
    }

    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        page: &PageRequest,
    ) -> Result<Page<Incident>, StoreError> {
        let started = Instant::now();
        let page = list_docs(
            &self.readers,
            "incidents",
            incident_where(filter, Some(&page.start)),
            page,
        )
        .await;
        self.observe("list_incidents", started);
        page
    }

    async fn summarize_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<IncidentSummary, StoreError> {
        let started = Instant::now();
        let summary = summary::summarize(&self.readers, filter).await?;
        self.observe("summarize_incidents", started);
        Ok(summary)
    }

    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let mut counts = CountDeltas::default();
        let previous = Self::read_incident_to_change(&mut tx, &workflow.incident_id).await?;
        Self::write_workflow(&mut tx, workflow, true).await?;
        let mut incident = previous.clone();
        incident.workflow_ids.push(workflow.id.clone());
        incident.updated_at = workflow.created_at;
        Self::write_incident(&mut tx, &incident, Some(&previous), &mut counts).await?;
        flush_counts(&mut tx, counts).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("insert_workflow", started);
        Ok(())
    }

    async fn get_workflow(&self, id: &str) -> Result<Workflow, StoreError> {
        let started = Instant::now();
        let row = sqlx::query("SELECT doc FROM workflows WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.readers)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("workflow {id}")))?;
        self.observe("get_workflow", started);
        decode(id, &row.get::<String, _>(0))
    }

    async fn update_workflow(&self, workflow: &Workflow) -> Result<bool, StoreError> {
        let started = Instant::now();
        let mut conn = self.writer.acquire().await.map_err(unavailable)?;
        let written = Self::write_workflow(&mut conn, workflow, false).await?;
        self.observe("update_workflow", started);
        Ok(written)
    }

    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<(Page<Workflow>, i64), StoreError> {
        let started = Instant::now();
        let items = list_docs(
            &self.readers,
            "workflows",
            workflow_where(filter, Some(&page.start)),
            page,
        )
        .await?;
        let total = count(&self.readers, "workflows", workflow_where(filter, None)).await?;
        self.observe("list_workflows", started);
        Ok((items, total))
    }

    async fn target_history(&self, target_key: &str) -> Result<TargetHistory, StoreError> {
        let started = Instant::now();
        let history = gates::target_history(&self.readers, target_key).await?;
        self.observe("target_history", started);
        Ok(history)
    }

    async fn budget_spent_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Option<String>, u32)>, StoreError> {
        let started = Instant::now();
        let spent = gates::budget_spent_since(&self.readers, since).await?;
        self.observe("budget_spent_since", started);
        Ok(spent)
    }

    async fn act_on_workflow(
        &self,
        id: &str,
        action: HumanAction,
        now: DateTime<Utc>,
    ) -> Result<Workflow, StoreError> {
        let started = Instant::now();
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let workflow = changes::act_on_workflow(&mut tx, id, action, now).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("act_on_workflow", started);
        Ok(workflow)
    }

    async fn insert_lease(&self, lease: &LeaseRecord) -> Result<(), StoreError> {
        let started = Instant::now();
        leases::insert(&self.writer, lease).await?;
        self.observe("insert_lease", started);
        Ok(())
    }

    async fn active_leases(&self, now: DateTime<Utc>) -> Result<Vec<LeaseRecord>, StoreError> {
        let started = Instant::now();
        let active = leases::active(&self.readers, now).await?;
        self.observe("active_leases", started);
        Ok(active)
    }

    async fn set_pause(&self, pause: &Pause) -> Result<(), StoreError> {
        let started = Instant::now();
        pauses::set(&self.writer, pause).await?;
        self.observe("set_pause", started);
        Ok(())
    }

    async fn clear_pause(&self, namespace: Option<&str>) -> Result<bool, StoreError> {
        let started = Instant::now();
        let cleared = pauses::clear(&self.writer, namespace).await?;
        self.observe("clear_pause", started);
        Ok(cleared)
    }

    async fn list_pauses(&self) -> Result<Vec<Pause>, StoreError> {
        pauses::list(&self.readers).await
    }

    async fn record_denial(
        &self,
        incident: &Incident,
        key: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<DenialRecorded, StoreError> {
        let started = Instant::now();
        // Two replicas denying the same object race on its open-denial key: the loser runs
        // again and refreshes the winner's incident.
        let recorded = retry_raced(|| async move {
            let mut tx = self.writer.begin().await.map_err(unavailable)?;
            let mut counts = CountDeltas::default();
            let recorded =
                denials::record(&mut tx, incident, key, per_minute, now, &mut counts).await?;
            flush_counts(&mut tx, counts).await?;
            tx.commit().await.map_err(unavailable)?;
            Ok(recorded)
        })
        .await?;
        self.observe("record_denial", started);
        Ok(recorded)
    }

    async fn note_denied_access(
        &self,
        audit_id: &str,
        denied: &crate::sources::audit::DeniedAccess,
        threshold: u32,
    ) -> Result<Option<u32>, StoreError> {
        let started = Instant::now();
        let noted = retry_raced(|| async move {
            self.note_denied_access_once(audit_id, denied, threshold)
                .await
        })
        .await?;
        self.observe("note_denied_access", started);
        Ok(noted)
    }

    async fn close_denials_before(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let started = Instant::now();
        let mut closed = 0;
        loop {
            let mut tx = self.writer.begin().await.map_err(unavailable)?;
            let mut counts = CountDeltas::default();
            let batch = denials::close_batch(&mut tx, cutoff, now, &mut counts).await?;
            flush_counts(&mut tx, counts).await?;
            tx.commit().await.map_err(unavailable)?;
            closed += batch;
            if batch < denials::CLOSE_BATCH as u64 {
                break;
            }
        }
        self.observe("close_denials", started);
        Ok(closed)
    }

    async fn purge_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let started = Instant::now();
        let cutoff = to_micros(cutoff);
        let mut tx = self.writer.begin().await.map_err(unavailable)?;
        let purged = retention::purge(&mut tx, cutoff).await?;
        tx.commit().await.map_err(unavailable)?;
        self.observe("purge", started);
        Ok(purged)
    }
}

//! Persistence, shaped by the domain: incidents, workflows, pauses.
//!
//! `sql.rs` implements it on SQLite (embedded default) and PostgreSQL (several replicas), with
//! one schema (`schema.rs`) and one filter SQL (`query.rs`) in portable SQL (BIGINT
//! microsecond timestamps, TEXT JSON documents, `$n` placeholders).

mod query;
mod schema;
pub mod sql;
#[doc(hidden)]
pub mod testing;

use crate::incident::{Incident, IncidentStatus, Severity, Source};
use crate::sources::alertmanager::AlertRecord;
use crate::workflow::{HumanAction, Workflow, WorkflowKind, WorkflowStatus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::ToSchema;

pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be used right now (I/O, locked, closed): callers answer 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The requested change is not allowed from the current state (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// A concurrent writer (another replica) won a race for the same row; the store runs such
    /// transactions again, so callers only see this when it kept losing (HTTP 503).
    #[error("store write raced a concurrent writer: {0}")]
    Raced(String),
    /// A stored document no longer parses: never silently dropped.
    #[error("stored record {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
}

/// Filters of `GET /api/v1/incidents`. Empty means "no filter".
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub namespace: Option<String>,
    /// Any of these statuses.
    pub statuses: Vec<IncidentStatus>,
    pub severity: Option<Severity>,
    pub source: Option<Source>,
    pub since: Option<DateTime<Utc>>,
}

/// Filters of `GET /api/v1/workflows`.
#[derive(Debug, Clone, Default)]
pub struct WorkflowFilter {
    pub statuses: Vec<WorkflowStatus>,
    pub namespace: Option<String>,
    pub incident_id: Option<String>,
    pub kind: Option<WorkflowKind>,
}

/// Where a page starts: an offset, or the position after the last row of the previous page
/// (keyset pagination: stable while rows are being inserted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageStart {
    Offset(i64),
    After { created_at_us: i64, id: String },
}

#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub start: PageStart,
}

/// Counts over the filtered incidents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct IncidentSummary {
    pub total: i64,
    pub active: i64,
    /// Resolved.
    pub completed: i64,
    /// Escalated (the engine could not fix it).
    pub failed: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_severity: BTreeMap<String, i64>,
}

/// A page of rows, newest first.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next: Option<PageStart>,
}

/// A remediation pause: global (`namespace: None`) or for one namespace.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Pause {
    pub namespace: Option<String>,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
}

/// The engine's permission to change some paths of a GitOps-managed object until it expires
/// (SPEC §6). The guard allows the engine's own changes to exactly these paths.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct LeaseRecord {
    pub id: String,
    pub incident_id: String,
    pub workflow_id: String,
    /// `Kind namespace/name`, for people.
    pub object: String,
    pub object_uid: String,
    /// JSON pointers the engine may change (and everything under them).
    pub paths: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl LeaseRecord {
    /// What the guard needs of it.
    pub fn to_guard(&self) -> crate::guard::view::Lease {
        crate::guard::view::Lease {
            incident_id: self.incident_id.clone(),
            object_uid: self.object_uid.clone(),
            paths: self.paths.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// What one Alertmanager notification did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AlertBatchOutcome {
    /// New incidents.
    pub created: u64,
    /// Existing incidents whose alert was delivered again (resends, retries).
    pub deduplicated: u64,
    /// Existing incidents resolved by this notification.
    pub resolved: u64,
    /// The incident of each alert, in the order of the payload.
    pub incident_ids: Vec<String>,
}

/// What one audit batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct AuditOutcome {
    /// Events not seen before.
    pub new_events: u64,
    /// Events already ingested (a resent batch).
    pub duplicates: u64,
    pub incident_ids: Vec<String>,
}

/// What became of one admission denial (`Store::record_denial`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenialRecorded {
    /// A new incident, within the per-minute budget.
    Created(String),
    /// The open incident of the same Application and object was refreshed.
    Refreshed(String),
    /// Over the per-minute budget: nothing stored.
    RateLimited,
}

/// What the gates need to know about one target's past workflows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHistory {
    /// The active workflow holding the target (at most one: the store is the lock).
    pub active_workflow: Option<String>,
    /// Attempts that did not fix it (failed or escalated workflows).
    pub failed_attempts: u32,
    /// When the last of them ended.
    pub last_failed_at: Option<DateTime<Utc>>,
}

/// An incident waiting for the pipeline, and how many times it was queued again while queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    pub incident_id: String,
    pub generation: i64,
}

/// What PATCH may change on an incident.
#[derive(Debug, Clone, Default)]
pub struct IncidentChange {
    pub status: Option<IncidentStatus>,
    pub note: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A trivial round trip; its latency goes into `/api/v1/health`.
    async fn ping(&self) -> Result<Duration, StoreError>;

    /// What it is, for `/api/v1/health` (never a password).
    fn describe(&self) -> String {
        "store".into()
    }

    async fn insert_incident(&self, incident: &Incident) -> Result<(), StoreError>;
    /// Records one Alertmanager notification in one transaction: new alerts become incidents
    /// (actionable ones are queued for the pipeline), redeliveries update `last_seen` and
    /// `occurrences`, resolved notifications resolve. All or nothing.
    async fn record_alerts(
        &self,
        records: &[AlertRecord],
        now: DateTime<Utc>,
    ) -> Result<AlertBatchOutcome, StoreError>;
    /// Incident ids waiting for the pipeline, oldest first.
    async fn queued_incidents(&self, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .queue_entries(limit)
            .await?
            .into_iter()
            .map(|entry| entry.incident_id)
            .collect())
    }
    /// The queue's entries, oldest first, each with the generation `dequeue` checks.
    async fn queue_entries(&self, limit: i64) -> Result<Vec<QueueEntry>, StoreError>;
    /// Records a batch of audit events in one transaction: their auditIDs (duplicates of
    /// earlier batches are skipped) and the incidents of the new ones.
    async fn record_audit(
        &self,
        audit_ids: &[String],
        incidents: Vec<(String, Incident)>,
        now: DateTime<Utc>,
    ) -> Result<AuditOutcome, StoreError>;
    /// Puts an incident (back) on the pipeline queue; when it is already queued, bumps the
    /// entry's generation (the consumer handling the older one must not take it off); a no-op
    /// when the incident no longer exists.
    async fn enqueue(&self, incident_id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes an entry off the queue once the pipeline handled it, unless it was enqueued again
    /// meanwhile (its generation changed: it is handled again at the next round).
    async fn dequeue(&self, entry: &QueueEntry) -> Result<(), StoreError>;
    /// Inserts all or nothing, in one transaction (one fsync for the batch).
    async fn insert_incidents(&self, incidents: &[Incident]) -> Result<(), StoreError>;
    async fn get_incident(&self, id: &str) -> Result<Incident, StoreError>;
    /// Applies a status change and/or a note atomically; `Conflict` on an illegal transition.
    async fn change_incident(
        &self,
        id: &str,
        change: IncidentChange,
        now: DateTime<Utc>,
    ) -> Result<Incident, StoreError>;
    async fn list_incidents(
        &self,
        filter: &IncidentFilter,
        page: &PageRequest,
    ) -> Result<Page<Incident>, StoreError>;
    async fn summarize_incidents(
        &self,
        filter: &IncidentFilter,
    ) -> Result<IncidentSummary, StoreError>;

    /// Stores a workflow and links it to its incident, in one transaction.
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<(), StoreError>;
    async fn get_workflow(&self, id: &str) -> Result<Workflow, StoreError>;
    /// Persists the pipeline's progress on a workflow (status, steps, timestamps). `false` when
    /// the workflow was cancelled, or interrupted by a new leader, meanwhile (nothing is
    /// written then).
    async fn update_workflow(&self, workflow: &Workflow) -> Result<bool, StoreError>;
    async fn list_workflows(
        &self,
        filter: &WorkflowFilter,
        page: &PageRequest,
    ) -> Result<(Page<Workflow>, i64), StoreError>;
    /// The active workflow and the failed attempts of one target (`namespace/Kind/name`),
    /// from an index: the cost does not depend on how many workflows exist.
    async fn target_history(&self, target_key: &str) -> Result<TargetHistory, StoreError>;
    /// Live workflows created at or after `since` that spent the storm budget, counted per
    /// bucket (its pause key; `None` for a workflow without one). From a partial index over
    /// the spending workflows only, which the budget itself keeps few.
    async fn budget_spent_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Option<String>, u32)>, StoreError>;
    /// Approve/reject/cancel, checked against the current state inside the transaction.
    async fn act_on_workflow(
        &self,
        id: &str,
        action: HumanAction,
        now: DateTime<Utc>,
    ) -> Result<Workflow, StoreError>;

    async fn insert_lease(&self, lease: &LeaseRecord) -> Result<(), StoreError>;
    /// Leases not expired at `now`, newest first (expired ones are deleted on the way).
    async fn active_leases(&self, now: DateTime<Utc>) -> Result<Vec<LeaseRecord>, StoreError>;

    async fn set_pause(&self, pause: &Pause) -> Result<(), StoreError>;
    /// `true` when a pause was removed.
    async fn clear_pause(&self, namespace: Option<&str>) -> Result<bool, StoreError>;
    async fn list_pauses(&self) -> Result<Vec<Pause>, StoreError>;

    /// Records an admission denial: refreshes the open incident with the same `key` (its
    /// Application and object), or inserts `incident` when fewer than `per_minute` admission
    /// incidents were created in the minute before `now`. One transaction.
    async fn record_denial(
        &self,
        incident: &Incident,
        key: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<DenialRecorded, StoreError>;
    /// Resolves the open admission incidents not updated since `cutoff` (their last denial),
    /// so retention can purge them; returns how many.
    async fn close_denials_before(
        &self,
        cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Counts one 403 of an identity (once per auditID: a resent batch counts nothing) and
    /// returns the number of its 403s in `[since, at]` when they reach `threshold` and no
    /// burst of this identity was reported within the window (then it is reported now).
    async fn note_denied_access(
        &self,
        audit_id: &str,
        denied: &crate::sources::audit::DeniedAccess,
        threshold: u32,
    ) -> Result<Option<u32>, StoreError>;

    /// Deletes resolved/cancelled incidents (and their workflows) closed before `cutoff`, and
    /// leases and audit dedupe entries older than it.
    async fn purge_closed_before(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Microseconds since the epoch: the stored form of every timestamp (sorts, compares, and is
/// the same type in SQLite and PostgreSQL).
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

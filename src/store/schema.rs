//! The schema, as ordered migrations recorded in `schema_version`.
//!
//! Portable SQL only: it runs unchanged on SQLite and PostgreSQL. Queryable fields are columns;
//! the whole record is a JSON document (`doc`), so adding a field needs no migration.

/// `(version, name, SQL)`. Never edit a released migration: add a new one.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "incidents, workflows, pauses",
        r#"
CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL,
    namespace   TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    closed_at   BIGINT,
    doc         TEXT NOT NULL
);
CREATE INDEX incidents_by_created ON incidents (created_at, id);
CREATE INDEX incidents_by_status ON incidents (status, created_at, id);
CREATE INDEX incidents_by_namespace ON incidents (namespace, created_at, id);
CREATE INDEX incidents_by_severity ON incidents (severity, created_at, id);
CREATE INDEX incidents_by_closed ON incidents (closed_at);

CREATE TABLE workflows (
    id           TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    status       TEXT NOT NULL,
    namespace    TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX workflows_by_created ON workflows (created_at, id);
CREATE INDEX workflows_by_incident ON workflows (incident_id);
CREATE INDEX workflows_by_status ON workflows (status, created_at, id);

CREATE TABLE pauses (
    scope       TEXT PRIMARY KEY,
    namespace   TEXT,
    reason      TEXT,
    since       BIGINT NOT NULL
);
"#,
    ),
    (
        2,
        "incident counters and namespace+status index",
        r#"
-- Counts per (status, severity, namespace, source), kept in the same transactions as the
-- incidents, so list summaries never scan the table. '' stands for "no namespace" (a NULL
-- would never conflict in the primary key).
CREATE TABLE incident_counts (
    status      TEXT NOT NULL,
    severity    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    source      TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (status, severity, namespace, source)
);
INSERT INTO incident_counts (status, severity, namespace, source, n)
    SELECT status, severity, COALESCE(namespace, ''), source, COUNT(*)
    FROM incidents GROUP BY status, severity, COALESCE(namespace, ''), source;
CREATE INDEX incidents_by_namespace_status ON incidents (namespace, status, created_at, id);
"#,
    ),
    (
        3,
        "alert identities and the pipeline queue",
        r#"
-- fingerprint@startsAt of an Alertmanager alert: redeliveries find their incident by it, and
-- the unique index makes a second incident for one alert impossible.
ALTER TABLE incidents ADD COLUMN alert_key TEXT;
CREATE UNIQUE INDEX incidents_by_alert_key ON incidents (alert_key);

-- New actionable incidents waiting for the pipeline. In the store, not in memory: a crash
-- between acknowledging an alert and processing it loses nothing.
CREATE TABLE incident_queue (
    incident_id  TEXT PRIMARY KEY REFERENCES incidents (id) ON DELETE CASCADE,
    enqueued_at  BIGINT NOT NULL
);
CREATE INDEX incident_queue_by_time ON incident_queue (enqueued_at);
"#,
    ),
    (
        4,
        "audit event dedupe",
        r#"
-- auditIDs already ingested: the API server's webhook backend resends batches.
CREATE TABLE audit_seen (
    audit_id  TEXT PRIMARY KEY,
    seen_at   BIGINT NOT NULL
);
CREATE INDEX audit_seen_by_time ON audit_seen (seen_at);
"#,
    ),
    (
        5,
        "one active workflow per target",
        r#"
-- The store is the lock: two alerts (or two replicas) racing for one target cannot both
-- start a workflow. A partial unique index, so ended workflows do not count.
ALTER TABLE workflows ADD COLUMN target_key TEXT;
CREATE UNIQUE INDEX workflows_one_active_per_target ON workflows (target_key)
    WHERE status IN ('pending', 'awaiting_approval', 'running', 'verifying');
"#,
    ),
    (
        6,
        "remediation leases",
        r#"
-- The engine's permission to change paths of a GitOps-managed object (SPEC §6). In the store
-- so that every replica's guard honours it.
CREATE TABLE leases (
    id           TEXT PRIMARY KEY,
    incident_id  TEXT NOT NULL,
    object_uid   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX leases_by_expiry ON leases (expires_at);
"#,
    ),
    (
        7,
        "one open admission incident per Application and object",
        r#"
-- The Application and object of an admission denial: a forged review stream cannot open more
-- than one incident per pair, whoever the caller claims to be.
ALTER TABLE incidents ADD COLUMN denial_key TEXT;
CREATE UNIQUE INDEX incidents_one_open_denial ON incidents (denial_key)
    WHERE closed_at IS NULL;
"#,
    ),
    (
        8,
        "the gates' questions answered by indexes",
        r#"
-- Every trigger asks: is this target held, how often did it fail and when last, how many live
-- workflows spent the storm budget in the window. Answered from these columns and indexes, the
-- cost of a trigger does not grow with the history. `spends_budget` (0/1) and `budget_bucket`
-- (the bucket's pause key) are computed from the document on every write; rows older than
-- this migration are filled in by `backfill_gate_columns` in the same transaction.
ALTER TABLE workflows ADD COLUMN finished_at BIGINT;
ALTER TABLE workflows ADD COLUMN spends_budget BIGINT;
ALTER TABLE workflows ADD COLUMN budget_bucket TEXT;
CREATE INDEX workflows_by_target ON workflows (target_key, status, finished_at);
CREATE INDEX workflows_spending ON workflows (created_at, budget_bucket) WHERE spends_budget = 1;
"#,
    ),
    (
        9,
        "leader election lock",
        r#"
-- The election's record when no Kubernetes Lease is available (detached replicas on
-- PostgreSQL): compare-and-set on `version`, expiry judged by each replica's own clock.
CREATE TABLE leader_lock (
    name          TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    acquired_at   BIGINT NOT NULL,
    renewed_at    BIGINT NOT NULL,
    duration_secs BIGINT NOT NULL,
    transitions   BIGINT NOT NULL,
    version       BIGINT NOT NULL
);
"#,
    ),
    (
        10,
        "403 counts shared by the replicas",
        r#"
-- 403s per identity (one row per auditID: a resent batch counts nothing), so a burst split
-- across replicas is still one burst. Rows older than any window are deleted as new ones come.
CREATE TABLE audit_denied (
    audit_id  TEXT PRIMARY KEY,
    identity  TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX audit_denied_by_identity ON audit_denied (identity, at);
CREATE INDEX audit_denied_by_time ON audit_denied (at);
-- When each identity's last burst was reported: once per window.
CREATE TABLE audit_denied_reported (
    identity  TEXT PRIMARY KEY,
    at        BIGINT NOT NULL
);
"#,
    ),
    (
        11,
        "queue entry generations",
        r#"
-- Enqueueing an incident that is already queued bumps its generation, and the consumer only
-- removes the generation it read: a requeue that lands while the consumer handles the older
-- entry (a pause lifted at that moment) is never lost.
ALTER TABLE incident_queue ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
"#,
    ),
];

/// Created before any migration runs.
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version     BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  BIGINT NOT NULL
)";

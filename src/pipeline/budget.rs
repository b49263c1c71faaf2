//! What spends the storm budget, and how much of it each bucket used in the current window
//! (shown by `GET /api/v1/pause`).

use super::Pipeline;
use crate::gate::Bucket;
use crate::store::{PageRequest, PageStart, StoreError, WorkflowFilter};
use crate::workflow::{Workflow, WorkflowMode, WorkflowStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Whether a workflow spends the storm budget: a live one that was let through to run. Dry
/// runs, workflows waiting for (or refused) approval, held or storm-escalated ones (never
/// started) and those that found nothing to do (`not_needed`) do not.
pub(super) fn spends_budget(workflow: &Workflow) -> bool {
    workflow.mode == WorkflowMode::Live
        && match workflow.status {
            WorkflowStatus::AwaitingApproval | WorkflowStatus::NotNeeded => false,
            WorkflowStatus::Pending | WorkflowStatus::Running | WorkflowStatus::Verifying => true,
            _ => workflow.started_at.is_some(),
        }
}

/// The bucket of a stored workflow: from its target, or its namespace for older records.
pub(super) fn bucket_of(workflow: &Workflow) -> Option<Bucket> {
    workflow
        .target_key
        .as_deref()
        .and_then(Bucket::of_target_key)
        .or_else(|| workflow.namespace.clone().map(Bucket::Namespace))
}

/// The storm budget and its use in the current window.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetUsage {
    /// Live workflows allowed per bucket within the window.
    pub per_bucket: u32,
    /// Live workflows allowed in the cluster within the window.
    pub per_cluster: u32,
    pub window_seconds: i64,
    /// Live workflows that spent the budget in the window, cluster-wide.
    pub cluster: u32,
    /// Buckets that spent some of it, busiest first.
    pub buckets: Vec<BucketUsage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BucketUsage {
    /// `namespace/<ns>` or `kind/<Kind>`.
    pub bucket: String,
    pub live_workflows: u32,
}

impl Pipeline {
    /// The newest workflows (the gates' view of the recent past).
    pub(super) async fn recent_workflows(&self) -> Result<Vec<Workflow>, StoreError> {
        let page = PageRequest {
            limit: 1000,
            start: PageStart::Offset(0),
        };
        Ok(self
            .store
            .list_workflows(&WorkflowFilter::default(), &page)
            .await?
            .0
            .items)
    }

    /// How much of the storm budget each bucket spent in the window ending `now`.
    pub async fn budget_usage(&self, now: DateTime<Utc>) -> Result<BudgetUsage, StoreError> {
        let window_start = now - self.budget.window;
        let mut per_bucket: BTreeMap<String, u32> = BTreeMap::new();
        let mut cluster = 0;
        for workflow in self.recent_workflows().await? {
            if workflow.created_at < window_start || !spends_budget(&workflow) {
                continue;
            }
            cluster += 1;
            if let Some(bucket) = bucket_of(&workflow) {
                *per_bucket.entry(bucket.label()).or_default() += 1;
            }
        }
        let mut buckets: Vec<BucketUsage> = per_bucket
            .into_iter()
            .map(|(bucket, live_workflows)| BucketUsage {
                bucket,
                live_workflows,
            })
            .collect();
        buckets.sort_by_key(|b| std::cmp::Reverse(b.live_workflows));
        Ok(BudgetUsage {
            per_bucket: self.budget.per_bucket,
            per_cluster: self.budget.per_cluster,
            window_seconds: self.budget.window.num_seconds(),
            cluster,
            buckets,
        })
    }
}

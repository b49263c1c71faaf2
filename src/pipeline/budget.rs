//! What spends the storm budget, and how much of it each bucket used in the current window
//! (shown by `GET /api/v1/pause`).

use super::Pipeline;
use crate::gate::Bucket;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

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
    /// Live workflows that spent the storm budget in the window ending `now`, per bucket
    /// pause key (see `Workflow::spends_budget`).
    pub(super) async fn budget_spent(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Option<String>, u32)>, StoreError> {
        self.store
            .budget_spent_since(now - self.budget.window)
            .await
    }

    /// How much of the storm budget each bucket spent in the window ending `now`.
    pub async fn budget_usage(&self, now: DateTime<Utc>) -> Result<BudgetUsage, StoreError> {
        let mut per_bucket: BTreeMap<String, u32> = BTreeMap::new();
        let mut cluster = 0;
        for (key, n) in self.budget_spent(now).await? {
            cluster += n;
            if let Some(key) = key {
                *per_bucket
                    .entry(Bucket::from_pause_key(&key).label())
                    .or_default() += n;
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

//! Bounds on what the token-less compatibility listener may write: anyone who reaches its port
//! can post, so its incidents and triggers share one small cluster-wide token bucket, and its
//! triggers stop while too many workflows wait for a human's approval (each one a row in the
//! store and an item in a human's queue).

use super::AppState;
use crate::error::ApiError;
use crate::store::{PageRequest, PageStart, WorkflowFilter};
use crate::workflow::WorkflowStatus;
use actix_web::http::StatusCode;
use std::sync::Mutex;
use std::time::Instant;

/// Writes (triggers and incidents) the compatibility listener accepts per minute, in bursts of
/// at most as many.
pub const COMPAT_WRITES_PER_MINUTE: u32 = 30;
/// Compatibility triggers are refused while this many workflows await approval.
pub const COMPAT_MAX_AWAITING_APPROVAL: i64 = 100;

/// Labels of `compat_requests_rejected_total{reason}`.
pub const REJECT_REASONS: &[&str] = &["rate_limited", "approval_queue_full"];

/// The listener's token bucket: full at start, refilled continuously.
#[derive(Debug)]
pub struct CompatLimit {
    bucket: Mutex<(f64, Instant)>,
}

impl Default for CompatLimit {
    fn default() -> Self {
        CompatLimit {
            bucket: Mutex::new((f64::from(COMPAT_WRITES_PER_MINUTE), Instant::now())),
        }
    }
}

impl CompatLimit {
    /// Takes a token; `Err(seconds)` until one is back.
    fn take(&self, now: Instant) -> Result<(), u64> {
        let capacity = f64::from(COMPAT_WRITES_PER_MINUTE);
        let per_second = capacity / 60.0;
        // A poisoned lock still holds a usable count.
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, at) = *bucket;
        let tokens =
            (tokens + now.saturating_duration_since(at).as_secs_f64() * per_second).min(capacity);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            Ok(())
        } else {
            *bucket = (tokens, now);
            Err(((1.0 - tokens) / per_second).ceil().max(1.0) as u64)
        }
    }

    /// A write on the compatibility listener: admitted, or 429 with `Retry-After`.
    pub fn admit_write(&self, state: &AppState) -> Result<(), ApiError> {
        self.take(Instant::now()).map_err(|seconds| {
            reject(state, "rate_limited");
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "the compatibility listener accepts {COMPAT_WRITES_PER_MINUTE} triggers and incidents a minute; retry in {seconds} s"
                ),
            )
            .with_details(serde_json::json!({ "retry_after_seconds": seconds }))
        })
    }

    /// A trigger that would wait for approval: refused while the approval queue is full.
    pub async fn admit_held_trigger(&self, state: &AppState) -> Result<(), ApiError> {
        let filter = WorkflowFilter {
            statuses: vec![WorkflowStatus::AwaitingApproval],
            ..Default::default()
        };
        let page = PageRequest {
            limit: 1,
            start: PageStart::Offset(0),
        };
        let (_, waiting) = state.store.list_workflows(&filter, &page).await?;
        if waiting < COMPAT_MAX_AWAITING_APPROVAL {
            return Ok(());
        }
        reject(state, "approval_queue_full");
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "approval_queue_full",
            format!(
                "{waiting} workflows await approval (at most {COMPAT_MAX_AWAITING_APPROVAL}); approve or reject them (GET /api/v1/workflows?status=awaiting_approval) before triggering more on the compatibility listener"
            ),
        )
        .with_details(serde_json::json!({ "awaiting_approval": waiting, "limit": COMPAT_MAX_AWAITING_APPROVAL, "retry_after_seconds": 60 })))
    }
}

fn reject(state: &AppState, reason: &str) {
    state
        .metrics
        .compat_requests_rejected
        .with_label_values(&[reason])
        .inc();
    tracing::warn!(reason, "compatibility listener write refused");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_cut_at_the_budget_and_tokens_come_back_with_time() {
        let limit = CompatLimit::default();
        let start = Instant::now();
        for _ in 0..COMPAT_WRITES_PER_MINUTE {
            assert_eq!(limit.take(start), Ok(()));
        }
        assert_eq!(limit.take(start), Err(2), "one token every 2 s");
        assert_eq!(limit.take(start + Duration::from_secs(2)), Ok(()));
        assert!(limit.take(start + Duration::from_secs(2)).is_err());
    }
}

//! One `workflow{workflow_id, target, method}` span around each live workflow's task, and one
//! `workflow step` event per recorded step inside it, so a single workflow's log is one filter
//! away (`span.workflow_id` in the JSON logs). `method` is filled in once detection has found
//! the deployment method (for a multi-target workflow: the method of the ladder running now).

use crate::workflow::Workflow;
use serde_json::Value;
use std::cell::Cell;
use std::future::Future;
use tracing::Instrument;

/// The task's log state: its span and how many of its workflow's steps were logged.
struct StepLog {
    span: tracing::Span,
    logged: Cell<usize>,
}

tokio::task_local! {
    static STEP_LOG: StepLog;
}

/// The span of one workflow.
fn span(workflow: &Workflow) -> tracing::Span {
    tracing::info_span!(
        "workflow",
        workflow_id = %workflow.id,
        target = workflow.target_key.as_deref().unwrap_or_default(),
        method = tracing::field::Empty,
    )
}

/// A workflow's span, made before its run takes the workflow.
pub(super) struct WorkflowSpan(StepLog);

impl WorkflowSpan {
    pub(super) fn of(workflow: &Workflow) -> Self {
        WorkflowSpan(StepLog {
            span: span(workflow),
            // Steps it already had (a workflow picked up again) are not logged again.
            logged: Cell::new(workflow.steps.len()),
        })
    }

    /// Runs `task` (the workflow's run) inside the span.
    pub(super) fn around<F: Future>(self, task: F) -> impl Future<Output = F::Output> {
        let span = self.0.span.clone();
        STEP_LOG.scope(self.0, task).instrument(span)
    }
}

/// Logs the steps `workflow` recorded since the last call, in its span (nothing outside a
/// workflow's task: dry runs and detached workflows are recorded on the request's path).
pub(super) fn log_new_steps(workflow: &Workflow) {
    let _ = STEP_LOG.try_with(|log| {
        for step in workflow.steps.iter().skip(log.logged.get()) {
            log_step(&log.span, step);
        }
        log.logged.set(workflow.steps.len());
    });
}

fn log_step(span: &tracing::Span, step: &Value) {
    let text = |key: &str| step.get(key).and_then(Value::as_str);
    if let Some(method) = text("deployment_method") {
        span.record("method", method);
    }
    let order = step.get("order").and_then(Value::as_u64);
    tracing::info!(
        parent: span,
        order,
        action = text("action"),
        outcome = text("outcome"),
        channel = text("channel"),
        layer = text("layer"),
        detail = text("detail"),
        "workflow step"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{WorkflowKind, WorkflowMode};
    use chrono::Utc;
    use serde_json::json;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Log lines, as the JSON formatter writes them.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn workflow() -> Workflow {
        let mut workflow = Workflow::new(
            "inc-1",
            Some("shop".into()),
            WorkflowKind::Remediation,
            WorkflowMode::Live,
            Utc::now(),
        );
        workflow.target_key = Some("shop/Deployment/cart".into());
        workflow
    }

    #[test]
    fn each_step_is_logged_once_in_its_workflows_span() {
        let captured = Captured::default();
        let writer = captured.clone();
        // As `telemetry::init` formats the process's logs.
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut picked_up = workflow();
        picked_up
            .steps
            .push(json!({"order": 0, "action": "detect"}));
        let id = picked_up.id.clone();
        runtime.block_on(WorkflowSpan::of(&picked_up).around(async move {
            let mut workflow = picked_up;
            workflow.steps.push(
                json!({"order": 1, "action": "rollout_restart", "outcome": "done",
                "channel": "helm", "deployment_method": "helm"}),
            );
            log_new_steps(&workflow);
            // A status change persisted without a new step logs nothing.
            log_new_steps(&workflow);
            workflow
                .steps
                .push(json!({"order": 1, "action": "verify", "outcome": "passed"}));
            log_new_steps(&workflow);
            tracing::info!("workflow finished");
        }));
        // Outside the workflow's task, nothing.
        log_new_steps(&workflow());

        let lines = captured.lines();
        let actions: Vec<&str> = lines
            .iter()
            .filter(|l| l["message"] == "workflow step")
            .map(|l| l["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["rollout_restart", "verify"], "{lines:?}");
        assert_eq!(lines.len(), 3, "{lines:?}");
        for line in &lines {
            assert_eq!(line["span"]["name"], "workflow", "{line}");
            assert_eq!(line["span"]["workflow_id"], id.as_str(), "{line}");
            assert_eq!(line["span"]["target"], "shop/Deployment/cart", "{line}");
            assert_eq!(line["span"]["method"], "helm", "{line}");
        }
        assert_eq!(lines[0]["channel"], "helm");
        assert_eq!(lines[0]["outcome"], "done");
    }
}

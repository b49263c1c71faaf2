use super::progress::{Progress, busy, progress};
use super::*;

fn app(sync: &str, health: &str, phase: &str, started: &str) -> Value {
    json!({"status": {"sync": {"status": sync}, "health": {"status": health, "message": "m"},
           "operationState": {"phase": phase, "startedAt": started, "message": "boom"}}})
}

#[test]
fn only_our_finished_operation_decides() {
    let before = "2026-01-01T00:00:00Z";
    let cases = [
        // The old operation's result is not ours.
        (
            app("Synced", "Healthy", "Succeeded", before),
            Progress::Running,
        ),
        (app("Synced", "Healthy", "Running", "t2"), Progress::Running),
        (
            app("Synced", "Healthy", "Succeeded", "t2"),
            Progress::Done(SyncOutcome::Healthy("sync Synced, health Healthy".into())),
        ),
        (
            app("Synced", "Progressing", "Succeeded", "t2"),
            Progress::Running,
        ),
        (
            app("Synced", "Degraded", "Succeeded", "t2"),
            Progress::Done(SyncOutcome::Failed(
                "sync Synced, health Degraded: m".into(),
            )),
        ),
        (
            app("OutOfSync", "Healthy", "Failed", "t2"),
            Progress::Done(SyncOutcome::Failed("the sync failed: boom".into())),
        ),
    ];
    for (state, expected) in cases {
        assert_eq!(progress(&state, before), expected, "{state}");
    }
    let mut pending = app("Synced", "Healthy", "Succeeded", "t2");
    pending["operation"] = json!({"sync": {}});
    assert_eq!(progress(&pending, before), Progress::Running);
    assert!(busy(&pending).is_some());
}

#[test]
fn tracking_names_locate_their_application() {
    let view = crate::guard::GuardView::new(crate::guard::review::tests::default_config());
    let control = vec!["openshift-gitops".to_string()];
    assert_eq!(
        locate("shop", &view, &control),
        AppRef {
            namespace: "openshift-gitops".into(),
            name: "shop".into()
        }
    );
    assert_eq!(
        locate("team-a_cart", &view, &control),
        AppRef {
            namespace: "team-a".into(),
            name: "cart".into()
        }
    );
}

//! Denials become incidents (`source: admission`), written by a background task so the review
//! never waits for the store.
//!
//! Reviews reach the webhook without a token, so everything in them is caller-chosen: the user,
//! the object, the Application named in the tracking-id. A forged stream must not grow the
//! store or this process without bound, hence:
//! - one open incident per (Application, object), whoever the user (the store enforces it);
//! - at most `DENIAL_INCIDENTS_PER_MINUTE` new incidents a minute, cluster-wide (counted in the
//!   store; the excess is counted in `denials_not_recorded_total{reason="rate_limited"}`);
//! - incidents without a new denial for `DENIAL_INCIDENT_TTL` are resolved, so retention
//!   purges them;
//! - the per-object throttle below is an [`ExpiringMap`] (bounded by time and count).
//!
//! The throttle is shared with the review side: a repeated denial of an object whose incident
//! was just written is dropped by the handler, before its incident is built and before the
//! recorder task (on the background runtime, another thread) is woken. A controller retrying
//! a denied update in a loop then costs the reviews nothing but a lookup (issue 18).

use super::admission::AdmissionRequest;
use super::clip::{clip, shown};
use super::review::Decision;
use crate::expiring::ExpiringMap;
use crate::incident::{Incident, Severity, Source, Target};
use crate::metrics::Metrics;
use crate::store::{DenialRecorded, Store};
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const QUEUE: usize = 1024;
/// A repeated denial of one object refreshes its open incident at most this often.
const REFRESH_EVERY: Duration = Duration::from_secs(60);
/// Objects the throttle remembers at most.
const THROTTLE_CAP: usize = 10_000;
/// Longest `changed_paths` annotation, in bytes.
const PATHS_ANNOTATION_MAX: usize = 4096;
/// Longest incident description, in bytes: the denial message names caller-chosen paths, and
/// up to `QUEUE` incidents wait in memory while the store is slow.
const DESCRIPTION_MAX: usize = 4096;

/// Label values of `coordination_engine_denials_not_recorded_total{reason}`.
pub const NOT_RECORDED_REASONS: &[&str] = &["rate_limited", "queue_full", "store_unavailable"];

/// How denials are recorded (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct DenialPolicy {
    /// New denial incidents a minute, cluster-wide.
    pub per_minute: u32,
    /// Open denial incidents without a new denial for this long are resolved.
    pub ttl: Duration,
}

impl Default for DenialPolicy {
    fn default() -> Self {
        DenialPolicy {
            per_minute: 30,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

impl DenialPolicy {
    pub fn from_settings(settings: &crate::config::Settings) -> Self {
        DenialPolicy {
            per_minute: settings.denial_incidents_per_minute,
            ttl: settings.denial_incident_ttl,
        }
    }

    /// How often the closer looks for stale incidents: often enough for a short TTL to mean
    /// what it says, never more than once a minute for the default day.
    fn close_every(&self) -> Duration {
        (self.ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }
}

/// One denial on its way to the store.
struct Denial {
    incident: Incident,
    /// The Application and the object: what one open incident stands for.
    key: String,
}

/// Objects whose open incident was written within the refresh interval: their repeats cost
/// no write, and (checked by the review side first) no wake-up of the recorder either.
#[derive(Clone)]
struct Recent(Arc<Mutex<ExpiringMap<String, ()>>>);

impl Recent {
    fn new(policy: &DenialPolicy) -> Self {
        let refresh = REFRESH_EVERY.min(policy.ttl / 2);
        Recent(Arc::new(Mutex::new(ExpiringMap::new(
            refresh,
            THROTTLE_CAP,
        ))))
    }

    fn contains(&self, key: &str) -> bool {
        self.lock().get(key).is_some()
    }

    fn insert(&self, key: String) {
        self.lock().insert(key, ());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringMap<String, ()>> {
        // The map stays consistent whatever panicked while holding it.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The review side: hands denials to the recorder without ever blocking.
#[derive(Clone)]
pub struct DenialRecorder {
    queue: mpsc::Sender<Denial>,
    recent: Recent,
    metrics: Metrics,
}

impl DenialRecorder {
    /// Starts the recorder task and the closer of stale denial incidents.
    pub fn spawn(store: Arc<dyn Store>, metrics: Metrics, policy: DenialPolicy) -> Self {
        let (queue, receiver) = mpsc::channel::<Denial>(QUEUE);
        let recent = Recent::new(&policy);
        tokio::spawn(record_loop(
            store.clone(),
            metrics.clone(),
            policy,
            recent.clone(),
            receiver,
        ));
        tokio::spawn(close_loop(store, policy));
        DenialRecorder {
            queue,
            recent,
            metrics,
        }
    }

    /// Queues the incident of a denial; drops it (counted) if the queue is full. A repeat of
    /// a denial whose incident was just written is not queued (the recorder would skip it).
    pub fn record(&self, request: &AdmissionRequest, decision: &Decision, now: DateTime<Utc>) {
        let key = denial_key(request, decision);
        if self.recent.contains(&key) {
            return;
        }
        let denial = Denial {
            incident: denial_incident(request, decision, now),
            key,
        };
        if self.queue.try_send(denial).is_err() {
            self.not_recorded("queue_full");
            tracing::warn!(uid = %shown(&request.uid), "denial recorder queue full; incident not recorded");
        }
    }

    fn not_recorded(&self, reason: &str) {
        self.metrics
            .denials_not_recorded
            .with_label_values(&[reason])
            .inc();
    }
}

async fn record_loop(
    store: Arc<dyn Store>,
    metrics: Metrics,
    policy: DenialPolicy,
    recently: Recent,
    mut receiver: mpsc::Receiver<Denial>,
) {
    let not_recorded = |reason: &str| {
        metrics
            .denials_not_recorded
            .with_label_values(&[reason])
            .inc()
    };
    while let Some(denial) = receiver.recv().await {
        // Queued before an earlier denial of the same object was written.
        if recently.contains(&denial.key) {
            continue;
        }
        let now = Utc::now();
        match store
            .record_denial(&denial.incident, &denial.key, policy.per_minute, now)
            .await
        {
            Ok(DenialRecorded::Created(_)) => {
                // A new incident (a refresh joins an open one: not counted again).
                metrics.count_incident(
                    Source::Admission,
                    crate::pipeline::incident_layer(&denial.incident),
                );
                recently.insert(denial.key);
            }
            Ok(DenialRecorded::Refreshed(_)) => {
                recently.insert(denial.key);
            }
            Ok(DenialRecorded::RateLimited) => not_recorded("rate_limited"),
            Err(error) => {
                not_recorded("store_unavailable");
                tracing::warn!(%error, "cannot record an admission denial as an incident");
            }
        }
    }
}

/// Longest TTL the closer works with: a longer one does not fit chrono's arithmetic.
const TTL_MAX: chrono::Duration = chrono::Duration::days(100 * 365);

/// `policy.ttl` as a chrono duration, clamped to [`TTL_MAX`] (with an error in the log): a
/// TTL too long for chrono must not stop the closer, or nothing would ever be closed.
fn closer_ttl(ttl: Duration) -> chrono::Duration {
    match chrono::Duration::from_std(ttl) {
        Ok(ttl) if ttl <= TTL_MAX => ttl,
        _ => {
            tracing::error!(
                ttl_seconds = ttl.as_secs(),
                clamped_to_days = TTL_MAX.num_days(),
                "DENIAL_INCIDENT_TTL is too long; clamped"
            );
            TTL_MAX
        }
    }
}

async fn close_loop(store: Arc<dyn Store>, policy: DenialPolicy) {
    let ttl = closer_ttl(policy.ttl);
    let mut ticker = tokio::time::interval(policy.close_every());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = Utc::now();
        // Never `None` for a clamped TTL and a clock within chrono's range.
        let cutoff = now
            .checked_sub_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        match store.close_denials_before(cutoff, now).await {
            Ok(0) => {}
            Ok(closed) => {
                tracing::info!(closed, "closed denial incidents past DENIAL_INCIDENT_TTL")
            }
            Err(error) => {
                tracing::warn!(%error, "closing stale denial incidents failed; will retry")
            }
        }
    }
}

/// `<app> <group>/<kind> <namespace>/<name>`, each part clipped: the identity one open
/// incident stands for (never the caller-chosen user).
pub fn denial_key(request: &AdmissionRequest, decision: &Decision) -> String {
    // By resource when known: a `scale` of a Deployment is the Deployment.
    let (group, what) = if request.resource.resource.is_empty() {
        (&request.kind.group, &request.kind.kind)
    } else {
        (&request.resource.group, &request.resource.resource)
    };
    format!(
        "{} {}/{} {}/{}",
        shown(decision.application.as_deref().unwrap_or_default()),
        shown(group),
        shown(what),
        shown(request.namespace()),
        shown(request.object_name())
    )
}

/// The incident describing a denied change. Every caller-chosen string in it is clipped.
pub fn denial_incident(
    request: &AdmissionRequest,
    decision: &Decision,
    now: DateTime<Utc>,
) -> Incident {
    let name = shown(request.object_name()).into_owned();
    let kind = shown(&request.kind.kind).into_owned();
    let user = shown(&request.user_info.username).into_owned();
    let namespace = shown(request.namespace());
    let object = format!("{namespace}/{kind}/{name}");
    let mut incident = Incident::new(
        Source::Admission,
        format!("Manual change to ArgoCD-managed {kind} {name} denied"),
        Severity::Low,
        now,
    );
    incident.description = clip(&decision.message, DESCRIPTION_MAX).into_owned();
    incident.namespace = Some(namespace.into_owned()).filter(|ns| !ns.is_empty());
    incident.target = Some(Target {
        kind: kind.clone(),
        name,
    });
    incident.issue_type = "gitops_drift_attempt".into();
    incident.created_by = Some(user.clone());
    incident.annotations.insert("object".into(), object);
    incident
        .annotations
        .insert("operation".into(), request.operation.as_str().to_string());
    incident.annotations.insert("user".into(), user);
    if let Some(app) = &decision.application {
        incident
            .annotations
            .insert("argocd_application".into(), shown(app).into_owned());
    }
    if !decision.changed_paths.is_empty() {
        let mut paths = clip(&decision.changed_paths.join(","), PATHS_ANNOTATION_MAX).into_owned();
        if decision.more_changed_paths > 0 {
            paths.push_str(&format!(" and {} more", decision.more_changed_paths));
        }
        incident.annotations.insert("changed_paths".into(), paths);
    }
    incident
        .annotations
        .insert("admission_uid".into(), shown(&request.uid).into_owned());
    incident
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::admission::{AdmissionReview, validate};
    use crate::guard::review::Outcome;

    fn denied_review(name: &str) -> AdmissionReview<'static> {
        AdmissionReview::from_json(serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": name,
                "namespace": "prod",
                "operation": "DELETE",
                "userInfo": {"username": "alice"}
            }
        }))
        .expect("review")
    }

    fn denial() -> Decision {
        Decision {
            outcome: Outcome::Deny,
            reason: "manual_change",
            message: "denied".into(),
            application: Some("shop".into()),
            changed_paths: Vec::new(),
            more_changed_paths: 0,
            trace: Vec::new(),
        }
    }

    /// The recorder's task runs on the background runtime: a repeat of a denial just written
    /// must not wake it (nor build an incident), a denial of another object must.
    #[test]
    fn a_repeat_of_a_just_written_denial_is_not_queued() {
        let (queue, mut receiver) = mpsc::channel(QUEUE);
        let recorder = DenialRecorder {
            queue,
            recent: Recent::new(&DenialPolicy::default()),
            metrics: Metrics::new(),
        };
        let (cart, shop) = (denied_review("cart"), denied_review("shop"));
        let (cart, shop) = (
            validate(&cart).expect("valid"),
            validate(&shop).expect("valid"),
        );
        let now = Utc::now();
        recorder.record(cart, &denial(), now);
        let first = receiver.try_recv().expect("the first denial is queued");
        // What the recorder task does once the incident is written.
        recorder.recent.insert(first.key);
        recorder.record(cart, &denial(), now);
        assert!(receiver.try_recv().is_err(), "the repeat was queued");
        recorder.record(shop, &denial(), now);
        assert!(
            receiver.try_recv().is_ok(),
            "a denial of another object must be queued"
        );
    }

    #[test]
    fn a_ttl_too_long_for_chrono_is_clamped_not_ignored() {
        assert_eq!(
            closer_ttl(Duration::from_secs(3600)),
            chrono::Duration::hours(1)
        );
        for huge in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(200 * 365 * 86_400),
        ] {
            let ttl = closer_ttl(huge);
            assert_eq!(ttl, TTL_MAX);
            assert!(Utc::now().checked_sub_signed(ttl).is_some());
        }
    }
}

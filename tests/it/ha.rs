//! Several replicas on one PostgreSQL: three real engine processes, one elected executor.
//! Detached they elect on a database row; attached, on a Lease the mock API server keeps with
//! the API server's optimistic concurrency, and its request log shows who wrote what.

use crate::helpers::wait_for;
use crate::kube_mock::{MockApiServer, Recorded, Writes};
use crate::process::start_server;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const TOKEN: &str = "ha-test-token";

struct Replica {
    name: String,
    child: tokio::process::Child,
    addr: SocketAddr,
}

struct Replicas {
    _dirs: Vec<tempfile::TempDir>,
    members: Vec<Replica>,
    http: reqwest::Client,
}

impl Replicas {
    /// `n` replicas `replica-0…` on `database`, plain HTTP (TLS is tested elsewhere).
    async fn start(n: usize, database: &str, extra: &[(&str, &str)]) -> Replicas {
        let mut dirs = Vec::new();
        let mut members = Vec::new();
        for i in 0..n {
            let dir = tempfile::tempdir().expect("dir");
            let name = format!("replica-{i}");
            let mut env = vec![
                ("API_TOKEN", TOKEN),
                ("TLS_MODE", "off"),
                ("DATABASE_URL", database),
                ("POD_NAME", name.as_str()),
            ];
            env.extend(extra.iter().copied());
            let (child, addr) = start_server(dir.path(), &env).await;
            members.push(Replica { name, child, addr });
            dirs.push(dir);
        }
        Replicas {
            _dirs: dirs,
            members,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.members[i].addr)
    }

    async fn get(&self, i: usize, path: &str) -> reqwest::Result<Value> {
        self.http
            .get(self.url(i, path))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .json()
            .await
    }

    async fn post(&self, i: usize, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(i, path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Each live replica's `leader` object from `/api/v1/health` (`None` for a dead one).
    async fn leader_views(&self, alive: &[usize]) -> Vec<Option<Value>> {
        let mut views = Vec::new();
        for i in 0..self.members.len() {
            let view = if alive.contains(&i) {
                self.get(i, "/api/v1/health")
                    .await
                    .ok()
                    .map(|h| h["leader"].clone())
            } else {
                None
            };
            views.push(view);
        }
        views
    }

    /// Waits until exactly one of `alive` says it leads and every other agrees on the holder;
    /// returns its index.
    async fn one_leader(&self, alive: &[usize], within: Duration) -> usize {
        wait_for(
            "exactly one leader that every replica names",
            within,
            Duration::from_millis(100),
            || async {
                let views = self.leader_views(alive).await;
                let leaders: Vec<usize> = views
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.as_ref().is_some_and(|v| v["is_leader"] == true))
                    .map(|(i, _)| i)
                    .collect();
                let [leader] = leaders[..] else { return None };
                let name = &self.members[leader].name;
                let agreed = views
                    .iter()
                    .flatten()
                    .all(|v| v["holder"] == json!(name) && v["enabled"] == true);
                agreed.then_some(leader)
            },
        )
        .await
    }

    async fn workflow(&self, i: usize, id: &str) -> Value {
        self.get(i, &format!("/api/v1/workflows/{id}"))
            .await
            .expect("workflow")
    }

    async fn workflow_reaching(
        &self,
        i: usize,
        id: &str,
        statuses: &[&str],
        within: Duration,
    ) -> Value {
        wait_for(
            &format!("workflow {id} to become one of {statuses:?}"),
            within,
            Duration::from_millis(100),
            || async {
                let workflow = self.workflow(i, id).await;
                statuses
                    .contains(&workflow["status"].as_str().unwrap_or_default())
                    .then_some(workflow)
            },
        )
        .await
    }

    /// Whether replica `i`'s guard allows `username`'s edit of an ArgoCD-managed Deployment's
    /// replicas (the guard table's case).
    async fn allows(&self, i: usize, username: &str) -> bool {
        let review = crate::leases::replicas_review(username);
        let (status, answer) = self.post(i, "/webhooks/validate", &review).await;
        assert_eq!(status, 200, "{answer}");
        answer["response"]["allowed"].as_bool().expect("allowed")
    }

    /// Triggers a crash-loop remediation of `ns/kind/name` through replica `i` (202).
    async fn trigger(&self, i: usize, ns: &str, kind: &str, name: &str) -> String {
        let (status, answer) = self
            .post(
                i,
                "/api/v1/remediation/trigger",
                &trigger_body(ns, kind, name),
            )
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["workflow_id"].as_str().expect("id").to_string()
    }

    /// The workflow once it finished, as replica `i` reads it.
    async fn finished(&self, i: usize, id: &str) -> Value {
        self.workflow_reaching(
            i,
            id,
            &["succeeded", "failed", "escalated", "interrupted"],
            Duration::from_secs(20),
        )
        .await
    }

    fn kill(&mut self, i: usize) -> impl std::future::Future<Output = ()> + '_ {
        let child = &mut self.members[i].child;
        child.start_kill().expect("SIGKILL");
        async move {
            child.wait().await.expect("killed");
        }
    }

    fn signal(&self, i: usize, signal: libc::c_int) {
        let pid = self.members[i].child.id().expect("running") as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal})");
    }
}

fn others(n: usize, not: &[usize]) -> Vec<usize> {
    (0..n).filter(|i| !not.contains(i)).collect()
}

async fn fresh_database() -> Option<String> {
    coordination_engine::tls::install_default_provider();
    coordination_engine::store::testing::fresh_postgres_database().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_replicas_elect_one_executor_store_one_incident_per_alert_and_fail_over() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let mut replicas = Replicas::start(3, &database, &[]).await;
    let leader = replicas
        .one_leader(&[0, 1, 2], Duration::from_secs(5))
        .await;
    // Alertmanager HA peers deliver one notification to every replica at once.
    let notification = crate::alertmanager::sample("alertmanager-sample.json");
    let answers = futures_util::future::join_all(
        (0..3).map(|i| replicas.post(i, "/webhooks/alertmanager", &notification)),
    )
    .await;
    let mut incident_ids = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        incident_ids.push(body["incident_ids"].clone());
    }
    assert!(
        incident_ids.windows(2).all(|w| w[0] == w[1]),
        "every replica answers with the same incident: {incident_ids:?}"
    );
    for i in 0..3 {
        let page = replicas.get(i, "/api/v1/incidents").await.expect("list");
        assert_eq!(page["total"], 1, "replica {i}: {page}");
    }

    // The API server's audit backend is load-balanced: a burst of 403s split over the three
    // replicas is still one burst, reported once.
    let burst = crate::helpers::sample("audit", "forbidden-burst.json");
    let events = burst["items"].as_array().expect("items").clone();
    for (i, chunk) in events.chunks(2).enumerate() {
        let mut batch = burst.clone();
        batch["items"] = Value::Array(chunk.to_vec());
        let (status, body) = replicas.post(i % 3, "/webhooks/audit", &batch).await;
        assert_eq!(status, 200, "{body}");
    }
    let bursts = replicas
        .get(1, "/api/v1/incidents?source=audit")
        .await
        .expect("list");
    assert_eq!(bursts["total"], 1, "{bursts}");
    assert!(
        bursts["incidents"][0]["title"]
            .as_str()
            .is_some_and(|t| t.contains("denied 5 times")),
        "{bursts}"
    );

    // A remediation lease recorded through any replica's store reaches every replica's guard
    // within its 2 s refresh: the engine may then change exactly those paths, a person may not.
    let engine = "system:serviceaccount:self-healing-platform:coordination-engine";
    for i in 0..3 {
        assert!(!replicas.allows(i, engine).await, "no lease yet");
    }
    let store = coordination_engine::store::SqlStore::connect_postgres(
        &database,
        None,
        Duration::from_secs(5),
        coordination_engine::metrics::Metrics::new(),
    )
    .await
    .expect("store");
    let now = chrono::Utc::now();
    coordination_engine::store::Store::insert_lease(
        &store,
        &coordination_engine::store::LeaseRecord {
            id: "lease-ha".into(),
            incident_id: "inc-ha".into(),
            workflow_id: "wf-ha".into(),
            object: "Deployment prod/cart".into(),
            object_uid: "uid-cart".into(),
            paths: vec!["/spec/replicas".into()],
            created_at: now,
            expires_at: now + chrono::Duration::minutes(10),
        },
    )
    .await
    .expect("lease");
    let recorded = Instant::now();
    for i in 0..3 {
        wait_for(
            "every replica's guard to honour the lease",
            Duration::from_secs(10),
            Duration::from_millis(100),
            || async { replicas.allows(i, engine).await.then_some(()) },
        )
        .await;
        assert!(
            !replicas.allows(i, "alice").await,
            "a person is still refused"
        );
    }
    eprintln!("lease seen by every guard after {:?}", recorded.elapsed());

    // The leader dies: another replica takes over once the row goes unrenewed (15 s).
    let killed_at = Instant::now();
    replicas.kill(leader).await;
    let alive = others(3, &[leader]);
    let next = replicas.one_leader(&alive, Duration::from_secs(25)).await;
    assert_ne!(next, leader);
    assert!(killed_at.elapsed() < Duration::from_secs(25));
    let view = replicas.get(next, "/api/v1/health").await.expect("health");
    assert_eq!(
        view["leader"]["lock"],
        "database row coordination-engine-leader"
    );

    // A graceful stop (SIGTERM: a rollout, a drain) hands the lock over: the last replica
    // leads at its next try, not after the 15 s lease.
    let stopped_at = Instant::now();
    replicas.signal(next, libc::SIGTERM);
    let last = others(3, &[leader, next]);
    // Without the hand-over this takes at least the 15 s lease.
    let third = replicas.one_leader(&last, Duration::from_secs(14)).await;
    assert_eq!(third, last[0]);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(14),
        "handed over in {:?}",
        stopped_at.elapsed()
    );
}

/// A deployment in `shop` whose rollout never completes (verification waits), and the
/// crash-looping `api` pod in `prod` whose deletion heals it.
async fn cluster_mock() -> MockApiServer {
    let stuck_path = "/apis/apps/v1/namespaces/shop/deployments/stuck";
    let stuck = crate::helpers::cluster::deployment("shop", "stuck", json!({}), 0);
    let mut lists = crate::helpers::cluster::api_pod_chain(2, json!({}));
    lists.insert(stuck_path.to_string(), stuck.clone());
    let mut writes: Writes = crate::helpers::cluster::pod_deletion();
    writes.insert(
        ("PATCH".to_string(), stuck_path.to_string()),
        vec![(200, stuck)],
    );
    let (key, answer) = crate::helpers::cluster::event_answer("shop");
    writes.insert(key, answer);
    MockApiServer::start_with(lists, writes).await
}

/// The election's Lease as the mock API server keeps it.
fn leader_lease(mock: &MockApiServer) -> Value {
    mock.lease("self-healing-platform", "coordination-engine-leader")
        .expect("the Lease exists")
}

/// Writes to cluster objects: not reads, not the election's Lease, not the Events recorded.
fn object_writes(requests: &[Recorded]) -> Vec<&Recorded> {
    requests
        .iter()
        .filter(|r| {
            r.method != "GET" && !r.path.contains("/leases") && !r.path.ends_with("/events")
        })
        .collect()
}

fn trigger_body(ns: &str, kind: &str, name: &str) -> Value {
    json!({"namespace": ns, "resource_type": kind, "resource_name": name, "issue_type": "crash_loop"})
}

async fn attached_replicas(
    mock: &MockApiServer,
    database: &str,
    checkpoint: &str,
) -> (Replicas, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = mock.kubeconfig(dir.path()).display().to_string();
    let replicas = Replicas::start(
        3,
        database,
        &[
            ("KUBECONFIG", kubeconfig.as_str()),
            ("WORKLOAD_CHECKPOINT_TIMEOUT", checkpoint),
        ],
    )
    .await;
    (replicas, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_trigger_runs_once_on_the_leader_and_a_killed_leader_is_replaced() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let mock = cluster_mock().await;
    let (mut replicas, _kubeconfig_dir) = attached_replicas(&mock, &database, "60s").await;
    let leader = replicas
        .one_leader(&[0, 1, 2], Duration::from_secs(5))
        .await;
    let lease = leader_lease(&mock);
    assert_eq!(
        lease["spec"]["holderIdentity"],
        json!(replicas.members[leader].name)
    );
    let follower = others(3, &[leader])[0];

    // A trigger on a follower is stored, and the leader runs it: one set of writes, its own.
    let id = replicas.trigger(follower, "prod", "pod", "api-7d9f").await;
    let done = replicas.finished(follower, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["executor"]["identity"],
        json!(replicas.members[leader].name)
    );
    let requests = mock.requests();
    let writes = object_writes(&requests);
    assert_eq!(writes.len(), 1, "executed once: {writes:?}");
    assert_eq!(writes[0].method, "DELETE");
    assert!(
        writes[0]
            .user_agent
            .contains(&replicas.members[leader].name),
        "written by the leader: {}",
        writes[0].user_agent
    );

    // The leader dies in the middle of a workflow: another replica takes the Lease within
    // 20 s, interrupts that workflow, and runs the next trigger.
    let stuck = replicas
        .trigger(follower, "shop", "deployment", "stuck")
        .await;
    replicas
        .workflow_reaching(follower, &stuck, &["verifying"], Duration::from_secs(20))
        .await;
    let killed_at = Instant::now();
    replicas.kill(leader).await;
    let alive = others(3, &[leader]);
    let next = replicas.one_leader(&alive, Duration::from_secs(20)).await;
    assert!(
        killed_at.elapsed() <= Duration::from_secs(20),
        "{:?}",
        killed_at.elapsed()
    );
    let lease = leader_lease(&mock);
    assert_eq!(
        lease["spec"]["holderIdentity"],
        json!(replicas.members[next].name)
    );
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    let interrupted = replicas
        .workflow_reaching(next, &stuck, &["interrupted"], Duration::from_secs(10))
        .await;
    assert!(
        interrupted["error"]
            .as_str()
            .is_some_and(|e| e.contains(&replicas.members[leader].name) && e.contains("verify")),
        "names the dead executor and the step: {interrupted}"
    );
    let id = replicas.trigger(next, "prod", "pod", "api-7d9f").await;
    let done = replicas.finished(next, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["executor"]["identity"],
        json!(replicas.members[next].name)
    );
    assert_eq!(done["executor"]["transitions"], 1);
    mock.stop().await;
}

/// A leader frozen past its lease (SIGSTOP: a long pause, a partition) is replaced; when it
/// wakes up it knows at once that it no longer leads and writes nothing, although its
/// workflow's checkpoint ran out while it slept and its next rung would have written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_leader_is_replaced_and_writes_nothing_after_it_wakes() {
    let Some(database) = fresh_database().await else {
        return;
    };
    let mock = cluster_mock().await;
    let (replicas, _kubeconfig_dir) = attached_replicas(&mock, &database, "3s").await;
    let leader = replicas
        .one_leader(&[0, 1, 2], Duration::from_secs(5))
        .await;
    let old_name = replicas.members[leader].name.clone();
    let follower = others(3, &[leader])[0];
    // The same target triggered on every replica at once: one active workflow (the store's
    // unique index is the lock), the others are told which one holds it.
    let body = trigger_body("shop", "deployment", "stuck");
    let answers = futures_util::future::join_all(
        (0..3).map(|i| replicas.post(i, "/api/v1/remediation/trigger", &body)),
    )
    .await;
    let started: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 202)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(started.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 409).count(),
        2,
        "{answers:?}"
    );
    let stuck = started[0]["workflow_id"].as_str().expect("id").to_string();
    replicas
        .workflow_reaching(follower, &stuck, &["verifying"], Duration::from_secs(20))
        .await;

    replicas.signal(leader, libc::SIGSTOP);
    let frozen_at = mock.requests().len();
    let alive = others(3, &[leader]);
    let next = replicas.one_leader(&alive, Duration::from_secs(25)).await;
    replicas
        .workflow_reaching(next, &stuck, &["interrupted"], Duration::from_secs(10))
        .await;
    let woke_at = Instant::now();
    replicas.signal(leader, libc::SIGCONT);
    let view = wait_for(
        "the woken replica to know it does not lead",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let view = replicas.get(leader, "/api/v1/health").await.ok()?;
            (view["leader"]["is_leader"] == false).then_some(view)
        },
    )
    .await;
    assert!(
        woke_at.elapsed() < Duration::from_secs(3),
        "{:?}",
        woke_at.elapsed()
    );
    // Within a renew period it also names the new holder.
    wait_for(
        "the woken replica to name the new holder",
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let view = replicas.get(leader, "/api/v1/health").await.ok()?;
            (view["leader"]["holder"] == json!(replicas.members[next].name)).then_some(())
        },
    )
    .await;
    drop(view);
    // Its workflow stays interrupted: its late progress is refused by the store too.
    let after = replicas.workflow(next, &stuck).await;
    assert_eq!(after["status"], "interrupted", "{after}");
    let requests = mock.requests();
    let late: Vec<&Recorded> = object_writes(&requests[frozen_at..])
        .into_iter()
        .filter(|r| r.user_agent.contains(&old_name))
        .collect();
    assert!(
        late.is_empty(),
        "the old leader wrote after losing the Lease: {late:?}"
    );
    mock.stop().await;
}

//! Attached replicas: an election on the mock API server's Lease, one executor of writes.

use super::{Replicas, fresh_database, others, trigger_body};
use crate::helpers::wait_for;
use crate::kube_mock::{MockApiServer, Recorded, Writes};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

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

    assert_the_leader_runs_a_follower_trigger_once(&replicas, &mock, leader, follower).await;

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
    let stuck = one_workflow_for_concurrent_triggers(&replicas).await;
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

/// A trigger on a follower is stored, and the leader runs it: one set of writes, its own.
async fn assert_the_leader_runs_a_follower_trigger_once(
    replicas: &Replicas,
    mock: &MockApiServer,
    leader: usize,
    follower: usize,
) {
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
}

/// The same target triggered on every replica at once: one active workflow (the store's
/// unique index is the lock), the others are told which one holds it. Returns its id.
async fn one_workflow_for_concurrent_triggers(replicas: &Replicas) -> String {
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
    started[0]["workflow_id"].as_str().expect("id").to_string()
}

//! Several replicas on one PostgreSQL: three real engine processes, one elected executor.
//! Detached they elect on a database row; attached, on a Lease the mock API server keeps with
//! the API server's optimistic concurrency, and its request log shows who wrote what.

mod attached;
mod detached;

use crate::helpers::wait_for;
use crate::process::start_server;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

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

fn trigger_body(ns: &str, kind: &str, name: &str) -> Value {
    json!({"namespace": ns, "resource_type": kind, "resource_name": name, "issue_type": "crash_loop"})
}

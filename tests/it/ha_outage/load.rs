//! The clients that keep creating and listing incidents, and how their answers are judged.

use super::{REPLICAS, TOKEN};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request of the load and how it was answered.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub(super) replica: usize,
    pub(super) sent: Instant,
    pub(super) answered: Instant,
    pub(super) what: String,
    /// Status and body, or the transport error (a reset, a timeout…).
    pub(super) answer: Result<(u16, Value), String>,
}

impl Outcome {
    pub(super) fn status(&self) -> Option<u16> {
        self.answer.as_ref().ok().map(|(status, _)| *status)
    }
}

pub(super) struct Load {
    pub(super) http: reqwest::Client,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) outcomes: Mutex<Vec<Outcome>>,
    pub(super) stop: AtomicBool,
}

impl Load {
    async fn send(&self, replica: usize, what: String, request: reqwest::RequestBuilder) {
        let sent = Instant::now();
        let answer = match request.bearer_auth(TOKEN).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.json::<Value>().await {
                    Ok(body) => Ok((status, body)),
                    Err(error) => Err(format!("{status} without a JSON body: {error}")),
                }
            }
            Err(error) => Err(format!("{error:?}")),
        };
        self.outcomes.lock().expect("outcomes").push(Outcome {
            replica,
            sent,
            answered: Instant::now(),
            what,
            answer,
        });
    }

    /// Creates incidents and lists them, one request after the other, until stopped.
    pub(super) async fn client(self: Arc<Self>, replica: usize, client: usize) {
        let base = format!("http://{}", self.addrs[replica]);
        let mut n = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let title = format!("r{replica}-c{client}-{n}");
            let create = self
                .http
                .post(format!("{base}/api/v1/incidents"))
                .json(&json!({"title": title, "namespace": "outage"}));
            self.send(replica, format!("POST {title}"), create).await;
            let list = self.http.get(format!("{base}/api/v1/incidents?limit=5"));
            self.send(replica, "GET list".into(), list).await;
            n += 1;
        }
    }

    pub(super) fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().expect("outcomes").clone()
    }

    /// Whether every replica has answered a request sent after `since` with `status`.
    pub(super) fn every_replica_answered(&self, status: u16, since: Instant) -> bool {
        let outcomes = self.snapshot();
        (0..REPLICAS).all(|replica| {
            outcomes
                .iter()
                .any(|o| o.replica == replica && o.sent >= since && o.status() == Some(status))
        })
    }
}

/// A right answer: 201 with the incident, 200 with a page, or 503 in the error shape with
/// code `unavailable`. Anything else (a 500, a reset, a timeout) is returned as the reason.
pub(super) fn wrong_answer(outcome: &Outcome) -> Option<String> {
    let (status, body) = match &outcome.answer {
        Ok(answer) => answer,
        Err(error) => return Some(format!("no answer: {error}")),
    };
    let right = match (outcome.what.starts_with("POST"), *status) {
        (true, 201) => body["incident_id"].is_string(),
        (false, 200) => body["incidents"].is_array() && body["total"].is_i64(),
        (_, 503) => body["error"]["code"] == "unavailable" && body["request_id"].is_string(),
        _ => false,
    };
    (!right).then(|| format!("{status} {body}"))
}

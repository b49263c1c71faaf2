//! A KServe v1 protocol client (SPEC §7): readiness `GET /v1/models/{m}`, prediction
//! `POST /v1/models/{m}:predict` with `{"instances": …}`, a per-call timeout (`KSERVE_TIMEOUT`)
//! and a circuit breaker, so a model that is down costs one fast failure, not a timeout per
//! incident. Predictions are decoded as numbers whatever their JSON form (the Go engine's
//! int-only decoding broke on float models).

use super::discovery::{DISCOVERY_LIMIT, DISCOVERY_TIMEOUT, choose, served_models};
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;
mod wire;

use wire::{clip, read_json};
pub use wire::{numbers, service_url};

/// Consecutive failures that open the circuit.
const OPEN_AFTER: u32 = 3;
/// How long an open circuit refuses calls before it lets one probe through.
const OPEN_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: circuit open after {failures} failures (next probe in {retry_in_s}s)")]
    CircuitOpen {
        model: String,
        failures: u32,
        retry_in_s: u64,
    },
    #[error("model {model}: {reason}")]
    Failed { model: String, reason: String },
}

impl ModelError {
    /// What went wrong, without the model's name (for messages that already name it).
    pub fn reason(&self) -> String {
        match self {
            ModelError::CircuitOpen {
                failures,
                retry_in_s,
                ..
            } => format!("circuit open after {failures} failures (next probe in {retry_in_s}s)"),
            ModelError::Failed { reason, .. } => reason.clone(),
        }
    }
}

/// The breaker's state, as `/api/v1/models` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Circuit {
    Closed,
    Open,
    /// The open period is over: the next call is a probe.
    HalfOpen,
}

impl Circuit {
    pub fn as_str(self) -> &'static str {
        match self {
            Circuit::Closed => "closed",
            Circuit::Open => "open",
            Circuit::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    opened_at: Option<Instant>,
    /// A half-open probe is in flight.
    probing: bool,
}

/// How the name in `/v1/models/{m}` is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSource {
    /// `KSERVE_*_MODEL` names it.
    Explicit,
    /// Asked from the server with `GET /v1/models` (and asked again after a 404).
    Discovered,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Explicit => "explicit",
            NameSource::Discovered => "discovered",
        }
    }
}

enum Naming {
    Explicit(String),
    /// Discover; among several served models, prefer the one named `preferred`.
    Discover {
        preferred: String,
    },
}

/// The largest readiness or prediction answer read.
const ANSWER_LIMIT: usize = 8 * 1024 * 1024;

/// One model served by KServe.
pub struct Model {
    /// Our name for it: `anomaly-detector`, `predictive-analytics`.
    pub name: String,
    /// `http://{service}-predictor.{namespace}.svc:8080`, or the explicit URL.
    pub base_url: String,
    naming: Naming,
    /// The name found by discovery, until a 404 says it is gone.
    discovered: Mutex<Option<String>>,
    /// One discovery at a time: a burst of incidents while the name is unknown asks once.
    discovering: tokio::sync::Mutex<()>,
    http: reqwest::Client,
    timeout: Duration,
    breaker: Mutex<Breaker>,
    open_for: Duration,
}

/// An answer that arrived (any status): the model server is reachable.
struct Answer {
    status: reqwest::StatusCode,
    body: Value,
}

impl Model {
    /// `model`: the name in `/v1/models/{m}`, or `None` to discover it (preferring one named
    /// `preferred` when the server serves several).
    pub fn new(
        name: &str,
        base_url: &str,
        model: Option<&str>,
        preferred: &str,
        timeout: Duration,
    ) -> Result<Self, String> {
        Ok(Model {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').into(),
            naming: match model {
                Some(model) => Naming::Explicit(model.into()),
                None => Naming::Discover {
                    preferred: preferred.into(),
                },
            },
            discovered: Mutex::new(None),
            discovering: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .build()
                .map_err(|e| format!("cannot build the KServe client: {e}"))?,
            timeout,
            breaker: Mutex::new(Breaker::default()),
            open_for: OPEN_FOR,
        })
    }

    /// A shorter open period (tests).
    pub fn with_open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }

    /// The setting that names this model: `KSERVE_ANOMALY_DETECTOR_MODEL`, …
    pub fn setting(&self) -> String {
        format!(
            "KSERVE_{}_MODEL",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }

    pub fn name_source(&self) -> NameSource {
        match self.naming {
            Naming::Explicit(_) => NameSource::Explicit,
            Naming::Discover { .. } => NameSource::Discovered,
        }
    }

    /// The name in `/v1/models/{m}` as known now: the explicit one, or the last discovered
    /// (`None` before a discovery succeeded).
    pub fn served_name(&self) -> Option<String> {
        match &self.naming {
            Naming::Explicit(name) => Some(name.clone()),
            Naming::Discover { .. } => self.lock_discovered().clone(),
        }
    }

    /// `anomaly-detector (model 'model', discovered)`, for messages.
    pub fn describe(&self) -> String {
        match self.served_name() {
            Some(name) => format!(
                "{} (model '{name}', {})",
                self.name,
                self.name_source().as_str()
            ),
            None => format!("{} (model name not discovered yet)", self.name),
        }
    }

    fn lock_discovered(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.discovered.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn circuit(&self) -> Circuit {
        let breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match breaker.opened_at {
            None => Circuit::Closed,
            Some(at) if at.elapsed() < self.open_for => Circuit::Open,
            Some(_) => Circuit::HalfOpen,
        }
    }

    fn admit(&self) -> Result<(), ModelError> {
        let mut breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        let Some(at) = breaker.opened_at else {
            return Ok(());
        };
        let elapsed = at.elapsed();
        if elapsed < self.open_for {
            return Err(ModelError::CircuitOpen {
                model: self.name.clone(),
                failures: breaker.failures,
                retry_in_s: self.open_for.saturating_sub(elapsed).as_secs(),
            });
        }
        // Half open: this call is the probe; the others wait for its outcome (still open).
        if breaker.probing {
            return Err(ModelError::CircuitOpen {
                model: self.name.clone(),
                failures: breaker.failures,
                retry_in_s: 0,
            });
        }
        breaker.probing = true;
        Ok(())
    }

    fn record(&self, ok: bool) {
        let mut breaker = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        breaker.probing = false;
        if ok {
            *breaker = Breaker::default();
        } else {
            breaker.failures += 1;
            // A failed probe re-opens at once; otherwise after OPEN_AFTER in a row.
            if breaker.opened_at.is_some() || breaker.failures >= OPEN_AFTER {
                breaker.opened_at = Some(Instant::now());
            }
        }
    }

    fn failed(&self, reason: String) -> ModelError {
        ModelError::Failed {
            model: self.name.clone(),
            reason,
        }
    }

    /// One call through the breaker, reading at most `limit` bytes of JSON. Any HTTP answer
    /// below 500 means the server is up (a 4xx is the caller's fault or a missing model, not
    /// an outage: it must not open the circuit).
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        limit: usize,
    ) -> Result<Answer, ModelError> {
        self.admit()?;
        let (outcome, healthy) = match request.send().await {
            Err(e) => (Err(self.failed(e.to_string())), false),
            Ok(response) => {
                let status = response.status();
                let healthy = status.is_success() || status.is_client_error();
                match read_json(response, limit).await {
                    Ok(body) => (Ok(Answer { status, body }), healthy),
                    Err(e) => (Err(self.failed(format!("{status}: {e}"))), healthy),
                }
            }
        };
        self.record(healthy);
        outcome
    }

    /// The name to call: the explicit one, the cached discovery, or a new discovery.
    pub async fn resolve(&self) -> Result<String, ModelError> {
        match &self.naming {
            Naming::Explicit(name) => Ok(name.clone()),
            Naming::Discover { .. } => {
                if let Some(name) = self.lock_discovered().clone() {
                    return Ok(name);
                }
                let _one_at_a_time = self.discovering.lock().await;
                // Another call may have discovered it while this one waited.
                let cached = self.lock_discovered().clone();
                match cached {
                    Some(name) => Ok(name),
                    None => self.discover().await,
                }
            }
        }
    }

    /// `GET /v1/models` (KServe v1 answers `{"models": ["name", …]}`): the only model, or the
    /// one named as preferred. Cached until a 404 says it is gone.
    async fn discover(&self) -> Result<String, ModelError> {
        let Naming::Discover { preferred } = &self.naming else {
            return self.resolve_explicit();
        };
        let url = format!("{}/v1/models", self.base_url);
        let request = self
            .http
            .get(&url)
            .timeout(DISCOVERY_TIMEOUT.min(self.timeout));
        let answer = self.call(request, DISCOVERY_LIMIT).await?;
        if !answer.status.is_success() {
            return Err(self.failed(format!(
                "GET {url} (model discovery) answered {}: {}",
                answer.status,
                clip(&answer.body)
            )));
        }
        let served = served_models(&answer.body).ok_or_else(|| {
            self.failed(format!(
                "GET {url} answered no model list: {}",
                clip(&answer.body)
            ))
        })?;
        let name = choose(&served, preferred)
            .map_err(|why| self.failed(format!("{url} {why}; set {} to choose", self.setting())))?;
        *self.lock_discovered() = Some(name.clone());
        tracing::info!(model = %self.name, served_as = %name, url = %self.base_url, "KServe model name discovered");
        Ok(name)
    }

    fn resolve_explicit(&self) -> Result<String, ModelError> {
        self.served_name()
            .ok_or_else(|| self.failed("no model name".into()))
    }

    /// Forgets a discovered name the server no longer serves.
    fn forget(&self, name: &str) {
        let mut discovered = self.lock_discovered();
        if discovered.as_deref() == Some(name) {
            *discovered = None;
        }
    }

    /// Calls `/v1/models/{m}{suffix}`. A 404 for a discovered name (the model was renamed or
    /// redeployed) forgets it, discovers again and, when the name changed, retries once.
    async fn on_model(&self, suffix: &str, body: Option<&Value>) -> Result<Value, ModelError> {
        let mut name = self.resolve().await?;
        for attempt in 0..2 {
            let url = format!("{}/v1/models/{name}{suffix}", self.base_url);
            let request = match body {
                Some(body) => self.http.post(&url).json(body),
                None => self.http.get(&url),
            };
            let answer = self.call(request, ANSWER_LIMIT).await?;
            if answer.status.is_success() {
                return Ok(answer.body);
            }
            if answer.status != reqwest::StatusCode::NOT_FOUND {
                return Err(self.failed(format!("{}: {}", answer.status, clip(&answer.body))));
            }
            let missing = format!("KServe model '{name}' does not exist at {}", self.base_url);
            if self.name_source() == NameSource::Explicit || attempt == 1 {
                return Err(self.failed(missing));
            }
            self.forget(&name);
            let again = self.discover().await?;
            if again == name {
                return Err(self.failed(missing));
            }
            name = again;
        }
        Err(self.failed(format!("KServe model '{name}' does not exist")))
    }

    /// `GET /v1/models/{m}`: whether the model says it is ready.
    pub async fn ready(&self) -> Result<bool, ModelError> {
        let body = self.on_model("", None).await?;
        Ok(body.get("ready").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `POST /v1/models/{m}:predict`: the raw `predictions` array.
    pub async fn predict(&self, instances: Value) -> Result<Vec<Value>, ModelError> {
        let body = self
            .on_model(":predict", Some(&json!({ "instances": instances })))
            .await?;
        body.get("predictions")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| self.failed(format!("no predictions array in {}", clip(&body))))
    }
}

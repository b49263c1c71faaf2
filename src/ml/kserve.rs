//! A KServe v1 protocol client (SPEC §7): readiness `GET /v1/models/{m}`, prediction
//! `POST /v1/models/{m}:predict` with `{"instances": …}`, a per-call timeout (`KSERVE_TIMEOUT`)
//! and a circuit breaker, so a model that is down costs one fast failure, not a timeout per
//! incident. Predictions are decoded as numbers whatever their JSON form (the Go engine's
//! int-only decoding broke on float models).

use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// One model served by KServe.
pub struct Model {
    /// Our name for it: `anomaly-detector`, `predictive-analytics`.
    pub name: String,
    /// `http://{service}-predictor.{namespace}.svc:8080`, or the explicit URL.
    pub base_url: String,
    /// The name in `/v1/models/{m}` (the InferenceService's name).
    pub model: String,
    http: reqwest::Client,
    breaker: Mutex<Breaker>,
    open_for: Duration,
}

impl Model {
    pub fn new(name: &str, base_url: &str, model: &str, timeout: Duration) -> Result<Self, String> {
        Ok(Model {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').into(),
            model: model.into(),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .build()
                .map_err(|e| format!("cannot build the KServe client: {e}"))?,
            breaker: Mutex::new(Breaker::default()),
            open_for: OPEN_FOR,
        })
    }

    /// A shorter open period (tests).
    pub fn with_open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
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

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ModelError> {
        self.admit()?;
        let failed = |reason: String| ModelError::Failed {
            model: self.name.clone(),
            reason,
        };
        // `healthy`: whether the model itself answered (a 4xx is the caller's fault, not the
        // model's: it must not open the circuit).
        let (outcome, healthy) = async {
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return (Err(failed(e.to_string())), false),
            };
            let status = response.status();
            let body: Value = match response.json().await {
                Ok(body) => body,
                Err(e) => return (Err(failed(format!("{status}: not JSON: {e}"))), false),
            };
            if status.is_success() {
                (Ok(body), true)
            } else {
                (
                    Err(failed(format!("{status}: {body}"))),
                    status.is_client_error(),
                )
            }
        }
        .await;
        self.record(healthy);
        outcome
    }

    /// `GET /v1/models/{m}`: whether the model says it is ready.
    pub async fn ready(&self) -> Result<bool, ModelError> {
        let url = format!("{}/v1/models/{}", self.base_url, self.model);
        let body = self.call(self.http.get(url)).await?;
        Ok(body.get("ready").and_then(Value::as_bool).unwrap_or(false))
    }

    /// `POST /v1/models/{m}:predict`: the raw `predictions` array.
    pub async fn predict(&self, instances: Value) -> Result<Vec<Value>, ModelError> {
        let url = format!("{}/v1/models/{}:predict", self.base_url, self.model);
        let body = self
            .call(self.http.post(url).json(&json!({ "instances": instances })))
            .await?;
        body.get("predictions")
            .and_then(Value::as_array)
            .cloned()
            .ok_or_else(|| ModelError::Failed {
                model: self.name.clone(),
                reason: format!("no predictions array in {body}"),
            })
    }
}

/// A prediction as numbers: `3`, `0.7`, `"0.7"`, `[0.1, 0.9]`, `{"score": 0.7}`. Object fields
/// come in key order (alphabetical): callers that need named fields read them by name.
pub fn numbers(prediction: &Value) -> Vec<f64> {
    match prediction {
        Value::Number(n) => n.as_f64().into_iter().collect(),
        Value::String(s) => s.trim().parse().ok().into_iter().collect(),
        Value::Bool(b) => vec![if *b { 1.0 } else { 0.0 }],
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Object(fields) => fields.values().flat_map(numbers).collect(),
        Value::Null => Vec::new(),
    }
}

/// The base URL of a KServe predictor service: `{service}-predictor` unless the name already
/// ends so (the Go engine's README shows both spellings).
pub fn service_url(service: &str, namespace: &str) -> (String, String) {
    let model = service.strip_suffix("-predictor").unwrap_or(service);
    (
        format!("http://{model}-predictor.{namespace}.svc:8080"),
        model.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_decode_as_numbers_whatever_their_form() {
        assert_eq!(numbers(&json!(3)), vec![3.0]);
        assert_eq!(numbers(&json!(0.75)), vec![0.75]);
        assert_eq!(numbers(&json!("0.5")), vec![0.5]);
        assert_eq!(numbers(&json!([0.1, [2, 3.5]])), vec![0.1, 2.0, 3.5]);
        assert_eq!(numbers(&json!({"score": -1})), vec![-1.0]);
        assert!(numbers(&json!(null)).is_empty());
    }

    #[test]
    fn service_names_with_or_without_the_predictor_suffix() {
        assert_eq!(
            service_url("anomaly-detector", "ml"),
            (
                "http://anomaly-detector-predictor.ml.svc:8080".into(),
                "anomaly-detector".into()
            )
        );
        assert_eq!(
            service_url("anomaly-detector-predictor", "ml").1,
            "anomaly-detector"
        );
    }

    async fn failing(open_for: Duration) -> Model {
        crate::tls::install_default_provider();
        // Nothing listens on port 9 of 127.0.0.1: every call fails fast.
        let model = Model::new("m", "http://127.0.0.1:9", "m", Duration::from_millis(200))
            .expect("model")
            .with_open_for(open_for);
        for _ in 0..3 {
            assert!(matches!(
                model.ready().await,
                Err(ModelError::Failed { .. })
            ));
        }
        model
    }

    #[tokio::test]
    async fn the_breaker_opens_after_three_failures() {
        let model = failing(Duration::from_secs(3600)).await;
        assert_eq!(model.circuit(), Circuit::Open);
        assert!(matches!(
            model.predict(json!([[1.0]])).await,
            Err(ModelError::CircuitOpen { failures: 3, .. })
        ));
    }

    #[tokio::test]
    async fn after_the_open_period_one_probe_goes_through_and_a_failed_probe_reopens() {
        let model = failing(Duration::ZERO).await;
        assert_eq!(model.circuit(), Circuit::HalfOpen);
        // The probe reaches the (absent) model and fails: open again, one more failure.
        assert!(matches!(
            model.ready().await,
            Err(ModelError::Failed { .. })
        ));
        assert_eq!(
            model.breaker.lock().map(|b| b.failures).unwrap_or_default(),
            4
        );
    }
}

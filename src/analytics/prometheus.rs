//! A Prometheus HTTP API client (`PROMETHEUS_URL`): instant and range queries. On OpenShift the
//! Thanos querier wants a bearer token (`PROMETHEUS_TOKEN_FILE`, re-read at every query so a
//! rotated ServiceAccount token keeps working; a file caught empty mid-rotation keeps the last
//! good token) and trusts the service CA (`PROMETHEUS_CA_FILE`).

use super::AnalyticsError;
use crate::token_file::{OutboundToken, TokenFile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One labelled sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One labelled series of `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct Prometheus {
    base: String,
    token: OutboundToken,
    http: reqwest::Client,
}

fn number(value: &Value) -> Option<f64> {
    value.as_str()?.parse().ok()
}

fn labels(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl Prometheus {
    pub fn new(
        base: &str,
        token_file: Option<Arc<TokenFile>>,
        ca_pem: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("PROMETHEUS_CA_FILE is not a PEM bundle: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Prometheus {
            base: base.trim_end_matches('/').to_string(),
            token: token_file.map_or(OutboundToken::None, OutboundToken::File),
            http: builder
                .build()
                .map_err(|e| format!("cannot build the Prometheus client: {e}"))?,
        })
    }

    async fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, AnalyticsError> {
        let mut request = self.http.get(format!("{}{path}", self.base)).query(params);
        if let Some(token) = self
            .token
            .current()
            .await
            .map_err(AnalyticsError::Upstream)?
        {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| {
            AnalyticsError::Unreachable(format!("Prometheus at {}: {e}", self.base))
        })?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| {
            AnalyticsError::Upstream(format!("Prometheus answered {status} with no JSON: {e}"))
        })?;
        if body["status"] != "success" {
            return Err(AnalyticsError::Upstream(format!(
                "Prometheus answered {status}: {} {}",
                body["errorType"].as_str().unwrap_or_default(),
                body["error"].as_str().unwrap_or_default()
            )));
        }
        Ok(body["data"].clone())
    }

    /// `GET /api/v1/query`: an instant vector (scalars come back as one unlabelled sample).
    pub async fn instant(&self, query: &str) -> Result<Vec<Sample>, AnalyticsError> {
        let data = self
            .get("/api/v1/query", &[("query", query.to_string())])
            .await?;
        let result = &data["result"];
        if data["resultType"] == "scalar" {
            return Ok(number(&result[1])
                .map(|value| Sample {
                    labels: BTreeMap::new(),
                    value,
                })
                .into_iter()
                .collect());
        }
        Ok(result
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                Some(Sample {
                    labels: labels(&item["metric"]),
                    value: number(&item["value"][1])?,
                })
            })
            .collect())
    }

    /// `GET /api/v1/query_range` over the last `window`, one point per `step`.
    pub async fn range(
        &self,
        query: &str,
        window: Duration,
        step: Duration,
    ) -> Result<Vec<Series>, AnalyticsError> {
        let end = chrono::Utc::now().timestamp() as f64;
        let start = end - window.as_secs_f64();
        let params = [
            ("query", query.to_string()),
            ("start", format!("{start:.0}")),
            ("end", format!("{end:.0}")),
            ("step", format!("{}s", step.as_secs().max(1))),
        ];
        let data = self.get("/api/v1/query_range", &params).await?;
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| Series {
                labels: labels(&item["metric"]),
                points: item["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| Some((p[0].as_f64()?, number(&p[1])?)))
                    .filter(|(_, v)| v.is_finite())
                    .collect(),
            })
            .collect())
    }
}

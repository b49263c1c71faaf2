//! The argocd-server REST API, used instead of the Kubernetes API when `ARGOCD_API_URL` is set.

use super::{AppRef, ArgoChannel};
use crate::execute::ExecError;
use crate::token_file::OutboundToken;
use serde_json::Value;
use std::time::Duration;

/// The argocd-server REST API.
#[derive(Clone)]
pub(super) struct Rest {
    pub(super) base: String,
    /// `ARGOCD_TOKEN`, or `ARGOCD_TOKEN_FILE` read again before each request (rotation).
    pub(super) token: OutboundToken,
    pub(super) http: reqwest::Client,
}

impl Rest {
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ExecError> {
        let request = match self.token.current().await.map_err(ExecError::Transient)? {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ExecError::Transient(format!("argocd-server: {e}")))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match status.as_u16() {
            200..=299 => Ok(body),
            409 | 429 | 500.. => Err(ExecError::Transient(format!(
                "argocd-server answered {status}: {message}"
            ))),
            _ => Err(ExecError::Permanent(format!(
                "argocd-server answered {status}: {message}"
            ))),
        }
    }

    pub(super) fn url(&self, app: &AppRef, rest: &str) -> String {
        format!("{}/api/v1/applications/{}{rest}", self.base, app.name)
    }
}

impl ArgoChannel {
    /// Uses argocd-server at `base` (TLS verified against `ca_pem` when given, else the system
    /// roots).
    pub fn with_rest(
        mut self,
        base: &str,
        token: OutboundToken,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("ARGOCD_CA_FILE is not a PEM bundle: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the argocd-server client: {e}"))?;
        self.rest = Some(Rest {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        });
        Ok(self)
    }

    /// argocd-server's base URL, when the channel goes through it.
    pub fn server(&self) -> Option<&str> {
        self.rest.as_ref().map(|rest| rest.base.as_str())
    }

    /// Asks argocd-server for its version (`GET /api/version`, no token needed) within
    /// `timeout`: the round trip, or why it failed. `None` without `ARGOCD_API_URL`.
    pub async fn probe_server(&self, timeout: Duration) -> Option<Result<Duration, String>> {
        let rest = self.rest.as_ref()?;
        let started = std::time::Instant::now();
        let request = rest
            .http
            .get(format!("{}/api/version", rest.base))
            .timeout(timeout)
            .send();
        Some(match request.await {
            Ok(response) if response.status().is_success() => Ok(started.elapsed()),
            Ok(response) => Err(format!("argocd-server answered {}", response.status())),
            Err(error) if error.is_timeout() => Err(format!(
                "argocd-server did not answer within {}s",
                timeout.as_secs()
            )),
            Err(error) => Err(format!("argocd-server unreachable: {error}")),
        })
    }
}

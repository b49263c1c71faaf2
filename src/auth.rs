//! Bearer-token authentication for `/api/v1/*`.
//!
//! The token comes from `API_TOKEN`, else `API_TOKEN_FILE`, else `DATA_DIR/api-token`; if none
//! exists, one is generated there (mode 0600) on first start.

use crate::config::{Secret, Settings};
use crate::error::ApiError;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// Set on a TLS connection whose client presented a certificate that the configured client CA
/// (`AUDIT_CLIENT_CA_FILE`) verified; the handshake fails for any other certificate.
#[derive(Debug, Clone)]
pub struct VerifiedClientCertificate;

/// The file, under `DATA_DIR`, that holds a generated token.
pub const TOKEN_FILE: &str = "api-token";

/// The token callers must present.
#[derive(Clone)]
pub struct ApiToken(Secret);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(Secret::new(token))
    }

    /// Constant-time comparison, so response timing does not leak a prefix of the token.
    pub fn matches(&self, presented: &str) -> bool {
        self.0
            .expose()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// Where the token came from (what the startup banner tells the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `API_TOKEN`.
    Setting,
    /// `API_TOKEN_FILE`, or a token generated on an earlier start.
    File(PathBuf),
    /// Generated now; the banner prints it once.
    Generated(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: the token file is empty")]
    Empty(PathBuf),
}

/// Finds (or generates) the API token.
pub fn resolve_token(settings: &Settings) -> Result<(ApiToken, TokenOrigin), TokenError> {
    if let Some(token) = &settings.auth.api_token {
        return Ok((ApiToken(token.clone()), TokenOrigin::Setting));
    }
    let (path, explicit) = match &settings.auth.api_token_file {
        Some(path) => (path.clone(), true),
        None => (settings.data_dir.join(TOKEN_FILE), false),
    };
    if explicit || path.exists() {
        return read_token(&path).map(|token| (token, TokenOrigin::File(path)));
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, token.as_bytes()).map_err(|source| TokenError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((ApiToken::new(token), TokenOrigin::Generated(path)))
}

fn read_token(path: &Path) -> Result<ApiToken, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(TokenError::Empty(path.to_path_buf()));
    }
    Ok(ApiToken::new(token))
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// The token presented in `Authorization: Bearer <token>`, if any.
fn bearer(req: &ServiceRequest) -> Option<&str> {
    bearer_token(req.headers())
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &actix_web::http::header::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Middleware: 401 (with `WWW-Authenticate: Bearer`) unless the request carries the token.
pub async fn require_token(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(expected) = req.app_data::<web::Data<ApiToken>>() else {
        let error = ApiError::internal("authentication is not configured");
        return Ok(req.into_response(error.error_response()));
    };
    let failure = match bearer(&req) {
        None => Some("Missing bearer token: send Authorization: Bearer <token>."),
        Some(token) if !expected.matches(token) => Some("The bearer token is not valid."),
        Some(_) => None,
    };
    match failure {
        Some(message) => Ok(req.into_response(ApiError::unauthorized(message).error_response())),
        None => next.call(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_needs_the_exact_token() {
        let token = ApiToken::new("abcdef");
        assert!(token.matches("abcdef"));
        assert!(!token.matches("abcde"));
        assert!(!token.matches("abcdeg"));
        assert!(!token.matches(""));
    }
}

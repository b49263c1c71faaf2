//! Bearer-token authentication for `/api/v1/*`.
//!
//! The token comes from `API_TOKEN`, else `API_TOKEN_FILE`, else `DATA_DIR/api-token`; if none
//! exists, one is generated there (mode 0600) on first start. A token read from a file is read
//! again when the file changes (`crate::token_file`): the new token works within
//! `TLS_RELOAD_INTERVAL` and the old one stops.

use crate::config::{Secret, Settings};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::token_file::TokenFile;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub use crate::tls::client_ca::VerifiedClientCertificate;

/// The file, under `DATA_DIR`, that holds a generated token.
pub const TOKEN_FILE: &str = "api-token";

/// The token callers must present; cheap to clone (a file-backed token is shared, so every
/// clone sees a rotation).
#[derive(Clone)]
pub struct ApiToken(Source);

#[derive(Clone)]
enum Source {
    Fixed(Secret),
    File(Arc<TokenFile>),
}

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(Source::Fixed(Secret::new(token)))
    }

    /// The token in `file`, as it is now and after each rotation.
    pub fn from_file(file: Arc<TokenFile>) -> Self {
        ApiToken(Source::File(file))
    }

    fn current(&self) -> Option<Secret> {
        match &self.0 {
            Source::Fixed(secret) => Some(secret.clone()),
            Source::File(file) => file.current(),
        }
    }

    /// Constant-time comparison, so response timing does not leak a prefix of the token.
    /// Nothing matches when there is no token, and an empty token never matches.
    pub fn matches(&self, presented: &str) -> bool {
        let equal = |expected: Option<&Secret>| {
            expected.is_some_and(|expected| {
                !presented.is_empty()
                    && bool::from(expected.expose().as_bytes().ct_eq(presented.as_bytes()))
            })
        };
        match &self.0 {
            Source::Fixed(secret) => equal(Some(secret)),
            Source::File(file) => file.with_current(equal),
        }
    }

    /// The token in use now (empty only if a token file never held one, which startup refuses).
    pub fn expose(&self) -> String {
        self.current()
            .map(|secret| secret.expose().to_string())
            .unwrap_or_default()
    }

    /// The file the token is read from, when it is.
    pub fn file(&self) -> Option<&Arc<TokenFile>> {
        match &self.0 {
            Source::File(file) => Some(file),
            Source::Fixed(_) => None,
        }
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
    #[error("{0}: the token file is empty or holds no single printable token")]
    Unusable(PathBuf),
}

/// Finds (or generates) the API token. A token from a file is watched by the caller
/// (`ApiToken::file`, `TokenFile::spawn_watcher`).
pub fn resolve_token(
    settings: &Settings,
    metrics: &Metrics,
) -> Result<(ApiToken, TokenOrigin), TokenError> {
    if let Some(token) = &settings.auth.api_token {
        return Ok((ApiToken(Source::Fixed(token.clone())), TokenOrigin::Setting));
    }
    let (path, explicit) = match &settings.auth.api_token_file {
        Some(path) => (path.clone(), true),
        None => (settings.data_dir.join(TOKEN_FILE), false),
    };
    if explicit || path.exists() {
        return open_token_file(&path, metrics).map(|token| (token, TokenOrigin::File(path)));
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, token.as_bytes()).map_err(|source| TokenError::Io {
        path: path.clone(),
        source,
    })?;
    let token = open_token_file(&path, metrics)?;
    Ok((token, TokenOrigin::Generated(path)))
}

/// The token file, which must hold a token now: starting without one would lock every
/// client out.
fn open_token_file(path: &Path, metrics: &Metrics) -> Result<ApiToken, TokenError> {
    std::fs::metadata(path).map_err(|source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = TokenFile::open(path, "API_TOKEN_FILE", "api_token", metrics.clone());
    if file.current().is_none() {
        return Err(TokenError::Unusable(path.to_path_buf()));
    }
    Ok(ApiToken::from_file(Arc::new(file)))
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

    #[test]
    fn an_empty_token_never_matches() {
        assert!(!ApiToken::new("").matches(""));
    }
}

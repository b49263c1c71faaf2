//! Tokens kept in files that are replaced when the token rotates: the API token's mounted
//! Secret (`API_TOKEN_FILE`), a projected ServiceAccount token (`PROMETHEUS_TOKEN_FILE`), the
//! argocd-server token (`ARGOCD_TOKEN_FILE`).
//!
//! The file is read again when asked (`refresh`, by a poller or before an outbound request).
//! A new, valid token replaces the old one at once; an empty, unreadable or malformed file
//! never does: the last good token stays in use and a warning is logged, so a rotation caught
//! half-way neither locks every client out nor lets an empty token in.

use crate::config::Secret;
use crate::metrics::Metrics;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Token files are small; anything larger is a mistake, not a token (and is never read whole).
const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;

/// What a file holds, as last observed: its bytes, or why they could not be read.
type Observed = Result<Vec<u8>, String>;

/// One token file and the last good token read from it.
pub struct TokenFile {
    path: PathBuf,
    /// The setting that names the file (`API_TOKEN_FILE`), for log lines.
    setting: &'static str,
    /// The `file` label of `coordination_engine_credential_file_reloads_total`.
    label: &'static str,
    metrics: Metrics,
    current: RwLock<Option<Secret>>,
    /// The last observation, so an unchanged file (good or bad) is neither re-parsed nor
    /// re-logged.
    last_seen: Mutex<Option<Observed>>,
}

/// The result of reading the file again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Same bytes as last time.
    Unchanged,
    /// A new token is in use.
    Rotated,
    /// The file changed but holds no usable token; the last good one (if any) stays.
    Rejected(String),
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("setting", &self.setting)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// Reads the file now. Whether a token was found is up to the caller to require
    /// (`current()` is `None` until the file holds one).
    pub fn open(
        path: impl Into<PathBuf>,
        setting: &'static str,
        label: &'static str,
        metrics: Metrics,
    ) -> Self {
        let file = TokenFile {
            path: path.into(),
            setting,
            label,
            metrics,
            current: RwLock::new(None),
            last_seen: Mutex::new(None),
        };
        let observed = read_bounded(&file.path);
        match parse(&observed) {
            Ok(token) => *file.current_mut() = Some(token),
            Err(reason) => tracing::warn!(
                file = %file.path.display(),
                setting,
                %reason,
                "no usable token in the token file yet; it is read again until it holds one"
            ),
        }
        *file.last_seen_mut() = Some(observed);
        file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The token in use: the last good one read.
    pub fn current(&self) -> Option<Secret> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Runs `f` on the token in use without copying it (the per-request check).
    pub fn with_current<R>(&self, f: impl FnOnce(Option<&Secret>) -> R) -> R {
        f(self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref())
    }

    /// Reads the file again and adopts its token when it changed and is usable.
    pub fn refresh(&self) -> Refresh {
        let observed = read_bounded(&self.path);
        {
            let mut last_seen = self.last_seen_mut();
            if last_seen.as_ref() == Some(&observed) {
                return Refresh::Unchanged;
            }
            *last_seen = Some(observed.clone());
        }
        match parse(&observed) {
            Ok(token) => {
                *self.current_mut() = Some(token);
                self.count("success");
                tracing::info!(file = %self.path.display(), setting = self.setting, "token file changed: the new token is in use");
                Refresh::Rotated
            }
            Err(reason) => {
                self.count("failure");
                tracing::warn!(
                    file = %self.path.display(),
                    setting = self.setting,
                    %reason,
                    "token file changed but holds no usable token; still using the previous token"
                );
                Refresh::Rejected(reason)
            }
        }
    }

    /// Re-reads the file every `interval` (tokens presented to us: checking at every
    /// request would put a file read on the hot path).
    pub fn spawn_watcher(self: Arc<Self>, interval: Duration) {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                // File I/O off the async workers; a slow volume must not stall requests.
                let file = self.clone();
                if tokio::task::spawn_blocking(move || file.refresh())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        setting = self.setting,
                        "the token file check did not finish"
                    );
                }
            }
        });
    }

    fn count(&self, result: &str) {
        self.metrics
            .credential_file_reloads
            .with_label_values(&[self.label, result])
            .inc();
    }

    fn current_mut(&self) -> std::sync::RwLockWriteGuard<'_, Option<Secret>> {
        // A poisoned lock still holds a whole token: writers only ever store one.
        self.current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn last_seen_mut(&self) -> std::sync::MutexGuard<'_, Option<Observed>> {
        self.last_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The bearer token an outbound client (Prometheus, argocd-server) sends.
#[derive(Clone, Debug)]
pub enum OutboundToken {
    None,
    /// A token given in the settings (`ARGOCD_TOKEN`).
    Fixed(Secret),
    /// A token file, read again before each request: a rotated token is sent from the next
    /// request on, and a file read is nothing next to the request it authorises.
    File(Arc<TokenFile>),
}

impl OutboundToken {
    /// The token to send now, or why there is none although one is configured.
    pub async fn current(&self) -> Result<Option<Secret>, String> {
        match self {
            OutboundToken::None => Ok(None),
            OutboundToken::Fixed(secret) => Ok(Some(secret.clone())),
            OutboundToken::File(file) => {
                let reader = file.clone();
                // File I/O off the async workers.
                let _ = tokio::task::spawn_blocking(move || reader.refresh()).await;
                file.current().map(Some).ok_or_else(|| {
                    format!(
                        "{} {}: no usable token in the file yet",
                        file.setting,
                        file.path.display()
                    )
                })
            }
        }
    }
}

/// The file's bytes, refusing files over `MAX_TOKEN_FILE_BYTES` without reading them whole.
fn read_bounded(path: &Path) -> Observed {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(format!(
            "the file is larger than {MAX_TOKEN_FILE_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

/// The token a file holds: its text without surrounding whitespace, non-empty, and sendable
/// in an `Authorization` header (visible ASCII, no inner whitespace).
pub fn parse(observed: &Observed) -> Result<Secret, String> {
    let bytes = observed.as_ref().map_err(Clone::clone)?;
    let text = std::str::from_utf8(bytes).map_err(|_| "the file is not UTF-8 text".to_string())?;
    let token = text.trim();
    if token.is_empty() {
        return Err("the file is empty".into());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "the token holds whitespace or non-printable characters (one token per file)".into(),
        );
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(bytes: &[u8]) -> Result<String, String> {
        parse(&Ok(bytes.to_vec())).map(|s| s.expose().to_string())
    }

    #[test]
    fn a_token_is_one_trimmed_printable_word() {
        assert_eq!(token_of(b"abc\n"), Ok("abc".into()));
        assert_eq!(
            token_of(b"  abc-123_x.y~z+/=  "),
            Ok("abc-123_x.y~z+/=".into())
        );
        assert!(token_of(b"").is_err());
        assert!(token_of(b" \n\t").is_err());
        assert!(token_of(b"two words").is_err());
        assert!(token_of(b"bell\x07").is_err());
        assert!(token_of(&[0xff, 0xfe]).is_err());
        assert!(parse(&Err("gone".into())).is_err());
    }

    #[test]
    fn a_bad_rewrite_keeps_the_last_good_token_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").expect("write");
        let file = TokenFile::open(&path, "API_TOKEN_FILE", "api_token", Metrics::new());
        let current = |f: &TokenFile| f.current().map(|s| s.expose().to_string());
        assert_eq!(current(&file).as_deref(), Some("first"));
        assert_eq!(file.refresh(), Refresh::Unchanged);

        std::fs::write(&path, "").expect("write");
        assert!(matches!(file.refresh(), Refresh::Rejected(_)));
        assert_eq!(file.refresh(), Refresh::Unchanged, "reported once");
        assert_eq!(current(&file).as_deref(), Some("first"));

        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(file.refresh(), Refresh::Rejected(_)));
        assert_eq!(current(&file).as_deref(), Some("first"));

        std::fs::write(&path, vec![b'a'; MAX_TOKEN_FILE_BYTES as usize + 1]).expect("write");
        assert!(matches!(file.refresh(), Refresh::Rejected(r) if r.contains("larger")));

        std::fs::write(&path, "second").expect("write");
        assert_eq!(file.refresh(), Refresh::Rotated);
        assert_eq!(current(&file).as_deref(), Some("second"));
    }
}

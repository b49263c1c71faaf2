//! TLS for the API listener: rustls (ring provider, TLS 1.2+) with a certificate that is
//! reloaded from disk when it changes, as cert-manager and OpenShift service-ca rotate it.

pub mod client_ca;
pub mod generate;

use crate::config::{Settings, TlsMode};
use crate::metrics::Metrics;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{0}")]
    Generate(#[from] generate::GenerateError),
    #[error("cannot build the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the serving certificate lives, and how it got there.
#[derive(Debug, Clone)]
pub struct CertSource {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// `generated` (TLS_MODE=auto without files) or `files`.
    pub origin: &'static str,
}

/// Decides which cert files to serve, generating a local CA and cert on first start in
/// `auto` mode. `None` means plain HTTP.
pub fn resolve_source(settings: &Settings) -> Result<Option<CertSource>, TlsError> {
    match (
        settings.tls.mode,
        &settings.tls.cert_file,
        &settings.tls.key_file,
    ) {
        (TlsMode::Off, _, _) => Ok(None),
        (_, Some(cert), Some(key)) => Ok(Some(CertSource {
            cert_file: cert.clone(),
            key_file: key.clone(),
            origin: "files",
        })),
        _ => {
            let dir = settings.data_dir.join("tls");
            let paths = generate::GeneratedPaths::in_dir(&dir);
            if !paths.cert.exists() && !paths.key.exists() {
                let mut names = generate::default_names();
                names.push(format!("coordination-engine.{}.svc", settings.namespace));
                generate::generate_into(&dir, &names, false)?;
                tracing::info!(dir = %dir.display(), "generated a self-signed CA and serving certificate");
            }
            Ok(Some(CertSource {
                cert_file: paths.cert,
                key_file: paths.key,
                origin: "generated",
            }))
        }
    }
}

/// Reads a PEM chain and key and checks that they belong together.
pub fn load_certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let load_err = |path: &Path, reason: String| TlsError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let cert_pem = std::fs::read(cert_file).map_err(|e| load_err(cert_file, e.to_string()))?;
    let key_pem = std::fs::read(key_file).map_err(|e| load_err(key_file, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| load_err(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(load_err(cert_file, "no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| load_err(key_file, format!("not a PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| load_err(key_file, format!("key does not match the certificate: {e}")))
}

/// Serves the current certificate and swaps it when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    source: CertSource,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    pub fn load(source: CertSource, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let key = load_certified_key(&source.cert_file, &source.key_file, &provider)?;
        Ok(ReloadingCert {
            source,
            provider,
            current: RwLock::new(Arc::new(key)),
        })
    }

    pub fn source(&self) -> &CertSource {
        &self.source
    }

    /// The leaf certificate now being served (DER).
    pub fn current_leaf(&self) -> Option<CertificateDer<'static>> {
        self.current_key().cert.first().cloned()
    }

    fn current_key(&self) -> Arc<CertifiedKey> {
        // A poisoned lock still holds a valid key: the writer only ever swaps an Arc.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Loads the files again; the old certificate stays in use if they are invalid
    /// (e.g. a rotation caught between writing the cert and the key).
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(
            &self.source.cert_file,
            &self.source.key_file,
            &self.provider,
        )?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
        Ok(())
    }

    /// Polls the files every `interval` and reloads when their bytes change. Contents are
    /// compared rather than mtimes: Kubernetes swaps a symlink, and tests replace files
    /// faster than mtime granularity.
    pub fn spawn_watcher(self: Arc<Self>, interval: Duration, metrics: Metrics) {
        tokio::spawn(async move {
            let mut last_seen = self.read_files();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let seen = self.read_files();
                if seen == last_seen {
                    continue;
                }
                last_seen = seen;
                match self.reload() {
                    Ok(()) => {
                        metrics.tls_reloads.with_label_values(&["success"]).inc();
                        tracing::info!(cert = %self.source.cert_file.display(), "reloaded TLS certificate");
                    }
                    Err(error) => {
                        metrics.tls_reloads.with_label_values(&["failure"]).inc();
                        tracing::warn!(%error, "TLS certificate changed but cannot be loaded; still serving the previous one");
                    }
                }
            }
        });
    }

    fn read_files(&self) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        (
            std::fs::read(&self.source.cert_file).ok(),
            std::fs::read(&self.source.key_file).ok(),
        )
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current_key())
    }
}

/// A rustls server config (TLS 1.2 and 1.3, ring) that asks `resolver` for each handshake.
///
/// With `client_ca`, clients may present a certificate signed by it (optional: token-based
/// clients still connect); a certificate that does not verify fails the handshake.
pub fn server_config(
    resolver: Arc<ReloadingCert>,
    provider: Arc<CryptoProvider>,
    client_ca: Option<Arc<client_ca::ReloadingClientCa>>,
) -> Result<rustls::ServerConfig, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    // ALPN (h2, http/1.1) is added by actix-http when it wraps this config.
    Ok(match client_ca {
        None => builder.with_no_client_auth().with_cert_resolver(resolver),
        Some(verifier) => builder
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(resolver),
    })
}

/// The process-wide crypto provider: ring, and only ring (see STACK.md).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process default so every rustls user (kube, reqwest) agrees.
/// Calling it twice is harmless.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

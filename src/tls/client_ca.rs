//! Client certificates for the audit webhook (`AUDIT_CLIENT_CA_FILE`): the CA that verifies
//! them, reloaded when its file changes like the serving certificate, and the names a
//! verified certificate carries (checked against `AUDIT_CLIENT_NAMES`).

use super::TlsError;
use crate::metrics::Metrics;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Set on a TLS connection whose client presented a certificate that the client CA verified
/// (the handshake fails for any other certificate), with the names it was issued to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiedClientCertificate {
    /// The subject's common names, then the DNS subject alternative names.
    pub names: Vec<String>,
}

impl VerifiedClientCertificate {
    /// The names in a (verified) leaf certificate. A certificate that does not parse here
    /// carries no names, so no allow-list admits it.
    pub fn from_leaf(leaf: &CertificateDer<'_>) -> Self {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
            return VerifiedClientCertificate::default();
        };
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            names.extend(
                san.value
                    .general_names
                    .iter()
                    .filter_map(|name| match name {
                        x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_string()),
                        _ => None,
                    }),
            );
        }
        VerifiedClientCertificate { names }
    }

    /// Whether any of its names is in `allowed` (whole names, ASCII case-insensitive as DNS
    /// names are). An empty list allows every certificate the CA verified.
    pub fn allowed_by(&self, allowed: &[String]) -> bool {
        allowed.is_empty()
            || self
                .names
                .iter()
                .any(|name| allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }
}

/// Verifies client certificates against the CA file as it is now, and swaps in the new CA
/// when the file changes (the old one stops verifying at once).
#[derive(Debug)]
pub struct ReloadingClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl ReloadingClientCa {
    pub fn load(path: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let verifier = build_verifier(path, &provider)?;
        Ok(ReloadingClientCa {
            path: path.to_path_buf(),
            provider,
            current: RwLock::new(verifier),
        })
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        // A poisoned lock still holds a whole verifier: the writer only ever swaps an Arc.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Loads the file again; the previous CA stays in use if it is not a valid bundle.
    pub fn reload(&self) -> Result<(), TlsError> {
        let verifier = build_verifier(&self.path, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = verifier;
        Ok(())
    }

    /// Polls the file every `interval` and reloads when its bytes change (as the serving
    /// certificate's watcher does, for the same reasons: symlink swaps, fast rewrites).
    pub fn spawn_watcher(self: Arc<Self>, interval: Duration, metrics: Metrics) {
        tokio::spawn(async move {
            let mut last_seen = std::fs::read(&self.path).ok();
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let seen = std::fs::read(&self.path).ok();
                if seen == last_seen {
                    continue;
                }
                last_seen = seen;
                let counter = |result: &str| {
                    metrics
                        .credential_file_reloads
                        .with_label_values(&["audit_client_ca", result])
                        .inc()
                };
                match self.reload() {
                    Ok(()) => {
                        counter("success");
                        tracing::info!(file = %self.path.display(), "reloaded the audit client CA");
                    }
                    Err(error) => {
                        counter("failure");
                        tracing::warn!(%error, "the audit client CA changed but cannot be loaded; still verifying with the previous one");
                    }
                }
            }
        });
    }
}

/// A verifier trusting the CA bundle in `path`. Client certificates stay optional: token-based
/// clients share the listener.
fn build_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let load_err = |reason: String| TlsError::Load {
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| load_err(e.to_string()))? {
        roots
            .add(cert.map_err(|e| load_err(e.to_string()))?)
            .map_err(|e| load_err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(load_err("no CERTIFICATE block found".into()));
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| load_err(e.to_string()))
}

impl ClientCertVerifier for ReloadingClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    /// No hints: the CA can change under a running listener, and the hints are borrowed for
    /// the verifier's lifetime. With an empty list a client sends the certificate it has
    /// (RFC 8446 §4.2.4; Go's and rustls' clients do).
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(cn: &str, dns: &[&str]) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).expect("cert").der().clone()
    }

    #[test]
    fn names_are_the_common_name_then_the_dns_sans() {
        let cert = VerifiedClientCertificate::from_leaf(&leaf(
            "kube-apiserver-audit",
            &["audit.example.com"],
        ));
        assert_eq!(cert.names, ["kube-apiserver-audit", "audit.example.com"]);
        let allow = |list: &[&str]| {
            cert.allowed_by(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(allow(&[]));
        assert!(allow(&["kube-apiserver-audit"]));
        assert!(allow(&["other", "AUDIT.example.com"]));
        assert!(!allow(&["kube-apiserver"]));
        assert!(!allow(&["example.com"]));
    }

    #[test]
    fn garbage_carries_no_names_and_no_list_admits_it() {
        let cert = VerifiedClientCertificate::from_leaf(&CertificateDer::from(vec![1, 2, 3]));
        assert!(cert.names.is_empty());
        assert!(!cert.allowed_by(&["x".to_string()]));
    }
}

//! TLS clients that trust only the test CA, and what a connection is served.

use coordination_engine::tls;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// A client that trusts only `ca_file` (so the tests prove the chain verifies).
pub fn https_client(ca_file: &Path) -> reqwest::Client {
    let pem = std::fs::read(ca_file).expect("CA file exists");
    let ca = reqwest::Certificate::from_pem(&pem).expect("CA is PEM");
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("client builds")
}

/// A raw TLS connection trusting the given CA files.
pub async fn tls_connect(
    addr: SocketAddr,
    ca_files: &[&Path],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for file in ca_files {
        for cert in CertificateDer::pem_file_iter(file).expect("CA readable") {
            roots.add(cert.expect("CA is PEM")).expect("CA is valid");
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("tcp connect");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("server name");
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// The leaf certificate a fresh connection is served.
pub async fn served_leaf(addr: SocketAddr, ca_files: &[&Path]) -> Vec<u8> {
    let stream = tls_connect(addr, ca_files).await;
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("server sent a certificate")
        .to_vec()
}

/// The first certificate of a PEM file (the leaf of a chain).
pub fn first_cert_der(path: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(path)
        .expect("readable")
        .next()
        .expect("one certificate")
        .expect("PEM")
        .to_vec()
}

//! Audit webhook clients by certificate: `AUDIT_CLIENT_NAMES` restricts which verified
//! certificates may post, and the client CA file is reloaded when it changes.

use crate::helpers::{TestApp, error_body, spawn_app_with, wait_for};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::Path;
use std::time::Duration;

/// A CA that signs client certificates.
struct ClientCa {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl ClientCa {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("ca").pem();
        ClientCa {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate and key (PEM) for subject `cn` with DNS SANs `dns`.
    fn client(&self, cn: &str, dns: &[&str]) -> reqwest::Identity {
        let mut params =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        reqwest::Identity::from_pem(format!("{}{}", cert.pem(), key.serialize_pem()).as_bytes())
            .expect("identity")
    }
}

/// Replaces a file the way the kubelet updates a mounted Secret: write elsewhere, rename over.
fn rotate(target: &Path, contents: &str) {
    let tmp = target.with_extension("new");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, target).expect("rename");
}

/// Posts one audit batch with `identity` and no token, on a fresh connection (a pooled one
/// would keep the certificate check of its handshake).
async fn post_as(
    app: &TestApp,
    identity: reqwest::Identity,
    batch: &serde_json::Value,
) -> reqwest::Result<reqwest::Response> {
    let server_ca = std::fs::read(&app.ca_file).expect("server ca");
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&server_ca).expect("pem")])
        .identity(identity)
        .build()
        .expect("client")
        .post(app.url("/webhooks/audit"))
        .json(batch)
        .send()
        .await
}

fn batch() -> serde_json::Value {
    crate::helpers::sample("audit", "kubectl-scale.json")
}

#[tokio::test]
async fn only_listed_certificate_names_may_post_and_a_refused_batch_records_nothing() {
    let ca = ClientCa::new("audit client CA");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("audit-ca.crt");
    rotate(&ca_file, &ca.pem);
    let ca_path = ca_file.display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("AUDIT_CLIENT_CA_FILE".into(), ca_path);
        env.insert(
            "AUDIT_CLIENT_NAMES".into(),
            "kube-apiserver, audit.example.com".into(),
        );
    })
    .await;

    // Same CA, a name not on the list: 403 in the error shape, and nothing stored.
    let refused = post_as(&app, ca.client("intruder", &["intruder.local"]), &batch())
        .await
        .expect("the handshake succeeds: the CA verifies the certificate");
    assert_eq!(refused.status(), 403);
    let (code, body) = error_body(refused).await;
    assert_eq!(code, "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("AUDIT_CLIENT_NAMES")),
        "{body}"
    );

    // The listed common name: accepted, and the batch is new (the refused post stored none
    // of its events).
    let accepted = post_as(&app, ca.client("kube-apiserver", &[]), &batch())
        .await
        .expect("send");
    assert_eq!(accepted.status(), 200);
    let accepted: serde_json::Value = accepted.json().await.expect("json");
    assert_eq!(accepted["new_events"], 1, "{accepted}");

    // A listed DNS SAN admits a certificate whatever its common name.
    let by_san = post_as(
        &app,
        ca.client("apiserver-7", &["audit.example.com"]),
        &batch(),
    )
    .await
    .expect("send");
    assert_eq!(by_san.status(), 200);

    // The token still works for a client whose certificate is not listed.
    let server_ca = std::fs::read(&app.ca_file).expect("server ca");
    let with_token = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&server_ca).expect("pem")])
        .identity(ca.client("intruder", &[]))
        .build()
        .expect("client")
        .post(app.url("/webhooks/audit"))
        .bearer_auth(&app.token)
        .json(&batch())
        .send()
        .await
        .expect("send");
    assert_eq!(with_token.status(), 200);
}

#[tokio::test]
async fn a_rotated_client_ca_verifies_new_certificates_and_refuses_the_old_ones() {
    let old_ca = ClientCa::new("audit client CA 1");
    let new_ca = ClientCa::new("audit client CA 2");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("audit-ca.crt");
    rotate(&ca_file, &old_ca.pem);
    let ca_path = ca_file.display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("AUDIT_CLIENT_CA_FILE".into(), ca_path);
        env.insert("AUDIT_CLIENT_NAMES".into(), "kube-apiserver".into());
    })
    .await;
    let status = |result: reqwest::Result<reqwest::Response>| result.ok().map(|r| r.status());

    assert_eq!(
        status(post_as(&app, old_ca.client("kube-apiserver", &[]), &batch()).await),
        Some(reqwest::StatusCode::OK)
    );
    assert_eq!(
        status(post_as(&app, new_ca.client("kube-apiserver", &[]), &batch()).await),
        None,
        "a certificate from another CA fails the handshake"
    );

    rotate(&ca_file, &new_ca.pem);
    wait_for(
        "a certificate of the new CA to be accepted",
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async {
            (status(post_as(&app, new_ca.client("kube-apiserver", &[]), &batch()).await)
                == Some(reqwest::StatusCode::OK))
            .then_some(())
        },
    )
    .await;
    assert_eq!(
        status(post_as(&app, old_ca.client("kube-apiserver", &[]), &batch()).await),
        None,
        "the old CA's certificates stop verifying"
    );

    // A broken CA file is refused; the current CA keeps verifying.
    rotate(&ca_file, "-----BEGIN CERTIFICATE-----\nnot base64\n");
    let failure = r#"coordination_engine_credential_file_reloads_total{file="audit_client_ca",result="failure"} 1"#;
    wait_for(
        "the failed reload to be counted",
        Duration::from_secs(10),
        Duration::from_millis(25),
        || async { app.metrics().await.contains(failure).then_some(()) },
    )
    .await;
    assert_eq!(
        status(post_as(&app, new_ca.client("kube-apiserver", &[]), &batch()).await),
        Some(reqwest::StatusCode::OK)
    );
}

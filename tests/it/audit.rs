//! The audit webhook: fixtures of the real audit.k8s.io/v1 schema, dedupe, bad input, auth.

use crate::helpers::{TestApp, error_body, spawn_app, spawn_app_with};
use serde_json::{Value, json};

fn sample(name: &str) -> Value {
    crate::helpers::sample("audit", name)
}

async fn post_raw(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    app.post_raw("/webhooks/audit", body).await
}

async fn post(app: &TestApp, body: &Value) -> Value {
    let response = post_raw(app, serde_json::to_vec(body).expect("json")).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn audit_incidents(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/incidents?source=audit&limit=1000")
        .await["incidents"]
        .as_array()
        .expect("array")
        .clone()
}

#[tokio::test]
async fn each_sample_produces_exactly_the_expected_incidents() {
    let app = spawn_app().await;
    let expectations = [
        ("kubectl-scale.json", Some("gitops_drift")),
        ("kubectl-edit.json", Some("gitops_drift")),
        ("argocd-sync.json", None),
        ("engine-remediation.json", None),
        ("status-update.json", None),
        ("unmanaged-patch.json", None),
        ("forbidden-burst.json", Some("access_denied_burst")),
        ("protected-delete.json", Some("protected_object_deleted")),
        // Metadata level: judged from the guard's metadata cache, empty without a cluster.
        ("kubectl-delete-metadata-level.json", None),
    ];
    for (name, expected) in expectations {
        let before = audit_incidents(&app).await.len();
        let answer = post(&app, &sample(name)).await;
        let created = answer["incident_ids"].as_array().expect("ids").clone();
        match expected {
            None => assert!(created.is_empty(), "{name}: {answer}"),
            Some(issue) => {
                assert_eq!(created.len(), 1, "{name}: {answer}");
                let incident = app
                    .get_json(&format!(
                        "/api/v1/incidents/{}",
                        created[0].as_str().expect("id")
                    ))
                    .await;
                assert_eq!(incident["issue_type"], issue, "{name}");
                assert_eq!(incident["source"], "audit");
            }
        }
        assert_eq!(audit_incidents(&app).await.len(), before + created.len());
    }
    let drift = audit_incidents(&app)
        .await
        .into_iter()
        .find(|i| i["annotations"]["audit_id"] == "a0000001-0000-0000-0000-000000000001")
        .expect("scale drift");
    assert_eq!(drift["created_by"], "alice");
    assert_eq!(drift["annotations"]["argocd_application"], "shop");
    assert_eq!(drift["annotations"]["changed_paths"], "/spec/replicas");
    assert_eq!(drift["target"], "Deployment/cart");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"coordination_engine_audit_events_total{outcome="gitops_drift"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"coordination_engine_incidents_total{layer="application",source="audit"} 4"#
        )
    );
}

#[tokio::test]
async fn a_resent_batch_creates_nothing_new_and_500_events_fit_one_batch() {
    let app = spawn_app().await;
    let batch = sample("kubectl-edit.json");
    let first = post(&app, &batch).await;
    assert_eq!(first["new_events"], 1);
    let again = post(&app, &batch).await;
    assert_eq!(again["new_events"], 0);
    assert_eq!(again["duplicates"], 1);
    assert!(again["incident_ids"].as_array().expect("ids").is_empty());

    let template = sample("kubectl-scale.json")["items"][0].clone();
    let items: Vec<Value> = (0..500)
        .map(|i| {
            let mut e = template.clone();
            e["auditID"] = json!(format!("b{i:07}-0000-0000-0000-000000000000"));
            e
        })
        .collect();
    let big = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items});
    let answer = post(&app, &big).await;
    assert_eq!(answer["received"], 500);
    assert_eq!(answer["new_events"], 500);
    assert_eq!(
        answer["incident_ids"].as_array().expect("ids").len(),
        500,
        "every event is drift by alice"
    );
}

#[tokio::test]
async fn bad_batches_are_400_or_413_and_store_nothing() {
    let app = spawn_app().await;
    let good = sample("kubectl-edit.json");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    for (name, body, needle) in [
        ("not JSON", b"EventList".to_vec(), "JSON"),
        (
            "not an EventList",
            with(&|v| v["kind"] = json!("Event")),
            "kind",
        ),
        (
            "wrong apiVersion",
            with(&|v| v["apiVersion"] = json!("audit.k8s.io/v1beta1")),
            "apiVersion",
        ),
        (
            "missing items",
            with(&|v| {
                v.as_object_mut().map(|o| o.remove("items"));
            }),
            "items",
        ),
        (
            "missing auditID",
            with(&|v| {
                v["items"][0].as_object_mut().map(|o| o.remove("auditID"));
            }),
            "auditID",
        ),
        (
            "missing verb",
            with(&|v| {
                v["items"][0].as_object_mut().map(|o| o.remove("verb"));
            }),
            "verb",
        ),
        (
            "empty auditID",
            with(&|v| v["items"][0]["auditID"] = json!("")),
            "auditID",
        ),
    ] {
        let response = post_raw(&app, body).await;
        assert_eq!(response.status(), 400, "{name}");
        let (_, error) = error_body(response).await;
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "{name}: {error}"
        );
    }
    let mut huge = good.clone();
    huge["items"][0]["requestObject"]["metadata"]["annotations"]["padding"] =
        json!("x".repeat(11 * 1024 * 1024));
    let response = post_raw(&app, serde_json::to_vec(&huge).expect("json")).await;
    assert_eq!(response.status(), 413);
    assert!(audit_incidents(&app).await.is_empty());
    // The rejected batches left no auditIDs behind: the good batch is still new.
    assert_eq!(post(&app, &good).await["new_events"], 1);
}

#[tokio::test]
async fn without_a_token_or_client_certificate_it_is_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/webhooks/audit"))
        .json(&sample("kubectl-edit.json"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    error_body(response).await;
}

#[tokio::test]
async fn a_client_certificate_signed_by_the_audit_ca_replaces_the_token() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "audit client CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    client_params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    let client_key = KeyPair::generate().expect("key");
    let client_cert = client_params
        .signed_by(&client_key, &issuer)
        .expect("client cert");
    let ca_file = dir.path().join("audit-ca.crt");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write");
    let ca_path = ca_file.display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("AUDIT_CLIENT_CA_FILE".into(), ca_path);
    })
    .await;
    let server_ca = std::fs::read(&app.ca_file).expect("server ca");
    let identity = reqwest::Identity::from_pem(
        format!("{}{}", client_cert.pem(), client_key.serialize_pem()).as_bytes(),
    )
    .expect("identity");
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&server_ca).expect("pem")])
        .identity(identity)
        .build()
        .expect("client");
    let response = with_cert
        .post(app.url("/webhooks/audit"))
        .json(&sample("kubectl-edit.json"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status(),
        200,
        "no token needed with a verified client certificate"
    );
    // The certificate does not open the rest of the API.
    let api = with_cert
        .get(app.url("/api/v1/incidents"))
        .send()
        .await
        .expect("send");
    assert_eq!(api.status(), 401);
    // Token clients still connect (the client certificate is optional).
    assert_eq!(app.get_authed("/api/v1/health").await.status(), 200);
}

#[tokio::test]
async fn while_the_store_is_locked_the_backend_gets_503_and_the_retry_lands() {
    let app = spawn_app_with(|env| {
        env.insert("STORE_BUSY_TIMEOUT".into(), "200ms".into());
    })
    .await;
    let blocker = app.lock_store().await;
    let batch = sample("kubectl-scale.json");
    let refused = post_raw(&app, serde_json::to_vec(&batch).expect("json")).await;
    assert_eq!(refused.status(), 503);
    crate::helpers::release_store(blocker).await;
    let retried = post(&app, &batch).await;
    assert_eq!(
        retried["new_events"], 1,
        "the failed attempt recorded nothing"
    );
    assert_eq!(retried["incident_ids"].as_array().expect("ids").len(), 1);
}

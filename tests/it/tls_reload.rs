use crate::helpers::{first_cert_der, served_leaf, spawn_app_with};
use coordination_engine::tls::generate::{self, CA_CERT_FILE, CERT_FILE, KEY_FILE};
use std::path::Path;
use std::time::{Duration, Instant};

/// Replaces a file the way Kubernetes and cert-manager do: write elsewhere, rename over.
fn replace(target: &Path, source: &Path) {
    let tmp = target.with_extension("new");
    std::fs::copy(source, &tmp).expect("copy");
    std::fs::rename(&tmp, target).expect("rename");
}

/// Polls until `condition` holds, failing after a generous deadline.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tick.tick().await;
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
    }
}

#[tokio::test]
async fn replaced_cert_files_are_served_to_new_connections_without_restart() {
    let first = tempfile::tempdir().expect("dir");
    let second = tempfile::tempdir().expect("dir");
    let names = generate::default_names();
    generate::generate_into(first.path(), &names, false).expect("first set");
    generate::generate_into(second.path(), &names, false).expect("second set");
    let served = tempfile::tempdir().expect("dir");
    let (cert, key) = (served.path().join(CERT_FILE), served.path().join(KEY_FILE));
    replace(&cert, &first.path().join(CERT_FILE));
    replace(&key, &first.path().join(KEY_FILE));

    let (cert_env, key_env) = (cert.display().to_string(), key.display().to_string());
    let ca_env = first.path().join(CA_CERT_FILE).display().to_string();
    let app = spawn_app_with(|env| {
        env.insert("TLS_MODE".into(), "files".into());
        env.insert("TLS_CERT_FILE".into(), cert_env);
        env.insert("TLS_KEY_FILE".into(), key_env);
        env.insert("TEST_CA_FILE".into(), ca_env);
    })
    .await;
    let cas = [
        first.path().join(CA_CERT_FILE),
        second.path().join(CA_CERT_FILE),
    ];
    let ca_refs: Vec<&Path> = cas.iter().map(|p| p.as_path()).collect();
    let first_leaf = first_cert_der(&first.path().join(CERT_FILE));
    let second_leaf = first_cert_der(&second.path().join(CERT_FILE));
    assert_eq!(served_leaf(app.addr, &ca_refs).await, first_leaf);

    // Rotate: key first, then cert (a window where they do not match must not break serving).
    replace(&key, &second.path().join(KEY_FILE));
    replace(&cert, &second.path().join(CERT_FILE));
    eventually("the new certificate is served", || async {
        served_leaf(app.addr, &ca_refs).await == second_leaf
    })
    .await;

    // A broken file is refused; the last good certificate stays in service. (The rotation
    // above may itself have counted a failure, when a tick fell between the key and the cert.)
    let failures_before = reload_failures(&app.metrics().await);
    std::fs::write(&cert, b"-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    eventually("the failed reload is counted", || async {
        reload_failures(&app.metrics().await) > failures_before
    })
    .await;
    assert_eq!(served_leaf(app.addr, &ca_refs).await, second_leaf);
    let health = app.client.get(app.url("/health")).send().await;
    assert!(health.is_err(), "the app's client trusts only the first CA");
}

#[tokio::test]
async fn auto_mode_generates_once_and_reuses_the_certificate() {
    let app = spawn_app_with(|_| {}).await;
    let cert = app.data_dir.path().join("tls").join(CERT_FILE);
    let leaf = first_cert_der(&cert);
    assert_eq!(served_leaf(app.addr, &[app.ca_file.as_path()]).await, leaf);
    let dir = app.data_dir.path().display().to_string();
    let again = spawn_app_with(|env| {
        env.insert("DATA_DIR".into(), dir);
    })
    .await;
    assert_eq!(
        served_leaf(again.addr, &[again.ca_file.as_path()]).await,
        leaf
    );
}

/// `coordination_engine_tls_certificate_reloads_total{result="failure"}`, 0 when absent.
fn reload_failures(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                r#"coordination_engine_tls_certificate_reloads_total{result="failure"} "#,
            )
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

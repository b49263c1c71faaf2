//! Exit codes and startup errors: settings, files, databases; the offline subcommands.

use super::{assert_startup_error, run};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn invalid_settings_exit_2_naming_key_and_value() {
    assert_startup_error(&[("PORT", "abc")], &["PORT", "abc"]);
    assert_startup_error(&[("TLS_MODE", "bogus")], &["TLS_MODE", "bogus"]);
    assert_startup_error(
        &[("PORT", "9191"), ("METRICS_PORT", "9191")],
        &["METRICS_PORT", "9191"],
    );
    assert_startup_error(
        &[
            ("TLS_MODE", "files"),
            ("TLS_CERT_FILE", "/does/not/exist.crt"),
            ("TLS_KEY_FILE", "/does/not/exist.key"),
        ],
        &["TLS_CERT_FILE", "/does/not/exist.crt"],
    );
    assert_startup_error(&[("LOG_FORMAT", "yaml")], &["LOG_FORMAT", "yaml"]);
}

#[test]
fn an_unusable_data_dir_or_kubeconfig_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let data_dir = file.join("data").display().to_string();
    assert_startup_error(
        &[("DATA_DIR", data_dir.as_str())],
        &["DATA_DIR", "not-a-dir"],
    );
    assert_startup_error(
        &[("KUBECONFIG", "/no/such/kubeconfig")],
        &["KUBECONFIG", "/no/such/kubeconfig"],
    );
}

#[test]
fn a_cert_that_does_not_match_its_key_is_refused_at_startup() {
    use coordination_engine::tls::generate::{CERT_FILE, KEY_FILE, default_names, generate_into};
    let a = tempfile::tempdir().expect("dir");
    let b = tempfile::tempdir().expect("dir");
    generate_into(a.path(), &default_names(), false).expect("a");
    generate_into(b.path(), &default_names(), false).expect("b");
    let cert = a.path().join(CERT_FILE).display().to_string();
    let key = b.path().join(KEY_FILE).display().to_string();
    assert_startup_error(
        &[
            ("TLS_MODE", "files"),
            ("TLS_CERT_FILE", &cert),
            ("TLS_KEY_FILE", &key),
        ],
        &["does not match"],
    );
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    std::fs::write(
        dir.path().join("config/default.yaml"),
        "port: 8181\nlog_level: debug\n",
    )
    .expect("yaml");
    let extra = dir.path().join("extra.yaml");
    std::fs::write(&extra, "port: 8282\n").expect("yaml");
    let output = run(
        dir.path(),
        &["check-config", "--config", "extra.yaml"],
        &[("API_TOKEN", "top-secret-value"), ("METRICS_PORT", "9393")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("port: \"8282\""),
        "--config wins over default.yaml: {stdout}"
    );
    assert!(
        stdout.contains("metrics_port: \"9393\""),
        "env wins: {stdout}"
    );
    assert!(
        stdout.contains("log_level: \"debug\""),
        "default.yaml is read: {stdout}"
    );
    assert!(stdout.contains("api_token: \"<redacted>\""));
    assert!(!stdout.contains("top-secret-value"));

    let bad = run(dir.path(), &["check-config"], &[("PORT", "-1")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("PORT"));
}

#[test]
fn certs_generate_writes_a_ca_and_a_serving_cert_with_private_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let output = run(
        dir.path(),
        &[
            "certs",
            "generate",
            "--out",
            "out",
            "--dns",
            "ce.example.svc",
            "--dns",
            "10.1.2.3",
        ],
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (file, mode) in [
        ("ca.crt", 0o644),
        ("ca.key", 0o600),
        ("tls.crt", 0o644),
        ("tls.key", 0o600),
    ] {
        let meta = std::fs::metadata(dir.path().join("out").join(file)).expect(file);
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{file}");
    }
    let again = run(dir.path(), &["certs", "generate", "--out", "out"], &[]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "existing keys are not overwritten"
    );
    let bad = run(
        dir.path(),
        &["certs", "generate", "--out", "o2", "--dns", "bad name"],
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn version_prints_the_crate_version() {
    let dir = tempfile::tempdir().expect("dir");
    let output = run(dir.path(), &["version"], &[]);
    assert!(String::from_utf8_lossy(&output.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_corrupt_database_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    std::fs::write(
        dir.path().join("data/coordination-engine.db"),
        b"this is not an SQLite database, it is a text file that someone copied over it",
    )
    .expect("write");
    let started = std::time::Instant::now();
    let output = run(
        dir.path(),
        &["serve"],
        &[
            ("PORT", "0"),
            ("METRICS_PORT", "0"),
            ("BIND_ADDRESS", "127.0.0.1"),
        ],
    );
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("coordination-engine.db"), "{stderr}");
    // The cause, not a pool timeout after 30 s of retrying a file that will never open.
    assert!(stderr.contains("file is not a database"), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "a corrupt file is not busy: gave up after {took:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A PostgreSQL server that refuses connections: startup keeps trying for its 30 s cold-start
/// allowance (a database pod may start after the engine), then exits 2 naming the server,
/// never the password of the URL.
#[test]
fn an_unreachable_postgresql_is_a_clear_startup_error_that_hides_the_password() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
        // Dropped here: nothing listens on the port any more.
    };
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{closed}/engine");
    let started = std::time::Instant::now();
    let stderr = assert_startup_error(
        &[("DATABASE_URL", url.as_str())],
        // The cause, not only "pool timed out".
        &[&format!("127.0.0.1:{closed}"), "refused"],
    );
    let took = started.elapsed();
    assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
    // 30 s of retries plus one last connection attempt, with room for a loaded machine.
    assert!(took < Duration::from_secs(50), "gave up after {took:?}");
    eprintln!("an unreachable PostgreSQL was given up on after {took:?}");
}

#[test]
fn a_database_url_that_is_not_postgresql_or_a_missing_password_file_is_a_startup_error() {
    let stderr = assert_startup_error(
        &[("DATABASE_URL", "mysql://root:s3cret@db.example:3306/engine")],
        &["DATABASE_URL"],
    );
    assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
    assert_startup_error(
        &[
            ("DATABASE_URL", "postgres://engine@db.example:5432/engine"),
            ("DATABASE_PASSWORD_FILE", "/no/such/password"),
        ],
        &["DATABASE_PASSWORD_FILE", "/no/such/password"],
    );
}

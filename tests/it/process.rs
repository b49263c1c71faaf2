//! The real binary: exit codes, startup errors, the banner, graceful shutdown.

use crate::helpers::tls_connect;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_coordination-engine");

/// Runs the binary to completion in `dir` with only the given environment.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("binary runs")
}

/// Runs `serve` with `env`, asserts exit code 2 and that stderr names every `must_name`;
/// returns stderr.
fn assert_startup_error(env: &[(&str, &str)], must_name: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut full = vec![
        ("PORT", "0"),
        ("METRICS_PORT", "0"),
        ("BIND_ADDRESS", "127.0.0.1"),
    ];
    full.retain(|(k, _)| !env.iter().any(|(key, _)| key == k));
    full.extend_from_slice(env);
    let output = run(dir.path(), &["serve"], &full);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
    for word in must_name {
        assert!(
            stderr.contains(word),
            "{env:?}: stderr should name {word:?}: {stderr}"
        );
    }
    assert!(!stderr.contains("panicked"), "{env:?}: {stderr}");
    stderr.into_owned()
}

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

/// Reads lines from `reader` until one contains `needle`; returns that line.
async fn line_containing<R: tokio::io::AsyncRead + Unpin>(
    lines: &mut tokio::io::Lines<BufReader<R>>,
    needle: &str,
) -> String {
    let wait = async {
        while let Some(line) = lines.next_line().await.expect("read output") {
            if line.contains(needle) {
                return line;
            }
        }
        panic!("output ended before {needle:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no line with {needle:?} within 20s"))
}

/// The promise of docs/decisions/0008-graceful-shutdown-promise.md, with synchronization
/// points instead of timing: the TLS handshake (the server has accepted the connection), the
/// `100 Continue` (the server has read the request's headers) and the "SIGTERM received" line
/// (shutdown has begun). The server's own timeouts are set far above the test's deadlines, so
/// none of them can decide the outcome.
#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_0() {
    use crate::edge::ResponseReader;
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .envs([
            ("PORT", "0"),
            ("METRICS_PORT", "0"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("LOG_FORMAT", "json"),
            ("LOG_LEVEL", "info"),
            ("HEADER_READ_TIMEOUT", "300s"),
            ("BODY_READ_TIMEOUT", "300s"),
            ("SHUTDOWN_TIMEOUT", "300s"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();

    // The banner tells a new user where to go and how to authenticate.
    let api_line = line_containing(&mut stderr, "listening on").await;
    let addr: std::net::SocketAddr = api_line
        .rsplit("listening on ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .expect("banner names the address");
    line_containing(&mut stderr, "Authorization: Bearer $(cat data/api-token)").await;
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    let token = std::fs::read_to_string(dir.path().join("data/api-token")).expect("token");
    let ca = dir.path().join("data/tls/ca.crt");

    // Connection A: accepted (the handshake is done), its request headers half sent.
    let mut headers_arriving = tls_connect(addr, &[ca.as_path()]).await;
    headers_arriving
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("partial request");
    headers_arriving.flush().await.expect("flush");

    // Connection B: headers complete, the body still to come. `100 Continue` is the server
    // saying it has read the headers.
    let body = br#"{"title":"sent during shutdown"}"#;
    let mut body_pending = tls_connect(addr, &[ca.as_path()]).await;
    let head = format!(
        "POST /api/v1/incidents HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        token.trim(),
        body.len()
    );
    body_pending.write_all(head.as_bytes()).await.expect("head");
    let mut b_reader = ResponseReader::new();
    let interim = b_reader
        .next(&mut body_pending)
        .await
        .expect("100 Continue");
    assert_eq!(interim.status, 100, "{interim:?}");

    let pid = child.id().expect("running") as i32;
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    line_containing(&mut stdout, "SIGTERM received").await;
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

    // Both are answered in full, and each answer closes its connection (neither client
    // asked for that: the server is shutting down).
    body_pending.write_all(body).await.expect("body");
    let created = b_reader
        .next(&mut body_pending)
        .await
        .expect("B is answered");
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.closes_connection(), "{}", created.head);
    assert!(b_reader.closed(&mut body_pending).await, "B is closed");

    headers_arriving
        .write_all(b"\r\n")
        .await
        .expect("rest of the headers");
    let mut a_reader = ResponseReader::new();
    let health = a_reader
        .next(&mut headers_arriving)
        .await
        .expect("A is answered");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json()["status"], "ok");
    assert!(health.closes_connection(), "{}", health.head);
    assert!(a_reader.closed(&mut headers_arriving).await, "A is closed");
    drop((headers_arriving, body_pending));

    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits once its connections are answered")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
}

/// Starts `serve` in `dir` and returns the child and its API address (from the banner).
pub(crate) async fn start_server(
    dir: &Path,
    env: &[(&str, &str)],
) -> (tokio::process::Child, std::net::SocketAddr) {
    spawn_server(dir, env, Stdio::null()).await
}

/// Like [`start_server`] at `LOG_LEVEL=info`, with the process's (JSON) log lines.
pub(crate) async fn start_server_with_logs(
    dir: &Path,
    env: &[(&str, &str)],
) -> (
    tokio::process::Child,
    std::net::SocketAddr,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let env: Vec<(&str, &str)> = [("LOG_LEVEL", "info")]
        .into_iter()
        .chain(env.iter().copied())
        .collect();
    let (mut child, addr) = spawn_server(dir, &env, Stdio::piped()).await;
    let stdout = child.stdout.take().expect("stdout");
    (child, addr, BufReader::new(stdout).lines())
}

async fn spawn_server(
    dir: &Path,
    env: &[(&str, &str)],
    stdout: Stdio,
) -> (tokio::process::Child, std::net::SocketAddr) {
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .envs([
            ("PORT", "0"),
            ("METRICS_PORT", "0"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("LOG_LEVEL", "warn"),
        ])
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = line_containing(&mut stderr, "listening on").await;
    let addr = line
        .rsplit("listening on ")
        .next()
        .and_then(|rest| rest.trim_end_matches(')').parse().ok())
        .expect("banner names the address");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    (child, addr)
}

#[tokio::test]
async fn everything_acknowledged_survives_sigkill() {
    everything_acknowledged_survives_sigkill_on(None).await;
}

#[tokio::test]
async fn everything_acknowledged_survives_sigkill_on_postgresql() {
    if let Some(url) = coordination_engine::store::testing::fresh_postgres_database().await {
        everything_acknowledged_survives_sigkill_on(Some(&url)).await;
    }
}

/// `database`: `None` for SQLite under the data dir, else a PostgreSQL URL.
async fn everything_acknowledged_survives_sigkill_on(database: Option<&str>) {
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let mut env = vec![("API_TOKEN", "durability-test-token")];
    env.extend(database.map(|url| ("DATABASE_URL", url)));
    let (mut child, addr) = start_server(dir.path(), &env).await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url =
        |addr: std::net::SocketAddr, path: &str| format!("https://localhost:{}{path}", addr.port());

    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let response = client
            .post(url(addr, "/api/v1/incidents"))
            .bearer_auth("durability-test-token")
            .json(&serde_json::json!({"title": format!("durable {i}")}))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.expect("json");
        acknowledged.push(body["incident_id"].as_str().expect("id").to_string());
    }
    let paused = client
        .post(url(addr, "/api/v1/pause?namespace=prod"))
        .bearer_auth("durability-test-token")
        .send()
        .await
        .expect("pause");
    assert_eq!(paused.status(), 200);

    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");

    let (_child, addr) = start_server(dir.path(), &env).await;
    for id in &acknowledged {
        let response = client
            .get(url(addr, &format!("/api/v1/incidents/{id}")))
            .bearer_auth("durability-test-token")
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{id} survived");
    }
    let pauses: serde_json::Value = client
        .get(url(addr, "/api/v1/pause"))
        .bearer_auth("durability-test-token")
        .send()
        .await
        .expect("pauses")
        .json()
        .await
        .expect("json");
    assert_eq!(pauses["pauses"][0]["namespace"], "prod");
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

#[tokio::test]
async fn a_workflow_killed_mid_step_is_interrupted_at_the_next_start_not_resumed_blindly() {
    killed_mid_step_on(None).await;
}

/// On PostgreSQL the restarted replica first wins the Lease (the mock keeps it), then
/// interrupts the workflow of the earlier term.
#[tokio::test]
async fn a_workflow_killed_mid_step_is_interrupted_by_the_next_leader_on_postgresql() {
    if let Some(url) = coordination_engine::store::testing::fresh_postgres_database().await {
        killed_mid_step_on(Some(&url)).await;
    }
}

async fn killed_mid_step_on(database: Option<&str>) {
    coordination_engine::tls::install_default_provider();
    // A Deployment whose rollout never completes: after the restart the workflow verifies
    // for a minute, long enough to be killed in the middle.
    let mock = crate::helpers::cluster::stuck_deployment_mock().await;
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = mock.kubeconfig(dir.path()).display().to_string();
    let mut env = vec![
        ("API_TOKEN", "sigkill-test-token"),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("WORKLOAD_CHECKPOINT_TIMEOUT", "60s"),
    ];
    env.extend(database.map(|url| ("DATABASE_URL", url)));
    let (mut child, addr) = start_server(dir.path(), &env).await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url =
        |addr: std::net::SocketAddr, path: &str| format!("https://localhost:{}{path}", addr.port());
    let answer: serde_json::Value = client
        .post(url(addr, "/api/v1/remediation/trigger"))
        .bearer_auth("sigkill-test-token")
        .json(
            &serde_json::json!({"namespace": "shop", "resource_type": "deployment",
                                  "resource_name": "stuck", "issue_type": "crash_loop"}),
        )
        .send()
        .await
        .expect("trigger")
        .json()
        .await
        .expect("json");
    let id = answer["workflow_id"].as_str().expect("id").to_string();
    let workflow_url = |addr| url(addr, &format!("/api/v1/workflows/{id}"));
    let get = |addr| {
        let (client, url) = (client.clone(), workflow_url(addr));
        async move {
            client
                .get(url)
                .bearer_auth("sigkill-test-token")
                .send()
                .await
                .expect("get")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let verifying = crate::helpers::wait_for(
        "the workflow to restart the Deployment and verify",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || async {
            let workflow = get(addr).await;
            (workflow["status"] == "verifying").then_some(workflow)
        },
    )
    .await;
    assert!(
        verifying["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["action"] == "rollout_restart")),
        "{verifying}"
    );

    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("killed");
    let patches_before = mock
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();

    let (_child, addr) = start_server(dir.path(), &env).await;
    // With SQLite at once; on PostgreSQL once the new process holds the Lease (the killed
    // one's record must first go unrenewed for the lease duration, 15 s).
    let workflow = crate::helpers::wait_for(
        "the workflow to be interrupted",
        Duration::from_secs(40),
        Duration::from_millis(200),
        || async {
            let workflow = get(addr).await;
            (workflow["status"] == "interrupted").then_some(workflow)
        },
    )
    .await;
    assert!(
        workflow["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped while this workflow ran")),
        "{workflow}"
    );
    assert_eq!(
        workflow["steps"].as_array().map(Vec::len),
        verifying["steps"].as_array().map(Vec::len),
        "the steps persisted before the kill are all there"
    );
    let patches_after = mock
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches_before, 1);
    assert_eq!(patches_after, 1, "the half-done workflow was not run again");
    mock.stop().await;
}

//! Real peer processes started by tests (installed by `scripts/test.sh`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;

/// Finds a peer binary: `$<ENV>` or the first name found in `PATH`. `None` (with a message) when
/// it is missing, so a developer without it sees why the test did nothing; under
/// `REQUIRE_PEERS` (CI) a missing peer fails the test instead.
pub fn find_binary(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        // `./scripts/test.sh` (CI) sets REQUIRE_PEERS: there, a missing peer is a failure.
        assert!(
            std::env::var_os("REQUIRE_PEERS").is_none(),
            "none of {names:?} in PATH (set {env}), and REQUIRE_PEERS is set"
        );
        eprintln!("SKIPPED: none of {names:?} in PATH (set {env}); ./scripts/test.sh installs it");
    }
    found
}

/// A port that was free a moment ago, for peers that cannot be told to pick one.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a peer process that is killed when the handle drops.
pub fn spawn(binary: &PathBuf, args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(binary)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

/// A real Alertmanager started with `config` (YAML), ready to take alerts; killed when the
/// handle drops.
pub struct RunningAlertmanager {
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

pub async fn start_alertmanager(binary: &PathBuf, config: &str) -> RunningAlertmanager {
    let dir = tempfile::tempdir().expect("dir");
    let config_file = dir.path().join("alertmanager.yml");
    std::fs::write(&config_file, config).expect("config");
    let port = free_port();
    let child = spawn(
        binary,
        &[
            format!("--config.file={}", config_file.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--cluster.listen-address=".to_string(),
        ],
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    crate::helpers::wait_for(
        "alertmanager ready",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(200),
        || async {
            let ready = http.get(format!("{url}/-/ready")).send().await.ok()?;
            ready.status().is_success().then_some(())
        },
    )
    .await;
    RunningAlertmanager {
        _child: child,
        _dir: dir,
        url,
    }
}

/// The real KServe model server (`tests/kserve/model_server.py`, run by `$KSERVE_PYTHON`, which
/// `scripts/test.sh` points at its virtualenv) on `port`, ready to answer.
pub async fn start_model_server(port: u16) -> Option<tokio::process::Child> {
    start_model_server_serving(
        port,
        "anomaly-detector=anomaly-detector,predictive-analytics=predictive-analytics",
    )
    .await
}

/// [`start_model_server`] serving its models under chosen names: `serve` is
/// `NAME=KIND[,NAME=KIND…]`, e.g. `model=anomaly-detector` as the Go engine's platform deploys
/// each predictor. Ready when the first of them says so.
pub async fn start_model_server_serving(port: u16, serve: &str) -> Option<tokio::process::Child> {
    let python = find_binary("KSERVE_PYTHON", &[])?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kserve/model_server.py");
    let child = spawn(
        &python,
        &[
            script.display().to_string(),
            format!("--http_port={port}"),
            "--enable_grpc=false".to_string(),
            format!("--serve={serve}"),
        ],
    );
    let first = serve
        .split(['=', ','])
        .next()
        .unwrap_or_default()
        .to_string();
    let client = reqwest::Client::new();
    crate::helpers::wait_for(
        "the KServe model server to be ready",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(200),
        || async {
            let answer: serde_json::Value = client
                .get(format!("http://127.0.0.1:{port}/v1/models/{first}"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (answer["ready"] == true).then_some(())
        },
    )
    .await;
    Some(child)
}

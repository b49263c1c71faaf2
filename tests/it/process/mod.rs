//! The real binary: exit codes, startup errors, the banner, graceful shutdown.

mod crash;
mod shutdown;
mod startup;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

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

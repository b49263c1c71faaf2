//! The real binary as a process, and its peak memory and CPU time read from /proc.

use super::TOKEN;
use crate::helpers::https_client;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `VmHWM` (peak resident set) of a process, in bytes.
pub(super) fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// utime + stime of a process.
pub(super) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_millis(ticks * 1000 / per_second)
}

/// The binary, serving on ephemeral ports; both addresses are read from its banner.
pub(super) struct Server {
    child: tokio::process::Child,
    url: String,
    pub(super) metrics_url: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The address after `marker` on a banner line (`… listening on 127.0.0.1:1234)`,
/// `metrics: http://127.0.0.1:5678/metrics`).
fn address_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    Some(rest.split([')', '/']).next()?.trim().to_string())
}

impl Server {
    pub(super) async fn start() -> Server {
        coordination_engine::tls::install_default_provider();
        let dir = tempfile::tempdir().expect("dir");
        // `GUARD_BOUNDS_BINARY` measures another build (docs/perf.md: the release binary).
        let binary = std::env::var("GUARD_BOUNDS_BINARY")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_coordination-engine").to_string());
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .envs([
                ("PORT", "0"),
                ("METRICS_PORT", "0"),
                ("BIND_ADDRESS", "127.0.0.1"),
                ("LOG_LEVEL", "warn"),
                ("API_TOKEN", TOKEN),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let banner = async {
            let (mut api, mut metrics) = (None, None);
            while api.is_none() || metrics.is_none() {
                let line = stderr.next_line().await.expect("read").expect("banner");
                api = api.or_else(|| address_after(&line, "listening on "));
                metrics = metrics.or_else(|| address_after(&line, "metrics: http://"));
            }
            (api.expect("api"), metrics.expect("metrics"))
        };
        let (api, metrics) = tokio::time::timeout(Duration::from_secs(20), banner)
            .await
            .expect("the banner within 20 s");
        // Keep draining stderr so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
        let port = api.rsplit(':').next().expect("port");
        Server {
            child,
            url: format!("https://localhost:{port}"),
            metrics_url: format!("http://{metrics}/metrics"),
            client: https_client(&dir.path().join("data/tls/ca.crt")),
            _dir: dir,
        }
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    pub(super) async fn post(&self, path: &str, body: Vec<u8>) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }

    /// Posts a review without a token, as the API server does.
    pub(super) async fn review(&self, body: Vec<u8>) -> Value {
        let response = self
            .client
            .post(format!("{}/webhooks/validate", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("review");
        assert_eq!(response.status(), 200);
        response.json().await.expect("json")
    }

    pub(super) async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("json")
    }
}

/// Posts one request and returns its answer and the server's CPU time spent meanwhile.
pub(super) async fn timed<F: std::future::Future<Output = Value>>(
    pid: u32,
    request: F,
) -> (Value, Duration) {
    let before = cpu_time(pid);
    let answer = request.await;
    (answer, cpu_time(pid).saturating_sub(before))
}

//! Shared by the benchmarks: percentiles and the section writer for docs/perf.md.
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use coordination_engine::config::{self, Sources};
use coordination_engine::startup::Application;
use std::time::Duration;

/// The bench token of `spawn_server`.
pub const TOKEN: &str = "bench-token";

/// The real server in-process on a free port (TLS with a generated CA, SQLite in a temp dir).
/// Returns its `https://localhost:<port>` base URL, the CA to trust, and the temp dir (keep it).
pub async fn spawn_server() -> (String, Vec<u8>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PORT", "0"),
        ("METRICS_PORT", "0"),
        ("LOG_LEVEL", "warn"),
        ("API_TOKEN", TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("DATA_DIR".to_string(), dir.path().display().to_string())])
    .collect();
    let settings = config::load(&Sources { files: vec![], env }).expect("settings");
    let app = Application::build(settings).await.expect("app");
    let base = format!("https://localhost:{}", app.api_addr.port());
    tokio::spawn(app.run_until_stopped());
    let ca = std::fs::read(dir.path().join("tls/ca.crt")).expect("ca");
    (base, ca, dir)
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Replaces this benchmark's section of docs/perf.md (between its markers), keeping the others.
pub fn write_section(name: &str, how: &str, section: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/perf.md");
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let start_marker = format!("<!-- bench:{name}:start -->");
    let end_marker = format!("<!-- bench:{name}:end -->");
    let machine = format!(
        "Measured {} on this machine ({} CPUs) with `{how}` (release profile).\n\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let block = format!("{start_marker}\n{machine}{section}{end_marker}");
    let updated = match (existing.find(&start_marker), existing.find(&end_marker)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{}{}",
            &existing[..a],
            block,
            &existing[b + end_marker.len()..]
        ),
        _ if existing.is_empty() => format!(
            "# Performance\n\nNumbers from the benchmarks, with how they were measured. Re-run \
             them after changing a hot path; each writes its own section.\n\n{block}\n"
        ),
        _ => format!("{}\n{block}\n", existing.trim_end()),
    };
    std::fs::write(&path, updated).expect("write docs/perf.md");
    eprintln!("wrote {}", path.display());
}

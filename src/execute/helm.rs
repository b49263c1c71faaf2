//! The Helm channel (SPEC §5.4): release history read natively from the release Secrets
//! (`sh.helm.release.v1.<release>.v<N>`, labels `owner=helm,name=<release>`; the `release` key
//! is base64 of gzip of the release JSON, under the Secret's own base64), and a rollback to the
//! last good revision with the helm CLI (`HELM_BIN`). Without a helm binary the step escalates
//! with the exact command to run. A release with no Secrets (rendered by ArgoCD or
//! `helm template`) is never "rolled back": there is nothing to roll back to.

use super::{ExecError, with_retry};
use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// One revision of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub version: u64,
    /// `deployed`, `superseded`, `failed`, `pending-upgrade`, …
    pub status: String,
    pub chart: String,
    pub app_version: String,
}

/// Decodes the `release` value of a release Secret (already un-base64'd by the Secret):
/// helm's base64, then gzip (or plain JSON for very old releases).
pub fn decode_release(data: &[u8]) -> Result<Value, String> {
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(64 << 20)
            .read_to_end(&mut out)
            .map_err(|e| format!("not gzip: {e}"))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&json).map_err(|e| format!("not a release document: {e}"))
}

/// What the pipeline needs of a decoded release.
pub fn revision(release: &Value) -> Option<Revision> {
    let text = |p: &str| {
        release
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(Revision {
        version: release.get("version")?.as_u64()?,
        status: text("/info/status"),
        chart: format!(
            "{}-{}",
            text("/chart/metadata/name"),
            text("/chart/metadata/version")
        ),
        app_version: text("/chart/metadata/appVersion"),
    })
}

/// The revision to roll back to: the newest one before the current that ran successfully
/// (`deployed` or `superseded`; `failed` and pending revisions never count).
pub fn rollback_target(history: &[Revision]) -> Option<&Revision> {
    let current = history.iter().map(|r| r.version).max()?;
    history
        .iter()
        .filter(|r| r.version < current && matches!(r.status.as_str(), "deployed" | "superseded"))
        .max_by_key(|r| r.version)
}

/// The release's revisions, oldest first, from its Secrets.
pub async fn history(
    client: &kube::Client,
    namespace: &str,
    release: &str,
) -> Result<Vec<Revision>, ExecError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let params = ListParams::default().labels(&format!("owner=helm,name={release}"));
    let list = with_retry(|| async { Ok(secrets.list(&params).await?) }).await?;
    let mut revisions = Vec::new();
    for secret in list.items {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let Some(data) = secret.data.as_ref().and_then(|d| d.get("release")) else {
            continue;
        };
        let release = decode_release(&data.0).map_err(|why| {
            ExecError::Permanent(format!("release Secret {namespace}/{name}: {why}"))
        })?;
        if let Some(revision) = revision(&release) {
            revisions.push(revision);
        }
    }
    revisions.sort_by_key(|r| r.version);
    Ok(revisions)
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackOutcome {
    Done(String),
    /// No helm binary: the exact command for a human.
    NoHelm {
        command: String,
    },
}

/// `helm rollback <release> <revision> --namespace <ns>` with `helm_bin` (`helm` on the PATH
/// when unset) and the engine's kubeconfig (`KUBECONFIG`), bounded by `timeout`.
pub async fn rollback(
    helm_bin: Option<&Path>,
    kubeconfig: Option<&str>,
    namespace: &str,
    release: &str,
    target: &Revision,
    dry_run: bool,
    timeout: Duration,
) -> Result<RollbackOutcome, ExecError> {
    let mut args: Vec<String> = vec![
        "rollback".into(),
        release.into(),
        target.version.to_string(),
        "--namespace".into(),
        namespace.into(),
    ];
    if dry_run {
        args.push("--dry-run".into());
    }
    let command = format!("helm {}", args.join(" "));
    // helm bounds its own API calls; ours is a backstop with room to spare, because killing
    // helm mid-rollback leaves the release `pending-rollback`.
    args.push(format!("--timeout={}s", timeout.as_secs().max(1)));
    let timeout = timeout + Duration::from_secs(60);
    let program = helm_bin.map(Path::as_os_str).unwrap_or("helm".as_ref());
    let mut child = tokio::process::Command::new(program);
    if let Some(paths) = kubeconfig {
        child.env("KUBECONFIG", paths);
    }
    let child = child
        .args(&args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(timeout, child).await {
        Err(_) => {
            return Err(ExecError::Permanent(format!(
                "`{command}` did not finish within {}s",
                timeout.as_secs()
            )));
        }
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RollbackOutcome::NoHelm { command });
        }
        Ok(Err(error)) => {
            return Err(ExecError::Permanent(format!("cannot run helm: {error}")));
        }
        Ok(Ok(output)) => output,
    };
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        text.trim()
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    };
    if output.status.success() {
        Ok(RollbackOutcome::Done(format!(
            "rolled back Helm release {namespace}/{release} to revision {} ({}, app {}): {}",
            target.version,
            target.chart,
            target.app_version,
            tail(&output.stdout)
        )))
    } else {
        Err(ExecError::Permanent(format!(
            "`{command}` failed ({}): {}",
            output.status,
            tail(&output.stderr)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(version: u64, status: &str) -> Revision {
        Revision {
            version,
            status: status.into(),
            chart: "c-1".into(),
            app_version: "1".into(),
        }
    }

    #[test]
    fn the_target_is_the_newest_good_revision_before_the_current() {
        let cases = [
            (
                vec![
                    rev(1, "superseded"),
                    rev(2, "superseded"),
                    rev(3, "deployed"),
                ],
                Some(2),
            ),
            (
                vec![rev(1, "superseded"), rev(2, "deployed"), rev(3, "failed")],
                Some(2),
            ),
            (
                vec![rev(1, "superseded"), rev(2, "failed"), rev(3, "failed")],
                Some(1),
            ),
            (vec![rev(1, "deployed")], None),
            (vec![], None),
        ];
        for (history, expected) in cases {
            assert_eq!(
                rollback_target(&history).map(|r| r.version),
                expected,
                "{history:?}"
            );
        }
    }

    #[test]
    fn releases_decode_from_gzip_or_plain_json_and_garbage_is_an_error() {
        use std::io::Write;
        let json = br#"{"name":"shop","version":3,"info":{"status":"deployed"},"chart":{"metadata":{"name":"shop","version":"1.2.0","appVersion":"2.0"}}}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json).expect("gzip");
        let zipped = base64::engine::general_purpose::STANDARD.encode(gz.finish().expect("gzip"));
        let release = decode_release(zipped.as_bytes()).expect("decodes");
        assert_eq!(
            revision(&release),
            Some(Revision {
                version: 3,
                status: "deployed".into(),
                chart: "shop-1.2.0".into(),
                app_version: "2.0".into()
            })
        );
        let plain = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(decode_release(plain.as_bytes()), Ok(release));
        assert!(decode_release(b"%%%").is_err());
        let not_json = base64::engine::general_purpose::STANDARD.encode(b"hello");
        assert!(decode_release(not_json.as_bytes()).is_err());
    }
}

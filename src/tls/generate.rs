//! Generates a private CA and a serving certificate signed by it (`certs generate`, and
//! `TLS_MODE=auto` on first start).
//!
//! The file names match a Kubernetes `kubernetes.io/tls` Secret and cert-manager's output
//! (`tls.crt`, `tls.key`, `ca.crt`), so the same directory layout works everywhere.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";

/// Validity of generated certificates. Long-lived because they are for laptops and tests;
/// production certs come from cert-manager or service-ca and are rotated (and reloaded).
const CA_VALIDITY_DAYS: i64 = 3650;
const SERVING_VALIDITY_DAYS: i64 = 825;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot generate certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
}

/// The paths of a generated set.
#[derive(Debug, Clone)]
pub struct GeneratedPaths {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl GeneratedPaths {
    pub fn in_dir(dir: &Path) -> Self {
        GeneratedPaths {
            ca_cert: dir.join(CA_CERT_FILE),
            cert: dir.join(CERT_FILE),
            key: dir.join(KEY_FILE),
        }
    }
}

/// The names a serving cert gets when the user names none: what a laptop user types.
pub fn default_names() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
}

/// Writes `ca.crt`, `ca.key`, `tls.crt`, `tls.key` into `dir` (keys with mode 0600).
/// Refuses to replace existing files unless `force`.
pub fn generate_into(
    dir: &Path,
    names: &[String],
    force: bool,
) -> Result<GeneratedPaths, GenerateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenerateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let files = [CA_CERT_FILE, CA_KEY_FILE, CERT_FILE, KEY_FILE].map(|f| dir.join(f));
    if !force && let Some(existing) = files.iter().find(|p| p.exists()) {
        return Err(GenerateError::Exists(existing.clone()));
    }

    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let serving_key = KeyPair::generate()?;
    let serving_cert = serving_params(names)?.signed_by(&serving_key, &issuer)?;

    let [ca_crt, ca_key_path, crt, key] = files;
    write_file(&ca_crt, ca_cert.pem().as_bytes(), 0o644).map_err(io(&ca_crt))?;
    write_file(&ca_key_path, issuer.key().serialize_pem().as_bytes(), 0o600)
        .map_err(io(&ca_key_path))?;
    // The chain (serving cert, then CA) so clients that only know the CA can verify it.
    let chain = format!("{}{}", serving_cert.pem(), ca_cert.pem());
    write_file(&crt, chain.as_bytes(), 0o644).map_err(io(&crt))?;
    write_file(&key, serving_key.serialize_pem().as_bytes(), 0o600).map_err(io(&key))?;
    Ok(GeneratedPaths::in_dir(dir))
}

fn ca_params() -> Result<CertificateParams, GenerateError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, "coordination-engine local CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, CA_VALIDITY_DAYS);
    Ok(params)
}

fn serving_params(names: &[String]) -> Result<CertificateParams, GenerateError> {
    for name in names {
        validate_name(name)?;
    }
    let mut params = CertificateParams::new(names.to_vec())?;
    let common_name = names.first().map(String::as_str).unwrap_or("localhost");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params, SERVING_VALIDITY_DAYS);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, days: i64) {
    let now = time::OffsetDateTime::now_utc();
    // Backdate a little: clocks of clients and servers are rarely in perfect agreement.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
    params.serial_number = Some(random_serial());
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // positive, as RFC 5280 requires
    bytes[0] |= 0x01; // and no leading zero byte to strip
    SerialNumber::from_slice(&bytes)
}

fn validate_name(name: &str) -> Result<(), GenerateError> {
    let invalid = |reason: &str| GenerateError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if name.is_empty() || name.len() > 253 {
        return Err(invalid("a DNS name has 1 to 253 characters"));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let labels: Vec<&str> = name.strip_prefix("*.").unwrap_or(name).split('.').collect();
    if labels.iter().all(|l| label_ok(l)) {
        Ok(())
    } else {
        Err(invalid(
            "expected a DNS name (letters, digits, '-', dots) or an IP address",
        ))
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    // Write to a temp file and rename, so a reader (or a crash) never sees half a key.
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_keys_are_private_and_files_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = generate_into(dir.path(), &default_names(), false).expect("generate");
        let mode = std::fs::metadata(&paths.key)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let ca_key_mode = std::fs::metadata(dir.path().join(CA_KEY_FILE))
            .expect("ca key")
            .permissions()
            .mode();
        assert_eq!(ca_key_mode & 0o777, 0o600);
        let chain = std::fs::read_to_string(&paths.cert).expect("cert");
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    }

    #[test]
    fn existing_files_are_not_replaced_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        generate_into(dir.path(), &default_names(), false).expect("first");
        let before = std::fs::read(dir.path().join(KEY_FILE)).expect("key");
        assert!(matches!(
            generate_into(dir.path(), &default_names(), false),
            Err(GenerateError::Exists(_))
        ));
        generate_into(dir.path(), &default_names(), true).expect("forced");
        assert_ne!(
            before,
            std::fs::read(dir.path().join(KEY_FILE)).expect("key")
        );
    }

    #[test]
    fn bad_names_are_rejected() {
        for bad in ["", "has space", "under_score.example", "-"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in [
            "localhost",
            "ce.ns.svc",
            "*.apps.example.com",
            "10.0.0.1",
            "::1",
        ] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }
}

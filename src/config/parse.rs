//! Typed parsing of raw configuration values.
//!
//! Every value arrives as a string (from YAML or the environment). Each parser returns a
//! [`ConfigError`] that names the key, the environment variable and the rejected value, so a
//! typo never silently falls back to a default.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A configuration value that could not be used. Displayed to the operator at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {env} ({key}): {reason}")]
    Invalid {
        key: String,
        env: String,
        value: String,
        reason: String,
    },
    #[error(
        "unknown configuration key {key:?} (from {origin}); see config/default.yaml for the known keys"
    )]
    UnknownKey { key: String, origin: String },
    #[error("cannot read configuration: {0}")]
    Source(String),
}

impl ConfigError {
    /// An invalid value for `key`, with the reason it was rejected.
    pub fn invalid(key: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            env: env_name(key),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// The environment variable that sets `key` (`tls_cert_file` → `TLS_CERT_FILE`).
pub fn env_name(key: &str) -> String {
    key.to_ascii_uppercase()
}

/// Raw, merged key → string values, with typed getters that produce good errors.
#[derive(Debug, Default)]
pub struct RawValues(pub HashMap<String, String>);

impl RawValues {
    /// The value of `key`, or `None` when it is unset or empty.
    pub fn string(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_string())
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.string(key).map(PathBuf::from)
    }

    pub fn parse_or<T: FromStr>(
        &self,
        key: &str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<T>()
                .map_err(|_| ConfigError::invalid(key, &v, format!("expected {what}"))),
        }
    }

    pub fn port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        self.parse_or(key, default, "a TCP port number between 0 and 65535")
    }

    pub fn optional_port(&self, key: &str) -> Result<Option<u16>, ConfigError> {
        self.string(key)
            .map(|v| {
                v.parse::<u16>().map_err(|_| {
                    ConfigError::invalid(key, &v, "expected a TCP port number between 0 and 65535")
                })
            })
            .transpose()
    }

    pub fn ip(&self, key: &str, default: IpAddr) -> Result<IpAddr, ConfigError> {
        self.parse_or(key, default, "an IP address such as 0.0.0.0 or 127.0.0.1")
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(key, &v, "expected true or false")),
            },
        }
    }

    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => parse_duration(&v).ok_or_else(|| {
                ConfigError::invalid(
                    key,
                    &v,
                    "expected a duration such as 500ms, 10s, 5m or 1h (a bare number means seconds)",
                )
            }),
        }
    }

    /// One of `allowed` (case-insensitive), returned lower-cased.
    pub fn choice(
        &self,
        key: &str,
        default: &str,
        allowed: &[&str],
    ) -> Result<String, ConfigError> {
        let value = self.string_or(key, default).to_ascii_lowercase();
        if allowed.contains(&value.as_str()) {
            Ok(value)
        } else {
            Err(ConfigError::invalid(
                key,
                &value,
                format!("expected one of {}", allowed.join(", ")),
            ))
        }
    }

    /// A comma-separated list (empty entries dropped).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.string(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An `http://` or `https://` URL without trailing slash.
    pub fn http_url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.string(key) else {
            return Ok(None);
        };
        let rest = v
            .strip_prefix("https://")
            .or_else(|| v.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                Ok(Some(v.trim_end_matches('/').to_string()))
            }
            _ => Err(ConfigError::invalid(
                key,
                &v,
                "expected an http:// or https:// URL",
            )),
        }
    }
}

/// Parses `500ms`, `10s`, `5m`, `1h` or a bare number of seconds. Zero is allowed.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    let seconds = match unit.trim() {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// Formats a duration the way `parse_duration` reads it back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_millis() != 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_documented_units() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in ["", "s", "ten", "10 parsecs", "-1s", "1e400"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn format_duration_round_trips() {
        for d in [Duration::from_secs(10), Duration::from_millis(250)] {
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
    }

    #[test]
    fn invalid_port_error_names_env_var_and_value() {
        let mut raw = RawValues::default();
        raw.0.insert("port".into(), "abc".into());
        let err = raw.port("port", 8080).unwrap_err().to_string();
        assert!(err.contains("PORT"), "{err}");
        assert!(err.contains("\"abc\""), "{err}");
    }

    #[test]
    fn urls_must_be_http() {
        let mut raw = RawValues::default();
        raw.0.insert("u".into(), "ftp://x".into());
        assert!(raw.http_url("u").is_err());
        raw.0.insert("u".into(), "https://argocd.example/".into());
        assert_eq!(
            raw.http_url("u").unwrap().as_deref(),
            Some("https://argocd.example")
        );
    }
}

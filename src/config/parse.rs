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

    /// A duration of at most [`MAX_DURATION`].
    pub fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.duration_at_most(key, default, MAX_DURATION)
    }

    /// A duration of at most `max` (and never more than [`MAX_DURATION`]).
    pub fn duration_at_most(
        &self,
        key: &str,
        default: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = self.string(key) else {
            return Ok(default);
        };
        let duration = parse_duration(&v).ok_or_else(|| {
            ConfigError::invalid(
                key,
                &v,
                "expected a duration such as 500ms, 10s, 5m, 1h or 2d (a bare number means seconds)",
            )
        })?;
        let max = max.min(MAX_DURATION);
        if duration > max {
            return Err(ConfigError::invalid(
                key,
                &v,
                format!("at most {}", describe_duration(max)),
            ));
        }
        Ok(duration)
    }

    /// A number of at most `max`; `what` says what it counts.
    pub fn number_at_most<T>(
        &self,
        key: &str,
        default: T,
        max: T,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        let value = self.parse_or(key, default, &format!("{what}, at most {max}"))?;
        if value > max {
            let text = self.string(key).unwrap_or_default();
            return Err(ConfigError::invalid(
                key,
                &text,
                format!("expected {what}, at most {max}"),
            ));
        }
        Ok(value)
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

/// The longest duration any setting accepts: ten years. A longer value is a typo (a unit
/// forgotten or doubled), and time arithmetic that far out overflows the calendar.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86_400);

/// `3650d`, `24h`, `90s`: how a bound is shown in an error.
fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        format_duration(d)
    } else if secs % 86_400 == 0 && secs > 86_400 {
        format!("{}d", secs / 86_400)
    } else if secs % 3600 == 0 && secs > 0 {
        format!("{}h", secs / 3600)
    } else {
        format!("{secs}s")
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
    fn durations_are_bounded_to_ten_years() {
        let mut raw = RawValues::default();
        raw.0.insert("t".into(), "3650d".into());
        assert_eq!(raw.duration("t", Duration::ZERO).ok(), Some(MAX_DURATION));
        raw.0.insert("t".into(), "3651d".into());
        let err = raw.duration("t", Duration::ZERO).unwrap_err().to_string();
        assert!(err.contains("at most 3650d"), "{err}");
        raw.0.insert("t".into(), "2h".into());
        let err = raw
            .duration_at_most("t", Duration::ZERO, Duration::from_secs(3600))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 1h"), "{err}");
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

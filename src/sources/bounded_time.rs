//! Times from outside (alert `startsAt`/`endsAt`, audit timestamps, the API's `since`), held
//! to the years 0000–9999.
//!
//! chrono itself accepts years up to ±262 143, where ordinary arithmetic (`t - window`,
//! `t + ttl`) overflows and panics. Every time a client sends is checked here on the way in,
//! so the code behind it can do plain arithmetic on realistic dates. The range is also what
//! RFC 3339 and Go's `time.Time` JSON encoding (Alertmanager, the Kubernetes API server)
//! can express, so no real sender is refused.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Deserializer};

pub const MIN_YEAR: i32 = 0;
pub const MAX_YEAR: i32 = 9999;

/// What a rejected time is told (after the field name).
pub const EXPECTED: &str = "must be an RFC 3339 time in the years 0000 to 9999";

/// Whether `t` lies in the years 0000–9999 (UTC).
pub fn in_range(t: DateTime<Utc>) -> bool {
    (MIN_YEAR..=MAX_YEAR).contains(&t.year())
}

/// Parses an RFC 3339 time (any offset), refusing years outside 0000–9999 in UTC.
pub fn parse(text: &str) -> Result<DateTime<Utc>, String> {
    text.trim()
        .parse::<DateTime<Utc>>()
        .ok()
        .filter(|t| in_range(*t))
        .ok_or_else(|| {
            let shown: String = text.chars().take(64).collect();
            format!("{EXPECTED}, got {shown:?}")
        })
}

/// `#[serde(deserialize_with = "…")]` for a required time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(default, deserialize_with = "…")]` for an optional time (`null` or absent: none).
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edges_of_the_range_are_accepted() {
        for text in [
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
            "2026-11-23T10:00:00.123456+02:00",
        ] {
            assert!(parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn times_chrono_accepts_but_arithmetic_cannot_bear_are_refused() {
        for text in [
            "-262143-01-01T00:00:00Z",
            "+262142-12-31T23:59:59Z",
            "-0001-12-31T23:59:59Z",
            "+10000-01-01T00:00:00Z",
            // In range as written, out of range in UTC.
            "0000-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "yesterday",
            "",
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.starts_with(EXPECTED), "{error}");
        }
    }

    #[test]
    fn a_long_bad_time_is_quoted_short() {
        let error = parse(&"9".repeat(100_000)).expect_err("refused");
        assert!(error.len() < 200, "{error}");
    }

    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "deserialize_option")]
        at: Option<DateTime<Utc>>,
    }

    #[test]
    fn optional_times_accept_null_and_absence_and_refuse_the_out_of_range() {
        let parse = |json: &str| serde_json::from_str::<Probe>(json).map(|p| p.at);
        assert_eq!(parse("{}").expect("absent"), None);
        assert_eq!(parse(r#"{"at": null}"#).expect("null"), None);
        assert!(
            parse(r#"{"at": "2026-01-01T00:00:00Z"}"#)
                .expect("ok")
                .is_some()
        );
        assert!(parse(r#"{"at": "-262143-01-01T00:00:00Z"}"#).is_err());
        assert!(parse(r#"{"at": 12}"#).is_err());
    }
}

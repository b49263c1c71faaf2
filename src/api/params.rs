//! Query-string parameters shared by the list routes: paging, enum filters, `since`.
//! Every rejection is a 400 that names the parameter and the accepted values.

use crate::error::ApiError;
use crate::sources::bounded_time;
use crate::store::{PageRequest, PageStart};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::str::FromStr;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 1000;
const MAX_OFFSET: i64 = 10_000_000;

fn bad(param: &str, message: String) -> ApiError {
    ApiError::bad_request(message).with_details(serde_json::json!({ "parameter": param }))
}

/// `limit`, `offset`, `cursor` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct PagingParams {
    pub limit: Option<String>,
    pub offset: Option<String>,
    pub cursor: Option<String>,
}

impl PagingParams {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    bad(
                        "limit",
                        format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"),
                    )
                })?,
        };
        let offset = match self.offset.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|n| (0..=MAX_OFFSET).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "offset",
                            format!(
                                "offset must be an integer from 0 to {MAX_OFFSET}, got {text:?}"
                            ),
                        )
                    })?,
            ),
        };
        let start = match (offset, self.cursor.as_deref().filter(|c| !c.is_empty())) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "cursor",
                    "use either offset or cursor, not both".into(),
                ));
            }
            (_, Some(cursor)) => decode_cursor(cursor)?,
            (offset, None) => PageStart::Offset(offset.unwrap_or(0)),
        };
        Ok(PageRequest { limit, start })
    }
}

/// An opaque cursor: base64url of `<created_at_us>:<id>`.
pub fn encode_cursor(start: &PageStart) -> Option<String> {
    match start {
        PageStart::After { created_at_us, id } => {
            Some(URL_SAFE_NO_PAD.encode(format!("{created_at_us}:{id}")))
        }
        PageStart::Offset(_) => None,
    }
}

fn decode_cursor(cursor: &str) -> Result<PageStart, ApiError> {
    let invalid = || bad("cursor", "the cursor is not one this server issued".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
    let created_at_us = micros.parse::<i64>().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 {
        return Err(invalid());
    }
    Ok(PageStart::After {
        created_at_us,
        id: id.to_string(),
    })
}

/// A comma-separated list of enum values; `all` (or nothing) means no filter. `aliases` maps
/// other accepted words to values (e.g. the Go engine's `completed` → `resolved`).
pub fn enum_list<T: FromStr<Err = String> + Copy>(
    param: &str,
    value: Option<&str>,
    aliases: &[(&str, T)],
) -> Result<Vec<T>, ApiError> {
    let Some(value) = value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "all")
    else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(|word| {
            let word = word.trim();
            aliases
                .iter()
                .find(|(alias, _)| *alias == word)
                .map(|(_, v)| Ok(*v))
                .unwrap_or_else(|| word.parse::<T>())
                .map_err(|why| bad(param, format!("invalid {param}: {why}")))
        })
        .collect()
}

/// One enum value or `all`.
pub fn enum_one<T: FromStr<Err = String> + Copy>(
    param: &str,
    value: Option<&str>,
) -> Result<Option<T>, ApiError> {
    let mut values = enum_list::<T>(param, value, &[])?;
    match values.len() {
        0 => Ok(None),
        1 => Ok(values.pop()),
        _ => Err(bad(param, format!("{param} takes a single value"))),
    }
}

/// `since`: an RFC 3339 time, or a duration back from now (`24h`, `30m`); either way within
/// the years 0000–9999 (the bounds of every time the API accepts).
pub fn since(value: Option<&str>, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let back_from_now = || {
        crate::config::parse_duration(text)
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_sub_signed(d))
            .filter(|t| bounded_time::in_range(*t))
    };
    let parsed = bounded_time::parse(text).ok().or_else(back_from_now);
    parsed.map(Some).ok_or_else(|| {
        let shown: String = text.chars().take(64).collect();
        bad(
            "since",
            format!(
                "since must be an RFC 3339 time in the years 0000 to 9999 or a duration such \
                 as 24h reaching no further back, got {shown:?}"
            ),
        )
    })
}

/// An optional namespace filter, checked to be a plausible namespace name.
pub fn namespace(value: Option<&str>) -> Result<Option<String>, ApiError> {
    match value
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "all")
    {
        None => Ok(None),
        Some(ns) if crate::api::validate::is_dns_label(ns) => Ok(Some(ns.to_string())),
        Some(ns) => Err(bad("namespace", format!("{ns:?} is not a namespace name"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::IncidentStatus;

    fn paging(limit: Option<&str>, offset: Option<&str>, cursor: Option<&str>) -> PagingParams {
        PagingParams {
            limit: limit.map(Into::into),
            offset: offset.map(Into::into),
            cursor: cursor.map(Into::into),
        }
    }

    #[test]
    fn limits_outside_1_to_1000_are_rejected() {
        for bad in ["0", "1001", "10000", "-1", "ten", "1.5"] {
            assert!(paging(Some(bad), None, None).parse().is_err(), "{bad}");
        }
        assert_eq!(paging(None, None, None).parse().unwrap().limit, 50);
        assert_eq!(
            paging(Some("1000"), None, None).parse().unwrap().limit,
            1000
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let start = PageStart::After {
            created_at_us: 1_700_000_000_000_000,
            id: "inc-0123".into(),
        };
        let cursor = encode_cursor(&start).unwrap();
        assert_eq!(
            paging(None, None, Some(&cursor)).parse().unwrap().start,
            start
        );
        for bad in ["!!!", "bm9jb2xvbg", "MTIzOg"] {
            assert!(paging(None, None, Some(bad)).parse().is_err(), "{bad}");
        }
        assert!(paging(None, Some("5"), Some(&cursor)).parse().is_err());
    }

    #[test]
    fn status_aliases_of_the_go_engine_are_understood() {
        let aliases = [
            ("completed", IncidentStatus::Resolved),
            ("failed", IncidentStatus::Escalated),
        ];
        let parsed = enum_list("status", Some("completed,active"), &aliases).unwrap();
        assert_eq!(
            parsed,
            vec![IncidentStatus::Resolved, IncidentStatus::Active]
        );
        assert!(
            enum_list::<IncidentStatus>("status", Some("all"), &aliases)
                .unwrap()
                .is_empty()
        );
        assert!(enum_list::<IncidentStatus>("status", Some("bogus"), &aliases).is_err());
    }

    #[test]
    fn since_accepts_times_and_durations() {
        let now = Utc::now();
        assert_eq!(
            since(Some("1h"), now).unwrap(),
            Some(now - chrono::Duration::hours(1))
        );
        assert!(since(Some("2026-01-01T00:00:00Z"), now).unwrap().is_some());
        assert!(since(Some("yesterday"), now).is_err());
    }

    #[test]
    fn since_stays_within_the_years_0000_to_9999() {
        let now = Utc::now();
        assert!(since(Some("0000-01-01T00:00:00Z"), now).unwrap().is_some());
        assert!(since(Some("9999-12-31T23:59:59Z"), now).unwrap().is_some());
        for bad in [
            "-262143-01-01T00:00:00Z",
            "+262142-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            // 2.7 million years back: past chrono's range.
            "1000000000d",
            // 8 200 years back: before year 0.
            "3000000d",
            "1e308h",
        ] {
            let error = since(Some(bad), now).expect_err(bad);
            assert_eq!(error.status, 400, "{bad}");
        }
        let error = since(Some(&"9".repeat(10_000)), now).expect_err("refused");
        assert!(error.message.len() < 300, "quoted short: {}", error.message);
    }
}

//! Which name a KServe model server serves a model under (SPEC §7): `GET /v1/models` answers
//! `{"models": ["name", …]}`; the only one is used, or among several the one named as
//! preferred. The answer comes from outside: its size, its number of names and the names
//! themselves (they go into a URL path) are bounded and checked.

use serde_json::Value;
use std::time::Duration;

/// The largest `GET /v1/models` answer read (a list of names; a server answering more is
/// not a model server we understand).
pub const DISCOVERY_LIMIT: usize = 64 * 1024;
/// The most names taken from that answer.
const DISCOVERY_MAX_NAMES: usize = 256;
/// The longest a discovery may take (bounded further by `KSERVE_TIMEOUT`).
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A model name as it may appear in `/v1/models/{m}`: letters, digits, `.`, `_`, `-`, not
/// starting with `.` (no path tricks), at most 253 bytes.
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The names in a `GET /v1/models` answer (`{"models": [...]}`), invalid ones left out.
pub fn served_models(body: &Value) -> Option<Vec<String>> {
    let names = body.get("models")?.as_array()?;
    Some(
        names
            .iter()
            .filter_map(Value::as_str)
            .filter(|n| valid_model_name(n))
            .take(DISCOVERY_MAX_NAMES)
            .map(String::from)
            .collect(),
    )
}

/// The served model to use: the only one, or the one named `preferred`.
pub fn choose(served: &[String], preferred: &str) -> Result<String, String> {
    match served {
        [] => Err("serves no model yet".into()),
        [only] => Ok(only.clone()),
        several => several
            .iter()
            .find(|n| *n == preferred)
            .cloned()
            .ok_or_else(|| {
                let shown: Vec<&str> = several.iter().take(10).map(String::as_str).collect();
                format!(
                    "serves {} models ({}{}) and none is named '{preferred}'",
                    several.len(),
                    shown.join(", "),
                    if several.len() > 10 { ", …" } else { "" }
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn discovery_takes_the_only_model_or_the_preferred_one() {
        assert_eq!(
            choose(&names(&["model"]), "anomaly-detector"),
            Ok("model".into())
        );
        assert_eq!(
            choose(
                &names(&["predictive-analytics", "anomaly-detector"]),
                "anomaly-detector"
            ),
            Ok("anomaly-detector".into())
        );
        let several = choose(&names(&["a", "b"]), "anomaly-detector").unwrap_err();
        assert!(
            several.contains("(a, b)") && several.contains("'anomaly-detector'"),
            "{several}"
        );
        assert_eq!(choose(&[], "x"), Err("serves no model yet".into()));
    }

    #[test]
    fn served_names_are_validated_and_bounded() {
        let body = json!({"models": ["model", "../admin", ".hidden", "", 7, "a/b", "ok_1.v2"]});
        assert_eq!(served_models(&body), Some(names(&["model", "ok_1.v2"])));
        assert_eq!(served_models(&json!({"models": "model"})), None);
        assert_eq!(served_models(&json!(["model"])), None);
        let many: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        assert_eq!(
            served_models(&json!({ "models": many })).map(|n| n.len()),
            Some(DISCOVERY_MAX_NAMES)
        );
        assert!(!valid_model_name(&"m".repeat(254)));
    }
}

//! The query-string target: hostile query strings and path ids on every GET route.

use super::harness::{Input, QUERY_INPUTS, app_without_pipeline, assert_mixed, drive, scaled};
use super::mutate::Rng;
use super::values::{self, WORDS};
use reqwest::Method;

/// Percent-encodes all but the unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn query_value(rng: &mut Rng) -> String {
    use base64::Engine;
    match rng.below(9) {
        0 | 1 => values::nasty_time(rng).to_string(),
        2 | 3 => rng.pick(WORDS).to_string(),
        4 => rng
            .pick(&[
                "0",
                "1",
                "-1",
                "1000",
                "1001",
                "1.5",
                "0x10",
                "1e3",
                "9223372036854775807",
                "-9223372036854775808",
                "99999999999999999999",
            ])
            .to_string(),
        5 => {
            // A cursor: well-formed base64 of arbitrary content.
            let id = rng.pick(WORDS);
            let raw = format!("{}:{id}", rng.next() as i64);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        }
        6 => rng
            .pick(&[
                "active,resolved",
                "completed,failed,running",
                "all",
                ",,,",
                "critical,high",
            ])
            .to_string(),
        7 => ",".repeat(*rng.pick(&[10, 500])),
        _ => (0..rng.below(40))
            .map(|_| *rng.pick(&['a', '%', 'f', 'z', '+', '&', '=', '\u{0}', 'é']))
            .collect(),
    }
}

/// A query string: known and unknown names, encoded or raw (`%zz`, `%ff`, `&&`).
fn query(rng: &mut Rng) -> String {
    const NAMES: &[&str] = &[
        "since",
        "limit",
        "offset",
        "cursor",
        "status",
        "severity",
        "source",
        "namespace",
        "node",
        "mountpoint",
        "window",
        "pod",
        "incident_id",
        "reason",
        "x",
    ];
    let pairs: Vec<String> = (0..rng.below(5))
        .map(|_| {
            let name = rng.pick(NAMES).to_string();
            let value = query_value(rng);
            match rng.below(6) {
                0 => format!("{name}={value}").replace(' ', "+"),
                1 => name,
                2 => rng
                    .pick(&["%zz", "%ff%fe", "%", "&&", "=", "a=1=2", "limit[]=1"])
                    .to_string(),
                _ => format!("{}={}", encode(&name), encode(&value)),
            }
        })
        .collect();
    pairs.join("&")
}

#[tokio::test]
async fn fuzz_query_strings_and_path_ids() {
    let app = app_without_pipeline(true).await;
    // Routes that need a peer the test does not run (Prometheus, KServe) answer 503.
    const LISTS: &[u16] = &[200, 400, 404];
    const PEERS: &[u16] = &[200, 400, 404, 503];
    let routes: &[(&str, &[u16])] = &[
        ("/api/v1/incidents", LISTS),
        ("/api/v1/workflows", LISTS),
        ("/api/v1/coordination/workflows", LISTS),
        ("/api/v1/pause", LISTS),
        ("/api/v1/leases", LISTS),
        ("/api/v1/predict/disk-exhaustion", PEERS),
        ("/api/v1/predict/memory-leak", PEERS),
        ("/api/v1/recommendations/rightsizing", PEERS),
        ("/api/v1/capacity/trends", PEERS),
        ("/api/v1/cluster/status", PEERS),
        ("/api/v1/models", PEERS),
    ];
    let statuses = drive(&app, "queries", 0x9E57, scaled(QUERY_INPUTS), |rng| {
        let (path, allowed) = match rng.below(8) {
            0 => {
                // An id in the path instead of the query.
                let base = rng.pick(&["/api/v1/incidents/", "/api/v1/workflows/"]);
                (format!("{base}{}", encode(&query_value(rng))), LISTS)
            }
            1 => {
                let path = rng.pick(&["/api/v1/incidents", "/api/v1/api/v1/incidents"]);
                return Input {
                    method: Method::GET,
                    path: format!("{path}?{}", query(rng)),
                    compat: true,
                    token: false,
                    body: None,
                    allowed: LISTS,
                };
            }
            _ => {
                let (route, allowed) = *rng.pick(routes);
                (format!("{route}?{}", query(rng)), allowed)
            }
        };
        Input {
            method: Method::GET,
            path,
            compat: false,
            token: true,
            body: None,
            allowed,
        }
    })
    .await;
    assert_mixed("queries", &statuses);
}

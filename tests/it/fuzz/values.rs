//! Hostile values for the mutator: times at chrono's limits, words the parsers treat
//! specially, extreme numbers and long text, and the keys the seeds already use.

use super::mutate::Rng;
use serde_json::{Map, Value, json};

/// Times at chrono's own limits (±262 143 years): they parse, and arithmetic on them
/// overflows.
pub const EXTREME_TIMES: &[&str] = &[
    "-262143-01-01T00:00:00Z",
    "-262143-01-01T00:00:59.999999999Z",
    "-262144-01-01T00:00:00Z",
    "+262142-12-31T23:59:59.999999999Z",
    "+262143-12-31T23:59:59Z",
];

/// Other times every parser must survive: the edges of 0000–9999, offsets that push an
/// in-range local time out of range in UTC, impossible dates, durations.
pub const TIMES: &[&str] = &[
    "-0001-12-31T23:59:59Z",
    "+10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-11-23T10:00:00.123456789+14:00",
    "2026-11-23T25:61:61Z",
    "2026-11-23 10:00:00Z",
    "2026-11-23T10:00:00",
    "24h",
    "-1h",
    "0s",
    "3000000d",
    "1000000000d",
    "99999999999999999999s",
    "1e308h",
    "NaN",
];

/// A hostile time: half of them at chrono's limits.
pub fn nasty_time(rng: &mut Rng) -> &'static str {
    let times = if rng.one_in(2) { EXTREME_TIMES } else { TIMES };
    times[rng.below(times.len())]
}

/// Words the parsers know (so mutations reach past the first check) and words they must not
/// trip on.
pub const WORDS: &[&str] = &[
    "",
    " ",
    "null",
    "firing",
    "resolved",
    "ResponseComplete",
    "RequestReceived",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CONNECT",
    "update",
    "patch",
    "delete",
    "Pod",
    "Node",
    "Deployment",
    "ClusterOperator",
    "pod",
    "node",
    "crash_loop",
    "CrashLoopBackOff",
    "node_not_ready",
    "critical",
    "info",
    "all",
    "kube-system",
    "default",
    "system:admin",
    "argocd",
    "audit.k8s.io/v1",
    "admission.k8s.io/v1",
    "AdmissionReview",
    "EventList",
    "4",
    "é",
    "💥",
    "\u{0}",
    "\u{202e}",
    "a\nb",
    "../../etc/passwd",
    "%00",
    "'; DROP TABLE incidents; --",
    "${jndi:ldap://x}",
    "Bad_NS",
    "-leading-dash",
    "x.y.z",
];

fn number(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => json!(i64::MIN),
        1 => json!(i64::MAX),
        2 => json!(u64::MAX),
        3 => json!(-1),
        4 => json!(0),
        5 => json!(1),
        6 => json!(403),
        7 => json!(1e308),
        8 => json!(-1e308),
        9 => json!(0.5),
        10 => json!(f64::MIN_POSITIVE),
        _ => json!(rng.next() as i64),
    }
}

fn text(rng: &mut Rng) -> String {
    const CHARS: &[char] = &[
        'a', 'Z', '0', '9', '-', '.', '/', ':', '"', '\\', '\n', '\t', '\u{0}', '\u{7f}', 'é',
        '💥', '\u{fffd}', ' ', '%', '+', '=', '&', '{', ']',
    ];
    let length = *rng.pick(&[1, 8, 64, 300, 5_000, 70_000]);
    if rng.one_in(2) {
        // Long runs of one character: cheap to build, stress the length checks.
        rng.pick(CHARS).to_string().repeat(length)
    } else {
        (0..length.min(2_000)).map(|_| *rng.pick(CHARS)).collect()
    }
}

/// A hostile value of any JSON type.
pub fn nasty(rng: &mut Rng, vocabulary: &[String]) -> Value {
    match rng.below(12) {
        0 | 1 => json!(nasty_time(rng)),
        2 | 3 => json!(rng.pick(WORDS)),
        4 => number(rng),
        5 => json!(rng.one_in(2)),
        6 => Value::Null,
        7 => {
            if rng.one_in(2) {
                json!({})
            } else {
                json!([])
            }
        }
        8 => json!(text(rng)),
        9 => {
            let keys = *rng.pick(&[1, 20, 300]);
            let map: Map<String, Value> = (0..keys)
                .map(|i| (format!("k{i}"), json!(rng.pick(WORDS))))
                .collect();
            Value::Object(map)
        }
        10 => {
            let copies = *rng.pick(&[2, 50, 2_000]);
            let item = json!(rng.pick(WORDS));
            Value::Array(vec![item; copies])
        }
        _ => json!(rng.pick(vocabulary)),
    }
}

/// Every object key in the seeds: inserted keys are then often ones the parser reads.
pub fn vocabulary(seeds: &[Value]) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    out.push(key.clone());
                    walk(inner, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    seeds.iter().for_each(|s| walk(s, &mut out));
    out.sort();
    out.dedup();
    if out.is_empty() {
        out.push("x".into());
    }
    out
}

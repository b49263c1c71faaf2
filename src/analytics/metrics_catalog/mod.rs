//! The metric names `POST /api/v1/anomalies/analyze` accepts, and the PromQL behind each.
//!
//! The MCP server's analyze-anomalies tool passes the user's metric through as typed, so the
//! names people use (`pod_restarts`, `oom_kills`, `http_latency`, …) map to one query per pod
//! in [`CATALOG`]. Any other valid Prometheus metric name is queried as a raw series
//! (`{__name__="…"}`, so even a name that is a PromQL keyword cannot change the query's shape),
//! with counters (by the `_total`/`_count`/`_sum`/`_bucket` naming convention) turned into
//! per-second rates. Everything else is refused: the caller's text never reaches PromQL except
//! as a validated name inside an escaped matcher.

mod http;
mod network;
mod pod_health;
mod resources;

use super::matcher;
use std::fmt;

/// Every query answers one series per `(namespace, pod)`.
const BY: &str = "sum by (namespace, pod)";
/// cAdvisor repeats every container's usage in a pod-level series with `container=""`.
const CONTAINER: &str = r#"container!="""#;
/// Longest raw metric name accepted (Prometheus has no limit; real names stay far below).
pub const NAME_MAX: usize = 200;

/// What a query is built from: the scope's escaped matchers (comma-separated, maybe empty)
/// and the window of `rate`/`increase` (at least 5m, and at least the step, so no sample
/// between two steps is missed).
#[derive(Debug, Clone, Copy)]
pub struct QueryContext<'a> {
    pub selector: &'a str,
    pub window: &'a str,
}

/// One named metric of the catalog.
pub struct Entry {
    /// The names it answers to, lower case; the first is the one the docs list first.
    pub names: &'static [&'static str],
    /// The series it needs and who exports them (said when there is no data).
    pub needs: &'static str,
    pub query: fn(&QueryContext) -> String,
    /// What to do about a spike.
    pub on_spike: &'static str,
    /// Also report pods throttled in at least `threshold` of their CFS periods.
    pub throttling: bool,
}

/// `{fixed…,scope…}`: the braces of a selector, without a stray comma when either is empty.
fn braces(fixed: &[&str], selector: &str) -> String {
    let parts: Vec<&str> = fixed
        .iter()
        .copied()
        .chain([selector])
        .filter(|p| !p.is_empty())
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn rate_of(metric: &str, fixed: &[&str], c: &QueryContext) -> String {
    format!(
        "{BY} (rate({metric}{}[{}]))",
        braces(fixed, c.selector),
        c.window
    )
}

fn increase_of(metric: &str, fixed: &[&str], c: &QueryContext) -> String {
    format!(
        "{BY} (increase({metric}{}[{}]))",
        braces(fixed, c.selector),
        c.window
    )
}

/// Every named metric, grouped by domain (a file each), in the order the docs list them.
pub static CATALOG: &[Entry] = &[
    resources::CPU,
    resources::MEMORY,
    resources::DISK,
    network::NETWORK,
    network::NETWORK_RECEIVE,
    network::NETWORK_TRANSMIT,
    pod_health::POD_RESTARTS,
    pod_health::OOM_KILLS,
    pod_health::CPU_THROTTLING,
    http::HTTP_ERROR_RATE,
    http::HTTP_LATENCY,
];

/// A metric as requested: a catalog entry (under the name asked, lower case), or a raw series
/// by its validated name.
pub enum Metric {
    Known { name: String, entry: &'static Entry },
    Raw(String),
}

impl fmt::Debug for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Known { name, entry } => write!(f, "Known({name} → {})", entry.names[0]),
            Metric::Raw(name) => write!(f, "Raw({name})"),
        }
    }
}

/// Why a requested name is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InvalidMetric {
    Empty,
    TooLong,
    NotAName,
}

impl fmt::Display for InvalidMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidMetric::Empty => write!(f, "is empty"),
            InvalidMetric::TooLong => write!(f, "is longer than {NAME_MAX} characters"),
            InvalidMetric::NotAName => write!(
                f,
                "is neither a known metric nor a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"
            ),
        }
    }
}

/// A classic Prometheus metric name: `^[a-zA-Z_:][a-zA-Z0-9_:]*$`.
pub fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The catalog entry a name (any case, surrounding spaces ignored) answers to.
pub fn known(name: &str) -> Option<&'static Entry> {
    let name = name.trim().to_ascii_lowercase();
    CATALOG.iter().find(|e| e.names.contains(&name.as_str()))
}

/// A requested name as a metric: the catalog first (case-insensitive), then a raw series.
/// Raw names keep their case (Prometheus names are case-sensitive).
pub fn resolve(name: &str) -> Result<Metric, InvalidMetric> {
    let name = name.trim();
    if let Some(entry) = known(name) {
        return Ok(Metric::Known {
            name: name.to_ascii_lowercase(),
            entry,
        });
    }
    if name.is_empty() {
        Err(InvalidMetric::Empty)
    } else if name.len() > NAME_MAX {
        Err(InvalidMetric::TooLong)
    } else if !is_metric_name(name) {
        Err(InvalidMetric::NotAName)
    } else {
        Ok(Metric::Raw(name.to_string()))
    }
}

/// Counters by the naming convention: their values only grow, so their rate is what moves.
fn is_counter(name: &str) -> bool {
    ["_total", "_count", "_sum", "_bucket"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

impl Metric {
    /// The name shown in anomalies and messages.
    pub fn name(&self) -> &str {
        match self {
            Metric::Known { name, .. } | Metric::Raw(name) => name,
        }
    }

    pub fn query(&self, context: &QueryContext) -> String {
        match self {
            Metric::Known { entry, .. } => (entry.query)(context),
            Metric::Raw(name) => {
                let series = braces(&[&matcher("__name__", name)], context.selector);
                if is_counter(name) {
                    format!("{BY} (rate({series}[{}]))", context.window)
                } else {
                    format!("{BY} ({series})")
                }
            }
        }
    }

    /// Said when the metric has no data in the scope.
    pub fn needs(&self) -> String {
        match self {
            Metric::Known { entry, .. } => entry.needs.to_string(),
            Metric::Raw(name) if is_counter(name) => {
                format!("a series named {name} (a counter: its per-second rate)")
            }
            Metric::Raw(name) => format!("a series named {name}"),
        }
    }

    pub fn on_spike(&self) -> &'static str {
        match self {
            Metric::Known { entry, .. } => entry.on_spike,
            Metric::Raw(_) => "find what changed for this pod around the spike",
        }
    }

    pub fn throttling(&self) -> bool {
        matches!(self, Metric::Known { entry, .. } if entry.throttling)
    }
}

#[cfg(test)]
mod tests;

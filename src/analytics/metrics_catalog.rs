//! The metric names `POST /api/v1/anomalies/analyze` accepts, and the PromQL behind each.
//!
//! The MCP server's analyze-anomalies tool passes the user's metric through as typed, so the
//! names people use (`pod_restarts`, `oom_kills`, `http_latency`, …) map to one query per pod
//! in [`CATALOG`]. Any other valid Prometheus metric name is queried as a raw series
//! (`{__name__="…"}`, so even a name that is a PromQL keyword cannot change the query's shape),
//! with counters (by the `_total`/`_count`/`_sum`/`_bucket` naming convention) turned into
//! per-second rates. Everything else is refused: the caller's text never reaches PromQL except
//! as a validated name inside an escaped matcher.

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

pub static CATALOG: &[Entry] = &[
    Entry {
        names: &["cpu", "cpu_usage"],
        needs: "container_cpu_usage_seconds_total (cAdvisor)",
        query: |c| rate_of("container_cpu_usage_seconds_total", &[CONTAINER], c),
        on_spike: "check the workload's recent change and load; scale out or raise the CPU limit",
        throttling: true,
    },
    Entry {
        names: &["memory", "memory_usage"],
        needs: "container_memory_working_set_bytes (cAdvisor)",
        query: |c| {
            format!(
                "{BY} (container_memory_working_set_bytes{})",
                braces(&[CONTAINER], c.selector)
            )
        },
        on_spike: "check for a memory leak (/api/v1/predict/memory-leak); raise the memory limit if the growth is expected",
        throttling: false,
    },
    Entry {
        names: &[
            "disk",
            "disk_usage",
            "filesystem",
            "filesystem_usage",
            "fs_usage",
        ],
        needs: "container_fs_usage_bytes (cAdvisor)",
        query: |c| {
            format!(
                "{BY} (container_fs_usage_bytes{})",
                braces(&[CONTAINER], c.selector)
            )
        },
        on_spike: "find what fills the container's filesystem; clean up or add storage",
        throttling: false,
    },
    Entry {
        names: &["network"],
        needs: "container_network_receive_bytes_total and container_network_transmit_bytes_total (cAdvisor)",
        query: |c| {
            format!(
                "{} + {}",
                rate_of("container_network_receive_bytes_total", &[], c),
                rate_of("container_network_transmit_bytes_total", &[], c)
            )
        },
        on_spike: "check for a traffic surge or a retry storm",
        throttling: false,
    },
    Entry {
        names: &[
            "network_receive",
            "network_receive_bytes",
            "network_rx",
            "network_in",
        ],
        needs: "container_network_receive_bytes_total (cAdvisor)",
        query: |c| rate_of("container_network_receive_bytes_total", &[], c),
        on_spike: "check for a traffic surge, a retry storm or a large download",
        throttling: false,
    },
    Entry {
        names: &[
            "network_transmit",
            "network_transmit_bytes",
            "network_tx",
            "network_out",
        ],
        needs: "container_network_transmit_bytes_total (cAdvisor)",
        query: |c| rate_of("container_network_transmit_bytes_total", &[], c),
        on_spike: "check what the pod is sending: a retry storm, a large upload or an exfiltration",
        throttling: false,
    },
    Entry {
        names: &[
            "pod_restarts",
            "restarts",
            "container_restarts",
            "restart_count",
        ],
        needs: "kube_pod_container_status_restarts_total (kube-state-metrics)",
        query: |c| increase_of("kube_pod_container_status_restarts_total", &[], c),
        on_spike: "read the previous container's logs and last termination reason (kubectl logs --previous, kubectl describe pod)",
        throttling: false,
    },
    Entry {
        names: &["oom_kills", "oom_killed", "oomkilled", "oom", "oom_events"],
        needs: "container_oom_events_total (cAdvisor)",
        query: |c| increase_of("container_oom_events_total", &[CONTAINER], c),
        on_spike: "raise the memory limit or find what allocates (/api/v1/predict/memory-leak)",
        throttling: false,
    },
    Entry {
        names: &[
            "cpu_throttling",
            "cpu_throttled",
            "cpu_throttle",
            "throttling",
            "throttled",
        ],
        needs: "container_cpu_cfs_throttled_periods_total and container_cpu_cfs_periods_total (cAdvisor, containers with a CPU limit)",
        query: |c| {
            format!(
                "{} / {}",
                rate_of("container_cpu_cfs_throttled_periods_total", &[], c),
                rate_of("container_cpu_cfs_periods_total", &[], c)
            )
        },
        on_spike: "raise the CPU limit (or remove it) or spread the load over more replicas",
        throttling: true,
    },
    Entry {
        names: &["http_error_rate", "http_errors", "http_5xx", "error_rate"],
        needs: "http_requests_total with a code label (the application's own metrics)",
        // The 5xx fraction; 0, not absent, for pods that serve requests without errors.
        query: |c| {
            let all = rate_of("http_requests_total", &[], c);
            format!(
                "({} or {all} * 0) / {all}",
                rate_of("http_requests_total", &[r#"code=~"5..""#], c)
            )
        },
        on_spike: "check the application's logs and its dependencies; roll back a recent change if it started then",
        throttling: false,
    },
    Entry {
        names: &[
            "http_latency",
            "http_latency_p99",
            "http_response_time",
            "latency",
            "response_time",
            "p99_latency",
        ],
        needs: "http_request_duration_seconds_bucket (the application's own histogram)",
        // p99 in milliseconds, like enriched_signals.http_response_time_p99_ms.
        query: |c| {
            format!(
                "1000 * histogram_quantile(0.99, sum by (namespace, pod, le) (rate(http_request_duration_seconds_bucket{}[{}])))",
                braces(&[], c.selector),
                c.window
            )
        },
        on_spike: "check slow dependencies (databases, downstream services) and the pod's CPU throttling",
        throttling: false,
    },
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
mod tests {
    use super::*;

    const SCOPE: &str = r#"namespace="shop",pod="a\"}) or vector(1) #""#;

    fn context(selector: &str) -> QueryContext<'_> {
        QueryContext {
            selector,
            window: "300s",
        }
    }

    /// Balanced brackets outside string literals, and every selector's braces holding only
    /// `key op "value"` matchers: enough to catch a spliced or broken query.
    fn well_formed(query: &str) -> Result<(), String> {
        let mut stack = Vec::new();
        let mut chars = query.chars().peekable();
        let mut in_braces = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    let mut escaped = false;
                    let mut closed = false;
                    for s in chars.by_ref() {
                        match (escaped, s) {
                            (true, _) => escaped = false,
                            (false, '\\') => escaped = true,
                            (false, '"') => {
                                closed = true;
                                break;
                            }
                            _ => {}
                        }
                        if s == '\n' {
                            return Err("newline inside a string".into());
                        }
                    }
                    if !closed {
                        return Err("unclosed string".into());
                    }
                    if stack.last() == Some(&'{') {
                        in_braces.push_str("\"\"");
                    }
                }
                '(' | '[' | '{' => {
                    stack.push(c);
                    if c == '{' {
                        in_braces.clear();
                    }
                }
                ')' | ']' | '}' => {
                    let open = stack.pop().ok_or("unbalanced close")?;
                    if !matches!((open, c), ('(', ')') | ('[', ']') | ('{', '}')) {
                        return Err(format!("{open} closed by {c}"));
                    }
                    if c == '}' {
                        let ok = in_braces.is_empty()
                            || in_braces.split(',').all(|m| {
                                let (key, value) = m
                                    .split_once("=~")
                                    .or_else(|| m.split_once("!="))
                                    .or_else(|| m.split_once('='))
                                    .unwrap_or(("", ""));
                                is_metric_name(key) && value == "\"\""
                            });
                        if !ok {
                            return Err(format!("bad matchers {in_braces:?}"));
                        }
                    }
                }
                c if stack.last() == Some(&'{') => in_braces.push(c),
                _ => {}
            }
        }
        if stack.is_empty() {
            Ok(())
        } else {
            Err("unclosed bracket".into())
        }
    }

    #[test]
    fn the_form_check_catches_spliced_text() {
        well_formed(r#"sum(foo{pod="a\"})"})"#).expect("an escaped quote stays inside");
        for broken in [
            r#"sum(foo{pod="a"})) or vector(1)"#,
            r#"foo{pod="a"} or bar{job="x"}}"#,
            r#"foo{pod=a}"#,
            r#"foo{pod="a"#,
            r#"foo{pod="a" or up}"#,
            "rate(foo[5m)",
        ] {
            assert!(well_formed(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn every_entry_builds_well_formed_promql_scoped_by_the_escaped_selector() {
        let scope = [
            matcher("namespace", "shop"),
            matcher("pod", "a\"}) or vector(1) #"),
        ]
        .join(",");
        assert_eq!(scope, SCOPE, "the shared escaping");
        for entry in CATALOG {
            for selector in [SCOPE, ""] {
                let query = (entry.query)(&context(selector));
                well_formed(&query).unwrap_or_else(|e| panic!("{}: {e}: {query}", entry.names[0]));
                assert!(!query.contains(",}") && !query.contains("{,"), "{query}");
                assert!(
                    !query.contains("[5m]"),
                    "the window is the context's: {query}"
                );
            }
            let query = (entry.query)(&context(SCOPE));
            // Every selector of the query carries the scope.
            let selectors = query.matches('{').count();
            assert_eq!(query.matches(SCOPE).count(), selectors, "{query}");
            assert!(query.contains("[300s]") || !query.contains('['), "{query}");
        }
    }

    #[test]
    fn names_are_unique_lower_case_and_resolve_in_any_case() {
        let mut seen = std::collections::BTreeSet::new();
        for entry in CATALOG {
            for name in entry.names {
                assert_eq!(name.to_ascii_lowercase(), *name);
                assert!(seen.insert(*name), "{name} twice");
                assert!(is_metric_name(name));
            }
        }
        for name in [
            "cpu",
            "CPU",
            " Pod_Restarts ",
            "container_restarts",
            "restarts",
        ] {
            assert!(matches!(resolve(name), Ok(Metric::Known { .. })), "{name}");
        }
        assert_eq!(known("restarts").map(|e| e.names[0]), Some("pod_restarts"));
        assert_eq!(
            known("network_tx").map(|e| e.names[0]),
            Some("network_transmit")
        );
    }

    #[test]
    fn the_docs_list_every_name() {
        for (doc, text) in [
            ("docs/api.md", include_str!("../../docs/api.md")),
            ("docs/analytics.md", include_str!("../../docs/analytics.md")),
        ] {
            for name in CATALOG.iter().flat_map(|e| e.names) {
                assert!(text.contains(&format!("`{name}`")), "{doc} lacks {name}");
            }
        }
    }

    #[test]
    fn raw_names_are_queried_by_name_and_counters_by_rate() {
        let raw = resolve(" Shop_Queue:depth ").expect("a raw name");
        assert_eq!(raw.name(), "Shop_Queue:depth", "trimmed, its case kept");
        assert_eq!(
            raw.query(&context(r#"namespace="shop""#)),
            r#"sum by (namespace, pod) ({__name__="Shop_Queue:depth",namespace="shop"})"#
        );
        let Ok(counter) = resolve("prometheus_http_requests_total") else {
            panic!("a counter name");
        };
        assert_eq!(
            counter.query(&context("")),
            r#"sum by (namespace, pod) (rate({__name__="prometheus_http_requests_total"}[300s]))"#
        );
        // A PromQL keyword is still just a name.
        let Ok(keyword) = resolve("sum") else {
            panic!("sum is a valid metric name");
        };
        well_formed(&keyword.query(&context(SCOPE))).expect("well formed");
    }

    #[test]
    fn anything_but_a_metric_name_is_refused() {
        for bad in [
            r#"up{job="x"} or vector(1)"#,
            "foo)",
            "pod restarts",
            "1abc",
            "foo-bar",
            "métrique",
            "a\nb",
            "rate(x[5m])",
        ] {
            assert_eq!(resolve(bad).err(), Some(InvalidMetric::NotAName), "{bad:?}");
        }
        assert_eq!(resolve("").err(), Some(InvalidMetric::Empty));
        assert_eq!(resolve("   ").err(), Some(InvalidMetric::Empty));
        assert_eq!(
            resolve(&"a".repeat(201)).err(),
            Some(InvalidMetric::TooLong)
        );
        assert!(matches!(resolve(&"a".repeat(200)), Ok(Metric::Raw(_))));
    }
}

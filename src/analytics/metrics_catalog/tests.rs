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
        ("docs/api.md", include_str!("../../../docs/api.md")),
        (
            "docs/analytics.md",
            include_str!("../../../docs/analytics.md"),
        ),
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

use super::*;
use serde_json::json;

/// The walk over the documents these `Value`s are (the webhook parses its own `Doc`s).
fn changed_paths<S: AsRef<str>>(
    old: &Value,
    new: &Value,
    ignored: &[S],
    budget: Budget,
) -> ChangedPaths {
    super::changed_paths(
        &Doc::from_value(old),
        &Doc::from_value(new),
        ignored,
        budget,
    )
}

fn only_under<S: AsRef<str>, T: AsRef<str>>(
    old: &Value,
    new: &Value,
    ignored: &[S],
    allowed: &[T],
) -> bool {
    super::only_under(
        &Doc::from_value(old),
        &Doc::from_value(new),
        ignored,
        allowed,
    )
}

fn all(old: &Value, new: &Value) -> Vec<String> {
    let found = changed_paths(old, new, ALWAYS_IGNORED, REVIEW_BUDGET);
    assert_eq!(found.more, 0);
    found.paths
}

/// Keys only on the old side and changed keys come first, in key order; then the keys only
/// on the new side, in key order.
#[test]
fn paths_are_listed_old_keys_first_then_new_keys() {
    let old = json!({"a": 1, "c": 1, "e": 1, "g": 1, "i": {"x": 1}});
    let new = json!({"b": 1, "c": 2, "d": 1, "g": 1, "h": 1, "i": {"w": 1, "x": 1}, "j": 1});
    assert_eq!(
        all(&old, &new),
        vec!["/a", "/c", "/e", "/i/w", "/b", "/d", "/h", "/j"]
    );
    assert_eq!(all(&json!({}), &json!({"a": 1})), vec!["/a"]);
    assert_eq!(all(&json!({"a": 1}), &json!({})), vec!["/a"]);
}

#[test]
fn changed_leaves_are_reported_as_json_pointers() {
    let old = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a:1"}]}}},
                     "metadata": {"annotations": {"a/b": "1"}}});
    let new = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "a:2"}]}}},
                     "metadata": {"annotations": {"a/b": "2", "new": "x"}}});
    assert_eq!(
        all(&old, &new),
        vec![
            "/metadata/annotations/a~1b",
            "/metadata/annotations/new",
            "/spec/replicas",
            "/spec/template/spec/containers/0/image",
        ]
    );
}

#[test]
fn arrays_of_different_length_are_one_change() {
    let old = json!({"spec": {"ports": [1]}});
    let new = json!({"spec": {"ports": [1, 2]}});
    assert_eq!(all(&old, &new), vec!["/spec/ports"]);
    assert!(all(&old, &old).is_empty());
}

#[test]
fn ignored_subtrees_are_skipped_and_not_counted() {
    let old = json!({"status": {"a": [1, 2, 3]}, "metadata": {"uid": "1", "labels": {"x": "1"}}});
    let new = json!({"status": {"a": [4, 5, 6]}, "metadata": {"uid": "2", "labels": {"x": "2"}}});
    let found = changed_paths(&old, &new, ALWAYS_IGNORED, REVIEW_BUDGET);
    assert_eq!(found.paths, vec!["/metadata/labels/x"]);
    assert_eq!(found.more, 0);
    let rules = ["/metadata/labels/x", "/status", "/metadata/uid"];
    assert!(changed_paths(&old, &new, &rules, REVIEW_BUDGET).is_empty());
    assert!(only_under(
        &old,
        &new,
        ALWAYS_IGNORED,
        &["/metadata/labels"]
    ));
    assert!(!only_under(&old, &new, ALWAYS_IGNORED, &["/spec"]));
}

#[test]
fn the_budget_caps_built_paths_and_counts_the_rest() {
    let n = 10_000;
    let old = json!({"spec": {"items": vec![0; n]}});
    let new = json!({"spec": {"items": vec![1; n]}});
    let found = changed_paths(&old, &new, ALWAYS_IGNORED, REVIEW_BUDGET);
    assert_eq!(found.paths.len(), REVIEW_BUDGET.paths);
    assert_eq!(found.paths[0], "/spec/items/0");
    assert_eq!(found.more, (n - REVIEW_BUDGET.paths) as u64);
    assert!(
        found
            .summary(3)
            .starts_with("/spec/items/0, /spec/items/1, /spec/items/2 and 9997 more")
    );

    // Long keys: the byte budget runs out first, and each key is clipped.
    let key = "k".repeat(1000);
    let old = json!({ key.clone(): vec![0; n] });
    let new = json!({ key: vec![1; n] });
    let found = changed_paths(&old, &new, ALWAYS_IGNORED, REVIEW_BUDGET);
    let text: usize = found.paths.iter().map(String::len).sum();
    assert!(text <= REVIEW_BUDGET.bytes, "{text}");
    assert!(found.paths.len() < REVIEW_BUDGET.paths);
    assert!(
        found.paths[0].len() < SEGMENT_MAX + 16,
        "{}",
        found.paths[0]
    );
    assert!(found.paths[0].contains('…'));
    assert_eq!(found.paths.len() as u64 + found.more, n as u64);
}

#[test]
fn identical_huge_subtrees_cost_no_paths() {
    let old = json!({ "x".repeat(1000): vec![json!({"a": [1, 2]}); 50_000] });
    assert!(changed_paths(&old, &old.clone(), ALWAYS_IGNORED, REVIEW_BUDGET).is_empty());
}

#[test]
fn touched_paths_of_a_patch_are_bounded_too() {
    let body = json!({"spec": {"replicas": 3}, "metadata": {"labels": {"a": "b"}}});
    assert_eq!(
        touched_paths(Some(&body), REVIEW_BUDGET).paths,
        vec!["/metadata/labels", "/spec/replicas"]
    );
    let wide: serde_json::Map<String, Value> = (0..1000)
        .map(|i| (format!("{i:0>900}"), json!(1)))
        .collect();
    let touched = touched_paths(Some(&Value::Object(wide)), REVIEW_BUDGET);
    assert!(touched.paths.iter().map(String::len).sum::<usize>() <= REVIEW_BUDGET.bytes);
    assert_eq!(touched.paths.len() as u64 + touched.more, 1000);
}

#[test]
fn prefixes_match_whole_segments_only() {
    assert!(is_under("/spec/replicas", "/spec/replicas"));
    assert!(is_under("/status/conditions/0", "/status"));
    assert!(!is_under("/statusx", "/status"));
    assert!(is_under("/spec/replicas", "/spec/"));
}

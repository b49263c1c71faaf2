//! Which fields an UPDATE changes, as JSON pointers, and which of them ArgoCD ignores.

use serde_json::Value;

/// Escapes a key for a JSON pointer (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The leaf paths where `old` and `new` differ. Arrays of the same length are compared element
/// by element; otherwise the whole array is one change.
pub fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(old, new, &mut String::new(), &mut out);
    out
}

fn walk(old: &Value, new: &Value, path: &mut String, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(*k)))
                .collect();
            keys.sort();
            for key in keys {
                let before = path.len();
                path.push('/');
                path.push_str(&escape(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, path, out),
                    _ => out.push(path.clone()),
                }
                path.truncate(before);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let before = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(x, y, path, out);
                path.truncate(before);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(if path.is_empty() {
            "/".into()
        } else {
            path.clone()
        }),
    }
}

/// Whether `path` is `prefix` or below it.
pub fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Fields that are never drift: ArgoCD ignores them too.
pub const ALWAYS_IGNORED: &[&str] = &[
    "/status",
    "/metadata/managedFields",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/creationTimestamp",
    "/metadata/uid",
    "/metadata/selfLink",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_leaves_are_reported_as_json_pointers() {
        let old = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "a:1"}]}}},
                         "metadata": {"annotations": {"a/b": "1"}}});
        let new = json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": "a:2"}]}}},
                         "metadata": {"annotations": {"a/b": "2", "new": "x"}}});
        assert_eq!(
            changed_paths(&old, &new),
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
        assert_eq!(changed_paths(&old, &new), vec!["/spec/ports"]);
        assert!(changed_paths(&old, &old).is_empty());
    }

    #[test]
    fn prefixes_match_whole_segments_only() {
        assert!(is_under("/spec/replicas", "/spec/replicas"));
        assert!(is_under("/status/conditions/0", "/status"));
        assert!(!is_under("/statusx", "/status"));
        assert!(is_under("/spec/replicas", "/spec/"));
    }
}

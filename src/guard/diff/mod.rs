//! Which fields an UPDATE changes, as JSON pointers, within a fixed budget.
//!
//! A review must not cost memory in proportion to what a caller sends (issue 15: one 3 MiB
//! review used to build 330 000 path strings). So the walk keeps one path buffer, skips the
//! subtrees that are ignored without looking into them, builds at most `Budget::paths` path
//! strings of at most `Budget::bytes` in total, and only counts the changes beyond that.

use super::clip::clip;
use super::doc::{Doc, Members, key_order};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt::Write;

/// How much of a diff is built as strings; everything past it is only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub paths: usize,
    pub bytes: usize,
}

/// The budget of admission reviews, `guard/explain` and audit drift.
pub const REVIEW_BUDGET: Budget = Budget {
    paths: 256,
    bytes: 64 * 1024,
};

/// Longest object key kept in a path segment, in bytes (a Kubernetes annotation key is at most
/// 317 characters); longer keys end in `…`.
pub const SEGMENT_MAX: usize = 512;

/// Longest path named in a [`ChangedPaths::summary`], in bytes.
pub const PATH_SHOWN_MAX: usize = 512;

/// The changed paths that were built, and how many more changes there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedPaths {
    pub paths: Vec<String>,
    /// Changes found after the budget ran out (counted, never built).
    pub more: u64,
}

impl ChangedPaths {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.more == 0
    }

    /// `a, b, c and 12 more`, naming at most `shown` paths, each clipped at
    /// [`PATH_SHOWN_MAX`] bytes (one deep path may hold the whole byte budget).
    pub fn summary(&self, shown: usize) -> String {
        let named = self.paths.len().min(shown);
        let rest = (self.paths.len() - named) as u64 + self.more;
        if named == 0 {
            return format!("{rest} paths");
        }
        let mut text = String::new();
        for (i, path) in self.paths[..named].iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push_str(&clip(path, PATH_SHOWN_MAX));
        }
        if rest > 0 {
            let _ = write!(text, " and {rest} more");
        }
        text
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
pub fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    push_segment(&mut out, key, usize::MAX);
    out
}

/// Appends `/` and the escaped key, clipped at `max` bytes.
fn push_segment(path: &mut String, key: &str, max: usize) {
    let start = path.len();
    for c in key.chars() {
        if path.len() - start >= max {
            path.push('…');
            return;
        }
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// The leaf paths where `old` and `new` differ, skipping everything under `ignored`. Arrays of
/// the same length are compared element by element; otherwise the whole array is one change.
pub fn changed_paths<S: AsRef<str>>(
    old: &Doc<'_>,
    new: &Doc<'_>,
    ignored: &[S],
    budget: Budget,
) -> ChangedPaths {
    let prefixes: Vec<&str> = ignored
        .iter()
        .map(|p| p.as_ref().trim_end_matches('/'))
        .collect();
    let mut walk = Walk {
        prefixes: &prefixes,
        budget,
        path: String::new(),
        bytes: 0,
        full: budget.paths == 0 || budget.bytes == 0,
        out: ChangedPaths::default(),
    };
    walk.node(old, new, false, 0);
    walk.out
}

/// Down to this depth a subtree is first compared as a whole, and skipped when equal (most of
/// an object is, and equality is cheaper than a walk that builds paths). Deeper, the walk goes
/// on alone: comparing at every level would cost depth × size on a hostile, deep document.
const COMPARE_WHOLE_DEPTH: usize = 8;

/// Whether every change outside `ignored` lies under one of `allowed` (a lease's paths).
pub fn only_under<S: AsRef<str>, T: AsRef<str>>(
    old: &Doc<'_>,
    new: &Doc<'_>,
    ignored: &[S],
    allowed: &[T],
) -> bool {
    let both: Vec<&str> = ignored
        .iter()
        .map(AsRef::as_ref)
        .chain(allowed.iter().map(AsRef::as_ref))
        .collect();
    changed_paths(old, new, &both, Budget { paths: 0, bytes: 0 }).is_empty()
}

struct Walk<'a> {
    prefixes: &'a [&'a str],
    budget: Budget,
    /// The pointer of the node being compared: the only path text that grows with depth.
    path: String,
    bytes: usize,
    full: bool,
    out: ChangedPaths,
}

impl Walk<'_> {
    /// `free`: no ignored prefix lies at or below this node, so nothing below needs checking.
    fn node(&mut self, old: &Doc<'_>, new: &Doc<'_>, free: bool, depth: usize) {
        if !self.same_whole(old, new, depth) {
            self.descend(old, new, free, depth);
        }
    }

    /// Near the top, a subtree is first compared whole: equal, it is skipped before its path
    /// is even written (most of an update's subtrees are unchanged). Below, the walk goes on
    /// alone, so a deep document costs at most `COMPARE_WHOLE_DEPTH` times its size.
    fn same_whole(&self, old: &Doc<'_>, new: &Doc<'_>, depth: usize) -> bool {
        depth < COMPARE_WHOLE_DEPTH && old == new
    }

    /// A node known to differ (or too deep to have been compared whole).
    fn descend(&mut self, old: &Doc<'_>, new: &Doc<'_>, free: bool, depth: usize) {
        let mut free = free;
        if !free {
            let path = self.path.as_str();
            if self.prefixes.iter().any(|p| is_under(path, p)) {
                return;
            }
            free = !self.prefixes.iter().any(|p| is_under(p, path));
        }
        if self.full && free {
            self.out.more += count(old, new);
            return;
        }
        match (old, new) {
            (Doc::Object(a), Doc::Object(b)) => {
                // The keys of `a` in order (changed, or gone from `b`), then those only in `b`:
                // the order the paths were always listed in. Both sides are sorted, so each
                // pass is one merge, not a lookup per key.
                for (key, x, y) in pair_up(a, b) {
                    if y.is_some_and(|y| self.same_whole(x, y, depth + 1)) {
                        continue;
                    }
                    let before = self.path.len();
                    self.path.push('/');
                    push_segment(&mut self.path, key, SEGMENT_MAX);
                    match y {
                        Some(y) => self.descend(x, y, free, depth + 1),
                        None => self.leaf(free),
                    }
                    self.path.truncate(before);
                }
                for key in only_in_second(a, b) {
                    let before = self.path.len();
                    self.path.push('/');
                    push_segment(&mut self.path, key, SEGMENT_MAX);
                    self.leaf(free);
                    self.path.truncate(before);
                }
            }
            (Doc::Array(a), Doc::Array(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    if self.same_whole(x, y, depth + 1) {
                        continue;
                    }
                    let before = self.path.len();
                    let _ = write!(self.path, "/{i}");
                    self.descend(x, y, free, depth + 1);
                    self.path.truncate(before);
                }
            }
            (a, b) if a == b => {}
            _ => self.record(),
        }
    }

    /// A key present on one side only: one change, unless it is ignored.
    fn leaf(&mut self, free: bool) {
        if free || !self.prefixes.iter().any(|p| is_under(&self.path, p)) {
            self.record();
        }
    }

    fn record(&mut self) {
        let path: Cow<str> = if self.path.is_empty() {
            "/".into()
        } else {
            self.path.as_str().into()
        };
        if !self.full
            && self.out.paths.len() < self.budget.paths
            && self.bytes + path.len() <= self.budget.bytes
        {
            self.bytes += path.len();
            self.out.paths.push(path.into_owned());
        } else {
            self.full = true;
            self.out.more += 1;
        }
    }
}

/// The number of changed leaves, as `changed_paths` would find them, without any path.
fn count(old: &Doc<'_>, new: &Doc<'_>) -> u64 {
    match (old, new) {
        (Doc::Object(a), Doc::Object(b)) => {
            let mut n = 0;
            for (_, x, y) in pair_up(a, b) {
                n += y.map_or(1, |y| count(x, y));
            }
            n + only_in_second(a, b).count() as u64
        }
        (Doc::Array(a), Doc::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).map(|(x, y)| count(x, y)).sum()
        }
        (a, b) => u64::from(a != b),
    }
}

/// Each member of `a` in key order, with the member of `b` under the same key if there is one.
fn pair_up<'d, 'a>(
    a: &'d Members<'a>,
    b: &'d Members<'a>,
) -> impl Iterator<Item = (&'d str, &'d Doc<'a>, Option<&'d Doc<'a>>)> {
    let mut others = b.iter().peekable();
    a.iter().map(move |(key, x)| {
        while others
            .next_if(|(other, _)| key_order(other, key).is_lt())
            .is_some()
        {}
        let y = others.next_if(|(other, _)| *other == key).map(|(_, y)| y);
        (key, x, y)
    })
}

/// The keys of `b` that `a` does not have, in order.
fn only_in_second<'d>(a: &'d Members<'_>, b: &'d Members<'_>) -> impl Iterator<Item = &'d str> {
    let mut ours = a.keys().peekable();
    b.keys().filter(move |key| {
        while ours.next_if(|ours| key_order(ours, key).is_lt()).is_some() {}
        ours.peek() != Some(key)
    })
}

/// Whether `path` is `prefix` or below it.
pub fn is_under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path == prefix || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// The top-level paths a request body touches (a patch, or a full update): what audit drift
/// reports, within the same budget.
pub fn touched_paths(body: Option<&Value>, budget: Budget) -> ChangedPaths {
    let mut out = ChangedPaths::default();
    let Some(Value::Object(map)) = body else {
        return out;
    };
    let mut bytes = 0;
    let mut add = |path: String| {
        if out.more == 0 && out.paths.len() < budget.paths && bytes + path.len() <= budget.bytes {
            bytes += path.len();
            out.paths.push(path);
        } else {
            out.more += 1;
        }
    };
    let segment = |parent: &str, key: &str| {
        let mut path = String::new();
        if !parent.is_empty() {
            path.push('/');
            push_segment(&mut path, parent, SEGMENT_MAX);
        }
        path.push('/');
        push_segment(&mut path, key, SEGMENT_MAX);
        path
    };
    for (key, value) in map {
        if key == "apiVersion" || key == "kind" {
            continue;
        }
        match value {
            Value::Object(inner) if key != "metadata" || !inner.is_empty() => {
                for k in inner.keys().take(20) {
                    add(segment(key, k));
                }
            }
            _ => add(segment("", key)),
        }
    }
    out
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
mod tests;

//! The webhook's fast reading of a review (issue 18): the body in one pass into a [`Doc`]
//! ([`read_strict`]), then the review's fields taken out of it, as serde's derived
//! `Deserialize` would take them (defaults, optional fields, unknown fields ignored). Where
//! serde would refuse (a missing or mistyped field, a duplicate, an unknown operation) this
//! gives `None`, and the caller reads the body with serde instead, for serde's own error.

use super::{AdmissionRequest, AdmissionReview, GroupVersionKind, GroupVersionResource};
use super::{Operation, UserInfo};
use crate::guard::doc::{Doc, Members, read_strict};
use std::borrow::Cow;

impl<'a> AdmissionReview<'a> {
    /// The review in `body`, or `None` when serde should read it (see the module's comment).
    pub fn read_fast(body: &'a str) -> Option<Self> {
        let Doc::Object(review) = read_strict(body)? else {
            return None;
        };
        let [api_version, kind, request] = fields(review, ["apiVersion", "kind", "request"]);
        Some(AdmissionReview {
            api_version: required_text(api_version)?.into_owned(),
            kind: required_text(kind)?.into_owned(),
            request: match request {
                None | Some(Doc::Null) => None,
                Some(Doc::Object(request)) => Some(request_from(request)?),
                Some(_) => return None,
            },
        })
    }
}

/// The values of `names` among `members` (one pass; the reader has refused duplicates).
fn fields<'a, const N: usize>(members: Members<'a>, names: [&str; N]) -> [Option<Doc<'a>>; N] {
    let mut values = [const { None }; N];
    for (key, value) in members.into_members() {
        if let Some(at) = names.iter().position(|name| *name == key) {
            values[at] = Some(value);
        }
    }
    values
}

fn request_from(request: Members<'_>) -> Option<AdmissionRequest<'_>> {
    let [
        uid,
        kind,
        resource,
        sub_resource,
        name,
        namespace,
        operation,
        user_info,
        object,
        old_object,
        dry_run,
    ] = fields(
        request,
        [
            "uid",
            "kind",
            "resource",
            "subResource",
            "name",
            "namespace",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "dryRun",
        ],
    );
    Some(AdmissionRequest {
        uid: required_text(uid)?,
        kind: match kind? {
            Doc::Object(kind) => {
                let [group, version, kind] = fields(kind, ["group", "version", "kind"]);
                GroupVersionKind {
                    group: text_or_empty(group)?,
                    version: text_or_empty(version)?,
                    kind: required_text(kind)?,
                }
            }
            _ => return None,
        },
        resource: match resource {
            None => GroupVersionResource::default(),
            Some(Doc::Object(resource)) => {
                let [group, version, resource] = fields(resource, ["group", "version", "resource"]);
                GroupVersionResource {
                    group: text_or_empty(group)?,
                    version: text_or_empty(version)?,
                    resource: text_or_empty(resource)?,
                }
            }
            Some(_) => return None,
        },
        sub_resource: optional_text(sub_resource)?,
        name: text_or_empty(name)?,
        namespace: optional_text(namespace)?,
        operation: match required_text(operation)?.as_ref() {
            "CREATE" => Operation::Create,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "CONNECT" => Operation::Connect,
            _ => return None,
        },
        user_info: match user_info {
            None => UserInfo::default(),
            Some(Doc::Object(user)) => user_from(user)?,
            Some(_) => return None,
        },
        object: optional_doc(object),
        old_object: optional_doc(old_object),
        dry_run: match dry_run {
            None | Some(Doc::Null) => None,
            Some(Doc::Bool(dry_run)) => Some(dry_run),
            Some(_) => return None,
        },
    })
}

fn user_from(user: Members<'_>) -> Option<UserInfo<'_>> {
    let [username, groups] = fields(user, ["username", "groups"]);
    Some(UserInfo {
        username: text_or_empty(username)?,
        groups: match groups {
            None => Vec::new(),
            Some(Doc::Array(groups)) => groups.into_iter().map(text).collect::<Option<_>>()?,
            Some(_) => return None,
        },
    })
}

fn text(doc: Doc<'_>) -> Option<Cow<'_, str>> {
    match doc {
        Doc::String(text) => Some(text),
        _ => None,
    }
}

/// A field without `#[serde(default)]`: present, and a string.
fn required_text(field: Option<Doc<'_>>) -> Option<Cow<'_, str>> {
    text(field?)
}

/// A `#[serde(default)]` string: empty when absent; `null` is refused, as serde refuses it.
/// The outer `Option` is "serde accepts it".
fn text_or_empty(field: Option<Doc<'_>>) -> Option<Cow<'_, str>> {
    match field {
        None => Some(Cow::Borrowed("")),
        Some(doc) => text(doc),
    }
}

/// An `Option<Cow<str>>`: absent or `null` is `None`.
fn optional_text(field: Option<Doc<'_>>) -> Option<Option<Cow<'_, str>>> {
    match field {
        None | Some(Doc::Null) => Some(None),
        Some(doc) => text(doc).map(Some),
    }
}

/// An `Option<Doc>`: absent or `null` is `None`, anything else is the document.
fn optional_doc(field: Option<Doc<'_>>) -> Option<Doc<'_>> {
    match field {
        None | Some(Doc::Null) => None,
        doc => doc,
    }
}

#[cfg(test)]
mod tests {
    use super::AdmissionReview;
    use serde_json::{Value, json};

    /// The invariant: the fast reading gives up, or gives what serde gives.
    fn agrees(text: &str) -> bool {
        let ours = AdmissionReview::read_fast(text);
        let serde = serde_json::from_str::<AdmissionReview>(text);
        match (&ours, &serde) {
            (Some(ours), Ok(theirs)) => assert_eq!(format!("{ours:?}"), format!("{theirs:?}")),
            (Some(_), Err(error)) => panic!("read {text:?}, which serde refuses: {error}"),
            (None, _) => {}
        }
        ours.is_some()
    }

    fn cases() -> Vec<Value> {
        let cases: Value = serde_json::from_str(include_str!(
            "../../../webhooks/samples/admission/cases.json"
        ))
        .expect("cases.json");
        cases["cases"]
            .as_array()
            .expect("cases")
            .iter()
            .map(|case| case["review"].clone())
            .collect()
    }

    #[test]
    fn every_sample_review_reads_as_serde_reads_it() {
        for review in cases() {
            for text in [
                review.to_string(),
                serde_json::to_string_pretty(&review).expect("text"),
            ] {
                assert!(agrees(&text), "gave up on {text}");
            }
        }
    }

    /// Each field given the wrong shape (or left out, or null): serde's answer, or serde's.
    #[test]
    fn mistyped_fields_are_left_to_serde() {
        let review = cases().remove(0);
        let edits: Vec<(&str, Option<Value>)> = vec![
            ("/apiVersion", None),
            ("/apiVersion", Some(json!(1))),
            ("/kind", Some(Value::Null)),
            ("/request", Some(Value::Null)),
            ("/request", Some(json!([]))),
            ("/request/uid", None),
            ("/request/uid", Some(json!(7))),
            ("/request/kind", None),
            ("/request/kind", Some(json!(["apps", "v1", "Deployment"]))),
            ("/request/kind/kind", None),
            ("/request/kind/group", Some(Value::Null)),
            ("/request/resource", Some(Value::Null)),
            ("/request/resource", None),
            ("/request/subResource", Some(Value::Null)),
            ("/request/subResource", Some(json!("status"))),
            ("/request/subResource", Some(json!(false))),
            ("/request/name", Some(Value::Null)),
            ("/request/name", None),
            ("/request/namespace", Some(Value::Null)),
            ("/request/namespace", Some(json!({}))),
            ("/request/operation", Some(json!("PATCH"))),
            ("/request/operation", Some(json!("update"))),
            ("/request/operation", None),
            ("/request/userInfo", Some(Value::Null)),
            ("/request/userInfo", None),
            ("/request/userInfo/groups", Some(json!(["a", 1]))),
            ("/request/userInfo/groups", Some(Value::Null)),
            ("/request/userInfo/username", Some(json!(["x"]))),
            ("/request/object", Some(Value::Null)),
            ("/request/object", Some(json!("not an object"))),
            ("/request/oldObject", None),
            ("/request/dryRun", Some(Value::Null)),
            ("/request/dryRun", Some(json!("yes"))),
            ("/request/dryRun", Some(json!(true))),
            ("/request/unknownField", Some(json!({"any": ["thing"]}))),
        ];
        for (pointer, value) in edits {
            let mut edited = review.clone();
            let (parent, field) = pointer.rsplit_once('/').expect("pointer");
            let object = edited
                .pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .expect("parent object");
            match value {
                Some(value) => object.insert(field.to_string(), value),
                None => object.remove(field),
            };
            agrees(&edited.to_string());
        }
        // A duplicate field: serde refuses it ("duplicate field"), so the reader leaves it.
        let text = review.to_string().replacen(
            r#""operation":"#,
            r#""operation":"CREATE","operation":"#,
            1,
        );
        assert!(serde_json::from_str::<AdmissionReview>(&text).is_err());
        assert!(!agrees(&text));
    }

    #[test]
    fn mutated_reviews_keep_the_invariant() {
        let text = include_str!("../../../tests/fixtures/admission/mutation-seed.json");
        let mut read = 0;
        for at in 0..text.len() {
            for replacement in [
                None,
                Some(b'"'),
                Some(b'}'),
                Some(b','),
                Some(b'1'),
                Some(b'n'),
            ] {
                let mut bytes = text.as_bytes().to_vec();
                match replacement {
                    None => {
                        bytes.remove(at);
                    }
                    Some(byte) => bytes[at] = byte,
                }
                if let Ok(mutated) = std::str::from_utf8(&bytes) {
                    read += usize::from(agrees(mutated));
                }
            }
        }
        assert!(
            read > 100,
            "too few mutations were valid reviews to mean anything: {read}"
        );
    }
}

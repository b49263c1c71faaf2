//! The webhook's answers, byte for byte: every case of the sample table (in the default view)
//! and a set of malformed reviews, compared with `tests/fixtures/admission/answers.json`.
//!
//! The fixture was written by the server before the throughput work of issue 18 (parsing,
//! allocation, request ids); any change to what the API server or a caller reads shows here.
//! The uid comes from the request and the request id is fixed by the `X-Request-Id` header, so
//! the answers do not vary between runs. After an intended change of the answers, rewrite the
//! fixture with `BLESS_ADMISSION_ANSWERS=1 cargo test --test it guard_answers` and review the
//! diff.

use crate::helpers::{TestApp, spawn_app};
use serde_json::{Value, json};
use std::path::PathBuf;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/admission/answers.json")
}

fn case_reviews() -> Vec<(String, Vec<u8>)> {
    let cases = crate::helpers::sample("admission", "cases.json");
    cases["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["view"] == json!({}))
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                serde_json::to_vec(&c["review"]).expect("json"),
            )
        })
        .collect()
}

/// Serializes `good` after `f` edits a copy.
fn edited(good: &Value) -> impl Fn(&dyn Fn(&mut Value)) -> Vec<u8> + '_ {
    move |f| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).expect("json")
    }
}

/// Malformed reviews: every kind of error the parser and `validate` give, with their paths.
fn malformed_reviews(good: &Value) -> Vec<(String, Vec<u8>)> {
    let with = edited(good);
    let mut trailing = serde_json::to_vec(good).expect("json");
    trailing.extend_from_slice(b" {}");
    let mut truncated = serde_json::to_vec(good).expect("json");
    truncated.truncate(truncated.len() / 2);
    let mut cases = vec![
        ("empty body".into(), Vec::new()),
        ("not JSON".into(), b"kind: AdmissionReview".to_vec()),
        ("truncated".into(), truncated),
        ("trailing bytes".into(), trailing),
        ("an array".into(), b"[1,2]".to_vec()),
        (
            "wrong apiVersion".into(),
            with(&|v| v["apiVersion"] = json!("admission.k8s.io/v1beta1")),
        ),
        ("wrong kind".into(), with(&|v| v["kind"] = json!("Pod"))),
        (
            "apiVersion not a string".into(),
            with(&|v| v["apiVersion"] = json!(1)),
        ),
        (
            "missing request".into(),
            with(&|v| {
                v.as_object_mut().map(|o| o.remove("request"));
            }),
        ),
        ("null request".into(), with(&|v| v["request"] = Value::Null)),
    ];
    cases.extend(malformed_requests(good));
    cases
}

/// Reviews whose `request` is malformed, and two well-formed oddities (escapes, unknown fields).
fn malformed_requests(good: &Value) -> Vec<(String, Vec<u8>)> {
    let with = edited(good);
    vec![
        (
            "missing uid".into(),
            with(&|v| {
                v["request"].as_object_mut().map(|o| o.remove("uid"));
            }),
        ),
        (
            "blank uid".into(),
            with(&|v| v["request"]["uid"] = json!("  ")),
        ),
        (
            "uid a number".into(),
            with(&|v| v["request"]["uid"] = json!(7)),
        ),
        (
            "unknown operation".into(),
            with(&|v| v["request"]["operation"] = json!("PATCH")),
        ),
        (
            "kind without kind".into(),
            with(&|v| v["request"]["kind"] = json!({"group": "apps"})),
        ),
        (
            "a group not a string".into(),
            with(&|v| v["request"]["userInfo"]["groups"] = json!(["a", 2])),
        ),
        (
            "object an array".into(),
            with(&|v| v["request"]["object"] = json!([1])),
        ),
        (
            "oldObject a string".into(),
            with(&|v| v["request"]["oldObject"] = json!("x")),
        ),
        (
            "dryRun a string".into(),
            with(&|v| v["request"]["dryRun"] = json!("yes")),
        ),
        (
            "escaped strings".into(),
            with(&|v| {
                v["request"]["uid"] = json!("u\"id\\\u{e9}\n");
                v["request"]["userInfo"]["username"] = json!("al\u{e9}\"ice\t");
                v["request"]["name"] = json!("ca\\rt");
            }),
        ),
        (
            "unknown fields are ignored".into(),
            with(&|v| {
                v["extra"] = json!({"a": [1, 2, {"b": null}]});
                v["request"]["requestKind"] =
                    json!({"group": "apps", "version": "v1", "kind": "Deployment"});
                v["request"]["options"] = json!({"kind": "UpdateOptions"});
            }),
        ),
    ]
}

/// One answer as the fixture stores it: what a caller can observe.
async fn answer(app: &TestApp, name: &str, body: Vec<u8>) -> Value {
    let response = app
        .client
        .post(app.url("/webhooks/validate"))
        .header("content-type", "application/json")
        .header("x-request-id", "fixed-request-id")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response.bytes().await.expect("body");
    json!({
        "name": name,
        "status": status,
        "content_type": content_type,
        "body": String::from_utf8(bytes.to_vec()).expect("utf-8 body"),
    })
}

#[tokio::test]
async fn the_webhook_answers_are_byte_for_byte_those_of_the_fixture() {
    let app = spawn_app().await;
    let cases = case_reviews();
    let good: Value = serde_json::from_slice(
        &cases
            .iter()
            .find(|(name, _)| name == "kubectl set image on a managed deployment")
            .expect("case")
            .1,
    )
    .expect("json");
    let mut answers = Vec::new();
    for (name, body) in cases.into_iter().chain(malformed_reviews(&good)) {
        answers.push(answer(&app, &name, body).await);
    }
    assert!(answers.len() >= 50, "{} answers", answers.len());
    if std::env::var_os("BLESS_ADMISSION_ANSWERS").is_some() {
        let path = fixture_path();
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        let text = serde_json::to_string_pretty(&answers).expect("json") + "\n";
        std::fs::write(&path, text).expect("write the fixture");
        return;
    }
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixture_path()).expect("tests/fixtures/admission/answers.json"),
    )
    .expect("fixture json");
    assert_eq!(answers.len(), expected.len(), "number of answers");
    for (got, want) in answers.iter().zip(&expected) {
        assert_eq!(got, want, "answer to {}", want["name"]);
    }
}

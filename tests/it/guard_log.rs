//! The real binary's JSON logs: every line an admission review causes is in one
//! `admission_review` span naming its decision, the rule and the Application.

use serde_json::Value;
use std::time::Duration;

/// The review of a named case of the guard's table.
fn sample_review(name: &str) -> Value {
    crate::helpers::admission_case(name)["review"].clone()
}

#[tokio::test]
async fn each_admission_review_is_logged_in_a_span_with_its_decision_rule_and_application() {
    coordination_engine::tls::install_default_provider();
    let dir = tempfile::tempdir().expect("dir");
    let (_child, addr, mut logs) =
        crate::process::start_server_with_logs(dir.path(), &[("API_TOKEN", "guard-log-token")])
            .await;
    let client = crate::helpers::https_client(&dir.path().join("data/tls/ca.crt"));
    let url = format!("https://localhost:{}/webhooks/validate", addr.port());
    let mut sent = Vec::new();
    for case in [
        "kubectl set image on a managed deployment",
        "sync by argocd-application-controller in argocd",
    ] {
        let review = sample_review(case);
        let answer: Value = client
            .post(&url)
            .json(&review)
            .send()
            .await
            .expect("review")
            .json()
            .await
            .expect("json");
        sent.push((review["request"]["uid"].clone(), answer["response"].clone()));
    }

    // The "admission review" line of each, in the order they were sent.
    let read = async {
        let mut lines = Vec::new();
        while let Some(line) = logs.next_line().await.expect("read the logs") {
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if event["message"] == "admission review" {
                lines.push(event);
                if lines.len() == sent.len() {
                    return lines;
                }
            }
        }
        panic!("the logs ended before both reviews were logged");
    };
    let lines = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("both reviews are logged within 20 s");

    let (denied, allowed) = (&lines[0]["span"], &lines[1]["span"]);
    for (span, (uid, response)) in [denied, allowed].into_iter().zip(&sent) {
        assert_eq!(span["name"], "admission_review", "{span}");
        assert_eq!(&span["uid"], uid, "{span}");
        assert_eq!(
            span["rule"], response["auditAnnotations"]["coordination-engine.io/reason"],
            "{span}"
        );
        assert_eq!(
            span["application"],
            response["auditAnnotations"]["coordination-engine.io/argocd-application"],
            "{span}"
        );
    }
    assert_eq!(denied["decision"], "deny", "{denied}");
    assert_eq!(denied["rule"], "manual_change", "{denied}");
    assert!(denied["application"].is_string(), "{denied}");
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    assert_eq!(lines[0]["operation"], "UPDATE");
}

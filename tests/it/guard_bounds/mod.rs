//! Issue 15, items 1 and 10: no review can exhaust the engine, and no stream of denials can
//! flood its store. Memory and CPU are read from /proc for the real binary, spawned as a
//! process (its peak RSS is its own, not the test harness's).

mod flood;
mod server;

use serde_json::{Value, json};
use server::{Server, peak_rss, timed};
use std::time::Duration;

const TOKEN: &str = "guard-bounds-test-token";
/// The admission route's body limit.
const ADMISSION_LIMIT: usize = 3 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// A managed Deployment `prod/<name>` of Application `app`, with `extra` under `spec`.
fn deployment(app: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "prod",
            "uid": format!("uid-{name}"),
            "annotations": {
                "argocd.argoproj.io/tracking-id": format!("{app}:apps/Deployment:prod/{name}")
            }
        },
        "spec": spec,
    })
}

fn review(user: &str, operation: &str, old: Option<Value>, new: Option<Value>) -> Value {
    let subject = new.as_ref().or(old.as_ref()).expect("an object");
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{user}-{}", subject["metadata"]["name"].as_str().unwrap_or("")),
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": subject["metadata"]["name"],
            "namespace": "prod",
            "operation": operation,
            "userInfo": {"username": user, "groups": ["system:authenticated"]},
            "object": new,
            "oldObject": old,
        }
    })
}

/// The diff bomb of issue 15: an UPDATE whose old and new objects hold a huge array under a
/// 1000-character key; `differ` makes every element a change. Just under the body limit.
fn diff_bomb(differ: bool, limit: usize) -> (Vec<u8>, usize) {
    let key = "k".repeat(1000);
    // "0," per element, two arrays, and a little envelope.
    let elements = (limit - 4096) / 4;
    let old = deployment("shop", "cart", json!({ key.clone(): vec![0; elements] }));
    let new = deployment(
        "shop",
        "cart",
        json!({ key: vec![if differ { 1 } else { 0 }; elements] }),
    );
    let body =
        serde_json::to_vec(&review("mallory", "UPDATE", Some(old), Some(new))).expect("json");
    assert!(body.len() < limit, "{} bytes", body.len());
    (body, elements)
}

#[tokio::test]
async fn a_diff_bomb_costs_under_256_mib_and_a_second_of_cpu_and_is_answered_in_full() {
    let server = Server::start().await;
    let pid = server.pid();

    // The same huge array on both sides: nothing changed but what is ignored.
    let (same, _) = diff_bomb(false, ADMISSION_LIMIT);
    let (answer, cpu) = timed(pid, server.review(same)).await;
    assert_eq!(answer["response"]["allowed"], true, "no drift");
    assert_eq!(
        answer["response"]["auditAnnotations"]["coordination-engine.io/reason"],
        "ignored_fields_only"
    );
    println!("diff bomb (same array): {} ms CPU", cpu.as_millis());
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");

    // Every element differs: the many-changed-paths case.
    let (differ, elements) = diff_bomb(true, ADMISSION_LIMIT);
    let (answer, cpu) = timed(pid, server.review(differ)).await;
    println!(
        "diff bomb (every element differs): {} ms CPU",
        cpu.as_millis()
    );
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");
    assert_eq!(answer["response"]["allowed"], false);
    let message = answer["response"]["status"]["message"]
        .as_str()
        .expect("a denial message");
    assert!(
        message.len() < 16 * 1024,
        "{} bytes of message",
        message.len()
    );
    assert!(message.contains('…'), "the 1000-character key is clipped");
    let more: u64 = message
        .split_once(" more. ")
        .and_then(|(before, _)| before.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("\"and N more\" in {message}"));
    assert!(more > elements as u64 - 256, "{more} of {elements}");

    // The same budget on explain (within the API's 1 MiB limit).
    let (explain_bomb, explain_elements) = diff_bomb(true, 1024 * 1024);
    let (explained, cpu) = timed(pid, server.post("/api/v1/guard/explain", explain_bomb)).await;
    assert!(cpu < Duration::from_secs(1), "{cpu:?} of CPU");
    let paths = explained["changed_paths"].as_array().expect("paths");
    let text: usize = paths.iter().filter_map(Value::as_str).map(str::len).sum();
    assert!(!paths.is_empty() && paths.len() <= 256, "{}", paths.len());
    assert!(text <= 64 * 1024, "{text} bytes of paths");
    assert_eq!(
        paths.len() as u64 + explained["more_changed_paths"].as_u64().expect("count"),
        explain_elements as u64
    );

    let peak = peak_rss(pid);
    println!("diff bombs: peak RSS (VmHWM) {} MiB", peak / MIB);
    assert!(peak < 256 * MIB, "peak RSS {} MiB", peak / MIB);
}

//! The chart's hardening (issue 15): the webhook declares its side effects, a restricted API
//! port still admits the API server, the token Secret survives upgrades and syncs, and the
//! token-less compatibility port never acts alone by default.

use crate::chart::{CHART, find, render};
use crate::peers::find_binary;
use serde_json::Value;
use std::path::Path;

pub(crate) fn env_value(docs: &[Value], name: &str) -> Option<String> {
    find(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

/// The sources allowed to reach port 8080 by the rendered NetworkPolicy.
fn api_port_sources(docs: &[Value]) -> Vec<Value> {
    let policy = find(docs, "NetworkPolicy")[0];
    let rule = policy["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .find(|r| r["ports"][0]["port"] == 8080)
        .expect("a rule for port 8080");
    rule["from"].as_array().cloned().unwrap_or_default()
}

#[test]
fn the_webhook_declares_that_only_dry_runs_are_free_of_side_effects() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    // Denials are recorded as incidents: `None` would be a lie to the API server.
    let docs = render(&helm, "values.yaml", &[]);
    let webhook = find(&docs, "ValidatingWebhookConfiguration")[0];
    assert_eq!(webhook["webhooks"][0]["sideEffects"], "NoneOnDryRun");
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/admission/validating-webhook.yaml");
    let manifest: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("yaml");
    assert_eq!(manifest["webhooks"][0]["sideEffects"], "NoneOnDryRun");
}

#[test]
fn restricting_the_api_port_to_namespaces_keeps_the_api_server_in() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    // Unrestricted: any source (the API server included).
    let open = render(&helm, "values.yaml", &[]);
    assert!(api_port_sources(&open).is_empty());

    // Kubernetes: namespaces alone would cut the API server off; the chart refuses.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new(&helm)
        .current_dir(root)
        .args(["template", "ce", CHART, "-n", "self-healing-platform"])
        .args(["--set", "networkPolicy.apiFromNamespaces={monitoring}"])
        .output()
        .expect("run helm");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("networkPolicy.apiServerCIDRs"), "{stderr}");

    // With the control plane's addresses: the namespace and the API server.
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "networkPolicy.apiFromNamespaces={monitoring}",
            "networkPolicy.apiServerCIDRs={10.0.0.10/32}",
        ],
    );
    let sources = api_port_sources(&docs);
    assert!(sources.contains(&serde_json::json!({
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    })));
    assert!(sources.contains(&serde_json::json!({"ipBlock": {"cidr": "10.0.0.10/32"}})));

    // OpenShift: host-network sources (the kube-apiserver) by OVN-Kubernetes' namespace label.
    let docs = render(
        &helm,
        "values-ocp-4.20.yaml",
        &["networkPolicy.apiFromNamespaces={openshift-monitoring}"],
    );
    assert!(api_port_sources(&docs).contains(&serde_json::json!({
        "namespaceSelector": {"matchLabels": {"policy-group.network.openshift.io/host-network": ""}}
    })));
}

#[test]
fn the_token_secret_is_kept_and_never_minted_for_an_existing_secret() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(
        &helm,
        "values.yaml",
        &["alertmanager.tokenSecret.create=true"],
    );
    let secrets = find(&docs, "Secret");
    assert_eq!(secrets.len(), 2, "the token and Alertmanager's copy");
    for secret in &secrets {
        let annotations = &secret["metadata"]["annotations"];
        assert_eq!(annotations["helm.sh/resource-policy"], "keep", "{secret}");
        assert_eq!(
            annotations["argocd.argoproj.io/sync-options"], "Delete=false,Prune=false",
            "{secret}"
        );
    }
    // The copy carries the same token.
    assert_eq!(secrets[0]["data"]["token"], secrets[1]["data"]["token"]);

    // GitOps: with a Secret of one's own nothing is minted, and the copy is not rendered with
    // an empty token when the chart cannot read that Secret (helm template, ArgoCD).
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "apiToken.existingSecret=my-token",
            "alertmanager.tokenSecret.create=true",
        ],
    );
    assert!(find(&docs, "Secret").is_empty(), "nothing minted");
    let volumes = &find(&docs, "Deployment")[0]["spec"]["template"]["spec"]["volumes"];
    assert!(
        volumes
            .as_array()
            .expect("volumes")
            .iter()
            .any(|v| v["secret"]["secretName"] == "my-token")
    );
    // The engine reads the token from the mounted file, so a rotated Secret reaches it.
    assert!(env_value(&docs, "API_TOKEN_FILE").is_some());
    assert!(env_value(&docs, "API_TOKEN").is_none());
}

#[test]
fn the_compat_port_waits_for_approval_unless_told_otherwise() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(&helm, "values.yaml", &["compat.enabled=true"]);
    assert_eq!(
        env_value(&docs, "COMPAT_TRIGGER_MODE").as_deref(),
        Some("approval")
    );
    let docs = render(
        &helm,
        "values.yaml",
        &["compat.enabled=true", "compat.triggerMode=dry_run"],
    );
    assert_eq!(
        env_value(&docs, "COMPAT_TRIGGER_MODE").as_deref(),
        Some("dry_run")
    );
    let docs = render(&helm, "values.yaml", &[]);
    assert!(env_value(&docs, "COMPAT_TRIGGER_MODE").is_none());
}

/// The Go engine's README checks permissions with
/// `kubectl auth can-i … --as=system:serviceaccount:self-healing-platform:self-healing-operator`:
/// with `serviceAccount.name: self-healing-operator` every binding names that account.
#[test]
fn the_go_engines_service_account_name_is_used_everywhere_when_set() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    for values in ["values.yaml", "values-ocp-4.20.yaml"] {
        let docs = render(
            &helm,
            values,
            &["serviceAccount.name=self-healing-operator"],
        );
        let accounts = find(&docs, "ServiceAccount");
        assert_eq!(accounts.len(), 1, "{values}");
        assert_eq!(accounts[0]["metadata"]["name"], "self-healing-operator");
        assert_eq!(
            accounts[0]["metadata"]["namespace"],
            "self-healing-platform"
        );
        let pod = &find(&docs, "Deployment")[0]["spec"]["template"]["spec"];
        assert_eq!(
            pod["serviceAccountName"], "self-healing-operator",
            "{values}"
        );
        assert_eq!(
            env_value(&docs, "SERVICE_ACCOUNT").as_deref(),
            Some("self-healing-operator"),
            "{values}"
        );
        let bindings: Vec<_> = ["ClusterRoleBinding", "RoleBinding"]
            .iter()
            .flat_map(|kind| find(&docs, kind))
            .collect();
        assert!(!bindings.is_empty(), "{values}");
        for binding in bindings {
            for subject in binding["subjects"].as_array().expect("subjects") {
                assert_eq!(subject["kind"], "ServiceAccount", "{binding}");
                assert_eq!(subject["name"], "self-healing-operator", "{binding}");
                assert_eq!(subject["namespace"], "self-healing-platform", "{binding}");
            }
        }
    }
}

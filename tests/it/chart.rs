//! The Helm chart, rendered by the real helm for every values file: each object parses as its
//! Kubernetes type, the RBAC grants exactly the API calls the code declares
//! (`cluster::rbac`), and the webhook's matchConditions exempt exactly the identities the
//! guard exempts, in the chart and in `webhooks/admission/validating-webhook.yaml`.

use crate::peers::find_binary;
use coordination_engine::cluster::rbac::{self, Feature};
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

pub(crate) const CHART: &str = "charts/coordination-engine";
const VALUES: &[&str] = &[
    "values.yaml",
    "values-ocp-4.18.yaml",
    "values-ocp-4.19.yaml",
    "values-ocp-4.20.yaml",
];

/// `helm template` of the chart with `values` and `--set` pairs, as JSON documents.
pub(crate) fn render(helm: &Path, values: &str, set: &[&str]) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new(helm);
    command
        .current_dir(root)
        .args([
            "template",
            "ce",
            CHART,
            "--namespace",
            "self-healing-platform",
            "-f",
        ])
        .arg(format!("{CHART}/{values}"));
    for pair in set {
        command.args(["--set", pair]);
    }
    let output = command.output().expect("run helm");
    assert!(
        output.status.success(),
        "helm template -f {values}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("utf-8");
    serde_saphyr::from_multiple::<Value>(&text)
        .expect("rendered YAML")
        .into_iter()
        .filter(|doc| doc.is_object())
        .collect()
}

pub(crate) fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn parses<T: serde::de::DeserializeOwned>(doc: &Value) {
    if let Err(error) = serde_json::from_value::<T>(doc.clone()) {
        panic!(
            "{} {} does not parse: {error}",
            doc["kind"], doc["metadata"]["name"]
        );
    }
}

/// `doc` parses as the k8s-openapi type of its kind; custom resources have the fields their
/// controllers need.
fn parses_as_its_kind(values: &str, kind: &str, doc: &Value) {
    use k8s_openapi::api::{
        admissionregistration::v1::ValidatingWebhookConfiguration,
        apps::v1::Deployment,
        core::v1::{PersistentVolumeClaim, Secret, Service, ServiceAccount},
        networking::v1::NetworkPolicy,
        policy::v1::PodDisruptionBudget,
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    };
    match kind {
        "Deployment" => parses::<Deployment>(doc),
        "Service" => parses::<Service>(doc),
        "ServiceAccount" => parses::<ServiceAccount>(doc),
        "Secret" => parses::<Secret>(doc),
        "PersistentVolumeClaim" => parses::<PersistentVolumeClaim>(doc),
        "ClusterRole" => parses::<ClusterRole>(doc),
        "ClusterRoleBinding" => parses::<ClusterRoleBinding>(doc),
        "Role" => parses::<Role>(doc),
        "RoleBinding" => parses::<RoleBinding>(doc),
        "ValidatingWebhookConfiguration" => parses::<ValidatingWebhookConfiguration>(doc),
        "NetworkPolicy" => parses::<NetworkPolicy>(doc),
        "PodDisruptionBudget" => parses::<PodDisruptionBudget>(doc),
        // Custom resources: the fields their controllers need.
        "Certificate" => assert!(
            doc["spec"]["secretName"].is_string() && doc["spec"]["issuerRef"]["name"].is_string(),
            "{doc}"
        ),
        "Issuer" => assert!(doc["spec"].is_object(), "{doc}"),
        "ServiceMonitor" => assert_eq!(doc["spec"]["endpoints"][0]["port"], "metrics"),
        "PrometheusRule" => assert!(
            doc["spec"]["groups"][0]["rules"]
                .as_array()
                .is_some_and(|r| r.len() >= 4)
        ),
        other => panic!("{values}: unexpected kind {other}"),
    }
}

/// The Deployment's container is read-only, unprivileged and probed; returns its pod spec.
fn hardened_pod_spec(values: &str, docs: &[Value]) -> PodSpec {
    use k8s_openapi::api::apps::v1::Deployment;
    let deployment: Deployment =
        serde_json::from_value(find(docs, "Deployment")[0].clone()).expect("deployment");
    let spec = deployment
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec");
    let container = &spec.containers[0];
    let security = container
        .security_context
        .as_ref()
        .expect("securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true), "{values}");
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert!(container.liveness_probe.is_some() && container.readiness_probe.is_some());
    spec
}

#[test]
fn every_values_file_renders_objects_that_parse_as_their_kubernetes_types() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    for values in VALUES {
        let docs = render(&helm, values, &[]);
        let mut kinds = BTreeSet::new();
        for doc in &docs {
            let kind = doc["kind"].as_str().expect("kind").to_string();
            parses_as_its_kind(values, &kind, doc);
            kinds.insert(kind);
        }
        let spec = hardened_pod_spec(values, &docs);
        let openshift = values.contains("ocp");
        if openshift {
            // The SCC assigns the UID; service-ca issues the certificate.
            assert!(
                spec.security_context
                    .as_ref()
                    .and_then(|s| s.run_as_user)
                    .is_none()
            );
            assert!(
                !kinds.contains("Certificate"),
                "{values}: service-ca, not cert-manager"
            );
            assert!(kinds.contains("ServiceMonitor") && kinds.contains("PrometheusRule"));
            let service = find(&docs, "Service")[0];
            assert!(service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"].is_string());
        } else {
            assert!(
                kinds.contains("Certificate") && kinds.contains("Issuer"),
                "{values}: {kinds:?}"
            );
        }
        for kind in [
            "Deployment",
            "Service",
            "ServiceAccount",
            "ClusterRole",
            "ValidatingWebhookConfiguration",
            "NetworkPolicy",
            "PodDisruptionBudget",
        ] {
            assert!(kinds.contains(kind), "{values}: no {kind}");
        }
    }
}

/// The (group, resource, verb) triples of every rule in `docs` of `kind`.
fn granted(docs: &[Value], kind: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for role in find(docs, kind) {
        for rule in role["rules"].as_array().expect("rules") {
            let list = |k: &str| -> Vec<String> {
                rule[k]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        out.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_rendered_rbac_grants_exactly_the_api_calls_the_code_declares() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    for values in VALUES {
        let docs = render(&helm, values, &[]);
        let openshift = values.contains("ocp");
        let expected = rbac::triples(|feature| match feature {
            Feature::Core | Feature::ArgoCd | Feature::Nodes => true,
            Feature::OpenShift | Feature::Olm => openshift,
            Feature::Helm => false,
        });
        assert_eq!(granted(&docs, "ClusterRole"), expected, "{values}");
        let call = rbac::ARGOCD_NAMESPACE_CALLS;
        // Beside the leader-election Role in the release namespace (chart_ha.rs), one Role in
        // ArgoCD's namespace.
        let roles: Vec<Value> = find(&docs, "Role")
            .into_iter()
            .filter(|r| r["metadata"]["namespace"] != "self-healing-platform")
            .cloned()
            .collect();
        assert_eq!(roles.len(), 1, "one Role in ArgoCD's namespace");
        let namespace = if openshift {
            "openshift-gitops"
        } else {
            "argocd"
        };
        assert_eq!(roles[0]["metadata"]["namespace"], namespace);
        let expected: BTreeSet<_> = call
            .verbs
            .iter()
            .map(|v| {
                (
                    call.group.to_string(),
                    call.resources[0].to_string(),
                    v.to_string(),
                )
            })
            .collect();
        assert_eq!(granted(&roles, "Role"), expected);
    }
    // Opting in adds exactly the declared calls of that feature.
    let docs = render(
        &helm,
        "values.yaml",
        &["rbac.helm=true", "rbac.nodes=false"],
    );
    let expected = rbac::triples(|f| matches!(f, Feature::Core | Feature::ArgoCd | Feature::Helm));
    assert_eq!(granted(&docs, "ClusterRole"), expected);
}

/// The quoted strings of a CEL list in the named matchCondition.
fn cel_strings(webhook: &Value, condition: &str) -> BTreeSet<String> {
    let expression = webhook["webhooks"][0]["matchConditions"]
        .as_array()
        .expect("matchConditions")
        .iter()
        .find(|c| c["name"] == condition)
        .and_then(|c| c["expression"].as_str())
        .unwrap_or_else(|| panic!("no matchCondition {condition}"))
        .to_string();
    expression
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

/// What the guard exempts by name, given the engine's environment: GitOps identities, exempt
/// users, the controller manager; and the exempt groups.
fn guard_exemptions(env: HashMap<String, String>) -> (BTreeSet<String>, BTreeSet<String>) {
    use coordination_engine::config::{self, Sources};
    use coordination_engine::guard::GuardConfig;
    let settings = config::load(&Sources {
        files: Vec::new(),
        env,
    })
    .expect("the chart's settings are valid");
    let config = GuardConfig::from_settings(&settings);
    let mut users: BTreeSet<String> = config.gitops_identities.iter().cloned().collect();
    users.extend(config.exempt_users.iter().cloned());
    users.insert("system:kube-controller-manager".into());
    (users, config.exempt_groups.iter().cloned().collect())
}

#[test]
fn the_webhook_match_conditions_exempt_exactly_the_identities_the_guard_exempts() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "guard.gitopsIdentities={system:serviceaccount:flux-system:kustomize-controller}",
            "guard.exemptUsers={breakglass@example.com}",
            "guard.exemptGroups={sre-oncall}",
        ],
    );
    let deployment = find(&docs, "Deployment")[0];
    let env: HashMap<String, String> =
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .expect("env")
            .iter()
            .filter(|e| e["name"].as_str().is_some_and(|n| n.starts_with("GUARD_")))
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
    let (users, groups) = guard_exemptions(env);
    assert!(users.contains("system:serviceaccount:flux-system:kustomize-controller"));
    let webhook = find(&docs, "ValidatingWebhookConfiguration")[0];
    assert_eq!(cel_strings(webhook, "not-an-exempt-identity"), users);
    assert_eq!(cel_strings(webhook, "not-in-an-exempt-group"), groups);
    assert_eq!(
        cel_strings(webhook, "not-a-kubernetes-controller"),
        BTreeSet::from(["system:serviceaccount:kube-system:".to_string()])
    );

    // The static manifest under webhooks/ matches the guard's defaults.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("webhooks/admission/validating-webhook.yaml");
    let manifest: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("yaml");
    let (default_users, _) = guard_exemptions(HashMap::new());
    assert_eq!(
        cel_strings(&manifest, "not-an-exempt-identity"),
        default_users
    );
    // And the chart renders the same rules and selector as that manifest.
    let plain = render(&helm, "values.yaml", &[]);
    let rendered = find(&plain, "ValidatingWebhookConfiguration")[0];
    for field in [
        "rules",
        "sideEffects",
        "admissionReviewVersions",
        "matchPolicy",
        "failurePolicy",
    ] {
        assert_eq!(
            rendered["webhooks"][0][field], manifest["webhooks"][0][field],
            "{field}"
        );
    }
}

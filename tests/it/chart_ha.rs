//! The chart's high availability (issue 16): several replicas only on PostgreSQL (the schema
//! refuses them on SQLite), rolling updates without a data volume, a budget and a spread that
//! keep a replica answering the webhooks, and RBAC for exactly the one leader-election Lease.

use crate::chart::{CHART, find, render};
use crate::peers::find_binary;
use serde_json::{Value, json};
use std::path::Path;

const NAMESPACE: &str = "self-healing-platform";
const LEADER_ROLE: &str = "ce-coordination-engine-leader-election";

/// The `--set` pairs of a 3-replica install on PostgreSQL.
const HA: &[&str] = &[
    "replicaCount=3",
    "database.url=postgres://engine@pg-rw.databases.svc:5432/engine?sslmode=require",
    "database.passwordSecret.name=pg-app",
];

fn pod_spec(docs: &[Value]) -> &Value {
    &find(docs, "Deployment")[0]["spec"]["template"]["spec"]
}

/// The engine container's env entry `name`, whole (a value or a valueFrom).
fn env_entry(docs: &[Value], name: &str) -> Option<Value> {
    pod_spec(docs)["containers"][0]["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
}

/// The pod volume `name`.
fn volume(docs: &[Value], name: &str) -> Option<Value> {
    pod_spec(docs)["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == name)
        .cloned()
}

/// The object of `kind` named `name`, which must be rendered.
fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(docs, kind)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The leader-election Role and its binding: in the release namespace, `create` on leases
/// (which cannot be limited by name) and the rest on the one Lease `lease` only.
fn assert_lease_rbac(docs: &[Value], lease: &str) {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let role = named(docs, "Role", LEADER_ROLE);
    serde_json::from_value::<Role>(role.clone()).expect("a Role");
    assert_eq!(role["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        role["rules"],
        json!([
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [lease],
                "verbs": ["get", "update"]
            }
        ])
    );
    let binding = named(docs, "RoleBinding", LEADER_ROLE);
    serde_json::from_value::<RoleBinding>(binding.clone()).expect("a RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ROLE})
    );
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "ce-coordination-engine", "namespace": NAMESPACE}])
    );
    // Nothing cluster-wide about leases.
    for cluster_role in find(docs, "ClusterRole") {
        assert!(
            !cluster_role.to_string().contains("coordination.k8s.io"),
            "{cluster_role}"
        );
    }
}

/// POD_NAME from the downward API and the Lease name, on every store.
fn assert_election_env(docs: &[Value], lease: &str) {
    assert_eq!(
        env_entry(docs, "POD_NAME"),
        Some(
            json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        )
    );
    assert_eq!(
        env_entry(docs, "LEADER_ELECTION_LEASE"),
        Some(json!({"name": "LEADER_ELECTION_LEASE", "value": lease}))
    );
}

/// The store: the URL as given, the password as a mounted file of the Secret's key, and no
/// claim (state lives in PostgreSQL).
fn assert_store_is_postgresql(docs: &[Value]) {
    assert_eq!(
        env_entry(docs, "DATABASE_URL"),
        Some(json!({"name": "DATABASE_URL", "value": HA[1].trim_start_matches("database.url=")}))
    );
    assert_eq!(
        env_entry(docs, "DATABASE_PASSWORD_FILE"),
        Some(json!({
            "name": "DATABASE_PASSWORD_FILE",
            "value": "/etc/coordination-engine/database-password/password"
        }))
    );
    let mounts = &pod_spec(docs)["containers"][0]["volumeMounts"];
    assert!(
        mounts.as_array().expect("mounts").contains(&json!({
            "name": "database-password",
            "mountPath": "/etc/coordination-engine/database-password",
            "readOnly": true
        })),
        "{mounts}"
    );
    assert_eq!(
        volume(docs, "database-password").expect("the password volume")["secret"],
        json!({"secretName": "pg-app", "items": [{"key": "password", "path": "password"}]})
    );
    // State lives in PostgreSQL: no claim, the data directory is the pod's own.
    assert!(find(docs, "PersistentVolumeClaim").is_empty());
    assert_eq!(
        volume(docs, "data").expect("the data volume"),
        json!({"name": "data", "emptyDir": {}})
    );
}

/// With the PrometheusRule on, an alert fires when no replica executes.
fn assert_no_leader_alert(helm: &Path) {
    let docs_with_rules = render(
        helm,
        "values.yaml",
        &[HA, &["monitoring.prometheusRule.enabled=true"]].concat(),
    );
    let rules = &find(&docs_with_rules, "PrometheusRule")[0]["spec"]["groups"][0]["rules"];
    let no_leader = rules
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["alert"] == "CoordinationEngineNoLeader")
        .expect("a CoordinationEngineNoLeader alert");
    assert_eq!(
        no_leader["expr"],
        r#"sum(coordination_engine_leader{job="ce-coordination-engine"}) != 1"#
    );
}

#[test]
fn three_replicas_on_postgresql_render_the_lease_rbac_budget_spread_and_rolling_update() {
    use k8s_openapi::api::{apps::v1::Deployment, policy::v1::PodDisruptionBudget};
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(&helm, "values.yaml", HA);
    let deployment = find(&docs, "Deployment")[0];
    serde_json::from_value::<Deployment>(deployment.clone()).expect("a Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    // A new pod is ready before an old one stops: the webhooks never go dark in a rollout.
    assert_eq!(
        deployment["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    );

    assert_store_is_postgresql(&docs);

    assert_election_env(&docs, "coordination-engine-leader");
    assert_lease_rbac(&docs, "coordination-engine-leader");

    // A drain never evicts the last replica answering the webhooks.
    let budget = find(&docs, "PodDisruptionBudget")[0];
    serde_json::from_value::<PodDisruptionBudget>(budget.clone()).expect("a PDB");
    assert_eq!(budget["spec"]["minAvailable"], 1);
    assert!(budget["spec"].get("maxUnavailable").is_none(), "{budget}");
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // One replica per node where the scheduler can.
    assert_eq!(
        pod_spec(&docs)["topologySpreadConstraints"],
        json!([{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}
        }])
    );

    // An alert when no replica executes.
    assert_no_leader_alert(&helm);

    // The Lease the engine is told to take is the one the Role names.
    let mut renamed = HA.to_vec();
    renamed.push("leaderElection.leaseName=engine-leader-blue");
    let docs = render(&helm, "values.yaml", &renamed);
    assert_election_env(&docs, "engine-leader-blue");
    assert_lease_rbac(&docs, "engine-leader-blue");
}

#[test]
fn the_database_url_may_come_from_a_secret_with_its_ca_mounted_beside() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(
        &helm,
        "values.yaml",
        &[
            "replicaCount=2",
            "database.existingSecret=engine-db",
            "database.existingSecretUrlKey=uri",
            "database.caSecret.name=pg-ca",
        ],
    );
    // Never copied into the pod spec: a reference to the Secret's key.
    assert_eq!(
        env_entry(&docs, "DATABASE_URL"),
        Some(json!({
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "engine-db", "key": "uri"}}
        }))
    );
    assert_eq!(env_entry(&docs, "DATABASE_PASSWORD_FILE"), None);
    assert_eq!(
        volume(&docs, "database-ca").expect("the CA volume")["secret"],
        json!({"secretName": "pg-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]})
    );
    assert_eq!(find(&docs, "Deployment")[0]["spec"]["replicas"], 2);
    assert_eq!(
        find(&docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"],
        1
    );
    assert!(find(&docs, "PersistentVolumeClaim").is_empty());
}

/// `helm <args> CHART --set ...` must fail; its stderr.
fn refused(helm: &Path, args: &[&str], set: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = std::process::Command::new(helm);
    command.current_dir(root).args(args).arg(CHART);
    command.args(["--namespace", NAMESPACE]);
    for pair in set {
        command.args(["--set", pair]);
    }
    let output = command.output().expect("run helm");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success(), "helm {args:?} {set:?} passed");
    // helm lint reports on stdout, helm template on stderr.
    format!("{stdout}{stderr}")
}

#[test]
fn the_schema_refuses_several_replicas_on_sqlite_and_a_database_given_twice() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    // SQLite has one writer: 3 replicas without PostgreSQL never render.
    for args in [&["template", "ce"][..], &["lint"][..]] {
        let message = refused(&helm, args, &["replicaCount=3"]);
        assert!(
            message.contains("schema") && message.contains("/database"),
            "{args:?}: {message}"
        );
    }
    // An empty URL is no database either.
    let message = refused(
        &helm,
        &["template", "ce"],
        &["replicaCount=2", "database.url="],
    );
    assert!(message.contains("/database"), "{message}");
    // Two sources for DATABASE_URL: which one wins would be a guess.
    let message = refused(
        &helm,
        &["template", "ce"],
        &[
            "replicaCount=3",
            "database.url=postgres://engine@pg:5432/engine",
            "database.existingSecret=engine-db",
        ],
    );
    assert!(message.contains("/database"), "{message}");
    // A password in the URL would sit in the pod spec: the Secret is the way.
    let message = refused(
        &helm,
        &["template", "ce"],
        &[
            "replicaCount=3",
            "database.url=postgres://engine:hunter2@pg:5432/engine",
        ],
    );
    assert!(message.contains("/database/url"), "{message}");
    // A password or CA Secret without a database would be silently ignored on SQLite.
    for secret in [
        "database.passwordSecret.name=pg-app",
        "database.caSecret.name=pg-ca",
    ] {
        let message = refused(&helm, &["template", "ce"], &[secret]);
        assert!(message.contains("/database"), "{secret}: {message}");
    }

    // The HA values themselves lint clean.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut lint = std::process::Command::new(&helm);
    lint.current_dir(root).args(["lint", CHART]);
    for pair in HA {
        lint.args(["--set", pair]);
    }
    let output = lint.output().expect("run helm lint");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn one_replica_on_sqlite_keeps_recreate_its_volume_and_a_drainable_budget() {
    let Some(helm) = find_binary("HELM_BIN", &["helm"]) else {
        return;
    };
    let docs = render(&helm, "values.yaml", &[]);
    let deployment = find(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 1);
    // SQLite has one writer: never two pods on one volume.
    assert_eq!(deployment["spec"]["strategy"], json!({"type": "Recreate"}));
    let claims = find(&docs, "PersistentVolumeClaim");
    assert_eq!(claims.len(), 1);
    assert_eq!(
        volume(&docs, "data").expect("the data volume")["persistentVolumeClaim"]["claimName"],
        claims[0]["metadata"]["name"]
    );
    assert_eq!(env_entry(&docs, "DATABASE_URL"), None);
    assert_eq!(env_entry(&docs, "DATABASE_PASSWORD_FILE"), None);
    // minAvailable: 1 with one pod would block every node drain.
    let budget = find(&docs, "PodDisruptionBudget")[0];
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert!(budget["spec"].get("minAvailable").is_none(), "{budget}");
    // The single replica takes the Lease too (it is always its holder), so scaling out on
    // PostgreSQL later needs no RBAC change.
    assert_election_env(&docs, "coordination-engine-leader");
    assert_lease_rbac(&docs, "coordination-engine-leader");
}

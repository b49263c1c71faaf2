#!/usr/bin/env python3
"""Generates webhooks/samples/admission/cases.json: AdmissionReviews with expected decisions.

Run from the repository root; the tests read the JSON (this script is only its source)."""
import copy, json

def deployment(name="cart", ns="prod", app="shop", replicas=2, image="cart:1.0", tracking=True,
               labels=None, annotations=None, uid="uid-cart"):
    ann = dict(annotations or {})
    if tracking is True:
        ann["argocd.argoproj.io/tracking-id"] = f"{app}:apps/Deployment:{ns}/{name}"
    elif isinstance(tracking, str):
        ann["argocd.argoproj.io/tracking-id"] = tracking
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "100",
                     "generation": 3, "labels": dict(labels or {"app": name}), "annotations": ann},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image}]}}},
        "status": {"readyReplicas": replicas},
    }

def review(op, obj=None, old=None, user="alice", groups=("system:authenticated",), kind=("apps", "v1", "Deployment"),
           resource=("apps", "v1", "deployments"), sub=None, ns="prod", name="cart", dry_run=False, uid="req-1"):
    req = {"uid": uid, "kind": {"group": kind[0], "version": kind[1], "kind": kind[2]},
           "resource": {"group": resource[0], "version": resource[1], "resource": resource[2]},
           "name": name, "namespace": ns, "operation": op,
           "userInfo": {"username": user, "groups": list(groups)},
           "object": obj, "oldObject": old, "dryRun": dry_run}
    if sub:
        req["subResource"] = sub
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}

cases = []
def case(name, rev, outcome, reason, view=None):
    cases.append({"name": name, "view": view or {}, "review": rev,
                  "expect": {"outcome": outcome, "reason": reason}})

old = deployment()
scaled = deployment(replicas=5)
new_image = deployment(image="cart:2.0")
restarted = copy.deepcopy(old)
restarted["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-11-23T10:00:00Z"}
status_only = copy.deepcopy(old); status_only["status"] = {"readyReplicas": 1}
meta_only = copy.deepcopy(old); meta_only["metadata"]["resourceVersion"] = "101"; meta_only["metadata"]["generation"] = 4
meta_only["metadata"]["managedFields"] = [{"manager": "kubectl"}]
annotated = copy.deepcopy(old); annotated["metadata"]["annotations"]["note"] = "hi"
unmanaged = deployment(tracking=False)
unmanaged_scaled = deployment(tracking=False, replicas=5)
copied = deployment(name="cart-copy", tracking="shop:apps/Deployment:prod/cart")
copied_scaled = deployment(name="cart-copy", tracking="shop:apps/Deployment:prod/cart", replicas=9)
label_tracked = deployment(tracking=False, labels={"app.kubernetes.io/instance": "shop"})
label_tracked_scaled = deployment(tracking=False, labels={"app.kubernetes.io/instance": "shop"}, replicas=4)
helm_labelled = deployment(tracking=False, labels={"app.kubernetes.io/instance": "my-release", "app.kubernetes.io/managed-by": "Helm"})
helm_scaled = deployment(tracking=False, labels={"app.kubernetes.io/instance": "my-release", "app.kubernetes.io/managed-by": "Helm"}, replicas=4)
opted = deployment(labels={"app": "cart", "coordination-engine.io/guard": "disabled"})
opted_scaled = deployment(labels={"app": "cart", "coordination-engine.io/guard": "disabled"}, replicas=7)
opt_added = copy.deepcopy(old); opt_added["metadata"]["labels"]["coordination-engine.io/guard"] = "disabled"
other_install = deployment(annotations={"argocd.argoproj.io/installation-id": "other"})
other_install_scaled = deployment(annotations={"argocd.argoproj.io/installation-id": "other"}, replicas=8)

LABEL = {"tracking": "label", "applications": [{"name": "shop", "namespace": "argocd"}]}
IGNORE_REPLICAS = {"applications": [{"name": "shop", "namespace": "argocd", "ignoreDifferences": [
    {"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}]}]}
IGNORE_OTHER_NAME = {"applications": [{"name": "shop", "namespace": "argocd", "ignoreDifferences": [
    {"group": "apps", "kind": "Deployment", "name": "other", "jsonPointers": ["/spec/replicas"]}]}]}
ENGINE = "system:serviceaccount:self-healing-platform:coordination-engine"
def lease(paths, expires=300, uid="uid-cart"):
    return {"leases": [{"incident_id": "inc-1", "object_uid": uid, "paths": paths, "expires_in_seconds": expires}]}

# --- Not managed -------------------------------------------------------------------------
case("update of an unmanaged deployment", review("UPDATE", unmanaged_scaled, unmanaged), "allow", "not_managed")
case("create of an unmanaged deployment", review("CREATE", unmanaged), "allow", "not_managed")
case("delete of an unmanaged deployment", review("DELETE", None, unmanaged), "allow", "not_managed")
case("a copied tracking-id on another object does not make it managed",
     review("UPDATE", copied_scaled, copied, name="cart-copy"), "allow", "not_managed")
case("a tracking-id naming another kind is not this object",
     review("UPDATE", deployment(tracking="shop:apps/StatefulSet:prod/cart", replicas=3),
            deployment(tracking="shop:apps/StatefulSet:prod/cart")), "allow", "not_managed")
case("a tracking-id naming another namespace is not this object",
     review("UPDATE", deployment(tracking="shop:apps/Deployment:staging/cart", replicas=3),
            deployment(tracking="shop:apps/Deployment:staging/cart")), "allow", "not_managed")
case("a malformed tracking-id is not a marker",
     review("UPDATE", deployment(tracking="garbage", replicas=3), deployment(tracking="garbage")), "allow", "not_managed")
case("the Helm instance label alone is not ArgoCD (annotation tracking)",
     review("UPDATE", helm_scaled, helm_labelled), "allow", "not_managed")
case("the instance label with label tracking but no such Application is not ArgoCD",
     review("UPDATE", helm_scaled, helm_labelled), "allow", "not_managed", LABEL)
case("the instance label is ignored under annotation tracking even if the Application exists",
     review("UPDATE", label_tracked_scaled, label_tracked), "allow", "not_managed",
     {"applications": [{"name": "shop", "namespace": "argocd"}]})
case("another ArgoCD installation's object", review("UPDATE", other_install_scaled, other_install), "allow", "not_managed",
     {"installation_id": "ours"})

# --- Managed, manual changes: denied -------------------------------------------------------
case("kubectl edit of replicas on a managed deployment", review("UPDATE", scaled, old), "deny", "manual_change")
case("kubectl set image on a managed deployment", review("UPDATE", new_image, old), "deny", "manual_change")
case("kubectl rollout restart of a managed deployment", review("UPDATE", restarted, old), "deny", "manual_change")
case("an annotation added by hand", review("UPDATE", annotated, old), "deny", "manual_change")
case("kubectl delete of a managed deployment", review("DELETE", None, old), "deny", "manual_change")
case("create of an object that claims to be managed", review("CREATE", old), "deny", "manual_change")
case("label tracking with an existing Application", review("UPDATE", label_tracked_scaled, label_tracked),
     "deny", "manual_change", LABEL)
case("annotation+label tracking recognises the label", review("UPDATE", label_tracked_scaled, label_tracked),
     "deny", "manual_change", {**LABEL, "tracking": "annotation+label"})
case("a server-side dry run is judged like the real request",
     review("UPDATE", scaled, old, dry_run=True), "deny", "manual_change")
case("adding the opt-out label by hand is itself drift", review("UPDATE", opt_added, old), "deny", "manual_change")
case("a user in a non-exempt group", review("UPDATE", scaled, old, groups=["developers"]), "deny", "manual_change")
case("an ArgoCD identity of another namespace is not exempt",
     review("UPDATE", scaled, old, user="system:serviceaccount:team-a:argocd-application-controller"),
     "deny", "manual_change")
case("a configmap with a tracking-id", review("UPDATE",
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "prod", "annotations": {
      "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:prod/settings"}}, "data": {"a": "2"}},
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "prod", "annotations": {
      "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:prod/settings"}}, "data": {"a": "1"}},
     kind=("", "v1", "ConfigMap"), resource=("", "v1", "configmaps"), name="settings"), "deny", "manual_change")
case("ignoreDifferences for another object name does not apply", review("UPDATE", scaled, old),
     "deny", "manual_change", IGNORE_OTHER_NAME)

# --- Exempt identities ---------------------------------------------------------------------
for user in ["system:serviceaccount:argocd:argocd-application-controller",
             "system:serviceaccount:argocd:argocd-server",
             "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-application-controller",
             "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-server"]:
    case(f"sync by {user.split(':')[-1]} in {user.split(':')[2]}", review("UPDATE", new_image, old, user=user),
         "allow", "gitops_identity")
case("garbage collector deletes a managed object", review("DELETE", None, old,
     user="system:serviceaccount:kube-system:generic-garbage-collector"), "allow", "exempt_identity")
case("kube-controller-manager without per-controller credentials", review("UPDATE", scaled, old,
     user="system:kube-controller-manager"), "allow", "exempt_identity")
case("a configured break-glass group", review("UPDATE", scaled, old, groups=["system:authenticated", "break-glass"]),
     "allow", "exempt_identity", {"exempt_groups": ["break-glass"]})
case("a configured exempt user", review("UPDATE", scaled, old, user="oncall-bot"), "allow", "exempt_identity",
     {"exempt_users": ["oncall-bot"]})

# --- Ignored changes -----------------------------------------------------------------------
case("only status changed (main resource)", review("UPDATE", status_only, old), "allow", "ignored_fields_only")
case("only resourceVersion, generation and managedFields changed", review("UPDATE", meta_only, old),
     "allow", "ignored_fields_only")
case("replicas under the Application's ignoreDifferences (HPA)", review("UPDATE", scaled, old),
     "allow", "ignored_fields_only", IGNORE_REPLICAS)
case("ignoreDifferences does not cover the image", review("UPDATE", new_image, old), "deny", "manual_change",
     IGNORE_REPLICAS)
case("an allow-listed annotation", review("UPDATE", annotated, old), "allow", "ignored_fields_only",
     {"annotation_allow_list": ["note"]})
case("status subresource", review("UPDATE", status_only, old, sub="status"), "allow", "status_subresource")

# --- Subresources and other operations -----------------------------------------------------
scale_old = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "cart", "namespace": "prod"},
             "spec": {"replicas": 2}}
scale_new = copy.deepcopy(scale_old); scale_new["spec"]["replicas"] = 6
PARENT = {"parents": [{"group": "apps", "resource": "deployments", "namespace": "prod", "name": "cart",
                       "kind": "Deployment", "metadata": old["metadata"]}]}
SCALE = dict(kind=("autoscaling", "v1", "Scale"), resource=("apps", "v1", "deployments"), sub="scale")
case("kubectl scale of a managed deployment", review("UPDATE", scale_new, scale_old, **SCALE), "deny", "manual_change", PARENT)
case("HPA scaling through the scale subresource",
     review("UPDATE", scale_new, scale_old, user="system:serviceaccount:kube-system:horizontal-pod-autoscaler", **SCALE),
     "allow", "exempt_identity", PARENT)
case("kubectl scale when replicas are in ignoreDifferences", review("UPDATE", scale_new, scale_old, **SCALE),
     "allow", "ignored_fields_only", {**PARENT, **IGNORE_REPLICAS})
case("kubectl scale of an object the metadata cache does not know", review("UPDATE", scale_new, scale_old, **SCALE),
     "allow", "parent_unknown")
case("kubectl exec (CONNECT)", review("CONNECT", {"kind": "PodExecOptions"}, None, kind=("", "v1", "PodExecOptions"),
     resource=("", "v1", "pods"), sub="exec"), "allow", "not_a_change")

# --- Leases ---------------------------------------------------------------------------------
case("the engine under a valid lease for the changed paths", review("UPDATE", restarted, old, user=ENGINE),
     "allow", "remediation_lease", lease(["/spec/template/metadata/annotations"]))
case("the engine with an expired lease", review("UPDATE", restarted, old, user=ENGINE), "deny", "manual_change",
     lease(["/spec/template/metadata/annotations"], expires=-60))
case("the engine with a lease for other paths", review("UPDATE", new_image, old, user=ENGINE), "deny", "manual_change",
     lease(["/spec/template/metadata/annotations"]))
case("the engine with a lease for another object", review("UPDATE", restarted, old, user=ENGINE), "deny", "manual_change",
     lease(["/spec/template/metadata/annotations"], uid="uid-other"))
case("the engine without a lease", review("UPDATE", scaled, old, user=ENGINE), "deny", "manual_change")
case("a lease does not cover a delete", review("DELETE", None, old, user=ENGINE), "deny", "manual_change",
     lease(["/"]))

# --- Modes and opt-out ------------------------------------------------------------------------
case("warn mode allows with a warning", review("UPDATE", scaled, old), "warn", "manual_change", {"mode": "warn"})
case("off mode allows silently", review("UPDATE", scaled, old), "allow", "guard_off", {"mode": "off"})
case("a namespace in warn mode", review("UPDATE", scaled, old), "warn", "manual_change", {"namespace_modes": {"prod": "warn"}})
case("a namespace turned off while the rest enforces", review("UPDATE", scaled, old), "allow", "guard_off",
     {"namespace_modes": {"prod": "off"}})
case("another namespace's warn mode does not apply", review("UPDATE", scaled, old), "deny", "manual_change",
     {"namespace_modes": {"staging": "warn"}})
case("an opted-out namespace", review("UPDATE", scaled, old), "allow", "opted_out", {"disabled_namespaces": ["prod"]})
case("an object opted out in Git", review("UPDATE", opted_scaled, opted), "allow", "opted_out")

json.dump({"cases": cases}, open("webhooks/samples/admission/cases.json", "w"), indent=1)
print(len(cases), "cases")

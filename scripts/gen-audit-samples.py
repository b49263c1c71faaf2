#!/usr/bin/env python3
"""Generates webhooks/samples/audit/*.json: audit.k8s.io/v1 EventLists shaped like the
kube-apiserver's webhook backend sends them. Run from the repository root."""
import copy, json

TRACKING = {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/cart"}

def deployment(replicas=2, image="cart:1.0"):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "prod", "uid": "uid-cart", "resourceVersion": "101",
                         "annotations": dict(TRACKING), "labels": {"app": "cart"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "cart", "image": image}]}}},
            "status": {"replicas": replicas}}

def event(audit_id, verb, user, code=200, level="RequestResponse", resource="deployments", group="apps",
          name="cart", namespace="prod", sub=None, request=None, response=None, uri=None, groups=("system:authenticated",),
          ts="2026-11-23T10:00:00.000000Z"):
    ref = {"resource": resource, "namespace": namespace, "name": name, "apiGroup": group, "apiVersion": "v1"}
    if namespace is None:
        del ref["namespace"]
    if sub:
        ref["subresource"] = sub
    path = f"/apis/{group}/v1" if group else "/api/v1"
    ns = f"/namespaces/{namespace}" if namespace else ""
    e = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": audit_id,
         "stage": "ResponseComplete", "requestURI": uri or f"{path}{ns}/{resource}/{name}" + (f"/{sub}" if sub else ""),
         "verb": verb, "user": {"username": user, "groups": list(groups)}, "sourceIPs": ["10.0.0.5"],
         "userAgent": "kubectl/v1.33.0 (linux/amd64)", "objectRef": ref,
         "responseStatus": {"metadata": {}, "code": code},
         "requestReceivedTimestamp": ts, "stageTimestamp": ts}
    if level == "RequestResponse":
        if request is not None:
            e["requestObject"] = request
        if response is not None:
            e["responseObject"] = response
    return e

def event_list(*events):
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": list(events)}

samples = {
    "kubectl-scale.json": event_list(event("a0000001-0000-0000-0000-000000000001", "patch", "alice",
        request={"spec": {"replicas": 5}}, response=deployment(replicas=5), sub=None)),
    "kubectl-edit.json": event_list(event("a0000001-0000-0000-0000-000000000002", "update", "alice",
        request=deployment(image="cart:2.0"), response=deployment(image="cart:2.0"))),
    "kubectl-delete-metadata-level.json": event_list(event("a0000001-0000-0000-0000-000000000003", "delete", "alice",
        level="Metadata")),
    "argocd-sync.json": event_list(event("a0000001-0000-0000-0000-000000000004", "patch",
        "system:serviceaccount:argocd:argocd-application-controller", request={"spec": {"replicas": 2}},
        response=deployment())),
    "engine-remediation.json": event_list(event("a0000001-0000-0000-0000-000000000005", "patch",
        "system:serviceaccount:self-healing-platform:coordination-engine",
        request={"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T10:00:00Z"}}}}},
        response=deployment(),
        uri="/apis/apps/v1/namespaces/prod/deployments/cart?fieldManager=coordination-engine")),
    "status-update.json": event_list(event("a0000001-0000-0000-0000-000000000006", "update", "alice", sub="status",
        request={"status": {"replicas": 1}}, response=deployment())),
    "unmanaged-patch.json": event_list(event("a0000001-0000-0000-0000-000000000007", "patch", "alice", name="tools",
        request={"spec": {"replicas": 1}},
        response={"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "tools", "namespace": "prod"}})),
    "forbidden-burst.json": event_list(*[event(f"a0000002-0000-0000-0000-00000000000{i}", "get", "mallory", code=403,
        level="Metadata", resource="secrets", group="", name=f"s{i}", ts=f"2026-11-23T10:00:0{i}.000000Z") for i in range(6)]),
    "protected-delete.json": event_list(event("a0000003-0000-0000-0000-000000000001", "delete", "carol",
        resource="applications", group="argoproj.io", name="shop", namespace="argocd", level="Metadata")),
}
for name, body in samples.items():
    json.dump(body, open(f"webhooks/samples/audit/{name}", "w"), indent=1)
print(len(samples), "samples")

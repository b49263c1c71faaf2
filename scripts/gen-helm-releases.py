#!/usr/bin/env python3
"""Writes tests/fixtures/helm/shop-release-secrets.json: the release Secrets helm 3 stores for
a release `shop` in namespace `prod` with three revisions (1 and 2 superseded, 3 deployed),
in helm's storage format: the Secret's `release` key holds base64(gzip(release JSON)) (helm's
own encoding, pkg/storage/driver/util.go), which the Secret's data base64-encodes once more.

Run it from the repository root; the output is committed so tests need no Python."""
import base64, gzip, json

def release(version, status, chart_version, app_version, image):
    manifest = (
        "---\n# Source: shop/templates/deployment.yaml\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop-web\n"
        f"spec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
    return {
        "name": "shop",
        "info": {
            "first_deployed": "2026-11-01T10:00:00Z",
            "last_deployed": f"2026-11-0{version}T10:00:00Z",
            "deleted": "",
            "description": "Install complete" if version == 1 else "Upgrade complete",
            "status": status,
        },
        "chart": {
            "metadata": {"name": "shop", "version": chart_version, "description": "the shop",
                         "apiVersion": "v2", "appVersion": app_version, "type": "application"},
            "lock": None,
            "templates": [{"name": "templates/deployment.yaml",
                           "data": base64.b64encode(b"kind: Deployment").decode()}],
            "values": {"image": image},
            "schema": None,
            "files": None,
        },
        "config": {"replicas": 2},
        "manifest": manifest,
        "version": version,
        "namespace": "prod",
    }

def secret(rel):
    encoded = base64.b64encode(gzip.compress(json.dumps(rel).encode(), mtime=0)).decode()
    v = rel["version"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": f"sh.helm.release.v1.shop.v{v}", "namespace": "prod",
                     "labels": {"name": "shop", "owner": "helm", "status": rel["info"]["status"],
                                "version": str(v), "modifiedAt": "1762000000"}},
        "data": {"release": base64.b64encode(encoded.encode()).decode()},
    }

revisions = [
    release(1, "superseded", "1.0.0", "1.0", "shop:1.0"),
    release(2, "superseded", "1.1.0", "1.1", "shop:1.1"),
    release(3, "deployed", "1.2.0", "1.2", "shop:1.2-broken"),
]
out = {"apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": "7"},
       "items": [secret(r) for r in revisions]}
with open("tests/fixtures/helm/shop-release-secrets.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")

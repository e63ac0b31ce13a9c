"""A broad sample of the sandbox's responses validated against the official Kubernetes schemas.

The schemas are read at run time from ../shared/specs/kubernetes (never copied into the repo);
without them these tests skip. Null values are dropped before validation: the real apiserver
serialises unset metav1.Time fields as null (`lastProbeTime: null`) while the documents do not
mark them nullable, so a real server's output would fail the same check otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from support import sandboxes

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "kubernetes"
pytestmark = pytest.mark.skipif(not SPECS.is_dir(), reason="official specs not available (../shared/specs)")

DOCS = {
    "core": ("v3/api__v1_openapi.json", "components/schemas"),
    "apps": ("v3/apis__apps__v1_openapi.kubectl-testdata.json", "components/schemas"),
    "discovery": ("v3/apis__discovery.k8s.io__v1_openapi.json", "components/schemas"),
    "swagger": ("v2/swagger.json.unprocessed", "definitions"),
}

# (path, schema document, schema name)
SAMPLES = [
    ("/api/v1/nodes", "core", "io.k8s.api.core.v1.NodeList"),
    ("/api/v1/namespaces", "core", "io.k8s.api.core.v1.NamespaceList"),
    ("/api/v1/pods", "core", "io.k8s.api.core.v1.PodList"),
    ("/api/v1/services", "core", "io.k8s.api.core.v1.ServiceList"),
    ("/api/v1/endpoints", "core", "io.k8s.api.core.v1.EndpointsList"),
    ("/api/v1/configmaps", "core", "io.k8s.api.core.v1.ConfigMapList"),
    ("/api/v1/secrets", "core", "io.k8s.api.core.v1.SecretList"),
    ("/api/v1/serviceaccounts", "core", "io.k8s.api.core.v1.ServiceAccountList"),
    ("/api/v1/events", "core", "io.k8s.api.core.v1.EventList"),
    ("/api/v1/namespaces/kube-system/services/kube-dns", "core", "io.k8s.api.core.v1.Service"),
    ("/apis/apps/v1/daemonsets", "apps", "io.k8s.api.apps.v1.DaemonSetList"),
    ("/apis/apps/v1/deployments", "apps", "io.k8s.api.apps.v1.DeploymentList"),
    ("/apis/apps/v1/replicasets", "apps", "io.k8s.api.apps.v1.ReplicaSetList"),
    ("/apis/apps/v1/controllerrevisions", "apps", "io.k8s.api.apps.v1.ControllerRevisionList"),
    ("/apis/apps/v1/statefulsets", "apps", "io.k8s.api.apps.v1.StatefulSetList"),
    ("/apis/apps/v1/namespaces/ingress-nginx/daemonsets/ingress-nginx-controller", "apps", "io.k8s.api.apps.v1.DaemonSet"),
    ("/apis/discovery.k8s.io/v1/endpointslices", "discovery", "io.k8s.api.discovery.v1.EndpointSliceList"),
    ("/apis/networking.k8s.io/v1/ingressclasses", "swagger", "io.k8s.api.networking.v1.IngressClassList"),
    ("/apis/networking.k8s.io/v1/ingresses", "swagger", "io.k8s.api.networking.v1.IngressList"),
    ("/apis/coordination.k8s.io/v1/leases", "swagger", "io.k8s.api.coordination.v1.LeaseList"),
    ("/api/v1", "core", "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"),
    ("/apis/apps/v1", "apps", "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList"),
    ("/apis", "swagger", "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList"),
    ("/api", "swagger", "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions"),
    ("/apis/apps", "swagger", "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup"),
    ("/version", "swagger", "io.k8s.apimachinery.pkg.version.Info"),
    ("/api/v1/namespaces/default/configmaps/does-not-exist", "core", "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
]


def _drop_nulls(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_drop_nulls(x) for x in v]
    return v


@pytest.fixture(scope="module")
def validators():
    registry = Registry()
    roots = {}
    for key, (file, root) in DOCS.items():
        doc = json.loads((SPECS / file).read_text())
        registry = registry.with_resource(f"urn:k8s:{key}", Resource.from_contents(doc, default_specification=DRAFT4))
        roots[key] = root

    def validator(key: str, name: str) -> Draft4Validator:
        return Draft4Validator({"$ref": f"urn:k8s:{key}#/{roots[key]}/{name}"}, registry=registry)

    return validator


@pytest.mark.parametrize(("path", "doc", "schema"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_response_validates_against_the_official_schema(sandbox, validators, path, doc, schema):
    r = sandboxes.raw(sandbox, "GET", path)
    assert r.headers["Content-Type"].startswith("application/json")
    body = json.loads(r.data)
    errors = sorted(validators(doc, schema).iter_errors(_drop_nulls(body)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_error_statuses_validate(sandbox, validators):
    v = validators("core", "io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    bad = [
        sandboxes.raw(sandbox, "POST", "/api/v1/namespaces/default/configmaps", body="{not json", headers={"Content-Type": "application/json"}),
        sandboxes.raw(sandbox, "POST", "/api/v1/namespaces/default/services", headers={"Content-Type": "application/json"},
                      body=json.dumps({"metadata": {"name": "Bad_Name"}, "spec": {"ports": [{"port": 99999}]}})),
        sandboxes.raw(sandbox, "GET", "/api/v1/pods?labelSelector=a%20in%20(", ),
        sandboxes.raw(sandbox, "GET", "/api/v1/pods", token="wrong"),
    ]
    for r in bad:
        body = json.loads(r.data)
        assert body["kind"] == "Status" and body["code"] == r.status
        assert not list(v.iter_errors(_drop_nulls(body)))


def test_discovery_entries_have_the_official_shape(sandbox):
    official = json.loads((SPECS / "discovery" / "apis__apps__v1.json").read_text())
    ours = json.loads(sandboxes.raw(sandbox, "GET", "/apis/apps/v1").data)
    off = {r["name"]: r for r in official["resources"]}
    for r in ours["resources"]:
        o = off.get(r["name"])
        if o is None:
            continue
        assert set(r) == set(o), r["name"]
        assert r["verbs"] == o["verbs"] and r["kind"] == o["kind"] and r.get("shortNames") == o.get("shortNames")


def test_the_check_would_catch_a_wrong_response(sandbox, validators):
    body = json.loads(sandboxes.raw(sandbox, "GET", "/apis/apps/v1/daemonsets").data)
    body["items"][0]["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80"
    body["items"][0]["status"]["numberReady"] = "5"
    errors = list(validators("apps", "io.k8s.api.apps.v1.DaemonSetList").iter_errors(_drop_nulls(body)))
    assert len(errors) == 2

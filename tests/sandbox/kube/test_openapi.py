"""Generated /openapi/v3 documents: valid OpenAPI 3.0, and good enough for what kubectl 1.32 reads.

kubectl reads three things from a group-version document (see the openapi.py docstring):
the `fieldValidation` parameter on the kind's PATCH operations (cli-runtime
query_param_verifier_v3.go), SMP patch metadata from the GVK-tagged component schema (kubectl
apply/patcher.go + apimachinery strategicpatch PatchMetaFromOpenAPIV3), and descriptions for
`kubectl explain` (kubectl explain/v2). The tests below replay those lookups the way the Go code
does them. The comparison tests read the official documents under /work/shared/specs (never
copied into the repo) and are skipped when that directory is absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from keybuzz_tui.sandbox.kube import openapi, registry, schema
from keybuzz_tui.sandbox.kube.registry import ResourceType

SPECS = Path("/work/shared/specs/kubernetes")
OFFICIAL_V3 = {
    "api/v1": SPECS / "v3" / "api__v1_openapi.json",
    "apis/apps/v1": SPECS / "v3" / "apis__apps__v1_openapi.kubectl-testdata.json",
    "apis/discovery.k8s.io/v1": SPECS / "v3" / "apis__discovery.k8s.io__v1_openapi.json",
}
OFFICIAL_V2 = SPECS / "v2" / "swagger.json.unprocessed"
needs_specs = pytest.mark.skipif(not SPECS.is_dir(), reason="official specs not available")

REF = "#/components/schemas/"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PATCH_EXT = (
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
)


def doc(path: str) -> dict[str, Any]:
    data = openapi.openapi_v3_document(path)
    assert data is not None, path
    return json.loads(data)


def gv_path(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def gvk(rt: ResourceType, kind: str | None = None) -> dict[str, str]:
    return {"group": rt.group, "kind": kind or rt.kind, "version": rt.version}


def operations(d: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], list[dict[str, Any]]]]:
    """(path, method, operation, path-level + operation parameters)."""
    for path, item in d["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                yield path, method, op, [*item.get("parameters", []), *op.get("parameters", [])]


def resolve(d: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """strategicpatch.PatchMetaFromOpenAPIV3's resolve(): allOf[0], then $ref."""
    if node.get("allOf"):
        node = node["allOf"][0]
    ref = node.get("$ref")
    if ref:
        node = d["components"]["schemas"][ref[len(REF) :]]
    return node


def lookup(d: dict[str, Any], node: dict[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """PatchMetaFromOpenAPIV3.traverse + resolve: (the property as written, its resolved type).

    kubectl fails the whole v3 patch with "unable to find api field" when the key is missing.
    """
    props = node.get("properties") or {}
    if key not in props:
        raise KeyError(f'unable to find api field "{key}"')
    prop = props[key]
    target = prop["items"] if prop.get("type") == "array" and "items" in prop else prop
    return prop, resolve(d, target)


def kind_schema(d: dict[str, Any], want: dict[str, str]) -> dict[str, Any]:
    """apply/patcher.go buildStrategicMergePatchFromOpenAPIV3: the schema whose GVK array has it."""
    hits = [
        s for s in d["components"]["schemas"].values() if want in s.get("x-kubernetes-group-version-kind", [])
    ]
    assert len(hits) == 1, f"{want}: {len(hits)} schemas carry this GVK (kubectl takes a random one)"
    return hits[0]


# ------------------------------------------------------------------------------------------------
# index, caching, hashes


def test_index_lists_every_document_with_its_hash() -> None:
    index = openapi.openapi_v3_index()
    paths = index["paths"]
    assert set(paths) == set(openapi.document_paths())
    expected = {"api", "apis"} | {gv_path(rt) for rt in registry.all_types()}
    expected |= {f"apis/{rt.group}" for rt in registry.all_types() if rt.group}
    assert set(paths) == expected
    for key, entry in paths.items():
        url = entry["serverRelativeURL"]
        m = re.fullmatch(r"/openapi/v3/(.+)\?hash=([0-9A-F]{128})", url)
        assert m is not None, url
        assert m[1] == key
        body = openapi.openapi_v3_document(key)
        assert body is not None
        assert m[2] == hashlib.sha512(body).hexdigest().upper() == openapi.document_hash(key)
    base = openapi.openapi_v3_index("/prefix")["paths"]["api/v1"]["serverRelativeURL"]
    assert base.startswith("/prefix/openapi/v3/api/v1?hash=")


def test_document_lookup_tolerates_request_paths() -> None:
    body = openapi.openapi_v3_document("apis/apps/v1")
    assert body is not None
    assert openapi.openapi_v3_document("/openapi/v3/apis/apps/v1/") == body
    assert openapi.openapi_v3_document("/apis/apps/v1") == body
    assert openapi.openapi_v3_document("apis/apps/v2") is None
    assert openapi.openapi_v3_document("apis/batch/v1") is None
    assert openapi.document_hash("apis/batch/v1") is None


def test_hashes_are_stable_and_change_only_with_the_document() -> None:
    first = openapi.build()
    again = openapi.build()
    assert first.hashes == again.hashes
    assert first.documents == again.documents
    # a DaemonSet without its status subresource changes apps/v1 and nothing else
    changed = [
        dataclasses.replace(rt, subresources=()) if rt.kind == "DaemonSet" else rt
        for rt in registry.all_types()
    ]
    other = openapi.build(changed)
    assert other.hashes["apis/apps/v1"] != first.hashes["apis/apps/v1"]
    assert {k: v for k, v in other.hashes.items() if k != "apis/apps/v1"} == {
        k: v for k, v in first.hashes.items() if k != "apis/apps/v1"
    }
    assert (
        "/apis/apps/v1/namespaces/{namespace}/daemonsets/{name}/status"
        not in json.loads(other.documents["apis/apps/v1"])["paths"]
    )


def test_generation_is_fast_and_cached() -> None:
    t0 = time.perf_counter()
    openapi.build()
    elapsed = time.perf_counter() - t0
    # about 0.7 s on the dev box (python client models loaded lazily); generous for slow CI
    assert elapsed < 15, f"generating every document took {elapsed:.2f}s"
    openapi.clear_cache()
    openapi.document_paths()
    t1 = time.perf_counter()
    for _ in range(100):
        openapi.openapi_v3_document("api/v1")
        openapi.openapi_v3_index()
    assert time.perf_counter() - t1 < 1.0, "documents must come from the cache"
    assert openapi.openapi_v3_document("api/v1") is openapi.openapi_v3_document("api/v1")


# ------------------------------------------------------------------------------------------------
# OpenAPI 3.0 validity


@pytest.mark.parametrize("key", openapi.document_paths())
def test_documents_are_structurally_valid_openapi_3_0(key: str) -> None:
    """openapi-spec-validator is not installed: check the OpenAPI 3.0 rules kube-openapi relies on
    by hand, and every component schema against the OAS 3.0 schema dialect (draft 4 based)."""
    d = doc(key)
    assert d["openapi"] == "3.0.0"
    assert d["info"]["title"] and d["info"]["version"]
    schemas = d["components"]["schemas"]
    op_ids: list[str] = []
    for path, item in d["paths"].items():
        assert path.startswith("/"), path
        assert set(item) <= {*METHODS, "parameters", "summary", "description", "servers"}, path
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            op_ids.append(op["operationId"])
            assert op["responses"], (path, method)
            for code, resp in op["responses"].items():
                assert re.fullmatch(r"[1-5]\d\d|default", code)
                assert resp["description"]
                for media in resp.get("content", {}).values():
                    assert "schema" in media
            if "requestBody" in op:
                assert op["requestBody"]["content"], (path, method)
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            names = [(p["name"], p["in"]) for p in params]
            assert len(names) == len(set(names)), f"duplicate parameter on {method} {path}"
            for p in params:
                assert p["in"] in ("query", "header", "path", "cookie")
                assert "schema" in p
                if p["in"] == "path":
                    assert p["required"] is True
            templated = set(re.findall(r"{(\w+)}", path))
            assert templated == {n for n, where in names if where == "path"}, (path, method)
    assert len(op_ids) == len(set(op_ids)), "operationIds must be unique"
    text = json.dumps(d)
    for ref in set(re.findall(r'"\$ref": "([^"]+)"', text)):
        assert ref.startswith(REF) and ref[len(REF) :] in schemas, f"dangling {ref}"
    for name, s in schemas.items():
        OAS30Validator.check_schema(s)
        assert s.get("description"), f"{name} has no description (kubectl explain prints it)"


def test_instances_validate_against_the_generated_schemas() -> None:
    """The schemas are real JSON schemas: a KeyBuzz-like DaemonSet passes, a typed mistake fails."""
    d = doc("apis/apps/v1")
    root = {"components": d["components"], "$ref": REF + "io.k8s.api.apps.v1.DaemonSet"}
    validator = OAS30Validator(root)
    good = daemonset_manifest()
    assert list(validator.iter_errors(good)) == []
    bad = json.loads(json.dumps(good))
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    assert any("8080" in e.message for e in validator.iter_errors(bad))
    bad2 = json.loads(json.dumps(good))
    del bad2["spec"]["template"]["spec"]["containers"][0]["name"]
    assert any("'name' is a required property" in e.message for e in validator.iter_errors(bad2))


# ------------------------------------------------------------------------------------------------
# what kubectl reads


@pytest.mark.parametrize("rt", registry.all_types(), ids=lambda rt: rt.kind)
def test_every_kind_has_a_gvk_schema_and_its_paths(rt: ResourceType) -> None:
    d = doc(gv_path(rt))
    s = kind_schema(d, gvk(rt))
    assert {"apiVersion", "kind", "metadata"} <= set(s["properties"])
    root = f"/apis/{rt.group}/{rt.version}" if rt.group else "/api/v1"
    coll = f"{root}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{root}/{rt.plural}"
    item = f"{coll}/{{name}}"
    want = {
        ("list", coll, "get"),
        ("create", coll, "post"),
        ("deletecollection", coll, "delete"),
        ("get", item, "get"),
        ("update", item, "put"),
        ("patch", item, "patch"),
        ("delete", item, "delete"),
    }
    for verb, path, method in want:
        present = method in d["paths"].get(path, {})
        assert present == (verb in rt.verbs), (verb, path)
    if "list" in rt.verbs:
        kind_schema(d, gvk(rt, rt.list_kind))
        if rt.namespaced:
            assert d["paths"][f"{root}/{rt.plural}"]["get"]["x-kubernetes-action"] == "list"
    for sub in rt.subresources:
        if sub in (
            "status",
            "log",
            "scale",
            "finalize",
            "binding",
            "eviction",
            "token",
            "ephemeralcontainers",
        ):
            assert f"{item}/{sub}" in d["paths"], sub
    for path, method, op, params in operations(d):
        if path.endswith("/"):
            continue  # discovery (getXAPIResources) has no GVK, as on a real server
        assert op["x-kubernetes-action"] in (
            "get",
            "list",
            "post",
            "put",
            "patch",
            "delete",
            "deletecollection",
        )
        assert set(op["x-kubernetes-group-version-kind"]) == {"group", "kind", "version"}
        names = {p["name"] for p in params if p["in"] == "query"}
        if method in ("post", "put", "patch"):
            assert {"dryRun", "fieldManager", "fieldValidation"} <= names, (method, path)
        if method == "patch":
            assert "force" in names
        if op["x-kubernetes-action"] == "list":
            assert {"watch", "labelSelector", "fieldSelector", "resourceVersion", "limit"} <= names


@pytest.mark.parametrize(
    "rt", [rt for rt in registry.all_types() if "patch" in rt.verbs], ids=lambda rt: rt.kind
)
def test_fieldvalidation_check_passes_like_cli_runtime(rt: ResourceType) -> None:
    """query_param_verifier_v3.go supportsQueryParamV3: the first PATCH operation (Go map order, so
    any of them) whose x-kubernetes-group-version-kind equals the object's GVK must declare
    `fieldValidation` in the query; patcher.go gvkSupportsPatchOpenAPIV3 then wants SMP accepted."""
    d = doc(gv_path(rt))
    patches = [
        (path, op, params)
        for path, method, op, params in operations(d)
        if method == "patch" and op.get("x-kubernetes-group-version-kind") == gvk(rt)
    ]
    assert patches, "Path not found for GVK in OpenAPI V3 doc"
    for path, op, params in patches:
        assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in params), path
        assert "application/strategic-merge-patch+json" in op["requestBody"]["content"], path
        assert "application/apply-patch+yaml" in op["requestBody"]["content"], path


def daemonset_manifest() -> dict[str, Any]:
    """A DaemonSet shaped like the KeyBuzz ones (hostNetwork API, probes, volumes, tolerations)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "keybuzz-api",
            "namespace": "keybuzz",
            "labels": {"app": "keybuzz-api"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
            "finalizers": ["keybuzz.io/cleanup"],
        },
        "spec": {
            "selector": {"matchLabels": {"app": "keybuzz-api"}},
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "20%", "maxSurge": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "keybuzz-api"}},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "nodeSelector": {"keybuzz.io/role": "worker"},
                    "tolerations": [{"key": "node-role", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "containers": [
                        {
                            "name": "api",
                            "image": "registry.keybuzz.io/api:1.4.2",
                            "args": ["--port=8080"],
                            "ports": [
                                {"containerPort": 8080, "hostPort": 8080, "protocol": "TCP", "name": "http"}
                            ],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            ],
                            "envFrom": [{"secretRef": {"name": "keybuzz-api"}}],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                                "requests": {"cpu": 1},
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "periodSeconds": 5,
                            },
                            "livenessProbe": {"tcpSocket": {"port": 8080}},
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/keybuzz"}],
                            "securityContext": {
                                "runAsUser": 1000,
                                "capabilities": {"add": ["NET_BIND_SERVICE"]},
                            },
                        },
                        {"name": "sidecar", "image": "registry.keybuzz.io/sidecar:1.0"},
                    ],
                    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
                    "volumes": [
                        {
                            "name": "data",
                            "hostPath": {"path": "/var/lib/keybuzz", "type": "DirectoryOrCreate"},
                        },
                        {
                            "name": "cfg",
                            "configMap": {"name": "keybuzz", "items": [{"key": "a", "path": "a"}]},
                        },
                    ],
                    "imagePullSecrets": [{"name": "regcred"}],
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
    }


def walk_manifest(
    d: dict[str, Any], node: dict[str, Any], obj: dict[str, Any], path: str = ""
) -> Iterator[str]:
    """Replay the lookups CreateThreeWayMergePatch makes: LookupPatchMetadataForStruct for every
    map value, ...ForSlice for every list value, recursing into list elements that are maps.
    Yields the paths it looked up (raises KeyError where kubectl would fail)."""
    for key, value in obj.items():
        if not isinstance(value, dict | list):
            continue  # primitives are compared, never looked up
        _, target = lookup(d, node, key)
        yield f"{path}.{key}"
        if isinstance(value, dict):
            if target.get("properties"):
                yield from walk_manifest(d, target, value, f"{path}.{key}")
        else:
            for element in value:
                if isinstance(element, dict):
                    yield from walk_manifest(d, target, element, f"{path}.{key}[]")


def test_kubectl_apply_can_compute_the_patch_from_our_schemas() -> None:
    d = doc("apis/apps/v1")
    ds = kind_schema(d, {"group": "apps", "kind": "DaemonSet", "version": "v1"})
    seen = list(walk_manifest(d, ds, daemonset_manifest()))
    assert ".spec.template.spec.containers[].ports" in seen
    # and the metadata found on the way is the one schema.py gives the SMP engine
    _, spec = lookup(d, ds, "spec")
    _, template = lookup(d, spec, "template")
    _, pod = lookup(d, template, "spec")
    containers, container = lookup(d, pod, "containers")
    assert (containers["x-kubernetes-patch-strategy"], containers["x-kubernetes-patch-merge-key"]) == (
        "merge",
        "name",
    )
    ports, _ = lookup(d, container, "ports")
    assert (ports["x-kubernetes-patch-strategy"], ports["x-kubernetes-patch-merge-key"]) == (
        "merge",
        "containerPort",
    )
    volumes, _ = lookup(d, pod, "volumes")
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    # Deployment strategy: switching type must drop rollingUpdate ($retainKeys), as on a real server
    dep = kind_schema(d, {"group": "apps", "kind": "Deployment", "version": "v1"})
    _, dep_spec = lookup(d, dep, "spec")
    strategy, _ = lookup(d, dep_spec, "strategy")
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"


# Paths where schema.py (keyed by kind + path) has no rule although the type says otherwise: the
# ObjectMeta inside StatefulSet claim templates (list_meta only knows root and pod-template
# metadata). The document follows the type, as the apiserver does; reported to the lead.
KNOWN_PATH_GAPS = {
    ("StatefulSet", ("spec", "volumeClaimTemplates", "metadata", "finalizers")),
    ("StatefulSet", ("spec", "volumeClaimTemplates", "metadata", "ownerReferences")),
}


def list_properties(
    d: dict[str, Any], node: dict[str, Any], path: tuple[str, ...], stack: tuple[int, ...] = ()
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every list property reachable in the document from `node`, with its field path."""
    if id(node) in stack or len(path) > 14:
        return
    for key, prop in (node.get("properties") or {}).items():
        if prop.get("type") == "array":
            yield (*path, key), prop
            target = resolve(d, prop.get("items", {}))
        elif prop.get("type") == "object" and "additionalProperties" in prop:
            continue
        else:
            target = resolve(d, prop)
        if target.get("properties"):
            yield from list_properties(d, target, (*path, key), (*stack, id(node)))


@pytest.mark.parametrize("rt", registry.all_types(), ids=lambda rt: rt.kind)
def test_list_extensions_say_what_schema_py_says(rt: ResourceType) -> None:
    """The document (keyed by type) and schema.py (keyed by kind + path) must agree on every list
    reachable from the kind, or kubectl's client-side patches and our SMP/SSA engines diverge."""
    d = doc(gv_path(rt))
    root = kind_schema(d, gvk(rt))
    checked = 0
    for path, prop in list_properties(d, root, ()):
        if (rt.kind, path) in KNOWN_PATH_GAPS:
            assert schema.list_meta(rt.kind, path) == schema.ATOMIC, (
                f"{path} is fixed: drop it from KNOWN_PATH_GAPS"
            )
            continue
        meta = schema.list_meta(rt.kind, path)
        got_smp = (
            prop.get("x-kubernetes-patch-strategy", "replace"),
            prop.get("x-kubernetes-patch-merge-key"),
        )
        assert got_smp == schema.smp_strategy(rt.kind, path), path
        assert prop.get("x-kubernetes-list-type", "atomic") == meta.ssa_type, path
        assert tuple(prop.get("x-kubernetes-list-map-keys", ())) == (
            meta.keys if meta.ssa_type == "map" else ()
        )
        checked += 1
    assert checked > 0 or rt.kind in (
        "ConfigMap",
        "Secret",
        "Lease",
        "IngressClass",
        "SelfSubjectAccessReview",
    )


def test_no_type_gets_two_answers_from_schema_py() -> None:
    """A document keys list semantics by type; schema.py must say the same at every path a type is
    reached by (the generator records each disagreement)."""
    gaps = {f"{kind} {'.'.join(path)}" for kind, path in KNOWN_PATH_GAPS}
    unexpected = [c for c in openapi.build().list_conflicts if not any(c.endswith(g) for g in gaps)]
    assert unexpected == []


@pytest.mark.parametrize("rt", registry.all_types(), ids=lambda rt: rt.kind)
def test_kubectl_explain_finds_the_kind_and_its_descriptions(rt: ResourceType) -> None:
    """explain/v2 fetches paths[api/v1 | apis/G/V], finds the GVK, prints descriptions."""
    d = doc(gv_path(rt))
    s = kind_schema(d, gvk(rt))
    assert s["description"]
    for name, prop in s["properties"].items():
        assert prop.get("description"), f"{rt.kind}.{name} has no description"


def test_explain_daemonset_containers_path() -> None:
    d = doc("apis/apps/v1")
    node = kind_schema(d, {"group": "apps", "kind": "DaemonSet", "version": "v1"})
    for key in ("spec", "template", "spec", "containers"):
        prop, node = lookup(d, node, key)
    assert prop["type"] == "array" and "container" in prop["description"].lower()
    assert node["description"].startswith("A single application container")
    assert "name" in node["required"]
    image = node["properties"]["image"]
    assert image["type"] == "string" and "image" in image["description"].lower()


def test_scalar_shapes() -> None:
    """The facts the python client loses, restored: int64, IntOrString, Quantity, Time, MicroTime, bytes."""
    core = doc("api/v1")["components"]["schemas"]
    apps = doc("apis/apps/v1")["components"]["schemas"]
    lease = doc("apis/coordination.k8s.io/v1")["components"]["schemas"]
    meta = core["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
    assert meta["generation"] == {**meta["generation"], "type": "integer", "format": "int64"}
    assert meta["creationTimestamp"]["allOf"] == [{"$ref": REF + "io.k8s.apimachinery.pkg.apis.meta.v1.Time"}]
    port = core["io.k8s.api.core.v1.ContainerPort"]["properties"]["containerPort"]
    assert port["format"] == "int32"
    target = core["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["allOf"] == [{"$ref": REF + "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]
    ios = core["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["format"] == "int-or-string" and ios["x-kubernetes-int-or-string"] is True
    assert apps["io.k8s.api.apps.v1.RollingUpdateDaemonSet"]["properties"]["maxUnavailable"]["allOf"][0][
        "$ref"
    ].endswith("IntOrString")
    limits = core["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"$ref": REF + "io.k8s.apimachinery.pkg.api.resource.Quantity"}
    assert core["io.k8s.api.core.v1.Secret"]["properties"]["data"]["additionalProperties"]["format"] == "byte"
    renew = lease["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]["renewTime"]
    assert renew["allOf"] == [{"$ref": REF + "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"}]
    assert apps["io.k8s.api.apps.v1.ControllerRevision"]["properties"]["data"]["allOf"][0]["$ref"].endswith(
        "RawExtension"
    )


def test_subresource_operations() -> None:
    core = doc("api/v1")
    log = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/log"]
    assert log["get"]["x-kubernetes-group-version-kind"] == {"group": "", "kind": "Pod", "version": "v1"}
    assert {"container", "follow", "previous", "tailLines", "timestamps"} <= {
        p["name"] for p in log["parameters"]
    }
    assert "text/plain" in log["get"]["responses"]["200"]["content"]
    status = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/status"]
    assert set(status) == {"get", "put", "patch", "parameters"}
    apps = doc("apis/apps/v1")
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    kind_schema(apps, {"group": "autoscaling", "kind": "Scale", "version": "v1"})
    ns = core["paths"]["/api/v1/namespaces/{name}/finalize"]
    assert set(ns) == {"put", "parameters"}


# ------------------------------------------------------------------------------------------------
# comparison with the official documents (read for comparison only)

# Official fields the python client (release-1.37) no longer has.
REMOVED_UPSTREAM = {("io.k8s.api.core.v1.PodResourceClaim", "source")}  # ClaimSource, removed in 1.31
# Renamed upstream since the fixture was generated (1.29 split VolumeResourceRequirements out).
RENAMED_REFS = {("io.k8s.api.core.v1.PersistentVolumeClaimSpec", "resources")}
# Official list extensions at locations schema.py has no rule for (a kind branch would be needed,
# not just a row): reported to the lead, kept visible here.
SCHEMA_PY_GAPS = {
    ("io.k8s.api.core.v1.ServiceAccount", "secrets"),  # SMP merge on name
    ("io.k8s.api.core.v1.PersistentVolumeClaimStatus", "conditions"),  # only in StatefulSet claim templates
    ("io.k8s.api.discovery.v1.Endpoint", "addresses"),  # list-type set (SSA only)
}


def official_schemas() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(our document key, our schemas, official schemas) for every official file we can compare."""
    for key, path in OFFICIAL_V3.items():
        yield key, doc(key)["components"]["schemas"], json.loads(path.read_text())["components"]["schemas"]
    v2 = json.loads(OFFICIAL_V2.read_text())["definitions"]
    for key in ("apis/networking.k8s.io/v1", "apis/coordination.k8s.io/v1", "apis/authorization.k8s.io/v1"):
        yield key, doc(key)["components"]["schemas"], v2


def ref_targets(prop: dict[str, Any]) -> set[str]:
    return {r.rsplit("/", 1)[-1] for r in re.findall(r'"\$ref": "([^"]+)"', json.dumps(prop))}


@needs_specs
def test_schema_names_and_properties_match_the_official_documents() -> None:
    compared = 0
    for key, ours, official in official_schemas():
        for name in sorted(set(ours) & set(official)):
            o, f = ours[name], official[name]
            missing = {p for p in f.get("properties", {}) if p not in o.get("properties", {})}
            missing -= {p for n, p in REMOVED_UPSTREAM if n == name}
            assert not missing, f"{key}: {name} lacks {missing}"
            for p in set(o.get("properties", {})) & set(f.get("properties", {})):
                a, c = o["properties"][p], f["properties"][p]
                assert a.get("type") == c.get("type"), (name, p)
                fa = a.get("format") or a.get("items", {}).get("format")
                fc = c.get("format") or c.get("items", {}).get("format")
                assert fa == fc, (name, p, fa, fc)
                if (name, p) not in RENAMED_REFS:
                    assert ref_targets(a) == ref_targets(c), (name, p)
            if "x-kubernetes-group-version-kind" in o and name.rsplit(".", 1)[-1] not in (
                "Status",
                "DeleteOptions",
            ):
                assert o["x-kubernetes-group-version-kind"] == f.get("x-kubernetes-group-version-kind"), name
            compared += 1
    assert compared > 250


@needs_specs
def test_patch_and_list_extensions_match_the_official_documents() -> None:
    agreed = 0
    for key, ours, official in official_schemas():
        for name in sorted(set(ours) & set(official)):
            for p, c in official[name].get("properties", {}).items():
                a = ours[name].get("properties", {}).get(p)
                if a is None or c.get("type") in ("string", "integer", "number", "boolean"):
                    continue  # scalars with leftover Go tags (LabelSelectorRequirement.key) do nothing
                for ext in PATCH_EXT:
                    if ext not in c or (
                        ext == "x-kubernetes-list-type" and c[ext] == "atomic" and ext not in a
                    ):
                        continue  # absent list-type means atomic too
                    if (name, p) in SCHEMA_PY_GAPS:
                        assert ext not in a, f"{name}.{p} is fixed now: drop it from SCHEMA_PY_GAPS"
                        continue
                    assert a.get(ext) == c[ext], (
                        f"{key}: {name}.{p} {ext}: ours {a.get(ext)} official {c[ext]}"
                    )
                    agreed += 1
                for ext in PATCH_EXT:
                    # where we add an extension the fixture lacks (newer upstream markers), it must
                    # still agree with the one the fixture has next to it
                    if ext in a and ext in c:
                        assert a[ext] == c[ext], (name, p, ext)
    assert agreed > 50


@needs_specs
def test_paths_match_the_official_documents() -> None:
    for key, path in OFFICIAL_V3.items():
        ours = doc(key)["paths"]
        official = json.loads(path.read_text())["paths"]
        assert set(ours) <= set(official), set(ours) - set(official)
        for p, item in ours.items():
            assert {m for m in METHODS if m in item} == {m for m in METHODS if m in official[p]}, p
            for m in METHODS:
                if m not in item:
                    continue
                a, c = item[m], official[p][m]
                for k in ("operationId", "x-kubernetes-action", "x-kubernetes-group-version-kind"):
                    assert a.get(k) == c.get(k), (p, m, k)
                names_a = {x["name"] for x in [*item.get("parameters", []), *a.get("parameters", [])]}
                names_c = {x["name"] for x in [*official[p].get("parameters", []), *c.get("parameters", [])]}
                assert names_c <= names_a, (p, m, names_c - names_a)
                assert set(a.get("requestBody", {}).get("content", {})) == set(
                    c.get("requestBody", {}).get("content", {})
                ), (p, m)
                assert set(a["responses"]) == set(c["responses"]), (p, m)

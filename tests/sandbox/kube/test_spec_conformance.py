"""A broad sample of the sandbox's responses validated against the official Kubernetes schemas.

The schemas are read at run time from ../shared/specs/kubernetes (never copied into the repo);
without them these tests skip. Null values are dropped before validation: the real apiserver
serialises unset metav1.Time fields as null (`lastProbeTime: null`) while the documents do not
mark them nullable, so a real server's output would fail the same check otherwise.
"""

from __future__ import annotations

import json
import textwrap
import time
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


# --- failure states: what the wizard's board reads when something is wrong -------------------

NS = "states"
FAILURES = """\
    extends: port-taken
    name: failure-states
    registry:
      missing: ["ghcr.io/keybuzz/missing:*"]
    """


def _wait(pred, what: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = pred()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _get(sb, path: str) -> dict[str, Any]:
    r = sandboxes.raw(sb, "GET", path)
    assert r.status == 200, (path, r.status, r.data[:300])
    return json.loads(r.data)


def _post(sb, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = sandboxes.raw(sb, "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    return r.status, json.loads(r.data)


@pytest.fixture(scope="module")
def failures(tmp_path_factory):
    """A port-taken world with a missing image: a crash-looping pod, one in ImagePullBackOff, an
    unschedulable one with its event, a Lease, a SelfSubjectAccessReview, and the watch of it all."""
    d = tmp_path_factory.mktemp("failure-states")
    scenario = d / "failure-states.yaml"
    scenario.write_text(textwrap.dedent(FAILURES))
    sb = sandboxes.start(d / "state", str(scenario))
    try:
        assert _post(sb, "/api/v1/namespaces", {"metadata": {"name": NS}})[0] == 201
        rv = _get(sb, f"/api/v1/namespaces/{NS}/pods")["metadata"]["resourceVersion"]
        ds = {
            "metadata": {"name": "api"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"hostNetwork": True, "dnsPolicy": "Default", "nodeSelector": {"keybuzz.io/pool": "workers"},
                             "containers": [{"name": "api", "image": "ghcr.io/keybuzz/api:1.4.2", "ports": [{"containerPort": 8080}]}]},
                },
            },
        }
        assert _post(sb, f"/apis/apps/v1/namespaces/{NS}/daemonsets", ds)[0] == 201
        pull = {"metadata": {"name": "pull"}, "spec": {"containers": [{"name": "c", "image": "ghcr.io/keybuzz/missing:1.0"}]}}
        stuck = {"metadata": {"name": "stuck"}, "spec": {"nodeSelector": {"keybuzz.io/pool": "nowhere"}, "containers": [{"name": "c", "image": "nginx:1.27"}]}}
        for pod in (pull, stuck):
            assert _post(sb, f"/api/v1/namespaces/{NS}/pods", pod)[0] == 201

        def waiting(pod: dict[str, Any], reason: str) -> bool:
            return any(((c.get("state") or {}).get("waiting") or {}).get("reason") == reason for c in pod["status"].get("containerStatuses") or [])

        def crashing():
            pods = _get(sb, f"/api/v1/namespaces/{NS}/pods?labelSelector=app%3Dapi&fieldSelector=spec.nodeName%3Dk3s-worker-03")["items"]
            return next((p for p in pods if waiting(p, "CrashLoopBackOff") and p["status"]["containerStatuses"][0].get("lastState", {}).get("terminated")), None)

        samples: dict[str, tuple[dict[str, Any], str, str]] = {}
        samples["pod in CrashLoopBackOff"] = (_wait(crashing, "CrashLoopBackOff"), "core", "io.k8s.api.core.v1.Pod")
        def pulling():
            pod = _get(sb, f"/api/v1/namespaces/{NS}/pods/pull")
            return pod if waiting(pod, "ImagePullBackOff") else None

        samples["pod in ImagePullBackOff"] = (_wait(pulling, "ImagePullBackOff"), "core", "io.k8s.api.core.v1.Pod")
        samples["unschedulable pod"] = (_get(sb, f"/api/v1/namespaces/{NS}/pods/stuck"), "core", "io.k8s.api.core.v1.Pod")
        events = _wait(lambda: _get(sb, f"/api/v1/namespaces/{NS}/events?fieldSelector=reason%3DFailedScheduling")["items"], "FailedScheduling")
        samples["FailedScheduling event"] = (events[0], "core", "io.k8s.api.core.v1.Event")
        samples["event list with failures"] = (_get(sb, f"/api/v1/namespaces/{NS}/events"), "core", "io.k8s.api.core.v1.EventList")
        now = "2026-01-01T00:00:00.000000Z"
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "keybuzz-wizard"},
                 "spec": {"holderIdentity": "wizard-1", "leaseDurationSeconds": 15, "acquireTime": now, "renewTime": now, "leaseTransitions": 0}}
        status, created = _post(sb, f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", lease)
        assert status == 201
        samples["created Lease"] = (created, "swagger", "io.k8s.api.coordination.v1.Lease")
        samples["Lease"] = (_get(sb, f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/keybuzz-wizard"), "swagger", "io.k8s.api.coordination.v1.Lease")
        for verb, allowed in (("create", True), ("escalate", True)):
            status, review = _post(sb, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": {"verb": verb, "group": "apps", "resource": "daemonsets", "namespace": NS}},
            })
            assert status == 201 and review["status"]["allowed"] is allowed
            samples[f"SelfSubjectAccessReview ({verb})"] = (review, "swagger", "io.k8s.api.authorization.v1.SelfSubjectAccessReview")
        watched = sandboxes.raw(sb, "GET", f"/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true", timeout=15)
        expired = sandboxes.raw(sb, "GET", f"/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion=1&timeoutSeconds=1", timeout=15)
        yield {"samples": samples, "watch": watched.data.splitlines(), "expired": expired.data.splitlines()}
    finally:
        sb.stop()


FAILURE_SAMPLES = [
    "pod in CrashLoopBackOff", "pod in ImagePullBackOff", "unschedulable pod", "FailedScheduling event",
    "event list with failures", "created Lease", "Lease", "SelfSubjectAccessReview (create)",
    "SelfSubjectAccessReview (escalate)",
]


@pytest.mark.parametrize("name", FAILURE_SAMPLES)
def test_failure_states_validate_against_the_official_schema(failures, validators, name):
    body, doc, schema = failures["samples"][name]
    errors = sorted(validators(doc, schema).iter_errors(_drop_nulls(body)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_the_failure_samples_are_what_they_claim(failures):
    s = failures["samples"]
    crash = s["pod in CrashLoopBackOff"][0]["status"]["containerStatuses"][0]
    assert crash["state"]["waiting"]["reason"] == "CrashLoopBackOff" and crash["restartCount"] >= 1
    assert crash["lastState"]["terminated"]["exitCode"] == 1 and crash["lastState"]["terminated"]["reason"] == "Error"
    pull = s["pod in ImagePullBackOff"][0]["status"]
    assert pull["phase"] == "Pending" and pull["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    stuck = s["unschedulable pod"][0]
    assert stuck["status"]["phase"] == "Pending" and "nodeName" not in stuck["spec"]
    cond = next(c for c in stuck["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
    ev = s["FailedScheduling event"][0]
    assert ev["type"] == "Warning" and ev["involvedObject"]["name"] == "stuck" and ev["message"].startswith("0/8 nodes are available")
    assert s["Lease"][0]["spec"]["holderIdentity"] == "wizard-1"


def test_watch_events_validate_as_watch_events_of_their_kind(failures, validators):
    envelope = validators("core", "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent")
    pod = validators("core", "io.k8s.api.core.v1.Pod")
    status = validators("core", "io.k8s.apimachinery.pkg.apis.meta.v1.Status")
    types = []
    for line in failures["watch"]:
        ev = json.loads(line)
        types.append(ev["type"])
        assert not list(envelope.iter_errors(ev))
        assert set(ev) == {"type", "object"} and ev["type"] in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")
        errors = list(pod.iter_errors(_drop_nulls(ev["object"])))
        assert not errors, "\n".join(f"{ev['type']} {list(e.path)}: {e.message}" for e in errors[:5])
        assert ev["object"]["kind"] == "Pod" and ev["object"]["metadata"]["resourceVersion"]
    assert types.count("ADDED") >= 7 and "MODIFIED" in types  # 5 DaemonSet pods, pull, stuck; then their lives
    [line] = failures["expired"]
    ev = json.loads(line)
    assert ev["type"] == "ERROR" and not list(envelope.iter_errors(ev))
    assert not list(status.iter_errors(_drop_nulls(ev["object"])))
    assert (ev["object"]["code"], ev["object"]["reason"]) == (410, "Expired")

"""Aggregated discovery is declined as a server without it declines it (apimachinery negotiation
with DefaultEndpointRestrictions), and kubectl 1.32 falls back to legacy discovery."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from support import sandboxes

AGG_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGG_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
KUBECTL_132 = f"{AGG_V2},{AGG_V2BETA1},application/json"  # what kubectl 1.32.4 sends (-v=8)
DISCOVERY = ["/api", "/apis", "/api/v1", "/apis/apps", "/apis/apps/v1", "/apis/networking.k8s.io/v1"]


def get(sb, path: str, accept: str | None):
    headers = {} if accept is None else {"Accept": accept}
    r = sandboxes.raw(sb, "GET", path, headers=headers)
    return r, json.loads(r.data)


@pytest.mark.parametrize("path", DISCOVERY)
def test_kubectls_accept_gets_the_plain_document(sandbox, path):
    plain, plain_body = get(sandbox, path, "application/json")
    r, body = get(sandbox, path, KUBECTL_132)
    assert r.status == 200
    # exactly application/json: client-go compares the type and its g/v/as parameters to
    # decide whether the reply is aggregated; this one must read as legacy
    assert r.headers["Content-Type"] == "application/json"
    assert body == plain_body
    assert body["kind"] in ("APIVersions", "APIGroupList", "APIResourceList", "APIGroup")
    assert "items" not in body  # an APIGroupDiscoveryList would carry items


@pytest.mark.parametrize("accept", [AGG_V2, f"{AGG_V2},{AGG_V2BETA1}", "application/json;as=Table;g=meta.k8s.io;v=v1", "text/html", "application/vnd.kubernetes.protobuf"])
@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps/v1"])
def test_a_client_accepting_only_what_the_server_cannot_send_gets_406(sandbox, path, accept):
    r, body = get(sandbox, path, accept)
    assert r.status == 406
    assert body["kind"] == "Status" and body["reason"] == "NotAcceptable" and body["code"] == 406
    assert body["message"].startswith("only the following media types are accepted: application/json")


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/*", "application/json, */*", f"{AGG_V2};q=1,*/*;q=0.5", "application/yaml"])
def test_ordinary_accept_headers_get_the_group_list(sandbox, accept):
    r, body = get(sandbox, "/apis", accept)
    assert r.status == 200 and body["kind"] == "APIGroupList"
    assert {g["name"] for g in body["groups"]} >= {"apps", "networking.k8s.io", "discovery.k8s.io", "coordination.k8s.io", "authorization.k8s.io"}


def test_resources_are_not_negotiated_as_discovery(sandbox):
    """The 406 is for discovery documents only: a list under /api/v1 still serves a Table."""
    r = sandboxes.raw(sandbox, "GET", "/api/v1/nodes", headers={"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"})
    assert r.status == 200 and json.loads(r.data)["kind"] == "Table"


@pytest.mark.kubectl
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_api_resources_uses_the_legacy_fallback(sandbox, tmp_path):
    r = subprocess.run(
        ["kubectl", f"--kubeconfig={sandbox.kubeconfig_path}", f"--cache-dir={tmp_path}", "--request-timeout=20s", "api-resources", "-v=6"],
        capture_output=True, text=True, timeout=90,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {}
    for line in r.stdout.splitlines()[1:]:
        cols = line.split()
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        rows[cols[0]] = (cols[-3], cols[-2], cols[-1])
    assert rows["pods"] == ("v1", "true", "Pod")
    assert rows["nodes"] == ("v1", "false", "Node")
    assert rows["daemonsets"] == ("apps/v1", "true", "DaemonSet")
    assert rows["endpointslices"] == ("discovery.k8s.io/v1", "true", "EndpointSlice")
    assert rows["ingresses"] == ("networking.k8s.io/v1", "true", "Ingress")
    assert rows["leases"] == ("coordination.k8s.io/v1", "true", "Lease")
    assert rows["selfsubjectaccessreviews"] == ("authorization.k8s.io/v1", "false", "SelfSubjectAccessReview")
    # the legacy path: one GET per group-version after /api and /apis (aggregated discovery
    # would have answered everything in /api and /apis)
    gets = set(re.findall(r"GET https://[^/]+(/[^?\s]*)\S* 200 OK", r.stderr))
    assert {"/api", "/apis", "/api/v1", "/apis/apps/v1", "/apis/networking.k8s.io/v1", "/apis/coordination.k8s.io/v1"} <= gets, gets

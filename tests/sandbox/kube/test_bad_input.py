"""Whatever a client sends, the sandbox answers a 4xx Status with a clear message and keeps serving."""

from __future__ import annotations

import json
import socket
import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import sandboxes

JSON = {"Content-Type": "application/json"}


def status(r) -> dict:
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = json.loads(r.data)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == r.status
    assert body["message"]
    return body


def still_serving(sb) -> None:
    assert sandboxes.raw(sb, "GET", "/api/v1/namespaces/default").status == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "code", "text"),
    [
        ("POST", "/api/v1/namespaces/default/configmaps", "{not json", JSON, 400, "json parse error"),
        ("POST", "/api/v1/namespaces/default/configmaps", "a: [b", {"Content-Type": "application/yaml"}, 400, "error converting YAML to JSON"),
        ("POST", "/api/v1/namespaces/default/configmaps", "", JSON, 400, "empty"),
        ("POST", "/api/v1/namespaces/default/configmaps", "[1,2]", JSON, 400, "ConfigMap"),
        ("POST", "/api/v1/namespaces/default/configmaps", json.dumps({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "x"}}), JSON, 400, "does not match the expected kind"),
        ("POST", "/api/v1/namespaces/default/configmaps", json.dumps({"metadata": {"name": "x"}}), {"Content-Type": "application/vnd.kubernetes.protobuf"}, 415, "unknown format"),
        ("PATCH", "/api/v1/namespaces/default/configmaps/kube-root", "{}", {"Content-Type": "text/plain"}, 415, "accepted media types"),
        ("GET", "/api/v1/widgets", None, {}, 404, "could not find the requested resource"),
        ("GET", "/apis/example.com/v1/things", None, {}, 404, "could not find the requested resource"),
        ("GET", "/api/v1/namespaces/default/pods/x/exec", None, {}, 404, "could not find"),
        ("GET", "/api/v1/pods?labelSelector=app%20in%20(a", None, {}, 400, "unable to parse requirement"),
        ("GET", "/api/v1/pods?labelSelector=%21%21", None, {}, 400, ""),
        ("GET", "/api/v1/pods?fieldSelector=spec.unknown%3Dx", None, {}, 400, "field label not supported"),
        ("GET", "/api/v1/pods?limit=abc", None, {}, 400, "invalid value for limit"),
        ("GET", "/api/v1/pods?continue=!!!garbage", None, {}, 400, "continue key is not valid"),
        ("GET", "/api/v1/pods?watch=1&resourceVersion=abc", None, {}, 400, "invalid resource version"),
        ("PUT", "/api/v1/namespaces/default/configmaps/nope", json.dumps({"metadata": {"name": "nope"}}), JSON, 404, "not found"),
        ("DELETE", "/api/v1/namespaces/default/configmaps/x", "{bad", JSON, 400, "json parse error"),
        ("POST", "/api/v1/namespaces/no-such-ns/configmaps", json.dumps({"metadata": {"name": "x"}}), JSON, 404, 'namespaces "no-such-ns" not found'),
    ],
)
def test_bad_requests_get_a_clear_4xx(sandbox, method, path, body, headers, code, text):
    r = sandboxes.raw(sandbox, method, path, body=body, headers=headers)
    assert r.status == code, r.data
    assert text.lower() in status(r)["message"].lower()
    still_serving(sandbox)


def test_validation_errors_are_422_with_every_cause(sandbox):
    svc = {"metadata": {"name": "Bad_Name"}, "spec": {"type": "NodePort", "ports": [{"port": 99999, "nodePort": 40000}]}}
    r = sandboxes.raw(sandbox, "POST", "/api/v1/namespaces/default/services", body=json.dumps(svc), headers=JSON)
    assert r.status == 422
    body = status(r)
    assert body["reason"] == "Invalid" and body["message"].startswith('Service "Bad_Name" is invalid: [')
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"metadata.name", "spec.ports[0].port"} <= fields


def test_hostnetwork_hostport_must_match_container_port(sandbox):
    ds = {
        "metadata": {"name": "api", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"hostNetwork": True, "containers": [
                {"name": "api", "image": "ghcr.io/keybuzz/api:1.4.2", "ports": [{"containerPort": 8080, "hostPort": 8081}]}]}},
        },
    }
    r = sandboxes.raw(sandbox, "POST", "/apis/apps/v1/namespaces/default/daemonsets", body=json.dumps(ds), headers=JSON)
    assert r.status == 422
    assert status(r)["message"] == (
        'DaemonSet.apps "api" is invalid: spec.template.spec.containers[0].ports[0].hostPort: '
        "Invalid value: 8081: must match `containerPort` when `hostNetwork` is true"
    )


def test_oversized_bodies_are_413(sandbox):
    big = json.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * (3 * 1024 * 1024 + 10)}})
    r = sandboxes.raw(sandbox, "POST", "/api/v1/namespaces/default/configmaps", body=big, headers=JSON, timeout=30)
    assert r.status == 413
    assert "Request entity too large" in status(r)["message"]
    still_serving(sandbox)


def test_garbage_and_idle_tls_clients_do_not_hurt_the_server(sandbox):
    host, port = sandbox.kube_url.removeprefix("https://").rsplit(":", 1)
    for payload in (b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(payload)
            try:
                s.recv(100)
            except OSError:
                pass
    idle = socket.create_connection((host, int(port)), timeout=2)
    ctx = ssl.create_default_context(cafile=str(sandbox.ca_path))
    tls = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=2), server_hostname=host)
    tls.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
    still_serving(sandbox)
    idle.close()
    tls.close()
    still_serving(sandbox)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25,
)
k8s_like = st.fixed_dictionaries(
    {"metadata": st.one_of(json_values, st.fixed_dictionaries({"name": st.text(max_size=30)}, optional={"labels": json_values}))},
    optional={"spec": json_values, "data": json_values, "kind": st.text(max_size=10), "apiVersion": st.text(max_size=10)},
)


@pytest.fixture(scope="module")
def fuzz_ns(sandbox):
    sandboxes.raw(sandbox, "POST", "/api/v1/namespaces", body=json.dumps({"metadata": {"name": "fuzz"}}), headers=JSON)
    return "fuzz"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=st.one_of(json_values, k8s_like), kind=st.sampled_from([
    "api/v1/namespaces/fuzz/configmaps", "api/v1/namespaces/fuzz/services", "api/v1/namespaces/fuzz/pods",
    "apis/apps/v1/namespaces/fuzz/daemonsets", "apis/networking.k8s.io/v1/namespaces/fuzz/ingresses",
    "apis/apps/v1/namespaces/fuzz/deployments", "api/v1/namespaces/fuzz/secrets",
]), dry=st.booleans())
def test_random_bodies_never_cause_a_5xx_nor_break_a_controller(sandbox, fuzz_ns, body, kind, dry):
    r = sandboxes.raw(sandbox, "POST", f"/{kind}" + ("?dryRun=All" if dry else ""), body=json.dumps(body), headers=JSON)
    assert r.status < 500, r.data[:500]
    # objects that were accepted for real are now reconciled: no controller may choke on them
    sandbox.call(lambda: None)
    assert sandbox.cluster.manager.errors == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(patch=json_values, ctype=st.sampled_from(["application/merge-patch+json", "application/strategic-merge-patch+json", "application/json-patch+json", "application/apply-patch+yaml"]))
def test_random_patches_never_cause_a_5xx(sandbox, patch, ctype):
    r = sandboxes.raw(
        sandbox, "PATCH", "/apis/apps/v1/namespaces/ingress-nginx/daemonsets/ingress-nginx-controller?dryRun=All&fieldManager=fuzz",
        body=json.dumps(patch), headers={"Content-Type": ctype},
    )
    # (the real apiserver answers a few malformed strategic-merge directives with a raw 500; the
    # sandbox answers them 400 with the same Go text)
    assert r.status < 500, r.data[:300]
    if r.status >= 400:
        assert json.loads(r.data)["kind"] == "Status"

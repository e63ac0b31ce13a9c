"""Scenario port-taken: an old nginx really holds 127.N.10.112:8080, so the API container's bind
really fails (EADDRINUSE) and the pod goes to CrashLoopBackOff; removing the process fixes it."""

from __future__ import annotations

import errno
import json
import socket

import pytest
from kubernetes import client
from sandbox.dataplane import harness as h

NS = "keybuzz"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    sb = h.start(tmp_path_factory.mktemp("dp-port-taken"), "port-taken")
    yield sb
    sb.stop()


def _api_pod_on(sb, node: str):
    return next((p for p in h.pods(sb, NS, "app=keybuzz-api") if p.spec.node_name == node), None)


def test_the_host_process_is_a_real_listener(sb):
    ip = h.node_ip(sb, "k3s-worker-03")
    r = h.get(ip, 8080, "/")
    assert r.status == 404 and r.headers["Server"] == "nginx/1.18.0 (Ubuntu)"
    assert b"<hr><center>nginx/1.18.0 (Ubuntu)</center>" in r.data
    with socket.socket() as s, pytest.raises(OSError) as e:
        s.bind((ip, 8080))
    assert e.value.errno == errno.EADDRINUSE
    rows = sb.call(sb.dataplane.listening, "k3s-worker-03")
    assert any(port == 8080 and holder.command.startswith("nginx: master process") for _ip, port, _p, holder in rows)


def test_the_api_container_crashes_on_the_real_bind_failure(sb):
    h.create(sb, h.keybuzz_hostnetwork())

    def crashing():
        p = _api_pod_on(sb, "k3s-worker-03")
        cs = (p.status.container_statuses or []) if p else []
        return p if cs and cs[0].state.waiting and cs[0].state.waiting.reason == "CrashLoopBackOff" else None

    pod = h.wait_for(crashing, what="CrashLoopBackOff on k3s-worker-03")
    st = pod.status.container_statuses[0]
    assert st.restart_count >= 1 and st.last_state.terminated.exit_code == 1 and not st.ready
    api = sb.kube_client()
    prev = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, NS, previous=True)
    api.close()
    assert "FATAL listen tcp 0.0.0.0:8080: bind: address already in use" in prev
    # the other four bound for real and answer; the old nginx still answers on worker-03
    for w in h.WORKERS:
        ip = h.node_ip(sb, w)
        if w == "k3s-worker-03":
            assert h.get(ip, 8080, "/").status == 404
        else:
            h.wait_for(lambda ip=ip: h.get(ip, 8080, "/healthz").status == 200, what=f"api on {w}")
    # the NodePort (Cluster policy) only forwards to ready endpoints: never the old nginx
    for _ in range(8):
        assert h.get(h.node_ip(sb, "k3s-worker-03"), 30080, "/").status == 200


def test_stopping_the_process_lets_the_container_bind(sb):
    sb.call(sb.dataplane.remove_host_process, "k3s-worker-03", 8080)
    pod = h.wait_for(lambda: (lambda p: p if p is not None and h.ready(p) else None)(_api_pod_on(sb, "k3s-worker-03")), timeout=30, what="api ready on worker-03")
    body = json.loads(h.get(h.node_ip(sb, "k3s-worker-03"), 8080, "/").data)
    assert body["pod"] == pod.metadata.name and body["node"] == "k3s-worker-03"

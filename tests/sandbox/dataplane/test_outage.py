"""Scenario vxlan-blocked: the production outage and its fix, side by side in one world.

The ClusterIP-style install (Deployment pods on the overlay, one replica pinned to worker-01)
answers 504 through any other worker's 31695, after ingress-nginx's connect timeout, while the
hostNetwork DaemonSets answer 200 everywhere because their endpoints are node IPs.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client
from sandbox.dataplane import harness as h

OLD = "keybuzz-old"


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    sb = h.start(tmp_path_factory.mktemp("dp-vxlan"), "vxlan-blocked")
    h.create(sb, h.keybuzz_hostnetwork())
    h.create(sb, h.keybuzz_clusterip("k3s-worker-01", OLD))
    h.wait_ready(sb, "keybuzz", "app=keybuzz-api", 5)
    h.wait_ready(sb, "keybuzz", "app=keybuzz-front", 5)
    h.wait_ready(sb, OLD, "app=keybuzz-api", 1)
    h.wait_ready(sb, OLD, "app=keybuzz-front", 1)
    yield sb
    sb.stop()


def test_scenario_is_recorded(sb):
    assert sb.scenario.overlay == "blocked" and sb.dataplane.overlay_ok is False
    assert json.loads(sb.info_path.read_text())["dataplane"] == "enabled (8 nodes)"


def test_clusterip_install_gives_504_from_other_nodes_after_the_connect_timeout(sb):
    ip = h.node_ip(sb, "k3s-worker-03")
    t0 = time.monotonic()
    r = h.get(ip, 31695, "/", host="old-api.keybuzz.io")
    took = time.monotonic() - t0
    assert r.status == 504 and r.reason == "Gateway Time-out"
    assert b"<title>504 Gateway Time-out</title>" in r.data and r.headers["Server"] == "nginx"
    assert 5 / h.sandboxes.TEST_SPEED * 0.8 <= took < 3.0  # proxy-connect-timeout 5 s on the sandbox clock
    pod = next(p for p in h.pods(sb, "ingress-nginx") if p.spec.node_name == "k3s-worker-03")
    api = sb.kube_client()
    log = client.CoreV1Api(api).read_namespaced_pod_log(pod.metadata.name, "ingress-nginx")
    api.close()
    assert "upstream timed out (110: Operation timed out) while connecting to upstream, client: 127.0.0.1, server: old-api.keybuzz.io" in log
    assert "[keybuzz-old-keybuzz-api-8080]" in log and " 504 " in log


def test_same_node_still_answers_the_partial_outage(sb):
    r = h.get(h.node_ip(sb, "k3s-worker-01"), 31695, "/", host="old-api.keybuzz.io")
    assert r.status == 200 and json.loads(r.data)["node"] == "k3s-worker-01" and json.loads(r.data)["hostNetwork"] is False


def test_hostnetwork_topology_answers_200_on_every_worker(sb):
    for w in h.WORKERS:
        ip = h.node_ip(sb, w)
        assert h.get(ip, 31695, "/", host="platform-api.keybuzz.io").status == 200
        front = h.get(ip, 31695, "/", host="platform.keybuzz.io")
        assert front.status == 200 and b"<title>KeyBuzz" in front.data


def test_pods_still_look_ready_because_probes_are_local(sb):
    assert all(h.ready(p) for p in h.pods(sb, OLD))


def test_overlay_switch_at_runtime(sb):
    ip = h.node_ip(sb, "k3s-worker-02")
    sb.call(sb.dataplane.set_overlay, True)
    try:
        assert h.get(ip, 31695, "/", host="old.keybuzz.io").status == 200
    finally:
        sb.call(sb.dataplane.set_overlay, False)
    assert h.get(ip, 31695, "/", host="old.keybuzz.io").status == 504


def test_next_upstream_retry_saves_the_request(sb):
    """One replica on each side of the block: a timeout on worker-04's is retried on worker-02's."""
    ns = "keybuzz-two"
    objs: list = [h.namespace(ns)]
    for side, node in (("a", "k3s-worker-02"), ("b", "k3s-worker-04")):
        dep = h.deployment(f"two-{side}", h.API_IMAGE, 8080, node, ns)
        dep["spec"]["template"]["metadata"]["labels"]["svc"] = "two"
        objs.append(dep)
    objs.append(h.service("two", 8080, ns, selector={"svc": "two"}))
    objs.append(h.ingress("two", {"two.keybuzz.io": ("two", 8080)}, ns))
    h.create(sb, objs)
    h.wait_ready(sb, ns, "svc=two", 2)
    ip = h.node_ip(sb, "k3s-worker-02")
    answers = [h.get(ip, 31695, "/", host="two.keybuzz.io") for _ in range(4)]
    assert [r.status for r in answers] == [200] * 4
    assert {json.loads(r.data)["node"] for r in answers} == {"k3s-worker-02"}


def test_cluster_dns_and_clusterip_from_a_debug_pod(sb):
    # CoreDNS runs on k3s-master-01: from a worker, the lookup crosses the blocked overlay
    out, phase = h.run_debug_pod(sb, "dbg-dns", "k3s-worker-02", "nslookup keybuzz-api.keybuzz-old.svc.cluster.local")
    assert out.strip() == ";; connection timed out; no servers could be reached" and phase == "Failed"
    # a ClusterIP whose only endpoint is on worker-01: timeout from worker-02, fine from worker-01
    svc_ip = client.CoreV1Api(sb.kube_client()).read_namespaced_service("keybuzz-api", OLD).spec.cluster_ip
    out, phase = h.run_debug_pod(sb, "dbg-cip-2", "k3s-worker-02", f"wget -T 5 -qO- http://{svc_ip}:8080/healthz")
    assert out.strip() == "wget: download timed out" and phase == "Failed"
    out, phase = h.run_debug_pod(sb, "dbg-cip-1", "k3s-worker-01", f"wget -T 5 -qO- http://{svc_ip}:8080/healthz")
    assert out.strip() == '{"status":"ok"}' and phase == "Succeeded"
    # the runbook's advice: node IPs work with the overlay down
    w3 = h.node_ip(sb, "k3s-worker-03")
    out, phase = h.run_debug_pod(sb, "dbg-node", "k3s-worker-02", f"wget -qO- http://{w3}:8080/healthz")
    assert out.strip() == '{"status":"ok"}' and phase == "Succeeded"


def test_overlay_request_times_out_on_the_sandbox_clock(sb):
    from multidict import CIMultiDict

    from keybuzz_tui.sandbox.dataplane import DialError, HttpRequest

    pod = h.pods(sb, OLD, "app=keybuzz-api")[0]
    req = HttpRequest("GET", "/healthz", CIMultiDict({"Host": "x"}))

    async def call() -> str:
        try:
            await sb.dataplane.overlay_request("k3s-worker-05", pod.status.pod_ip, 8080, req, connect_timeout=2.5)
        except DialError as e:
            return e.kind
        return "answered"

    t0 = time.monotonic()
    assert sb.call(call) == "timeout"
    assert time.monotonic() - t0 >= 2.5 / h.sandboxes.TEST_SPEED * 0.8

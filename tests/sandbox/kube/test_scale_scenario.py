"""The `scale` scenario as it loads (about 9 s here, so the full one): 1,000 nodes, 20,000
generated pods and 5,000 generated services, and LIST with limit/continue paging through them."""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter

import pytest
from kubernetes import client
from support import sandboxes

from keybuzz_tui.sandbox import scenarios

SC = scenarios.load("scale")
# what the world adds to the generated objects: the ingress-nginx DaemonSet's pod on every worker
# and the CoreDNS, local-path-provisioner and metrics-server pods; the 5 system Services
SYSTEM_PODS = SC.workers + 3
SYSTEM_SERVICES = {"default/kubernetes", "kube-system/kube-dns", "kube-system/metrics-server",
                   "ingress-nginx/ingress-nginx-controller", "ingress-nginx/ingress-nginx-controller-admission"}


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    sb = sandboxes.start(tmp_path_factory.mktemp("scale"), "scale")
    yield sb
    sb.stop()


def pages(sb, path: str, limit: int) -> list[dict]:
    out, token = [], ""
    while True:
        sep = "&" if "?" in path else "?"
        r = sandboxes.raw(sb, "GET", f"{path}{sep}limit={limit}" + (f"&continue={token}" if token else ""), timeout=60)
        assert r.status == 200, r.data[:300]
        body = json.loads(r.data)
        out.append(body)
        token = body["metadata"].get("continue") or ""
        if not token:
            return out


def test_the_scenario_file_describes_the_benchmark_cluster():
    assert (SC.servers, SC.workers) == (3, 997)
    assert SC.scale == {"namespaces": 50, "pods": 20000, "services": 5000}


def test_nodes_names_and_addresses(big):
    assert big.cluster.scale_counts["pods"] == 20000 and big.cluster.scale_counts["services"] == 5000
    nodes = json.loads(sandboxes.raw(big, "GET", "/api/v1/nodes", timeout=60).data)["items"]
    names = [n["metadata"]["name"] for n in nodes]
    assert len(names) == 1000 and len(set(names)) == 1000
    masters = sorted(n for n in names if n.startswith("k3s-master-"))
    assert masters == ["k3s-master-01", "k3s-master-02", "k3s-master-03"]
    workers = {n for n in names if n.startswith("k3s-worker-")}
    # production's naming up to 99, then four digits so that names sort
    assert workers == {f"k3s-worker-{i:02d}" for i in range(1, 100)} | {f"k3s-worker-{i:04d}" for i in range(100, 998)}
    ips = [next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP") for n in nodes]
    assert len(set(ips)) == 1000 and all(ipaddress.ip_address(ip) in ipaddress.ip_network(f"127.{big.net}.0.0/16") for ip in ips)
    cp = sandboxes.raw(big, "GET", "/api/v1/nodes?labelSelector=node-role.kubernetes.io%2Fcontrol-plane%3Dtrue")
    assert len(json.loads(cp.data)["items"]) == 3
    ns = {n["metadata"]["name"] for n in json.loads(sandboxes.raw(big, "GET", "/api/v1/namespaces").data)["items"]}
    assert {f"team-{i:03d}" for i in range(50)} <= ns and len(ns) == 50 + 5


def test_pods_page_through_limit_and_continue(big):
    got = pages(big, "/api/v1/pods", 2500)
    total = 20000 + SYSTEM_PODS
    assert len(got) == -(-total // 2500)
    assert len({p["metadata"]["resourceVersion"] for p in got}) == 1  # one consistent snapshot
    seen = 0
    for body in got[:-1]:
        seen += len(body["items"])
        assert len(body["items"]) == 2500 and body["metadata"]["remainingItemCount"] == total - seen
    assert "remainingItemCount" not in got[-1]["metadata"] and "continue" not in got[-1]["metadata"]
    pods = [p for body in got for p in body["items"]]
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods]
    assert len(keys) == total and len(set(keys)) == total
    per_ns = Counter(ns for ns, _ in keys if ns.startswith("team-"))
    assert len(per_ns) == 50 and set(per_ns.values()) == {400}
    generated = [p for p in pods if p["metadata"]["namespace"].startswith("team-")]
    assert all(p["status"]["phase"] == "Running" and p["spec"]["nodeName"].startswith("k3s-worker-") for p in generated)
    assert all(re.fullmatch(r"app-\d{3}-[0-9a-f]{10}", p["metadata"]["name"]) for p in generated)
    assert Counter(ns for ns, _ in keys)["ingress-nginx"] == SC.workers
    # a selector pages over what it selects
    team = pages(big, "/api/v1/namespaces/team-007/pods?labelSelector=app%3Dapp-003", 7)
    assert sum(len(b["items"]) for b in team) == 20


def test_services_page_through_the_official_client(big):
    api = big.kube_client()
    core = client.CoreV1Api(api)
    services, token, calls = [], None, 0
    while True:
        page = core.list_service_for_all_namespaces(limit=1000, _continue=token)
        services += page.items
        calls += 1
        token = page.metadata._continue
        if not token:
            break
    api.close()
    assert calls == 6 and len(services) == 5000 + len(SYSTEM_SERVICES)
    keys = {f"{s.metadata.namespace}/{s.metadata.name}" for s in services}
    assert SYSTEM_SERVICES <= keys and {f"team-{i % 50:03d}/svc-{i:05d}" for i in range(5000)} <= keys
    node_ports = [p.node_port for s in services if s.spec.type == "NodePort" for p in s.spec.ports]
    assert len(node_ports) == 500 + 2  # every tenth generated service, and ingress-nginx's two
    assert len(set(node_ports)) == len(node_ports) and all(30000 <= p <= 32767 for p in node_ports)
    cluster_ips = [s.spec.cluster_ip for s in services if s.spec.cluster_ip not in (None, "None")]
    assert len(set(cluster_ips)) == len(cluster_ips)

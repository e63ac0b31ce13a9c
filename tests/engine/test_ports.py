"""Ports and conflicts (issue 4 step 2) against the sandbox, with the real clients.

The scan must find every holder the API can show (NodePorts, hostPorts, hostNetwork workloads,
K3s, ingress-nginx), name it and where it holds the port, in a fixed, small number of requests;
the probe must find what the API cannot (a host process) and never leave a pod behind.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import engine_fixtures, sandboxes

from keybuzz_tui.cancel import Cancelled
from keybuzz_tui.config import App, Config, LBService
from keybuzz_tui.engine import kubeio, portprobe, ports
from keybuzz_tui.engine.context import Context, Endpoints
from keybuzz_tui.events import CheckResult, Recorder, StepFinished, StepStarted, Warning_
from keybuzz_tui.journal import Journal
from keybuzz_tui.sandbox.kube import registry
from keybuzz_tui.sandbox.kube.auth import Rule, User

WORKERS = tuple(f"k3s-worker-0{i}" for i in range(1, 6))
INGRESS_DS = "DaemonSet ingress-nginx/ingress-nginx-controller (hostNetwork)"
# nodes, services, pods, daemonsets, deployments, statefulsets (one LIST each) + the NodePort
# range dry-run (the sandbox's node-args do not show --service-node-port-range)
REQUESTS_PER_SCAN = 7


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    sb = sandboxes.start(tmp_path_factory.mktemp("ports-healthy"))
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def healthy_inventory(healthy):
    ctx = make_ctx(healthy)
    try:
        return ports.scan(ctx)
    finally:
        ctx.close()


@pytest.fixture
def world(tmp_path):
    started = []

    def make(scenario: str = "healthy", **kw: Any):
        sb = sandboxes.start(tmp_path / f"sb{len(started)}", scenario, **kw)
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


def make_ctx(sb: Any, config: Config | None = None, *, sink: Any = None, endpoints: Endpoints | None = None) -> Context:
    return Context(config or Config(), endpoints or Endpoints.from_sandbox(sb.state_dir), sink=sink or Recorder())


def by_name(checks: list[ports.PortCheck]) -> dict[str, ports.PortCheck]:
    return {c.name: c for c in checks}


def with_apps(cfg: Config, **changes: dict[str, Any]) -> Config:
    """Config with apps changed by name: with_apps(cfg, **{"keybuzz-api": {"port": 3000}})."""
    apps = [dataclasses.replace(a, **changes.get(a.name, {})) for a in cfg.apps]
    return dataclasses.replace(cfg, apps=apps)


def probe_pods(sb: Any) -> list[str]:
    """Probe pods still in the API (being deleted counts: a pod must be gone, not going)."""
    ctx = make_ctx(sb)
    try:
        data = kubeio.get(ctx, "/api/v1/namespaces/kube-system/pods", labelSelector=portprobe.PROBE_SELECTOR)
    finally:
        ctx.close()
    return [p["metadata"]["name"] for p in data["items"]]


# --- the healthy world ---------------------------------------------------------------------------


def test_healthy_world_every_needed_port_is_ok_and_ingress_nodeports_are_held_as_expected(healthy):
    rec = Recorder()
    ctx = make_ctx(healthy, sink=rec)
    report = ports.run(ctx)
    checks = by_name(report.checks)
    assert set(checks) == {
        "hostPort/keybuzz-api", "nodePort/keybuzz-api", "hostPort/keybuzz-front", "nodePort/keybuzz-front",
        "nodePort/ingress-http", "nodePort/ingress-https", "lbListen/80", "lbListen/443",
    }
    for name in ("nodePort/ingress-http", "nodePort/ingress-https"):
        c = checks[name]
        assert c.status == "info", c
        assert c.holders == ("Service ingress-nginx/ingress-nginx-controller (NodePort)",)
        assert "as expected" in c.detail
    others = [c for n, c in checks.items() if not n.startswith("nodePort/ingress")]
    assert [c.status for c in others] == ["ok"] * len(others), [(c.name, c.status, c.detail) for c in others]
    assert checks["hostPort/keybuzz-api"].port == 8080 and checks["nodePort/keybuzz-api"].port == 30080
    inv = report.inventory
    assert inv.nodeport_range == (30000, 32767)
    assert "dry-run" in inv.nodeport_range_source
    assert inv.ingress_host_network is True
    assert sorted(inv.default_targets()) == list(WORKERS)
    # typed progress: step started, one CheckResult per port, finished ok, no warning
    assert [e.title for e in rec.of(StepStarted)] == ["Ports and conflicts"]
    assert [e.check for e in rec.of(CheckResult)] == [c.name for c in report.checks]
    assert rec.of(StepFinished)[-1].status == "ok"
    assert rec.of(Warning_) == []


def test_scan_costs_a_fixed_small_number_of_api_requests(healthy):
    ctx = make_ctx(healthy)
    stats = healthy.kube_server.stats
    before = stats.requests
    inv = ports.scan(ctx)
    assert stats.requests - before == REQUESTS_PER_SCAN == inv.requests
    # paging on huge clusters: one more request per extra page, same inventory
    store = healthy.cluster.store
    sizes = healthy.call(lambda: [store.count(registry.core("nodes")), store.count(registry.core("services")),
                                  store.count(registry.core("pods")), store.count(registry.apps("daemonsets")),
                                  store.count(registry.apps("deployments")), store.count(registry.apps("statefulsets"))])
    before = stats.requests
    paged = ports.scan(ctx, page=2)
    expected = sum(max(1, math.ceil(n / 2)) for n in sizes) + 1
    assert stats.requests - before == paged.requests == expected
    key = lambda t: (t.port, t.protocol, t.space, t.holder)  # noqa: E731
    assert sorted(map(key, paged.taken)) == sorted(map(key, inv.taken))
    assert {t.holder: t.nodes for t in paged.taken} == {t.holder: t.nodes for t in inv.taken}


def test_inventory_names_holders_and_where_they_hold(healthy_inventory):
    inv = healthy_inventory
    at = lambda port, holder: [t for t in inv.at(port) if t.holder == holder]  # noqa: E731
    (kubelet,) = at(10250, "K3s kubelet")
    assert kubelet.nodes is None and kubelet.category == "k3s"  # every node
    (etcd,) = at(2379, "K3s embedded etcd (client)")
    assert etcd.nodes == {"k3s-master-01", "k3s-master-02", "k3s-master-03"}  # servers only
    (vxlan,) = at(8472, "K3s Flannel VXLAN")
    assert vxlan.protocol == "UDP"
    for port in (80, 443, 8443, 10254, 8181, 10245, 10246, 10247):
        (ing,) = at(port, INGRESS_DS)
        assert ing.category == "ingress" and ing.nodes == set(WORKERS), port
    (np,) = at(31695, "Service ingress-nginx/ingress-nginx-controller (NodePort)")
    assert np.space == "nodeport" and np.nodes is None and "port http" in np.detail


# --- conflicts the API can show ------------------------------------------------------------------


def test_nodeport_taken_by_another_teams_service_is_a_conflict_with_free_suggestions(world):
    sb = world("nodeport-taken")
    rec = Recorder()
    report = ports.run(make_ctx(sb, sink=rec))
    c = by_name(report.checks)["nodePort/keybuzz-api"]
    assert c.status == "conflict"
    assert c.holders == ("Service monitoring/grafana (NodePort)",)
    assert "already allocated" in c.detail and "monitoring/grafana" in c.remediation
    lo, hi = report.inventory.nodeport_range
    band_lo, band_hi = report.inventory.static_band
    assert len(c.suggestions) == 3
    assert all(lo <= s <= hi and band_lo <= s <= band_hi for s in c.suggestions)
    assert 30000 not in c.suggestions  # keybuzz-front's own NodePort
    assert c.suggestions[0] == 30081
    assert str(c.suggestions[0]) in c.remediation
    warn = [w for w in rec.of(Warning_) if "30080" in w.message]
    assert warn and "30081" in warn[0].remediation
    assert rec.of(StepFinished)[-1].status == "fail"


def _hostport_daemonset(name: str, ns: str, port: int, node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "exporter", "image": "prom/node-exporter:v1.8.2",
                                            "ports": [{"containerPort": 9100, "hostPort": port, "protocol": "TCP"}]}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }


def test_hostport_daemonset_on_3000_is_a_conflict_naming_it_and_its_nodes(world):
    sb = world()
    ctx = make_ctx(sb)
    kubeio.request(ctx, "POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}})
    kubeio.request(ctx, "POST", "/apis/apps/v1/namespaces/monitoring/daemonsets", body=_hostport_daemonset("node-exporter", "monitoring", 3000))
    c = by_name(ports.check(ctx.config, ports.scan(ctx)))["hostPort/keybuzz-front"]
    assert c.status == "conflict"
    assert c.holders == ("DaemonSet monitoring/node-exporter (hostPort)",)
    assert c.nodes == WORKERS  # the template runs on every untainted node
    assert "free ports" in c.remediation
    assert c.suggestions and all(s not in (3000, 8080) for s in c.suggestions)
    assert c.suggestions[0] == 3001
    # a DaemonSet restricted to two workers conflicts there only
    sb2 = world()
    ctx2 = make_ctx(sb2)
    for n in ("k3s-worker-02", "k3s-worker-04"):
        kubeio.request(ctx2, "PATCH", f"/api/v1/nodes/{n}", body={"metadata": {"labels": {"edge": "true"}}},
                       content_type="application/merge-patch+json")
    kubeio.request(ctx2, "POST", "/apis/apps/v1/namespaces/default/daemonsets",
                   body=_hostport_daemonset("edge-proxy", "default", 3000, {"edge": "true"}))
    c2 = by_name(ports.check(ctx2.config, ports.scan(ctx2)))["hostPort/keybuzz-front"]
    assert c2.status == "conflict" and c2.nodes == ("k3s-worker-02", "k3s-worker-04")
    assert c2.holders == ("DaemonSet default/edge-proxy (hostPort)",)
    assert "k3s-worker-02, k3s-worker-04" in c2.detail


def test_statefulset_deployment_and_bare_hostnetwork_pod_holders_are_named(world):
    """Every kind of holder the scan lists: a StatefulSet's hostPort, a Deployment's hostPort (its
    pods belong to a ReplicaSet: named after the Deployment) and a bare hostNetwork Pod (no
    controller: named by itself, with its node)."""
    sb = world()
    ctx = make_ctx(sb)
    for ns in ("db", "web"):
        kubeio.request(ctx, "POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def template(app: str, port: int) -> dict[str, Any]:
        return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [
            {"name": app, "image": "nginx:1.27", "ports": [{"containerPort": port, "hostPort": port, "protocol": "TCP"}]}]}}

    kubeio.request(ctx, "POST", "/apis/apps/v1/namespaces/db/statefulsets", body={
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg", "namespace": "db"},
        "spec": {"serviceName": "pg", "replicas": 1, "selector": {"matchLabels": {"app": "pg"}}, "template": template("pg", 8080)}})
    kubeio.request(ctx, "POST", "/apis/apps/v1/namespaces/web/deployments", body={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "edge", "namespace": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "edge"}}, "template": template("edge", 3000)}})
    kubeio.request(ctx, "POST", "/api/v1/namespaces/default/pods", body={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug-shell", "namespace": "default"},
        "spec": {"hostNetwork": True, "nodeName": "k3s-worker-02", "containers": [
            {"name": "shell", "image": "busybox:1.36", "ports": [{"containerPort": 9090, "protocol": "TCP"}]}]}})
    # the controllers' pods exist (so the scan sees pods owned by a StatefulSet and by a ReplicaSet)
    engine_fixtures.wait_for(lambda: {p["metadata"]["namespace"] for p in kubeio.get(ctx, "/api/v1/pods")["items"]} >= {"db", "web"},
                             what="the StatefulSet's and the Deployment's pods")

    inv = ports.scan(ctx)
    holders = {(t.port, t.holder) for t in inv.taken}
    assert (8080, "StatefulSet db/pg (hostPort)") in holders
    assert (3000, "Deployment web/edge (hostPort)") in holders
    assert (9090, "Pod default/debug-shell (hostNetwork)") in holders
    assert not any("ReplicaSet" in h for _, h in holders)  # the ReplicaSet is resolved to its Deployment
    (pod,) = [t for t in inv.at(9090) if t.kind == "Pod"]
    assert pod.nodes == {"k3s-worker-02"} and "pod debug-shell on k3s-worker-02" in pod.detail

    cfg = with_apps(Config(), **{"keybuzz-api": {"port": 9090}})
    checks = by_name(ports.check(ctx.config, inv))
    assert checks["hostPort/keybuzz-api"].status == "conflict"
    assert checks["hostPort/keybuzz-api"].holders == ("StatefulSet db/pg (hostPort)",)
    assert checks["hostPort/keybuzz-front"].status == "conflict"
    assert checks["hostPort/keybuzz-front"].holders == ("Deployment web/edge (hostPort)",)
    bare = by_name(ports.check(cfg, inv))["hostPort/keybuzz-api"]
    assert bare.status == "conflict" and bare.holders == ("Pod default/debug-shell (hostNetwork)",)
    assert bare.nodes == ("k3s-worker-02",) and "k3s-worker-02" in bare.detail


def test_ingress_nginx_reserved_ports_conflict_when_chosen_as_app_ports(healthy_inventory):
    for port in (10254, 443, 8443):
        cfg = with_apps(Config(), **{"keybuzz-api": {"port": port}})
        c = by_name(ports.check(cfg, healthy_inventory))["hostPort/keybuzz-api"]
        assert c.status == "conflict", port
        assert c.holders == (INGRESS_DS,)
        assert "ingress-nginx" in c.rule and c.nodes == WORKERS
        assert c.suggestions and "ingress-nginx" in c.remediation


def test_k3s_ports_conflict_when_chosen_as_app_ports(healthy_inventory):
    cfg = with_apps(Config(), **{"keybuzz-front": {"port": 10250}})
    c = by_name(ports.check(cfg, healthy_inventory))["hostPort/keybuzz-front"]
    assert c.status == "conflict" and c.holders == ("K3s kubelet",)
    assert "K3s" in c.rule and c.nodes == WORKERS
    assert c.suggestions == (10251, 10252, 10253)  # 10249 is kube-proxy metrics, 10248 kubelet health
    # a server-only port (etcd) does not bother the workers our DaemonSets run on ...
    cfg = with_apps(Config(), **{"keybuzz-front": {"port": 2379}})
    assert by_name(ports.check(cfg, healthy_inventory))["hostPort/keybuzz-front"].status == "ok"
    # ... unless the target nodes include a server
    c = by_name(ports.check(cfg, healthy_inventory, target_nodes=["k3s-master-01", "k3s-worker-01"]))["hostPort/keybuzz-front"]
    assert c.status == "conflict" and c.nodes == ("k3s-master-01",)


def test_rule_violations_are_invalid_with_suggestions(healthy_inventory):
    inv = healthy_inventory
    # NodePort outside the cluster range
    cfg = with_apps(Config(), **{"keybuzz-api": {"node_port": 8080}})
    c = by_name(ports.check(cfg, inv))["nodePort/keybuzz-api"]
    assert c.status == "invalid" and "30000-32767" in c.rule and "dry-run" in c.rule
    assert c.suggestions and all(30000 <= s <= 32767 for s in c.suggestions) and 30000 not in c.suggestions
    # two apps with the same port
    cfg = with_apps(Config(), **{"keybuzz-front": {"port": 8080}})
    cs = by_name(ports.check(cfg, inv))
    for name in ("hostPort/keybuzz-api", "hostPort/keybuzz-front"):
        assert cs[name].status == "invalid" and "duplicates" in cs[name].rule, cs[name]
        assert cs[name].suggestions and 8080 not in cs[name].suggestions
    # same NodePort twice, and an app NodePort on ingress-nginx's: that one is held (conflict)
    cfg = with_apps(Config(), **{"keybuzz-front": {"node_port": 30080}, "keybuzz-api": {"node_port": 31695}})
    cs = by_name(ports.check(cfg, inv))
    assert cs["nodePort/keybuzz-api"].status == "conflict"
    assert cs["nodePort/keybuzz-api"].holders == ("Service ingress-nginx/ingress-nginx-controller (NodePort)",)
    assert cs["nodePort/keybuzz-front"].status == "ok"
    cfg = with_apps(Config(), **{"keybuzz-front": {"node_port": 30080}})
    cs = by_name(ports.check(cfg, inv))
    assert cs["nodePort/keybuzz-front"].status == "invalid" and cs["nodePort/keybuzz-api"].status == "invalid"
    # an app's hostPort equal to one of our NodePorts
    cfg = with_apps(Config(), **{"keybuzz-api": {"port": 30000}})
    c = by_name(ports.check(cfg, inv))["hostPort/keybuzz-api"]
    assert c.status == "invalid" and "apps[1].node_port" in c.detail
    # not a port at all
    cfg = with_apps(Config(), **{"keybuzz-api": {"port": 70000}})
    c = by_name(ports.check(cfg, inv))["hostPort/keybuzz-api"]
    assert c.status == "invalid" and c.suggestions and all(1 <= s <= 65535 for s in c.suggestions)
    # Load Balancer: duplicate listen ports, and redirect_http next to a port-80 service
    lb = dataclasses.replace(Config().load_balancer, services=[LBService("http", 80, 31695), LBService("https", 80, 31695)])
    cs = ports.check(dataclasses.replace(Config(), load_balancer=lb), inv)
    assert [c.status for c in cs if c.kind == "lbListen"] == ["invalid", "invalid"]
    lb = dataclasses.replace(Config().load_balancer, services=[LBService("http", 80, 31695), LBService("https", 443, 31695, redirect_http=True)])
    c = by_name(ports.check(dataclasses.replace(Config(), load_balancer=lb), inv))["lbListen/80"]
    assert c.status == "invalid" and "source_port_already_used" in c.rule


def test_ingress_nodeport_not_held_by_ingress_nginx_is_reported(healthy_inventory):
    cfg = dataclasses.replace(Config(), ingress=dataclasses.replace(Config().ingress, http_node_port=31000))
    c = by_name(ports.check(cfg, healthy_inventory))["nodePort/ingress-http"]
    assert c.status == "invalid" and "expected holder" in c.rule
    assert c.suggestions == (31695,)  # what ingress-nginx really has
    assert "31695" in c.remediation


# --- our own previous install converges ----------------------------------------------------------


def test_our_previous_install_is_not_a_conflict_and_the_lb_is_seen(world):
    sb = world()
    engine_fixtures.install_keybuzz_directly(sb, wait_ready=False)
    ctx = make_ctx(sb)
    engine_fixtures.wait_for(lambda: len(kubeio.get(ctx, "/api/v1/namespaces/keybuzz/pods")["items"]) == 10, what="10 app pods")
    inv = ports.scan(ctx)
    mine = [t for t in inv.taken if t.ours]
    assert {(t.port, t.holder) for t in mine} >= {
        (8080, "DaemonSet keybuzz/keybuzz-api (hostNetwork)"), (3000, "DaemonSet keybuzz/keybuzz-front (hostNetwork)"),
        (30080, "Service keybuzz/keybuzz-api (NodePort)"), (30000, "Service keybuzz/keybuzz-front (NodePort)"),
    }
    cs = by_name(ports.check(ctx.config, inv))
    for name in ("hostPort/keybuzz-api", "hostPort/keybuzz-front", "nodePort/keybuzz-api", "nodePort/keybuzz-front"):
        assert cs[name].status == "ok", cs[name]
        assert "previous install" in cs[name].detail
    assert inv.lb_found is True
    for port in (80, 443):
        c = cs[f"lbListen/{port}"]
        assert c.status == "ok" and "already listens" in c.detail and c.holders == (f"Load Balancer keybuzz-lb service {port}",)
    # the same objects in another namespace are somebody else's
    other = dataclasses.replace(ctx.config, namespace="keybuzz-staging")
    inv2 = ports.scan(make_ctx(sb, other))
    cs2 = by_name(ports.check(other, inv2))
    assert cs2["hostPort/keybuzz-api"].status == "conflict"
    assert cs2["hostPort/keybuzz-api"].holders == ("DaemonSet keybuzz/keybuzz-api (hostNetwork)",)
    assert cs2["nodePort/keybuzz-api"].status == "conflict"


# --- the probe -----------------------------------------------------------------------------------


def test_port_taken_is_invisible_without_the_probe_and_named_with_it(world, tmp_path: Path):
    sb = world("port-taken")
    ctx = make_ctx(sb)
    c = by_name(ports.check(ctx.config, ports.scan(ctx)))["hostPort/keybuzz-api"]
    assert c.status == "ok"  # Kubernetes cannot see the host process
    rec = Recorder()
    journal = Journal(tmp_path / "journal.jsonl")
    ctx = Context(Config(), Endpoints.from_sandbox(sb.state_dir), sink=rec, journal=journal)
    report = ports.run(ctx, probe=True, probe_timeout=30)
    c = by_name(report.checks)["hostPort/keybuzz-api"]
    assert c.status == "conflict"
    assert c.nodes == ("k3s-worker-03",)
    (holder,) = c.holders
    assert holder.startswith("host process nginx (pid ") and holder.endswith("found by the probe on k3s-worker-03")
    assert "systemctl disable --now nginx" in c.remediation and "8081" in c.remediation
    assert by_name(report.checks)["hostPort/keybuzz-front"].status == "ok"
    assert report.inventory.probed == {w: "ok" for w in WORKERS}
    assert any("k3s-worker-03" in w.message for w in rec.of(Warning_))
    assert probe_pods(sb) == []
    # known holders seen by the probe (K3s, ingress-nginx) are not reported twice as host processes
    hp = [t for t in report.inventory.taken if t.category == "host-process"]
    assert {t.port for t in hp} <= {22, 8080}
    # the temporary pods are changes to the cluster: journalled, created and deleted
    entries = list(journal.entries())
    created = [e["name"] for e in entries if e["event"] == "port-probe-created"]
    (deleted,) = [e for e in entries if e["event"] == "port-probe-deleted"]
    assert len(created) == len(WORKERS) and deleted["names"] == sorted(created) and deleted["problems"] == []


def test_flaky_api_scan_and_probe_retry_and_still_clean_up(world):
    sb = world("flaky-api")
    report = ports.run(make_ctx(sb), probe=True, probe_timeout=60)
    assert report.inventory.requests >= REQUESTS_PER_SCAN
    assert by_name(report.checks)["nodePort/ingress-http"].status == "info"
    assert set(report.inventory.probed) == set(WORKERS)
    assert probe_pods(sb) == []


def test_a_cancelled_scan_stops_with_cancelled(healthy):
    ctx = make_ctx(healthy)
    ctx.cancel.cancel()
    with pytest.raises(Cancelled):
        ports.scan(ctx)


def test_probe_pod_spec_is_pinned_labelled_and_short_lived(healthy_inventory):
    node = healthy_inventory.node("k3s-master-01")
    pod = portprobe.probe_pod(node, "abcd1234", 0, timeout=20)
    spec = pod["spec"]
    assert spec["nodeName"] == "k3s-master-01" and spec["hostNetwork"] is True and spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] >= 20
    assert pod["metadata"]["labels"]["keybuzz.io/probe"] == "ports"
    assert pod["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "keybuzz-tui"
    assert pod["metadata"]["namespace"] == "kube-system"
    assert spec["containers"][0]["image"] == "busybox:1.36"
    tolerated = {(t["key"], t["effect"]) for t in spec["tolerations"]}
    assert tolerated == {("node-role.kubernetes.io/control-plane", "NoSchedule"), ("CriticalAddonsOnly", "NoExecute")}


def _break_probe_on(sb: Any, node: str) -> None:
    """The probe container on `node` exits 1, as a netstat without /proc access would."""
    kubelet = sb.cluster.kubelet
    orig = kubelet.exec_hook

    def hook(pod: dict[str, Any], run: Any, argv: list[str]) -> Any:
        if run.node == node and (pod["metadata"].get("labels") or {}).get("keybuzz.io/probe") == "ports":
            return 1, ["netstat: /proc/net/tcp: Permission denied"]
        return orig(pod, run, argv) if orig is not None else None

    sb.call(lambda: setattr(kubelet, "exec_hook", hook))


def test_probe_pod_failure_is_reported_and_cleaned_up(world):
    sb = world("port-taken")
    _break_probe_on(sb, "k3s-worker-03")
    rec = Recorder()
    ctx = make_ctx(sb, sink=rec)
    res = portprobe.run_probe(ctx, list(WORKERS), timeout=30)
    assert set(res.listeners) == set(WORKERS) - {"k3s-worker-03"}
    why = res.failures["k3s-worker-03"]
    assert "failed" in why and "exit code 1" in why and "Permission denied" in why
    assert any("k3s-worker-03" in w.message for w in rec.of(Warning_))
    assert probe_pods(sb) == []
    # in the inventory, the failed node is marked, and 8080 stays unknown there (not "free")
    inv = ports.scan(make_ctx(sb), probe=True, probe_timeout=30)
    assert inv.probed["k3s-worker-03"] != "ok" and inv.probed["k3s-worker-01"] == "ok"
    assert probe_pods(sb) == []
    c = by_name(ports.check(Config(), inv))["hostPort/keybuzz-api"]
    assert c.status == "info" and "no answer on k3s-worker-03" in c.detail


def test_probe_cancelled_midway_deletes_its_pods(world):
    sb = world()
    ctx = make_ctx(sb)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            # an image that never exits: the probe waits until cancelled
            portprobe.run_probe(ctx, list(WORKERS), timeout=60, image="ghcr.io/acme/sleeper:1.0")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    engine_fixtures.wait_for(lambda: len(probe_pods(sb)) == len(WORKERS), timeout=20, what="probe pods created")
    started = time.monotonic()
    ctx.cancel.cancel()
    t.join(timeout=20)
    assert not t.is_alive()
    assert time.monotonic() - started < portprobe.WATCH_WINDOW + 5
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    assert probe_pods(sb) == []


def test_probe_timeout_reports_and_deletes(world):
    sb = world()
    ctx = make_ctx(sb)
    res = portprobe.run_probe(ctx, ["k3s-worker-01", "k3s-worker-02"], timeout=1.0, image="ghcr.io/acme/sleeper:1.0")
    assert res.listeners == {}
    assert set(res.failures) == {"k3s-worker-01", "k3s-worker-02"}
    assert all("running: still Running after 1s" in w for w in res.failures.values()), res.failures
    assert probe_pods(sb) == []


def test_probe_of_an_unknown_node_and_the_ports_filter(world):
    sb = world("port-taken")
    out = portprobe.probe_nodes(make_ctx(sb), ["k3s-worker-03", "no-such-node"], [8080, 3000], timeout=30)
    assert list(out) == ["k3s-worker-03"]
    (ln,) = out["k3s-worker-03"]
    assert (ln.port, ln.process, ln.protocol) == (8080, "nginx", "TCP") and ln.pid
    assert probe_pods(sb) == []


def test_parse_listeners_reads_busybox_netstat_and_ss():
    netstat = """Active Internet connections (only servers)
Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
tcp        0      0 0.0.0.0:8080            0.0.0.0:*               LISTEN      1234/nginx: master pro
tcp        0      0 127.0.0.1:10248         0.0.0.0:*               LISTEN      -
tcp        0      0 :::22                   :::*                    LISTEN      812/sshd
tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      812/sshd
"""
    got = {(ln.port, ln.ip, ln.process, ln.pid) for ln in portprobe.parse_listeners("w", netstat)}
    assert got == {(8080, "0.0.0.0", "nginx", 1234), (10248, "127.0.0.1", "", None), (22, "0.0.0.0", "sshd", 812)}
    ss = """State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process
LISTEN 0      511    127.0.10.112:8080 0.0.0.0:* users:(("nginx",pid=1738,fd=6))
LISTEN 0      4096   [::]:9100 [::]:* users:(("node_exporter",pid=99,fd=3))
LISTEN 0      4096   *:10250 *:*
"""
    got = {(ln.port, ln.ip, ln.process, ln.pid) for ln in portprobe.parse_listeners("w", ss)}
    assert got == {(8080, "127.0.10.112", "nginx", 1738), (9100, "::", "node_exporter", 99), (10250, "0.0.0.0", "", None)}


# --- permissions ---------------------------------------------------------------------------------


def test_restricted_viewer_can_scan_and_is_told_the_range_was_assumed(world):
    sb = world("restricted-rbac")
    ep = dataclasses.replace(Endpoints.from_sandbox(sb.state_dir), context="keybuzz-sandbox-keybuzz-viewer")
    rec = Recorder()
    report = ports.run(make_ctx(sb, sink=rec, endpoints=ep))
    inv = report.inventory
    assert inv.nodeport_range == (30000, 32767) and inv.nodeport_range_source.startswith("assumed")
    assert any("NodePort range not read" in w.message and "403" in w.message for w in rec.of(Warning_))
    assert by_name(report.checks)["nodePort/keybuzz-api"].status == "ok"
    # the viewer may not create pods: the probe says so, and the scan still answers
    inv = ports.scan(make_ctx(sb, endpoints=ep), probe=True, probe_timeout=10)
    assert any("port probe not run" in n and "create pods in kube-system" in n and todo for n, todo in inv.notes)
    assert all(v.startswith("not probed") for v in inv.probed.values())


def test_user_who_cannot_list_statefulsets_gets_a_clear_error(world, tmp_path: Path):
    sb = world()
    rules = (Rule(("get", "list", "watch"), ("",), ("nodes", "pods", "services")),
             Rule(("get", "list", "watch"), ("apps",), ("daemonsets", "deployments")))
    user = User("ports-auditor", "ports-auditor-token", ("system:authenticated",), rules)
    sb.call(lambda: sb.kube_server.authz.users.append(user))
    kc = yaml.safe_load(sb.kubeconfig_path.read_text())
    kc["users"].append({"name": user.name, "user": {"token": user.token}})
    kc["contexts"].append({"name": "auditor", "context": {"cluster": kc["clusters"][0]["name"], "user": user.name}})
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kc))
    ep = dataclasses.replace(Endpoints.from_sandbox(sb.state_dir), kubeconfig=str(path), context="auditor")
    rec = Recorder()
    with pytest.raises(ports.PortScanError) as ei:
        ports.run(make_ctx(sb, sink=rec, endpoints=ep))
    msg = str(ei.value)
    assert "cannot list statefulsets.apps in all namespaces" in msg
    assert "'list' permission on statefulsets" in msg and "'apps'" in msg
    assert 'User "ports-auditor" cannot list resource "statefulsets"' in msg
    assert "Traceback" not in msg and "ports-auditor-token" not in msg
    assert rec.of(StepFinished)[-1].status == "fail"


# --- property: check() on any choice of ports -------------------------------------------------------

PORTS = st.one_of(st.integers(1, 65535), st.sampled_from([0, -1, 80, 443, 3000, 8080, 10250, 10254, 30000, 30080, 31695, 32720, 65536]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    api=st.tuples(PORTS, PORTS), front=st.tuples(PORTS, PORTS), ingress=st.tuples(PORTS, PORTS),
    lb=st.lists(st.tuples(PORTS, st.booleans()), min_size=0, max_size=3),
)
def test_check_never_raises_and_every_conflict_names_a_holder_and_a_way_out(healthy_inventory, api, front, ingress, lb):
    base = Config()
    apps = [dataclasses.replace(base.apps[0], port=api[0], node_port=api[1]),
            dataclasses.replace(base.apps[1], port=front[0], node_port=front[1])]
    cfg = dataclasses.replace(
        base, apps=apps,
        ingress=dataclasses.replace(base.ingress, http_node_port=ingress[0], https_node_port=ingress[1]),
        load_balancer=dataclasses.replace(base.load_balancer, services=[
            LBService("https" if r else "http", p, 31695, redirect_http=r) for p, r in lb]),
    )
    checks = ports.check(cfg, healthy_inventory)
    assert len(checks) == 2 * len(apps) + 2 + len(lb)
    for c in checks:
        assert c.status in ("ok", "conflict", "invalid", "info")
        if c.status == "conflict":
            assert c.holders, c
            assert c.suggestions, c
            assert c.remediation
        if c.status == "invalid":
            assert c.rule and c.detail
        for s in c.suggestions:
            assert 1 <= s <= 65535
            if c.kind == "nodePort" and c.status != "invalid":
                lo, hi = healthy_inventory.nodeport_range
                assert lo <= s <= hi


def test_check_with_an_app_without_a_nodeport_and_an_empty_inventory():
    cfg = dataclasses.replace(Config(), apps=[App(name="solo", image="nginx:1.27", port=8080, node_port=0)])
    cs = by_name(ports.check(cfg, ports.PortInventory()))
    assert cs["nodePort/solo"].status == "info" and cs["hostPort/solo"].status == "ok"

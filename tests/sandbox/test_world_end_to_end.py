"""The whole sandbox world end to end, driven only by the real clients over real sockets.

hcloud configures the Load Balancer (network, http 80 + https 443 to NodePort 31695, an uploaded
certificate from the sandbox CA, a label-selector target over private IPs) and the DNS records;
the kubernetes client deploys the runbook's hostNetwork topology; urllib/http.client fetch through
the LB's public address with Host headers (TLS verified against DIR/ca.pem, SNI set); dnspython
asks the sandbox's authoritative DNS. In between, scenario switches (UFW on a worker, the overlay)
break the world the way production broke, and the tests watch every layer notice.

Each module fixture builds what its tests need on its own, so tests stay independent under
pytest-xdist (which may spread one module's tests over several workers). Every wait has a
deadline; none is a fixed sleep.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import hcloud
import pytest
import requests
from hcloud import APIException
from hcloud.actions import ActionFailedException
from hcloud.certificates import Certificate
from hcloud.load_balancer_types import LoadBalancerType
from hcloud.load_balancers import (
    LoadBalancerAlgorithm,
    LoadBalancerHealthCheck,
    LoadBalancerHealthCheckHttp,
    LoadBalancerService,
    LoadBalancerServiceHttp,
    LoadBalancerTarget,
    LoadBalancerTargetLabelSelector,
)
from hcloud.locations import Location
from hcloud.zones import ZoneRecord
from kubernetes import client as k8s
from sandbox.dataplane import harness
from support import sandboxes
from support.lb_world import Reply, http_request, iter_nested_health, raw_exchange, wait_until

from keybuzz_tui.sandbox import preinstall, scenarios
from keybuzz_tui.sandbox.runtime import Sandbox, SandboxError, free_net

pytestmark = pytest.mark.timeout(180)

FRONT_HOST = "platform.keybuzz.io"
API_HOST = "platform-api.keybuzz.io"
NODEPORT = 31695
WORKERS = tuple(f"k3s-worker-0{i}" for i in range(1, 6))
ALL_HEALTHY = dict.fromkeys(WORKERS, "healthy")
APP = {FRONT_HOST: "keybuzz-front", API_HOST: "keybuzz-api"}


# ---- helpers ------------------------------------------------------------------------------------
def hcloud_client(sb: Sandbox, token: str | None = None) -> hcloud.Client:
    """The official client as the wizard will build it: no proxies from the environment, fast
    action polling, and no sleeping between hcloud's own retries (they still happen)."""
    c = sb.hcloud_client(token=token, poll_interval=0.01)
    c._client._session.trust_env = False
    c._client._retry_interval_func = lambda retries: 0.0
    return c


def tls_context(sb: Sandbox) -> ssl.SSLContext:
    """What a browser trusting the sandbox CA does: verify the chain and the SNI name."""
    return ssl.create_default_context(cafile=str(sb.ca_path))


@dataclass(frozen=True)
class Lb:
    id: int
    ip: str  # public IPv4
    private_ip: str
    ports: dict[int, int]  # listen port -> port bound on loopback (80 -> 20080 when not root)

    def get(self, host: str, *, https: bool = False, ctx: ssl.SSLContext | None = None, path: str = "/", timeout: float = 10.0) -> Reply:
        port = self.ports[443 if https else 80]
        return http_request(self.ip, port, path, host=host, tls=ctx if https else None, timeout=timeout)


def health_check() -> LoadBalancerHealthCheck:
    return LoadBalancerHealthCheck(
        protocol="http",
        port=NODEPORT,
        interval=15,
        timeout=10,
        retries=3,
        http=LoadBalancerHealthCheckHttp(path="/healthz", status_codes=["2??", "3??"], tls=False),
    )


def create_runbook_lb(sb: Sandbox, c: hcloud.Client, name: str = "keybuzz-lb") -> Lb:
    """The runbook's Load Balancer, step by step as an operator (or the wizard) does it, waiting
    for every action: create attached to keybuzz-net, http 80 and https 443 (TLS on the LB) both
    to NodePort 31695, health check HTTP 31695 /healthz, then the workers by label over private IPs."""
    issued = sb.ca.issue(FRONT_HOST, API_HOST)
    cert = c.certificates.create(name=f"{name}-cert", certificate=issued.chain_pem, private_key=issued.key_pem)
    network = c.networks.get_by_name("keybuzz-net")
    assert network is not None
    resp = c.load_balancers.create(
        name=name,
        load_balancer_type=LoadBalancerType(name="lb11"),
        location=Location(name="fsn1"),
        network=network,
        algorithm=LoadBalancerAlgorithm(type="round_robin"),
        labels={"app": "keybuzz"},
    )
    resp.action.wait_until_finished()
    lb = c.load_balancers.get_by_id(resp.load_balancer.id)
    for svc in (
        LoadBalancerService(protocol="http", listen_port=80, destination_port=NODEPORT, proxyprotocol=False, health_check=health_check()),
        LoadBalancerService(
            protocol="https",
            listen_port=443,
            destination_port=NODEPORT,
            proxyprotocol=False,
            health_check=health_check(),
            http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)], redirect_http=False),
        ),
    ):
        lb.add_service(svc).wait_until_finished()
    target = LoadBalancerTarget(
        type="label_selector", label_selector=LoadBalancerTargetLabelSelector(selector="role=worker"), use_private_ip=True
    )
    lb.add_target(target).wait_until_finished()
    lb = c.load_balancers.get_by_id(lb.id)
    return Lb(lb.id, lb.public_net.ipv4.ip, lb.private_net[0].ip, dict(sb.call(sb.lb_plane.effective_ports, lb.id)))


def lb_from_info(sb: Sandbox, name: str) -> Lb:
    """An LB someone else created (the outage pre-install), found the way a client would:
    sandbox.json for the addresses."""
    info = json.loads(sb.info_path.read_text())
    entry = next(e for e in info["load_balancers"]["load_balancers"] if e["name"] == name)
    return Lb(entry["id"], entry["public_ipv4"], entry["private_ips"][0], {int(k): v for k, v in entry["ports"].items()})


def health(c: hcloud.Client, lb_id: int) -> dict[str, dict[int, Any]]:
    """server name -> {listen port: health status (with detail)}, as GET /load_balancers shows it."""
    names = {s.id: s.name for s in c.servers.get_all()}
    out: dict[str, dict[int, Any]] = {}
    for sid, port, h in iter_nested_health(c.load_balancers.get_by_id(lb_id)):
        out.setdefault(names[sid], {})[port] = h
    return out


def wait_health(c: hcloud.Client, lb_id: int, want: dict[str, str], ports: tuple[int, ...] = (80, 443), timeout: float = 60.0) -> dict[str, dict[int, Any]]:
    def check() -> dict[str, dict[int, Any]] | None:
        got = health(c, lb_id)
        ok = all(got.get(n, {}).get(p) is not None and got[n][p].status == st for n, st in want.items() for p in ports)
        return got if ok else None

    return wait_until(check, timeout, 0.05, f"LB health {want} on {ports}")  # type: ignore[no-any-return]


def deploy_hostnetwork(sb: Sandbox) -> None:
    """The runbook's fix through the kubernetes client: namespace keybuzz, DaemonSets keybuzz-api
    (hostNetwork 8080) and keybuzz-front (hostNetwork 3000) with /healthz readiness probes,
    NodePort Services 30080/30000, one Ingress for both hosts; then wait for both rollouts."""
    harness.create(sb, harness.keybuzz_hostnetwork())
    wait_daemonsets_ready(sb, "keybuzz", ("keybuzz-api", "keybuzz-front"))


def wait_daemonsets_ready(sb: Sandbox, ns: str, names: tuple[str, ...], count: int = 5) -> None:
    api = sb.kube_client()
    try:
        apps = k8s.AppsV1Api(api)

        def ready() -> bool:
            for n in names:
                st = apps.read_namespaced_daemon_set(n, ns).status
                if not (st.desired_number_scheduled == count and st.number_ready == count and st.updated_number_scheduled == count):
                    return False
            return True

        wait_until(ready, 60, 0.05, f"DaemonSets {names} ready on {count} nodes")
    finally:
        api.close()


def served_by(r: Reply) -> str:
    """The node whose app answered (both KeyBuzz apps say so in a header)."""
    return r.headers["X-KeyBuzz-Node"]


def ingress_nodes(sb: Sandbox, marker: str) -> Counter[str]:
    """Which workers' ingress-nginx handled requests whose path carries `marker`, from each
    controller pod's access log (`kubectl logs`): that is the LB target each request went to.
    (The app that answered says less: ingress balances over every node's hostNetwork pod.)"""
    api = sb.kube_client()
    try:
        core = k8s.CoreV1Api(api)
        hits: Counter[str] = Counter()
        for pod in core.list_namespaced_pod("ingress-nginx").items:
            log = core.read_namespaced_pod_log(pod.metadata.name, "ingress-nginx")
            n = sum(1 for line in log.splitlines() if f'] "GET {marker} HTTP/1.1" ' in line)  # access lines only
            if n:
                hits[pod.spec.node_name] = n
        return hits
    finally:
        api.close()


def through_lb(sb: Sandbox, lb: Lb, host: str, n: int, **kw: Any) -> tuple[list[Reply], Counter[str]]:
    """n requests through the LB with a fresh marker in the path: the replies, and the workers
    (LB targets) whose ingress-nginx took them."""
    marker = f"/version?probe={uuid.uuid4().hex}"
    replies = [lb.get(host, path=marker, **kw) for _ in range(n)]
    return replies, ingress_nodes(sb, marker)


def pod_node(sb: Sandbox, ns: str, selector: str) -> str:
    (pod,) = harness.pods(sb, ns, selector)
    return str(pod.spec.node_name)


def is_nginx_504(r: Reply) -> bool:
    """ingress-nginx's own 504 page (the LB relayed it: the LB's page would say HAProxy's words)."""
    return r.status == 504 and b"<title>504 Gateway Time-out</title>" in r.body and r.headers["Server"] == "nginx"


def resolve_a(sb: Sandbox, name: str) -> tuple[list[str], int]:
    answer = sb.resolver().resolve(name, "A")
    assert answer.rrset is not None
    return sorted(r.address for r in answer), answer.rrset.ttl


def create_a_records(c: hcloud.Client, ip: str, names: tuple[str, ...] = ("platform", "platform-api")) -> None:
    """DNS through hcloud's zones API: create the rrsets (or set their records), wait for all."""
    zone = c.zones.get("keybuzz.io")
    actions = []
    for name in names:
        try:
            actions.append(c.zones.create_rrset(zone, name=name, type="A", ttl=300, records=[ZoneRecord(value=ip)]).action)
        except APIException as e:
            assert e.code == "uniqueness_error"
            actions.append(c.zones.set_rrset_records(c.zones.get_rrset(zone, name, "A"), [ZoneRecord(value=ip)]))
    for a in actions:
        a.wait_until_finished()


# ---- a healthy world, configured like the runbook ------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = sandboxes.start(tmp_path_factory.mktemp("e2e-healthy"))
    yield sb
    sb.stop()


@pytest.fixture(scope="module")
def runbook(world: Sandbox) -> Lb:
    c = hcloud_client(world)
    lb = create_runbook_lb(world, c)
    deploy_hostnetwork(world)
    wait_health(c, lb.id, ALL_HEALTHY)
    return lb


def test_every_worker_target_turns_healthy_because_ingress_answers_on_31695(world: Sandbox, runbook: Lb) -> None:
    c = hcloud_client(world)
    lb = c.load_balancers.get_by_id(runbook.id)
    assert lb.private_net[0].network.id == c.networks.get_by_name("keybuzz-net").id
    assert {(s.protocol, s.listen_port, s.destination_port) for s in lb.services} == {("http", 80, NODEPORT), ("https", 443, NODEPORT)}
    (target,) = lb.targets
    assert target.type == "label_selector" and target.use_private_ip and target.label_selector.selector == "role=worker"
    got = wait_health(c, runbook.id, ALL_HEALTHY)
    assert set(got) == set(WORKERS)  # the K3s servers do not carry role=worker
    # the health check really is ingress-nginx's default server: ask a worker's NodePort directly
    w1 = harness.node_ip(world, "k3s-worker-01")
    assert harness.get(w1, NODEPORT, "/healthz").status == 200


def test_a_firewalled_worker_turns_unhealthy_and_back(world: Sandbox, runbook: Lb) -> None:
    c = hcloud_client(world)
    world.call(world.dataplane.set_firewall, "k3s-worker-02", NODEPORT, True)
    try:
        got = wait_health(c, runbook.id, {"k3s-worker-02": "unhealthy"})
        assert got["k3s-worker-02"][80].detail == "timeout: no HTTP response within 10 s"
        assert all(got[w][p].status == "healthy" for w in WORKERS if w != "k3s-worker-02" for p in (80, 443))
        # the LB keeps serving, from the four others only
        replies, targets = through_lb(world, runbook, API_HOST, 8)
        assert {r.status for r in replies} == {200}
        assert targets == Counter(dict.fromkeys(set(WORKERS) - {"k3s-worker-02"}, 2))
    finally:
        world.call(world.dataplane.set_firewall, "k3s-worker-02", NODEPORT, False)
    wait_health(c, runbook.id, ALL_HEALTHY)
    assert through_lb(world, runbook, API_HOST, 5)[1] == Counter(dict.fromkeys(WORKERS, 1))


def test_lb_routes_http_and_https_by_host_to_the_right_app(world: Sandbox, runbook: Lb) -> None:
    api = runbook.get(API_HOST, path="/version")
    assert api.status == 200 and api.headers["Server"] == "nginx"
    body = api.json()
    assert body["app"] == "keybuzz-api" and body["hostNetwork"] is True and body["namespace"] == "keybuzz"
    assert body["request"]["forwarded"]["X-Forwarded-Proto"] == "http"
    front = runbook.get(FRONT_HOST)
    assert front.status == 200 and b"<title>KeyBuzz" in front.body and front.headers["X-Powered-By"] == "Next.js"
    # the LB round-robins over the five workers' ingress; ingress over the five hostNetwork pods
    replies, targets = through_lb(world, runbook, FRONT_HOST, 10)
    assert targets == Counter(dict.fromkeys(WORKERS, 2))
    assert {r.status for r in replies} == {200} and {served_by(r) for r in replies} == set(WORKERS)

    # https: the uploaded certificate verifies against the sandbox CA for both names (SNI = Host)
    ctx = tls_context(world)
    front = runbook.get(FRONT_HOST, https=True, ctx=ctx)
    assert front.status == 200 and b"<title>KeyBuzz" in front.body
    api = runbook.get(API_HOST, https=True, ctx=ctx, path="/version")
    assert api.status == 200 and api.json()["request"]["forwarded"]["X-Forwarded-Proto"] == "https"
    with socket.create_connection((runbook.ip, runbook.ports[443]), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=FRONT_HOST) as tls:
        sans = {v for k, v in tls.getpeercert()["subjectAltName"] if k == "DNS"}
    assert sans == {FRONT_HOST, API_HOST}
    # the LB's private address serves the same thing
    assert http_request(runbook.private_ip, runbook.ports[80], host=API_HOST).status == 200


def test_a_records_created_with_hcloud_resolve_to_the_lb(world: Sandbox, runbook: Lb) -> None:
    c = hcloud_client(world)
    create_a_records(c, runbook.ip)
    for name in (FRONT_HOST, API_HOST):
        assert resolve_a(world, name) == ([runbook.ip], 300)
    rrset = c.zones.get_rrset(c.zones.get("keybuzz.io"), "platform-api", "A")
    assert [r.value for r in rrset.records] == [runbook.ip] and rrset.ttl == 300
    # ...and what the name resolves to is the way in
    (ip,), _ = resolve_a(world, API_HOST)
    assert http_request(ip, runbook.ports[80], host=API_HOST, path="/version").json()["app"] == "keybuzz-api"


# ---- the vxlan-blocked story: the classic install fails, the runbook's fix does not ---------------
OLD_NS = "keybuzz-old"


@pytest.fixture(scope="module")
def vxlan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Lb]]:
    sb = sandboxes.start(tmp_path_factory.mktemp("e2e-vxlan"), "vxlan-blocked")
    try:
        c = hcloud_client(sb)
        lb = create_runbook_lb(sb, c)
        # the classic install (one replica pinned to worker-01, ClusterIP Services, hosts old*.keybuzz.io)
        harness.create(sb, harness.keybuzz_clusterip("k3s-worker-01", OLD_NS))
        harness.wait_ready(sb, OLD_NS, "app=keybuzz-api", 1)
        harness.wait_ready(sb, OLD_NS, "app=keybuzz-front", 1)
        deploy_hostnetwork(sb)
        wait_health(c, lb.id, ALL_HEALTHY)
        yield sb, lb
    finally:
        sb.stop()


def test_vxlan_blocked_clusterip_install_504s_unless_the_lb_lands_on_the_pods_node(vxlan: tuple[Sandbox, Lb]) -> None:
    sb, lb = vxlan
    assert sb.dataplane.overlay_ok is False
    answers, targets = through_lb(sb, lb, "old-api.keybuzz.io", 10)
    assert targets == Counter(dict.fromkeys(WORKERS, 2))  # round robin: each worker twice
    assert Counter(r.status for r in answers) == {504: 8, 200: 2}
    assert all(is_nginx_504(r) for r in answers if r.status == 504)
    assert {served_by(r) for r in answers if r.status == 200} == {"k3s-worker-01"}
    assert all(r.json()["hostNetwork"] is False for r in answers if r.status == 200)
    # every target stays healthy: the LB's check only reaches ingress-nginx's default server
    assert set(wait_health(hcloud_client(sb), lb.id, ALL_HEALTHY)) == set(WORKERS)


def test_vxlan_blocked_hostnetwork_install_answers_200_on_every_worker(vxlan: tuple[Sandbox, Lb]) -> None:
    sb, lb = vxlan
    for host in (API_HOST, FRONT_HOST):
        answers, targets = through_lb(sb, lb, host, 10)
        assert {r.status for r in answers} == {200} and targets == Counter(dict.fromkeys(WORKERS, 2))
        assert all(r.headers["X-KeyBuzz-Pod"].startswith(APP[host] + "-") for r in answers)
    ctx = tls_context(sb)
    assert {lb.get(FRONT_HOST, https=True, ctx=ctx).status for _ in range(5)} == {200}
    for w in WORKERS:  # and on each worker's NodePort, without the LB
        assert harness.get(harness.node_ip(sb, w), NODEPORT, "/", host=API_HOST).status == 200


def test_the_overlay_switch_flips_the_classic_install_at_runtime(vxlan: tuple[Sandbox, Lb]) -> None:
    sb, lb = vxlan
    sb.call(sb.dataplane.set_overlay, True)
    try:
        assert {lb.get("old-api.keybuzz.io").status for _ in range(5)} == {200}
    finally:
        sb.call(sb.dataplane.set_overlay, False)
    assert Counter(lb.get("old-api.keybuzz.io").status for _ in range(5)) == {504: 4, 200: 1}


# ---- the outage scenario: production as it was on the day ------------------------------------------
@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    sb = sandboxes.start(tmp_path_factory.mktemp("e2e-outage"), "outage")
    yield sb
    sb.stop()


def test_outage_is_listed_and_describes_itself() -> None:
    assert "outage" in scenarios.available()
    listing = subprocess.run([str(Path(sys.executable).with_name("keybuzz-tui")), "sandbox", "--list"], capture_output=True, text=True, timeout=60)
    assert any(line.split()[:1] == ["outage"] for line in listing.stdout.splitlines()), listing.stdout
    sc = scenarios.load("outage")
    assert sc.overlay == "blocked" and "504" in sc.description
    plan = preinstall.parse(sc)
    assert plan is not None and plan.load_balancer is not None and plan.dns is not None
    assert [(s.protocol, s.listen_port, s.destination_port) for s in plan.load_balancer.services] == [("http", 80, NODEPORT), ("https", 443, NODEPORT)]


@pytest.mark.parametrize(
    ("install", "message"),
    [
        ({"load_balancer": {"name": "lb", "services": [{"protocol": "udp"}]}}, "install.load_balancer.services[0].protocol: expected one of http, https, tcp"),
        ({"load_balancer": {"name": "lb", "health_check": {"interval": 1}}}, "install.load_balancer.health_check.interval: expected an integer in 3..60"),
        ({"load_balancer": {"name": "lb", "targets": [{"label_selector": "role=worker"}]}}, "install.load_balancer.network: use_private_ip targets need"),
        ({"load_balancer": {"name": "lb", "services": [{"protocol": "https", "listen_port": 443, "destination_port": 31695}]}}, "an https service needs install.certificate"),
        ({"dns": {"records": [{"name": "platform", "value": "load_balancer"}]}}, "needs install.load_balancer"),
        ({"dns": {"records": [{"name": "platform"}]}}, "install.dns.records[0].value: give exactly one of value or values"),
        ({"certificate": {"type": "managed", "domains": ["a.keybuzz.io"]}}, "install.certificate.type: expected one of uploaded"),
        ({"firewall": {}}, "install: unknown field(s) firewall"),
    ],
)
def test_install_field_errors_name_the_field(install: dict[str, Any], message: str) -> None:
    sc = dataclasses.replace(scenarios.load("healthy"), install=install)
    with pytest.raises(scenarios.ScenarioError) as exc:
        preinstall.parse(sc)
    assert message in str(exc.value) and str(exc.value).startswith("healthy: ")


def test_a_refused_preinstall_stops_the_sandbox_and_says_which_step(tmp_path: Path) -> None:
    scenario = tmp_path / "outage-elsewhere.yaml"
    scenario.write_text("extends: outage\ninstall:\n  load_balancer:\n    network: office-net\n")
    sb = Sandbox(tmp_path / "state", scenarios.load(str(scenario)), net=free_net(sandboxes._start_net()), speed=sandboxes.TEST_SPEED)
    with pytest.raises(preinstall.PreinstallError, match="load balancer keybuzz-lb: network 'office-net' not found") as exc:
        sb.start()
    assert isinstance(exc.value, SandboxError)  # what `keybuzz-tui sandbox` reports as a usage error
    assert sb._thread is None  # stopped: nothing keeps serving behind the error
    assert harness.port_free(sb.addresses.api_host, sb.api_port)


def test_outage_kubernetes_side_is_the_classic_install(outage: Sandbox) -> None:
    api = outage.kube_client()
    try:
        apps, core, net = k8s.AppsV1Api(api), k8s.CoreV1Api(api), k8s.NetworkingV1Api(api)
        deps = {d.metadata.name: d for d in apps.list_namespaced_deployment("keybuzz").items}
        assert set(deps) == {"keybuzz-api", "keybuzz-front"}
        images = {n: (d.spec.template.spec.containers[0].image, d.spec.template.spec.containers[0].ports[0].container_port) for n, d in deps.items()}
        assert images == {"keybuzz-api": ("ghcr.io/keybuzz/api:1.4.2", 8080), "keybuzz-front": ("ghcr.io/keybuzz/front:1.4.2", 3000)}
        assert all(d.spec.replicas == 1 and d.status.ready_replicas == 1 for d in deps.values())
        assert not apps.list_namespaced_daemon_set("keybuzz").items
        svcs = {s.metadata.name: (s.spec.type, s.spec.ports[0].port) for s in core.list_namespaced_service("keybuzz").items}
        assert svcs == {"keybuzz-api": ("ClusterIP", 8080), "keybuzz-front": ("ClusterIP", 3000)}
        assert core.read_namespaced_secret("keybuzz-api-credentials", "keybuzz").data
        (ing,) = net.list_namespaced_ingress("keybuzz").items
        assert ing.spec.ingress_class_name == "nginx"
        assert {r.host: r.http.paths[0].backend.service.name for r in ing.spec.rules} == {FRONT_HOST: "keybuzz-front", API_HOST: "keybuzz-api"}
        assert all(harness.ready(p) for p in core.list_namespaced_pod("keybuzz").items)  # probes are node-local
    finally:
        api.close()


def test_outage_hetzner_side_was_configured_beforehand(outage: Sandbox) -> None:
    c = hcloud_client(outage)
    lb = c.load_balancers.get_by_name("keybuzz-lb")
    assert lb is not None and lb.load_balancer_type.name == "lb11" and lb.location.name == "fsn1"
    assert lb.algorithm.type == "round_robin" and lb.private_net[0].network.id == c.networks.get_by_name("keybuzz-net").id
    services = {s.listen_port: s for s in lb.services}
    assert {p: (s.protocol, s.destination_port) for p, s in services.items()} == {80: ("http", NODEPORT), 443: ("https", NODEPORT)}
    https = services[443]
    assert https.http.redirect_http is False
    cert = c.certificates.get_by_id(https.http.certificates[0].id)
    assert cert.type == "uploaded" and sorted(cert.domain_names) == [API_HOST, FRONT_HOST]
    for s in services.values():
        hc = s.health_check
        assert (hc.protocol, hc.port, hc.http.path, hc.interval, hc.timeout, hc.retries) == ("http", NODEPORT, "/healthz", 15, 10, 3)
    (target,) = lb.targets
    assert target.type == "label_selector" and target.label_selector.selector == "role=worker" and target.use_private_ip
    assert set(wait_health(c, lb.id, ALL_HEALTHY)) == set(WORKERS)
    # DNS already points at the LB
    for name in (FRONT_HOST, API_HOST):
        assert resolve_a(outage, name) == ([lb.public_net.ipv4.ip], 300)
    info = json.loads(outage.info_path.read_text())["install"]
    assert info["load_balancer_id"] == lb.id and info["load_balancer_ipv4"] == lb.public_net.ipv4.ip
    assert info["unsettled_targets"] == []


def test_outage_answers_mostly_504_through_the_lb_and_looks_intermittent(outage: Sandbox) -> None:
    """Round robin over five healthy workers: only the request that lands on the worker hosting
    the pod reaches it (same node, no VXLAN needed); the four others time out crossing the
    overlay, and ingress-nginx answers 504. One in five succeeding is why it looked intermittent."""
    lb = lb_from_info(outage, "keybuzz-lb")
    wait_health(hcloud_client(outage), lb.id, ALL_HEALTHY)
    for host, selector in ((API_HOST, "app=keybuzz-api"), (FRONT_HOST, "app=keybuzz-front")):
        answers, targets = through_lb(outage, lb, host, 10)
        assert targets == Counter(dict.fromkeys(WORKERS, 2))
        assert Counter(r.status for r in answers) == {504: 8, 200: 2}, host
        assert all(is_nginx_504(r) for r in answers if r.status == 504)
        assert {served_by(r) for r in answers if r.status == 200} == {pod_node(outage, "keybuzz", selector)}
    ctx = tls_context(outage)
    https = [lb.get(FRONT_HOST, https=True, ctx=ctx) for _ in range(5)]
    assert Counter(r.status for r in https) == {504: 4, 200: 1}


def test_the_runbook_fix_ends_the_outage(tmp_path: Path) -> None:
    """In a fresh outage world: replace the Deployments by hostNetwork DaemonSets and turn the
    Services into the runbook's NodePorts, touching nothing on the Hetzner side: 200 everywhere."""
    sb = sandboxes.start(tmp_path / "fix", "outage")
    try:
        api = sb.kube_client()
        apps, core = k8s.AppsV1Api(api), k8s.CoreV1Api(api)
        for name in ("keybuzz-api", "keybuzz-front"):
            apps.delete_namespaced_deployment(name, "keybuzz")
        manifests = {m["metadata"]["name"]: m for m in harness.keybuzz_hostnetwork() if m["kind"] == "DaemonSet"}
        for name, port, nodeport in (("keybuzz-api", 8080, 30080), ("keybuzz-front", 3000, 30000)):
            apps.create_namespaced_daemon_set("keybuzz", manifests[name])
            core.patch_namespaced_service(name, "keybuzz", {"spec": {"type": "NodePort", "ports": [{"name": "http", "port": port, "targetPort": port, "nodePort": nodeport}]}})
        api.close()
        wait_daemonsets_ready(sb, "keybuzz", ("keybuzz-api", "keybuzz-front"))
        lb = lb_from_info(sb, "keybuzz-lb")
        (ip,), _ = resolve_a(sb, FRONT_HOST)
        assert ip == lb.ip

        def all_200() -> bool:
            return all(lb.get(h).status == 200 for h in (API_HOST, FRONT_HOST) for _ in range(5))

        wait_until(all_200, 60, 0.1, "200 from every worker once the old pods are gone")
        assert {served_by(lb.get(API_HOST)) for _ in range(10)} == set(WORKERS)
    finally:
        sb.stop()


# ---- the Hetzner failure scenarios, through hcloud ---------------------------------------------------
def test_lb_target_unhealthy_scenario(tmp_path: Path) -> None:
    sb = sandboxes.start(tmp_path / "unhealthy", "lb-target-unhealthy")
    try:
        c = hcloud_client(sb)
        lb = create_runbook_lb(sb, c)
        harness.create(sb, harness.keybuzz_hostnetwork())
        wait_daemonsets_ready(sb, "keybuzz", ("keybuzz-api",))
        got = wait_health(c, lb.id, {**ALL_HEALTHY, "k3s-worker-02": "unhealthy"})
        assert got["k3s-worker-02"][80].detail.startswith("timeout")
        # traffic is still served, by the four healthy workers only
        replies, targets = through_lb(sb, lb, API_HOST, 8)
        assert {r.status for r in replies} == {200}
        assert targets == Counter(dict.fromkeys(set(WORKERS) - {"k3s-worker-02"}, 2))
        # lifting the UFW rule (what the wizard's remediation does) brings it back
        sb.call(sb.dataplane.set_firewall, "k3s-worker-02", NODEPORT, False)
        wait_health(c, lb.id, ALL_HEALTHY)
    finally:
        sb.stop()


def test_hetzner_readonly_token_scenario(tmp_path: Path) -> None:
    sb = sandboxes.start(tmp_path / "ro", "hetzner-readonly-token")
    try:
        assert sb.hcloud_token.startswith("hc_ro_") and f"HCLOUD_TOKEN={sb.hcloud_token}" in sb.hcloud_env_path.read_text()
        c = hcloud_client(sb)
        # reads work
        assert {s.name for s in c.servers.get_all(label_selector="role=worker")} == set(WORKERS)
        assert c.networks.get_by_name("keybuzz-net") is not None and c.zones.get("keybuzz.io").name == "keybuzz.io"
        # writes do not
        issued = sb.ca.issue(FRONT_HOST)
        for write in (
            lambda: c.certificates.create(name="x", certificate=issued.chain_pem, private_key=issued.key_pem),
            lambda: c.load_balancers.create(name="keybuzz-lb", load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1")),
            lambda: c.zones.create_rrset(c.zones.get("keybuzz.io"), name="platform", type="A", records=[ZoneRecord(value="127.0.0.1")]),
        ):
            with pytest.raises(APIException) as exc:
                write()
            assert exc.value.code == "token_readonly"
        assert c.load_balancers.get_all() == [] and c.certificates.get_all() == []
    finally:
        sb.stop()


def test_hetzner_rate_limit_scenario(tmp_path: Path) -> None:
    sb = sandboxes.start(tmp_path / "rl", "hetzner-rate-limit")
    try:
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {sb.hcloud_token}"
        first = s.get(f"{sb.hcloud_endpoint}/servers", timeout=5)
        assert first.status_code == 200 and first.headers["RateLimit-Limit"] == "40"
        remaining = int(first.headers["RateLimit-Remaining"])
        assert remaining == 39
        for _ in range(remaining):
            assert s.get(f"{sb.hcloud_endpoint}/locations", timeout=5).status_code == 200
        over = s.get(f"{sb.hcloud_endpoint}/servers", timeout=5)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded"
        assert over.headers["RateLimit-Remaining"] == "0" and int(over.headers["RateLimit-Reset"]) > time.time()
        # hcloud retries rate_limit_exceeded (no sleeping here), then gives up with the code
        with pytest.raises(APIException) as exc:
            hcloud_client(sb).servers.get_all()
        assert exc.value.code == "rate_limit_exceeded"
        s.close()
    finally:
        sb.stop()


def test_managed_certificate_failure_scenario(tmp_path: Path) -> None:
    sb = sandboxes.start(tmp_path / "mcf", "managed-certificate-failure")
    try:
        c = hcloud_client(sb)
        resp = c.certificates.create_managed(name="keybuzz-managed", domain_names=[FRONT_HOST, API_HOST])
        assert resp.certificate.status.issuance == "pending"
        with pytest.raises(ActionFailedException) as exc:
            resp.action.wait_until_finished()
        assert exc.value.action.error["code"] == "ca_dns_validation_failed"
        cert = c.certificates.get_by_id(resp.certificate.id)
        assert cert.status.issuance == "failed" and cert.status.error.code == "ca_dns_validation_failed"
        assert cert.certificate is None
    finally:
        sb.stop()


# ---- clients that misbehave, against the full world -------------------------------------------------
def _recv_all(s: socket.socket, limit: float = 3.0) -> bytes:
    s.settimeout(limit)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def _rst(s: socket.socket) -> None:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def test_the_world_survives_clients_that_disconnect_send_garbage_or_hold_connections(
    vxlan: tuple[Sandbox, Lb], caplog: pytest.LogCaptureFixture
) -> None:
    """The LB's ports (http, https), a NodePort, a hostPort and the DNS server (UDP and TCP),
    all at once, while connections are held open: every one keeps serving the well-behaved, and
    none of it is logged as an error (it is the clients' fault, and the sandbox's terminal is an
    operator's screen)."""
    sb, lb = vxlan
    w3 = harness.node_ip(sb, "k3s-worker-03")
    dns_host, dns_port = sb.dns.address
    http_ports = [(lb.ip, lb.ports[80]), (w3, NODEPORT), (w3, 8080)]
    held: list[socket.socket] = []
    try:
        # hold connections open everywhere: idle, half a request line, half a TLS hello, half a DNS frame
        for ip, port in http_ports:
            held.append(socket.create_connection((ip, port), timeout=5))
            s = socket.create_connection((ip, port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: plat")
            held.append(s)
        s = socket.create_connection((lb.ip, lb.ports[443]), timeout=5)
        s.sendall(b"\x16\x03\x01")
        held.append(s)
        s = socket.create_connection((dns_host, dns_port), timeout=5)
        s.sendall(b"\x00\x40\x12")  # announces 64 bytes, sends one
        held.append(s)

        # garbage: a 4xx or a close, never a hang
        for ip, port in http_ports:
            for junk in (b"\x16\x03\x01\x02\x00\x01\x00" + bytes(range(256)), b"HELLO\r\n\r\n", b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"):
                out = raw_exchange(ip, port, junk, half_close=False)
                assert out == b"" or out.split(b" ")[1][:1] == b"4", (ip, port, out[:40])
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 4):
            assert not raw_exchange(lb.ip, lb.ports[443], junk, half_close=False).startswith(b"HTTP")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            for junk in (b"", b"\x00", bytes(range(256)), b"\xff" * 12 + b"\x07example\x00"):
                u.sendto(junk, (dns_host, dns_port))
        for junk in (b"\x00\x05hello", b"\xff\xff" + b"x" * 100, b"\x00\x00"):
            raw_exchange(dns_host, dns_port, junk, timeout=2)

        # disconnects: connect-and-leave, RST mid-request, RST while ingress waits on the blocked overlay
        for _ in range(20):
            for ip, port in [*http_ports, (lb.ip, lb.ports[443]), (dns_host, dns_port)]:
                socket.create_connection((ip, port), timeout=2).close()
        for ip, port, req in (
            (lb.ip, lb.ports[80], b"GET / HTTP/1.1\r\nHost: old-api.keybuzz.io\r\n\r\n"),  # 5 s connect timeout upstream
            (w3, NODEPORT, b"GET / HTTP/1.1\r\nHost: old-api.keybuzz.io\r\n\r\n"),
            (w3, 8080, b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\npartial"),
        ):
            s = socket.create_connection((ip, port), timeout=5)
            s.sendall(req)
            _rst(s)

        # meanwhile, concurrent well-behaved clients are all served
        results: list[int] = []
        lock = threading.Lock()

        def client(i: int) -> None:
            if i % 4 == 0:
                r = lb.get(API_HOST, https=True, ctx=tls_context(sb))
            else:
                ip, port = http_ports[i % 3]
                r = http_request(ip, port, "/healthz", host=API_HOST)
            with lock:
                results.append(r.status)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 40
        q = dns.message.make_query("keybuzz.io", dns.rdatatype.SOA)
        for ask in (dns.query.udp, dns.query.tcp):
            answer = ask(q, dns_host, port=dns_port, timeout=5)
            assert answer.rcode() == dns.rcode.NOERROR and answer.answer[0].rdtype == dns.rdatatype.SOA
    finally:
        for s in held:
            s.close()
    assert sb.call(lambda: 42) == 42 and not sb.cluster.manager.errors
    wait_health(hcloud_client(sb), lb.id, ALL_HEALTHY)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

"""Engine test fixtures: a KeyBuzz install put into a sandbox directly, without the engine's steps.

Why: validation, the trace, the doctor and the board must be testable while the install steps are
still being written (and independently of them, so a bug in `apply` cannot hide a bug in
`validate`). So this module installs the runbook's topology the way an operator would by hand:
the Kubernetes objects with the official kubernetes client, the Hetzner side (certificate, Load
Balancer, DNS records) with the official hcloud client, against the running sandbox.

`install_keybuzz_directly(sb)` gives the runbook's result (hostNetwork DaemonSets 8080/3000,
NodePorts 30080/30000, one Ingress, LB 80/443 -> 31695 with an uploaded certificate, A records
to the LB). `topology="classic"` gives the install that broke in production instead (Deployments
with one replica pinned to one worker, ClusterIP Services): with the vxlan-blocked scenario it
answers 504 through every other worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keybuzz_tui.sandbox.runtime import Sandbox
from keybuzz_tui.sandbox.tls import IssuedCert

T = TypeVar("T")

NAMESPACE = "keybuzz"
API = {"name": "keybuzz-api", "image": "ghcr.io/keybuzz/api:1.4.2", "port": 8080, "node_port": 30080, "host": "platform-api.keybuzz.io"}
FRONT = {"name": "keybuzz-front", "image": "ghcr.io/keybuzz/front:1.4.2", "port": 3000, "node_port": 30000, "host": "platform.keybuzz.io"}
APPS = (API, FRONT)
HOSTS = (FRONT["host"], API["host"])
WORKERS = tuple(f"k3s-worker-0{i}" for i in range(1, 6))
LB_NAME = "keybuzz-lb"
CERT_NAME = "keybuzz-platform"
ZONE = "keybuzz.io"
INGRESS_NODEPORT = 31695
PART_OF = {"app.kubernetes.io/part-of": "keybuzz"}


def wait_for(pred: Callable[[], T], timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `pred` until it returns something truthy, or fail with what was awaited (tests only)."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


@dataclass
class KeybuzzInstall:
    """What install_keybuzz_directly created (ids and addresses tests assert against)."""

    topology: str
    namespace: str = NAMESPACE
    lb_id: int | None = None
    lb_ipv4: str | None = None
    lb_private_ip: str | None = None
    certificate_id: int | None = None
    certificate: IssuedCert | None = None
    records: dict[str, list[str]] = field(default_factory=dict)
    classic_node: str | None = None


# --- Kubernetes manifests ------------------------------------------------------------------------


def _labels(app: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app, **PART_OF}


def hostnetwork_daemonset(app: dict[str, Any], ns: str = NAMESPACE) -> dict[str, Any]:
    sel = {"app.kubernetes.io/name": app["name"]}
    port = app["port"]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": app["name"], "namespace": ns, "labels": _labels(app["name"])},
        "spec": {
            "selector": {"matchLabels": sel},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": _labels(app["name"])},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "containers": [
                        {
                            "name": app["name"].removeprefix("keybuzz-"),
                            "image": app["image"],
                            "ports": [{"name": "http", "containerPort": port, "hostPort": port, "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": port}, "periodSeconds": 5, "timeoutSeconds": 2},
                        }
                    ],
                },
            },
        },
    }


def classic_deployment(app: dict[str, Any], node: str, ns: str = NAMESPACE) -> dict[str, Any]:
    sel = {"app.kubernetes.io/name": app["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app["name"], "namespace": ns, "labels": _labels(app["name"])},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": _labels(app["name"])},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": node},
                    "containers": [
                        {
                            "name": app["name"].removeprefix("keybuzz-"),
                            "image": app["image"],
                            "ports": [{"name": "http", "containerPort": app["port"], "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                        }
                    ],
                },
            },
        },
    }


def app_service(app: dict[str, Any], *, node_port: bool, ns: str = NAMESPACE) -> dict[str, Any]:
    port: dict[str, Any] = {"name": "http", "port": app["port"], "targetPort": app["port"], "protocol": "TCP"}
    spec: dict[str, Any] = {"selector": {"app.kubernetes.io/name": app["name"]}, "ports": [port]}
    if node_port:
        spec["type"] = "NodePort"
        port["nodePort"] = app["node_port"]
    else:
        spec["type"] = "ClusterIP"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app["name"], "namespace": ns, "labels": _labels(app["name"])}, "spec": spec}


def keybuzz_ingress(ns: str = NAMESPACE) -> dict[str, Any]:
    rules = [
        {
            "host": a["host"],
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": a["name"], "port": {"number": a["port"]}}}}]},
        }
        for a in (FRONT, API)
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "keybuzz", "namespace": ns, "labels": dict(PART_OF)},
        "spec": {"ingressClassName": "nginx", "rules": rules},
    }


def install_kubernetes(sb: Sandbox, topology: str = "hostnetwork", *, classic_node: str = "k3s-worker-01", ns: str = NAMESPACE) -> None:
    """The Kubernetes half, created with the official client's typed APIs (dict bodies)."""
    from kubernetes import client

    api = sb.kube_client()
    try:
        core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(PART_OF)}})
        for app in APPS:
            if topology == "hostnetwork":
                apps.create_namespaced_daemon_set(ns, hostnetwork_daemonset(app, ns))
                core.create_namespaced_service(ns, app_service(app, node_port=True, ns=ns))
            elif topology == "classic":
                apps.create_namespaced_deployment(ns, classic_deployment(app, classic_node, ns))
                core.create_namespaced_service(ns, app_service(app, node_port=False, ns=ns))
            else:
                raise ValueError(f"unknown topology {topology!r}: hostnetwork or classic")
        net.create_namespaced_ingress(ns, keybuzz_ingress(ns))
    finally:
        api.close()


# --- the Hetzner half ------------------------------------------------------------------------------


def install_hetzner(sb: Sandbox, inst: KeybuzzInstall, *, dns_value: str | None = None) -> None:
    """Certificate (issued by the sandbox CA, uploaded), LB keybuzz-lb on keybuzz-net with http 80
    and https 443 -> 31695, health check HTTP 31695 /healthz, label-selector targets role=worker on
    private IPs, and A records platform / platform-api -> the LB (or `dns_value`)."""
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

    hc = sb.hcloud_client(poll_interval=0.02)
    hc._client._session.trust_env = False  # loopback only: never a proxy from the environment
    try:
        issued = sb.ca.issue(*HOSTS)
        cert = hc.certificates.create(name=CERT_NAME, certificate=issued.chain_pem, private_key=issued.key_pem, labels={"app": "keybuzz"})
        inst.certificate, inst.certificate_id = issued, cert.id
        network = hc.networks.get_by_name("keybuzz-net")
        assert network is not None, "the sandbox has no network keybuzz-net"

        def check() -> LoadBalancerHealthCheck:
            return LoadBalancerHealthCheck(
                protocol="http", port=INGRESS_NODEPORT, interval=15, timeout=10, retries=3,
                http=LoadBalancerHealthCheckHttp(domain=None, path="/healthz", response=None, status_codes=["2??", "3??"], tls=False),
            )

        services = [
            LoadBalancerService(protocol="http", listen_port=80, destination_port=INGRESS_NODEPORT, proxyprotocol=False, health_check=check()),
            LoadBalancerService(
                protocol="https", listen_port=443, destination_port=INGRESS_NODEPORT, proxyprotocol=False, health_check=check(),
                http=LoadBalancerServiceHttp(certificates=[Certificate(id=cert.id)], redirect_http=False),
            ),
        ]
        targets = [LoadBalancerTarget(type="label_selector", label_selector=LoadBalancerTargetLabelSelector(selector="role=worker"), use_private_ip=True)]
        resp = hc.load_balancers.create(
            name=LB_NAME, load_balancer_type=LoadBalancerType(name="lb11"), location=Location(name="fsn1"), network=network,
            algorithm=LoadBalancerAlgorithm(type="round_robin"), labels={"app": "keybuzz", "managed-by": "keybuzz-tui"},
            services=services, targets=targets,
        )
        resp.action.wait_until_finished(max_retries=2000)
        lb = resp.load_balancer
        inst.lb_id = lb.id
        inst.lb_ipv4 = lb.public_net.ipv4.ip if lb.public_net and lb.public_net.ipv4 else None
        inst.lb_private_ip = lb.private_net[0].ip if lb.private_net else None
        zone = hc.zones.get(ZONE)
        actions = []
        for host in HOSTS:
            name = host[: -len(ZONE) - 1]
            value = dns_value or inst.lb_ipv4
            assert value
            actions.append(hc.zones.create_rrset(zone, name=name, type="A", ttl=300, records=[ZoneRecord(value=value)]).action)
            inst.records[host] = [value]
        for a in actions:
            a.wait_until_finished(max_retries=2000)
    finally:
        hc._client._session.close()


def set_dns_a(sb: Sandbox, host: str, value: str) -> None:
    """Point one A record somewhere else (e.g. an old IP), through the Hetzner API."""
    from hcloud.zones import ZoneRecord

    hc = sb.hcloud_client(poll_interval=0.02)
    hc._client._session.trust_env = False
    try:
        zone = hc.zones.get(ZONE)
        rrset = hc.zones.get_rrset(zone, host[: -len(ZONE) - 1], "A")
        hc.zones.set_rrset_records(rrset, [ZoneRecord(value=value)]).wait_until_finished(max_retries=2000)
    finally:
        hc._client._session.close()


def lb_target_health(sb: Sandbox, lb_id: int) -> dict[str, dict[int, str]]:
    """server name -> {listen port: status}, as GET /load_balancers/{id} reports it."""
    hc = sb.hcloud_client()
    hc._client._session.trust_env = False
    try:
        names = {s.id: s.name for s in hc.servers.get_all()}
        lb = hc.load_balancers.get_by_id(lb_id)
        out: dict[str, dict[int, str]] = {}
        for t in lb.targets or []:
            subs = t.targets if t.type == "label_selector" else [t]
            for s in subs or []:
                out[names.get(s.server.id, str(s.server.id))] = {h.listen_port: h.status for h in s.health_status or []}
        return out
    finally:
        hc._client._session.close()


# --- waiting -------------------------------------------------------------------------------------


def _pods(sb: Sandbox, ns: str) -> list[Any]:
    from kubernetes import client

    api = sb.kube_client()
    try:
        return list(client.CoreV1Api(api).list_namespaced_pod(ns).items)
    finally:
        api.close()


def pod_ready(p: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))


def wait_pods_ready(sb: Sandbox, count: int, ns: str = NAMESPACE, timeout: float = 30.0) -> list[Any]:
    def ready() -> list[Any] | None:
        ps = [p for p in _pods(sb, ns) if not p.metadata.deletion_timestamp]
        return ps if len(ps) == count and all(pod_ready(p) for p in ps) else None

    return wait_for(ready, timeout, 0.1, f"{count} Ready pods in {ns}")


def wait_lb_settled(sb: Sandbox, lb_id: int, timeout: float = 20.0, healthy: int | None = None) -> dict[str, dict[int, str]]:
    """Until no target is `unknown` any more (and, if given, `healthy` workers are healthy on every port)."""

    def settled() -> dict[str, dict[int, str]] | None:
        h = lb_target_health(sb, lb_id)
        if not h or any(st == "unknown" for ports in h.values() for st in ports.values()):
            return None
        if healthy is not None and sum(all(st == "healthy" for st in p.values()) for p in h.values()) < healthy:
            return None
        return h

    return wait_for(settled, timeout, 0.1, "load balancer targets to settle")


def install_keybuzz_directly(
    sb: Sandbox,
    *,
    topology: str = "hostnetwork",
    classic_node: str = "k3s-worker-01",
    wait_ready: bool = True,
    ready_timeout: float = 30.0,
    dns_value: str | None = None,
) -> KeybuzzInstall:
    """Install KeyBuzz into a running sandbox by hand (see the module docstring).

    `wait_ready`: wait until every app pod is Ready (10 for hostnetwork on the 5 workers, 2 for
    classic) and the LB's targets are all healthy. Broken scenarios pass False and wait for their
    own condition (a CrashLoopBackOff, an unhealthy target) with `wait_for`.
    """
    inst = KeybuzzInstall(topology=topology, classic_node=classic_node if topology == "classic" else None)
    install_kubernetes(sb, topology, classic_node=classic_node)
    install_hetzner(sb, inst, dns_value=dns_value)
    if wait_ready:
        wait_pods_ready(sb, 2 * len(WORKERS) if topology == "hostnetwork" else 2, timeout=ready_timeout)
        assert inst.lb_id is not None
        wait_lb_settled(sb, inst.lb_id, healthy=len(WORKERS))
    return inst


# --- engine contexts against a sandbox (tests/engine/test_lb.py, test_dns.py, test_firewall.py) ---


class DictSecrets:
    """A SecretSource for tests: named secrets from a dict (e.g. "certificate-key"), no keyring."""

    def __init__(self, values: dict[str, str] | None = None, token: str | None = None) -> None:
        self.values = dict(values or {})
        self.token = token

    def hcloud_token(self) -> str | None:
        return self.token

    def app_secret(self, app: str, key: str) -> str | None:
        return self.values.get(f"{app}/{key}")

    def get(self, name: str) -> str | None:
        return self.values.get(name)


def engine_context(
    sb: Sandbox, journal_path: Any = None, config: Any = None, *, secrets: Any = None, token: str | None = None, poll_interval: float = 0.05
) -> tuple[Any, Any]:
    """(Context, Recorder) for a running sandbox: endpoints from its state dir, events recorded,
    a journal at `journal_path` (None: no journal), hcloud's 429/409 backoff sleeps cut to zero
    (the retries still happen) so rate-limit tests stay fast, and the client's action poll
    interval set to `poll_interval` (the sandbox runs its actions 25x faster than Hetzner).
    `token` overrides hcloud.env's."""
    from pathlib import Path

    from keybuzz_tui.config import Config
    from keybuzz_tui.engine.context import Context, Endpoints
    from keybuzz_tui.events import Recorder
    from keybuzz_tui.journal import Journal

    endpoints = Endpoints.from_sandbox(sb.state_dir)
    if token is not None:
        endpoints.hcloud_token_env = token
    rec = Recorder()
    ctx = Context(config or Config(), endpoints, secrets or DictSecrets(), sink=rec,
                  journal=Journal(Path(journal_path)) if journal_path is not None else None)
    client = ctx.hcloud()
    if client is not None:
        client._client._retry_interval_func = lambda retries: 0.0
        client._client._poll_interval_func = lambda retries: poll_interval
        client._client._session.trust_env = False
    return ctx, rec


# --- plan / apply / rollout (tests/engine/test_kube.py, test_rollout.py) ---------------------------

# canary values: tests assert that none of them (nor their base64) ever reaches a plan, an export,
# an event or the journal
APP_SECRET_VALUES = {
    "keybuzz-api/DATABASE_URL": "postgres://keybuzz:canary-db-Zq81x@postgres.internal:5432/keybuzz",
    "keybuzz-api/JWT_SECRET": "canary-jwt-7f3c9a1e5b2d4f60a8c1e9b7d3f5a2c4e6b8d0f1a3c5e7b9",
    "keybuzz-api/API_ENCRYPTION_KEY": "canary-enc-4b8d2f6a0c4e8b2d6f0a",
    "keybuzz-front/SESSION_SECRET": "canary-session-9e1d7c5b3a1f9e7d5c3b1a9f7e5d3c1b",
}


def app_secrets(**overrides: str) -> DictSecrets:
    """The four app secrets of the default keybuzz.yaml (keys "app/KEY"), overridable."""
    values = dict(APP_SECRET_VALUES)
    values.update({k.replace("__", "/"): v for k, v in overrides.items()})
    return DictSecrets(values)


def isolated_config(namespace: str = NAMESPACE, slot: int | None = None) -> Any:
    """The default keybuzz.yaml in `namespace`; with `slot`, ports, NodePorts and hostnames of its
    own, so several installs can share one sandbox (hostPorts are per node, NodePorts cluster-wide)."""
    from keybuzz_tui.config import Config

    cfg = Config()
    cfg.namespace = namespace
    if slot is not None:
        api, front = cfg.apps
        api.port, front.port = 18080 + 10 * slot, 13000 + 10 * slot
        api.node_port, front.node_port = 30100 + 2 * slot, 30101 + 2 * slot
        api.host, front.host = f"platform-api-s{slot}.keybuzz.io", f"platform-s{slot}.keybuzz.io"
    return cfg

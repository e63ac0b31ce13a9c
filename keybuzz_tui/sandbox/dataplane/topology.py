"""Where a packet goes: the cluster's addressing rules as one synchronous function, `reach()`.

Three address families exist in a K3s cluster and the sandbox keeps their rules apart:
- node IPs (the underlay, 127.N.10.x here, 10.0.0.x in production): always routable; what listens
  there is the host network table (hostNetwork pods, host processes) or kube-proxy's NodePorts;
- pod IPs (10.42.0.0/16, Flannel's overlay): same node is a local bridge, another node needs the
  VXLAN tunnel (UDP 8472) - the thing Hetzner dropped;
- ClusterIPs (10.43.0.0/16): kube-proxy DNATs to one ready endpoint, then the rules above apply.

Everything here is pure bookkeeping over the store and the kubelet's run records, so probes, the
debug-pod toolbox and the decision of where a real connection goes all share one answer.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..kube.registry import core
from . import apps
from .apps import AppTarget

if TYPE_CHECKING:
    from .plane import DataPlane

SERVICES = core("services")
ENDPOINTS = core("endpoints")
PODS = core("pods")
POD_CIDR = ipaddress.ip_network("10.42.0.0/16")
SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str | None
    pod: str  # "namespace/name" or "" for manual endpoints


@dataclass(frozen=True)
class Reach:
    """What a connection to ip:port from a node meets."""

    kind: str  # "serve" | "refused" | "timeout" | "unreachable"
    ip: str
    port: int
    target: AppTarget | None = None
    via: tuple[str, ...] = ()  # the hops taken (ClusterIP, NodePort) for explanations

    @property
    def ok(self) -> bool:
        return self.kind == "serve"


@dataclass(frozen=True)
class NodePortRule:
    nodeport: int
    namespace: str
    service: str
    port_name: str
    port: int
    local: bool  # externalTrafficPolicy: Local


def in_pod_cidr(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in POD_CIDR
    except ValueError:
        return False


def in_service_cidr(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in SERVICE_CIDR
    except ValueError:
        return False


class Topology:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.store = plane.cluster.store
        self.rand = random.Random(plane.cluster.scenario.dataplane.get("seed"))
        self.node_ips: dict[str, str] = {n.name: n.private_ip for n in plane.cluster.addresses.nodes()}
        self.node_by_ip: dict[str, str] = {ip: n for n, ip in self.node_ips.items()}
        self.nodeports: dict[int, NodePortRule] = {}
        self.cluster_ips: dict[str, tuple[str, str]] = {}
        self._pods_by_ip: dict[str, tuple[str, str]] | None = None

    # --- indexes, kept by the store listener ---------------------------------------------------

    def rebuild_services(self) -> None:
        nodeports: dict[int, NodePortRule] = {}
        cips: dict[str, tuple[str, str]] = {}
        for svc in self.store.list(SERVICES):
            meta, spec = svc["metadata"], svc.get("spec") or {}
            cip = spec.get("clusterIP")
            if cip and cip != "None":
                cips[cip] = (meta["namespace"], meta["name"])
            if spec.get("type") not in ("NodePort", "LoadBalancer"):
                continue
            local = spec.get("externalTrafficPolicy") == "Local"
            for p in spec.get("ports") or []:
                if p.get("nodePort") and p.get("protocol", "TCP") == "TCP":
                    nodeports[int(p["nodePort"])] = NodePortRule(int(p["nodePort"]), meta["namespace"], meta["name"], str(p.get("name") or ""), int(p["port"]), local)
        self.nodeports, self.cluster_ips = nodeports, cips

    def pods_changed(self) -> None:
        self._pods_by_ip = None

    def pod_at(self, ip: str) -> tuple[dict[str, Any], Any] | None:
        """(pod object, kubelet run record) of the overlay pod holding ip."""
        if self._pods_by_ip is None:
            self._pods_by_ip = {}
            for key, run in self.plane.kubelet.runs.items():
                if in_pod_cidr(run.ip):
                    self._pods_by_ip[run.ip] = key
        key = self._pods_by_ip.get(ip)
        if key is None:
            return None
        run = self.plane.kubelet.runs.get(key)
        pod = self.store.get(PODS, key[0], key[1])
        if run is None or pod is None or run.ip != ip:
            return None
        return pod, run

    # --- endpoints -------------------------------------------------------------------------

    def ready_endpoints(self, namespace: str, service: str, port_name: str, proto: str = "TCP") -> list[Endpoint]:
        ep = self.store.get(ENDPOINTS, namespace, service)
        out: list[Endpoint] = []
        for subset in (ep or {}).get("subsets") or []:
            ports = subset.get("ports") or []
            match = [p for p in ports if str(p.get("name") or "") == port_name and p.get("protocol", "TCP") == proto]
            if not match and len(ports) == 1 and not port_name:
                match = ports
            if not match:
                continue
            port = int(match[0]["port"])
            for a in subset.get("addresses") or []:
                ref = a.get("targetRef") or {}
                out.append(Endpoint(a["ip"], port, a.get("nodeName"), f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""))
        return out

    def service_port(self, namespace: str, service: str, port: int | str, proto: str = "TCP") -> dict[str, Any] | None:
        svc = self.store.get(SERVICES, namespace, service)
        for p in ((svc or {}).get("spec") or {}).get("ports") or []:
            if p.get("protocol", "TCP") != proto:
                continue
            if (isinstance(port, int) and p.get("port") == port) or (isinstance(port, str) and p.get("name") == port):
                return p
        return None

    def nodeport_pick(self, node: str, nodeport: int) -> tuple[Endpoint | None, str]:
        """kube-proxy on `node` for a NodePort: an endpoint, or why not ("reject": no endpoints at
        all, iptables REJECT; "drop": Local policy and none on this node, iptables DROP)."""
        rule = self.nodeports.get(nodeport)
        if rule is None:
            return None, "none"
        eps = self.ready_endpoints(rule.namespace, rule.service, rule.port_name)
        if not eps:
            return None, "reject"
        if rule.local:
            eps = [e for e in eps if e.node == node]
            if not eps:
                return None, "drop"
        return self.rand.choice(eps), ""

    # --- the rules ---------------------------------------------------------------------------

    def overlay_path_ok(self, from_node: str | None, to_node: str | None) -> bool:
        return self.plane.overlay_ok or from_node is None or from_node == to_node

    def reach(self, from_node: str | None, ip: str, port: int, *, proto: str = "TCP", _via: tuple[str, ...] = ()) -> Reach:
        if len(_via) > 4:
            return Reach("refused", ip, port, via=_via)
        if ip in self.node_by_ip:
            node = self.node_by_ip[ip]
            if proto == "TCP" and port in self.nodeports:
                ep, why = self.nodeport_pick(node, port)
                hop = (*_via, f"nodePort {ip}:{port}")
                if ep is None:
                    return Reach("timeout" if why == "drop" else "refused", ip, port, via=hop)
                return self.reach(node, ep.ip, ep.port, proto=proto, _via=hop)
            b = self.plane.ports.get(node, port, proto)
            if b is None or b.target is None:
                return Reach("refused", ip, port, via=_via)
            return Reach("serve", ip, port, b.target, _via)
        if in_pod_cidr(ip):
            found = self.pod_at(ip)
            if found is None:
                return Reach("unreachable", ip, port, via=_via)
            pod, run = found
            if not self.overlay_path_ok(from_node, run.node):
                return Reach("timeout", ip, port, via=(*_via, f"overlay {from_node} -> {run.node} (VXLAN blocked)"))
            target = self.pod_target(pod, run, port)
            if target is None:
                return Reach("refused", ip, port, via=_via)
            return Reach("serve", ip, port, target, _via)
        if in_service_cidr(ip):
            svc = self.cluster_ips.get(ip)
            sp = self.service_port(svc[0], svc[1], port, proto) if svc else None
            if svc is None or sp is None:
                return Reach("timeout", ip, port, via=_via)  # no kube-proxy rule: the packet goes nowhere
            eps = self.ready_endpoints(svc[0], svc[1], str(sp.get("name") or ""), proto)
            if not eps:
                return Reach("refused", ip, port, via=_via)  # KUBE-SVC ... has no endpoints: REJECT
            ep = self.rand.choice(eps)
            return self.reach(from_node, ep.ip, ep.port, proto=proto, _via=(*_via, f"clusterIP {ip}:{port} -> {ep.ip}:{ep.port}"))
        return Reach("unreachable", ip, port, via=_via)

    def pod_target(self, pod: dict[str, Any], run: Any, port: int) -> AppTarget | None:
        """The running container of an overlay pod that listens on `port`."""
        for c in (pod.get("spec") or {}).get("containers") or []:
            ct = run.containers.get(c.get("name"))
            if ct is None or ct.state != "running" or ct.exit_code is not None:
                continue
            t = apps.for_container(pod, run.node, run.ip, c, ct.image, port)
            if t is not None:
                return t
        return None

"""What CoreDNS answers, and which resolver a pod uses.

A pod's resolv.conf follows its dnsPolicy (reference/kubernetes.md 3e): ClusterFirst on an overlay
pod and ClusterFirstWithHostNet point at the kube-dns ClusterIP, which is reached through the
overlay rules - so with VXLAN blocked, lookups from nodes other than CoreDNS's time out, as the
runbook saw. Default (and ClusterFirst on a hostNetwork pod) use the node's resolvers, which know
nothing about cluster.local.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..kube.registry import core

SERVICES = core("services")
ENDPOINTS = core("endpoints")
DNS_SERVICE = ("kube-system", "kube-dns")
DEFAULT_DNS_IP = "10.43.0.10"
NODE_RESOLVERS = ("185.12.64.1", "185.12.64.2")  # Hetzner's recursive resolvers, as on the nodes
DOMAIN = "cluster.local"


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    ndots: int
    cluster: bool  # True when the nameserver is CoreDNS

    def text(self) -> list[str]:
        lines = []
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.cluster:
            lines.append(f"options ndots:{self.ndots}")
        return lines


def dns_ip(store: Any) -> str:
    svc = store.get(SERVICES, *DNS_SERVICE)
    return ((svc or {}).get("spec") or {}).get("clusterIP") or DEFAULT_DNS_IP


def resolv_conf(store: Any, pod: dict[str, Any]) -> ResolvConf:
    spec = pod.get("spec") or {}
    ns = pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_net = bool(spec.get("hostNetwork"))
    if policy == "None":
        cfg = spec.get("dnsConfig") or {}
        return ResolvConf(tuple(cfg.get("nameservers") or ()), tuple(cfg.get("searches") or ()), 5, False)
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_net):
        return ResolvConf((dns_ip(store),), (f"{ns}.svc.{DOMAIN}", f"svc.{DOMAIN}", DOMAIN), 5, True)
    return ResolvConf(NODE_RESOLVERS, (), 1, False)


def candidates(name: str, rc: ResolvConf) -> list[str]:
    if name.endswith("."):
        return [name[:-1]]
    expanded = [f"{name}.{s}" for s in rc.search]
    return [name, *expanded] if name.count(".") >= rc.ndots else [*expanded, name]


def answer(store: Any, node_ips: dict[str, str], fqdn: str) -> list[str]:
    """CoreDNS's A records: Services (ClusterIP, or the endpoints of a headless one) and, as K3s
    adds to its Corefile, every node's name (NodeHosts)."""
    fqdn = fqdn.lower().rstrip(".")
    if fqdn in node_ips:
        return [node_ips[fqdn]]
    parts = fqdn.split(".")
    if len(parts) == 5 and parts[2] == "svc" and ".".join(parts[3:]) == DOMAIN:
        svc = store.get(SERVICES, parts[1], parts[0])
        if svc is None:
            return []
        cip = (svc.get("spec") or {}).get("clusterIP")
        if cip and cip != "None":
            return [cip]
        ep = store.get(ENDPOINTS, parts[1], parts[0]) or {}
        return sorted({a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []})
    return []


def lookup(store: Any, node_ips: dict[str, str], name: str, rc: ResolvConf) -> tuple[str, list[str]] | None:
    for c in candidates(name, rc):
        ips = answer(store, node_ips, c)
        if ips:
            return c, ips
    return None

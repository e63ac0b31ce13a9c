"""Where a failing check gets fixed: the wizard step that can repair it, the Doctor, or the exact
commands to run on a node when the fault is outside keybuzz-tui's reach.

Why per fault and not per layer: the same check fails for faults repaired in different places.
`node.nodeport` fails when UFW drops the port on a worker (no wizard step can open a node's own
firewall: the operator runs `ufw allow` there), when the node is NotReady (the Doctor names the
kubelet), or when kube-proxy refuses (the Doctor). The judges in checks_node/checks_cloud/
checks_kube put the fault's kind in each failing item's evidence (`"fix": "host-firewall"`, with
the node and port); `fix_for` reads it back, and falls back to the check's usual place.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .checks_base import CheckRecord, join_names

# a wizard step id (screens/widgets.STEPS), "doctor" or "commands"
PLACES = ("review", "rollout", "ports", "lb", "dns", "credentials", "doctor", "commands")

# fault kind -> (place, why that place)
KINDS: dict[str, tuple[str, str]] = {
    "node": ("doctor", "a worker is NotReady: its kubelet is outside the wizard's reach; the Doctor names the cause"),
    "host-firewall": ("commands", "a node's own firewall (UFW) drops the port: no wizard step can open it, run these commands on the node"),
    "kube-proxy": ("doctor", "nothing serves the NodePort on the node (kube-proxy or the ingress Service): the Doctor checks both"),
    "ingress-controller": ("doctor", "ingress-nginx is not installed by keybuzz-tui: the Doctor says what is wrong with it"),
    "overlay": ("doctor", "the overlay between the nodes is blocked: the Doctor confirms it and offers the repair (hostNetwork)"),
    "cloud-network": ("doctor", "the Load Balancer cannot reach the worker: the Doctor checks the Hetzner firewalls and the network"),
    "port-in-use": ("ports", "a host process holds the app's port: choose another port, then re-apply"),
    "ingress-object": ("review", "the Ingress does not route the host as planned: re-apply the Kubernetes objects"),
    "service-object": ("review", "the Service does not select the app's pods as planned: re-apply the Kubernetes objects"),
    "pod": ("rollout", "the app's pods are not Ready: the rollout step shows why per pod, and can roll back"),
    "app": ("rollout", "the app itself answers an error: the rollout step shows its pods and events"),
    "lb-config": ("lb", "the Load Balancer is not configured as planned: the Load balancer step reconciles it"),
}
# when several faults explain a failure, the one earliest on the request path first
PRIORITY = ("node", "cloud-network", "host-firewall", "kube-proxy", "ingress-controller", "port-in-use", "overlay",
            "ingress-object", "service-object", "pod", "app", "lb-config")

# a check's usual place, when its evidence names no fault kind (exact id, then its prefix)
CHECK_PLACES: dict[str, tuple[str, str]] = {
    "k8s.api": ("doctor", "the Kubernetes API cannot be used: the Doctor checks reachability and permissions"),
    "k8s.nodes": KINDS["node"],
    "k8s.daemonsets": ("review", "the DaemonSets differ from the plan: re-apply the Kubernetes objects"),
    "k8s.services": KINDS["service-object"],
    "k8s.endpoints": ("review", "the Endpoints are not the workers' IPs: re-apply the Services and DaemonSets"),
    "k8s.ingress": KINDS["ingress-object"],
    "k8s.ingress-controller": KINDS["ingress-controller"],
    "k8s.pods-ready": KINDS["pod"],
    "node.hostport": KINDS["pod"],
    "node.nodeport": ("doctor", "a NodePort does not answer: the Doctor traces why"),
    "ingress.routing": ("review", "ingress-nginx does not route the hosts as planned: re-apply the Kubernetes objects"),
    "lb": ("lb", "the Load Balancer: the Load balancer step reconciles it and shows every target's health"),
    "dns": ("dns", "the DNS records: the DNS step sets them (or shows them for manual entry) and the answers"),
    "https": ("lb", "the public HTTPS answer: the Load balancer step holds its services and certificate"),
}


@dataclass(frozen=True)
class Fix:
    """Where to repair a failing check: `place` is a wizard step id, "doctor" or "commands";
    `why` one line for the operator; `commands` what to run (lines starting with # explain),
    `nodes` where."""

    check: str
    place: str
    why: str
    commands: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()


def _hints(evidence: Any) -> Iterator[dict[str, Any]]:
    """Every dict carrying a "fix" kind inside a check's evidence, in order."""
    if isinstance(evidence, dict):
        if isinstance(evidence.get("fix"), str):
            yield evidence
        for v in evidence.values():
            if isinstance(v, (dict, list)):
                yield from _hints(v)
    elif isinstance(evidence, list):
        for v in evidence:
            yield from _hints(v)


def _nodes(hint: dict[str, Any]) -> list[str]:
    return ([hint["node"]] if hint.get("node") else []) + [n for n in hint.get("nodes") or [] if n]


def ufw_commands(port: int, config: Any = None) -> list[str]:
    """What to run (as root) on a node whose firewall drops `port` (the runbook: "the NodePorts
    must be open on every worker")."""
    private = bool(getattr(getattr(config, "load_balancer", None), "use_private_ip", False))
    sources = list(dict.fromkeys(getattr(getattr(config, "firewall", None), "allow_from", None) or ["10.0.0.0/16"]))
    # the LB on private IPs and the other workers reach the port from the private network only
    allow = [f"sudo ufw allow from {src} to any port {port} proto tcp" for src in sources] if private else [f"sudo ufw allow {port}/tcp"]
    return ["sudo ufw status numbered", f"sudo ufw delete deny {port}/tcp  # if listed", *allow, "sudo ufw reload"]


def fix_for(record: CheckRecord, *, node: str | None = None, config: Any = None) -> Fix | None:
    """Where to repair `record` (None when it passes). `node`: only that worker's faults (a
    matrix cell)."""
    if record.status in ("ok", "skip"):
        return None
    hints = list(_hints(record.evidence))
    if node is not None:
        mine = [h for h in hints if node in _nodes(h)]
        hints = mine or hints
    kinds = [h["fix"] for h in hints if h["fix"] in KINDS]
    if kinds:
        kind = min(kinds, key=lambda k: PRIORITY.index(k) if k in PRIORITY else len(PRIORITY))
        place, why = KINDS[kind]
        chosen = [h for h in hints if h["fix"] == kind]
        nodes = list(dict.fromkeys(n for h in chosen for n in _nodes(h)))
        if kind == "host-firewall":
            ports = list(dict.fromkeys(int(h["port"]) for h in chosen if h.get("port")))
            commands: list[str] = []
            for port in ports:
                on = list(dict.fromkeys(n for h in chosen if h.get("port") == port for n in _nodes(h)))
                if len(ports) > 1 and on != nodes:
                    commands.append(f"# {port}/tcp, on {join_names(on)}:")
                commands += ufw_commands(port, config)
            what = f"{join_names([f'{p}/tcp' for p in ports])} dropped on {join_names(nodes)}" if nodes else ""
            return Fix(record.check, place, (what + ": " if what else "") + why, tuple(commands), tuple(nodes))
        return Fix(record.check, place, why, (), tuple(nodes))
    cid = record.check
    place, why = CHECK_PLACES.get(cid) or CHECK_PLACES.get(cid.split(".", 1)[0]) or ("doctor", "the Doctor says why it fails")
    return Fix(cid, place, why)

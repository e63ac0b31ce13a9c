"""The registry of validation checks: which checks exist for a configuration, in report order,
with their ids, layers, prerequisites and sources, and how --only/--skip select them.

Why ids matter: they are the contract with the command line (`--only k8s.pods-ready`,
`--skip dns.resolver`), the board (one row per id) and CI (one JUnit testcase per id), so they
never change once published. Prefixes select a whole layer (`k8s`, `lb.*`); `trace` names the
worker x hop matrix.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..config import Config
from . import checks_cloud, checks_kube, checks_node
from .checks_base import Check, plural

TRACE_ID = "trace"  # pseudo id: --only trace / --skip trace


class UnknownCheck(ValueError):
    """--only/--skip named a check that does not exist (a usage error; the message lists the ids)."""


def https_check_id(cfg: Config, host: str) -> str:
    rel = cfg.relative_record(host)
    return "https." + (rel if rel not in ("@", host) else host)


def build_checks(cfg: Config) -> list[Check]:
    """Every check for this configuration, in report order."""
    n = len(cfg.apps)
    k = ("k8s.api",)
    checks = [
        Check("k8s.api", "kubernetes", "Kubernetes API reachable", checks_kube.check_api),
        Check("k8s.nodes", "kubernetes", "Workers Ready", checks_kube.check_nodes, requires=k),
        Check("k8s.daemonsets", "kubernetes", f"{plural(n, 'hostNetwork DaemonSet')} (one per app)", checks_kube.check_daemonsets, requires=k),
        Check("k8s.pods-ready", "kubernetes", "Pods Running and Ready: one per app on every worker", checks_kube.check_pods_ready,
              requires=k, after=("k8s.nodes",)),
        Check("k8s.services", "kubernetes", f"{plural(n, 'NodePort Service')} with the chosen ports", checks_kube.check_services, requires=k),
        Check("k8s.endpoints", "kubernetes", "Endpoints = the workers' IPs:port", checks_kube.check_endpoints, requires=k, after=("k8s.services",)),
        Check("k8s.ingress", "kubernetes", "Ingress routes each host to its Service", checks_kube.check_ingress, requires=k),
        Check("k8s.ingress-controller", "kubernetes", f"ingress-nginx on NodePort {cfg.ingress.http_node_port} on every worker",
              checks_kube.check_ingress_controller, requires=k),
        Check("node.hostport", "node", "Each app's hostPort answers on each worker", checks_node.check_hostport, requires=k,
              after=("k8s.pods-ready",), source="net"),
        Check("node.nodeport", "node", "The NodePorts answer on each worker", checks_node.check_nodeport,
              after=("k8s.api", "k8s.ingress-controller"), source="net"),
        Check("ingress.routing", "ingress", "ingress-nginx routes each host on each worker", checks_node.check_routing,
              after=("k8s.api", "node.nodeport"), source="net"),
        Check("lb.services", "loadbalancer", "Load Balancer configured as keybuzz.yaml says", checks_cloud.check_lb_services, source="net"),
        Check("lb.targets-healthy", "loadbalancer", "Every worker a healthy target", checks_cloud.check_lb_targets,
              after=("lb.services", "node.nodeport"), source="net"),
        Check("lb.certificate", "loadbalancer", "The LB's certificate covers the hosts and is valid", checks_cloud.check_lb_certificate,
              after=("lb.services",), source="net"),
        Check("dns.authoritative", "dns", "The zone's authoritative server answers the LB's address", checks_cloud.check_dns_authoritative,
              after=("lb.services",), source="net"),
        Check("dns.resolver", "dns", "The resolver answers the LB's address", checks_cloud.check_dns_resolver,
              after=("dns.authoritative",), source="net"),
    ]
    for app in cfg.apps:
        if app.host:
            checks.append(Check(https_check_id(cfg, app.host), "https", f"https://{app.host} answers 200 with a valid certificate",
                                checks_cloud.make_https_check(app), after=("dns.resolver", "lb.services"), source="net"))
    return checks


def check_ids(cfg: Config | None = None) -> list[str]:
    return [c.id for c in build_checks(cfg or Config())]


def _matches(pattern: str, cid: str) -> bool:
    if pattern.endswith(".*") or pattern.endswith("*"):
        return cid.startswith(pattern.rstrip("*"))
    return cid == pattern or cid.startswith(pattern + ".")


def select_checks(checks: list[Check], only: Iterable[str] | None, skip: Iterable[str] = ()) -> tuple[list[Check], set[str]]:
    """(the checks to run, the ids skipped on request). Patterns: an id, a prefix (`k8s`, `lb.*`).
    Unknown names raise ValueError listing the known ids (a CLI usage error)."""
    ids = [c.id for c in checks]
    wanted = [s for s in (only or []) if s]
    skipped_names = [s for s in skip if s]
    unknown = [p for p in wanted + skipped_names if p != TRACE_ID and not any(_matches(p, i) for i in ids)]
    if unknown:
        raise UnknownCheck(f"unknown check(s): {', '.join(unknown)}; known: {', '.join(ids)} (and {TRACE_ID})")
    selected = [c for c in checks if not wanted or any(_matches(p, c.id) for p in wanted)]
    skipped = {c.id for c in selected if any(_matches(p, c.id) for p in skipped_names)}
    return selected, skipped


def wants_trace(only: Iterable[str] | None, skip: Iterable[str]) -> bool:
    """The matrix is traced unless skipped, or unless --only names checks but not `trace`."""
    if TRACE_ID in set(skip or ()):
        return False
    return not only or TRACE_ID in set(only)

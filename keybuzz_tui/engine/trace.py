"""Trace the request path of one public host from every worker and name the first broken hop.

A request for https://platform-api.keybuzz.io travels DNS -> Load Balancer -> NodePort 31695 on a
worker -> ingress-nginx on that worker -> the app's Service (its endpoints) -> the app's pod. The
outage this project was born from was a 504 whose cause sat three hops below the symptom, so the
board shows this path as a worker x hop matrix where the first red cell on each row is the cause.

What each hop means and how it is measured (per worker W, host H served by app A):

- dns      the resolver's A answer for H contains the LB's public IPv4 (same on every row).
- lb       the LB is configured as keybuzz.yaml says (lb.services: a misconfigured service breaks
           the path on every worker), has W as a target and reports it healthy on every service
           port (lb.targets-healthy's own observation). When the target is unhealthy *because* W's
           NodePort does not answer, the cell is a warning (the LB took W out of rotation, as it
           should) and the NodePort hop is the cause. No request is sent through the LB here: it
           would reach whichever target the round robin picks, so one broken worker would mark
           every row (the https.* checks test the LB end to end).
- nodeport GET W:31695/healthz answers 200 (ingress-nginx's default server, what the LB checks).
- ingress  GET W:31695/ with Host: H reaches a route for H: not nginx's default 404 and not
           another app. nginx's own 502/503/504 mean it routed H and the upstream failed, which
           belongs to the next hop.
- service  the Service of A gets the request to a pod: ingress-nginx on W did not answer 502/503/
           504 for it, the Service has ready endpoints, and when W's own pod is Ready its
           W-IP:port is among them. A 504 here, with endpoints that are pod IPs on another node,
           is the blocked overlay (VXLAN) of the production outage.
- pod      GET W:A.port A.health_path answers 200 from A (the hostNetwork pod on W); with the
           classic topology (pods on the overlay) the pod's readiness when one runs on W, else a
           skip (no pod there).

`trace()` returns {worker: [Hop, ...]} in that order and emits one HopResult event per cell; the
observations are the checks' own (cached in the shared state) and judged by the checks' own
functions, so running the trace after the checks costs no new request and a cell can never say
something the check of the same observation does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import App
from ..events import HopResult
from .checks_base import join_names
from .checks_cloud import check_lb_services
from .checks_kube import endpoint_addresses, host_network_app
from .checks_node import Verdict, judge_ingress_nodeport, judge_pod_port, judge_route
from .checks_state import ValidationState, Worker, pod_is_ready
from .context import Context

HOPS = ("dns", "lb", "nodeport", "ingress", "service", "pod")
HOP_TITLES = {"dns": "DNS", "lb": "LB", "nodeport": "NodePort", "ingress": "Ingress", "service": "Service", "pod": "Pod"}


@dataclass(frozen=True)
class Hop:
    """One cell of the matrix."""

    hop: str
    status: str  # ok | warn | fail | skip
    detail: str
    remediation: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"hop": self.hop, "status": self.status, "detail": self.detail, "remediation": self.remediation, "evidence": self.evidence}


def first_broken(hops: list[Hop]) -> Hop | None:
    """The first failing hop along the path (the cause), or None when the path works."""
    return next((h for h in hops if h.status == "fail"), None)


def _from_verdict(hop: str, v: Verdict) -> Hop:
    return Hop(hop, v.status, v.detail, v.remediation, v.evidence())


def _app_for(ctx: Context, host: str) -> App:
    for a in ctx.config.apps:
        if a.host == host:
            return a
    known = ", ".join(a.host for a in ctx.config.apps if a.host)
    raise ValueError(f"{host} is not one of the configured hosts ({known})")


# --- the hops ---------------------------------------------------------------------------------


def dns_hop(state: ValidationState, host: str) -> Hop:
    ans = state.dns("resolver", host, "A")
    ev = {"answer": ans.to_dict()}
    if not ans.ok or not ans.addresses:
        return Hop("dns", "fail", f"{host} does not resolve: {ans.describe()}", "see dns.authoritative / dns.resolver", ev)
    cloud = state.cloud()
    lb = cloud.lb_ipv4
    got = join_names(list(ans.addresses))
    if lb is None:
        return Hop("dns", "warn", f"{host} -> {got}; the LB's address is unknown ({cloud.error or 'no load balancer'})", "see lb.services", ev)
    if lb not in ans.addresses:
        return Hop("dns", "fail", f"{host} -> {got}, not the load balancer {lb}", "see dns.resolver", {**ev, "lb": lb})
    if len(ans.addresses) > 1:
        return Hop("dns", "warn", f"{host} -> {got}: the LB ({lb}) plus other addresses", "remove the extra records", {**ev, "lb": lb})
    return Hop("dns", "ok", f"{host} -> {lb} (the load balancer, via {ans.server})", "", {**ev, "lb": lb})


def lb_hop(state: ValidationState, host: str, w: Worker, services: Any = None) -> Hop:
    """The LB hop of worker w: the LB's configuration (`services`: lb.services' outcome, judged
    from the same Hetzner read) and w's target health as the LB reports it."""
    cloud = state.cloud()
    if not cloud.token:
        return Hop("lb", "skip", f"not checked: {cloud.error}", cloud.remediation)
    if cloud.error:
        return Hop("lb", "fail", cloud.error, cloud.remediation)
    if cloud.lb is None:
        return Hop("lb", "fail", f"no load balancer {state.config.load_balancer.name}", "see lb.services")
    if services is not None and services.status == "fail":
        return Hop("lb", "fail", f"{cloud.lb.name} does not forward as keybuzz.yaml says: {services.detail}", "see lb.services",
                   {"lb.services": services.status})
    t = state.lb_targets().get(w.name)
    if t is None:
        return Hop("lb", "fail", f"{w.name} is not a target of {cloud.lb.name}", "see lb.targets-healthy")
    ev: dict[str, Any] = {"target": t.ip, "health": {str(p): s for p, (s, _, _) in t.health.items()}}
    bad = sorted(p for p, h in t.health.items() if h[0] == "unhealthy")
    unknown = sorted(p for p, h in t.health.items() if h[0] == "unknown")
    if bad:
        kinds = sorted({t.health[p][1] for p in bad if t.health[p][1]})
        return Hop("lb", "fail", f"target {w.name} unhealthy on {join_names([str(p) for p in bad])}" + (f" ({', '.join(kinds)})" if kinds else "")
                   + ": the LB sends it no traffic", "see lb.targets-healthy", {**ev, "unhealthy": bad})
    if unknown:
        return Hop("lb", "warn", f"target {w.name} not health-checked yet on {join_names([str(p) for p in unknown])}", "wait one interval", ev)
    return Hop("lb", "ok", f"target {w.name} ({t.ip}) healthy on {join_names([str(p) for p in sorted(t.health)])}", "", ev)


def ingress_hop(state: ValidationState, app: App, w: Worker, nodeport: Hop) -> tuple[Hop, Verdict | None]:
    port = state.config.ingress.http_node_port
    if nodeport.status == "fail":
        return Hop("ingress", "skip", f"not reached: {port} does not answer on {w.name}"), None
    v = judge_route(state, app, w)
    at = v.extra.get("at")
    if v.status == "ok":
        return _from_verdict("ingress", v), v
    if at in ("service", "pod"):
        code = v.probe.status if v.probe is not None else "?"
        return Hop("ingress", "ok", f"ingress-nginx on {w.name} routes {app.host} to Service {app.name}; the upstream answered {code}",
                   "", v.evidence()), v
    return _from_verdict("ingress", v), v


def service_hop(state: ValidationState, app: App, w: Worker, route: Verdict | None) -> Hop:
    snap = state.kube()
    ns = snap.namespace
    if app.name not in snap.services:
        return Hop("service", "fail", f"Service {ns}/{app.name} not found", "see k8s.services")
    ready, not_ready = endpoint_addresses(snap.endpoints.get(app.name), app.port)
    eps = join_names([f"{a} on {n or '?'}" for a, n in sorted(ready.items())]) or "none"
    ev = {"endpoints": sorted(ready), "not_ready": sorted(not_ready)}
    if route is not None and route.extra.get("at") == "service":
        return Hop("service", "fail", route.detail, route.remediation, {**ev, **route.evidence()})
    if not ready:
        return Hop("service", "fail", f"Service {app.name} has no ready endpoint", "see k8s.pods-ready and k8s.endpoints", ev)
    own = [p for p in state.pods_on(app.name, w.name) if pod_is_ready(p)]
    if host_network_app(state, app.name):
        mine = f"{w.ip}:{app.port}"
        if own and mine not in ready:
            return Hop("service", "fail", f"{own[0]['metadata']['name']} is Ready on {w.name} but {mine} is not among Service {app.name}'s endpoints ({eps})",
                       "the Service's selector or port does not match the pods: see k8s.services and k8s.endpoints", ev)
        if not own:
            return Hop("service", "ok", f"{w.name}'s own pod is not Ready, so Service {app.name} sends the request to its "
                       f"{len(ready)} other endpoints (see the pod hop)", "", ev)
        return Hop("service", "ok", f"Service {app.name} has {len(ready)} endpoints, {mine} among them", "", ev)
    return Hop("service", "ok", f"Service {app.name} endpoints: {eps}", "", ev)


def pod_hop(state: ValidationState, app: App, w: Worker) -> Hop:
    return _from_verdict("pod", judge_pod_port(state, app, w))


def trace_worker(state: ValidationState, app: App, w: Worker, dns: Hop, services: Any = None) -> list[Hop]:
    lb = lb_hop(state, app.host, w, services)
    nodeport = _from_verdict("nodeport", judge_ingress_nodeport(state, w))
    ingress, route = ingress_hop(state, app, w, nodeport)
    try:
        service = service_hop(state, app, w, route)
        pod = pod_hop(state, app, w)
    except Exception as e:  # the Kubernetes API went away between hops
        from ..redact import safe_error

        service = Hop("service", "skip", f"not checked: {safe_error(e)}")
        pod = Hop("pod", "skip", f"not checked: {safe_error(e)}")
    if lb.status == "fail" and lb.evidence.get("unhealthy") and nodeport.status == "fail":
        lb = Hop("lb", "warn", lb.detail + f": the LB took it out of rotation, as it should, because NodePort "
                 f"{state.config.ingress.http_node_port} does not answer (the next hop: the cause)", "", lb.evidence)
    return [dns, lb, nodeport, ingress, service, pod]


def trace(ctx: Context, host: str, *, state: ValidationState | None = None, emit: bool = True) -> dict[str, list[Hop]]:
    """Trace host's request path from every worker: {worker: [dns, lb, nodeport, ingress,
    service, pod]}; each hop emitted as a HopResult. Raises ValueError for an unknown host."""
    app = _app_for(ctx, host)
    own = state is None
    st = state if state is not None else ValidationState(ctx)
    try:
        workers = st.workers()
        dns = dns_hop(st, host)
        services = check_lb_services(ctx, st) if st.cloud().lb is not None else None
        rows = st.map(lambda w: trace_worker(st, app, w, dns, services), workers)
        out = {w.name: hops for w, hops in zip(workers, rows)}
        if emit:
            for node, hops in out.items():
                for h in hops:
                    ctx.emit(HopResult(step="validate", node=node, host=host, hop=h.hop, status=h.status, detail=h.detail))  # type: ignore[arg-type]
        return out
    finally:
        if own:
            st.close()


def summarize(rows: dict[str, list[Hop]]) -> dict[str, str | None]:
    """worker -> the first broken hop's name (None when the path works)."""
    return {node: (fb.hop if (fb := first_broken(hops)) else None) for node, hops in rows.items()}

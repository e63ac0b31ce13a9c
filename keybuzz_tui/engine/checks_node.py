"""Checks that dial the workers: the app's hostPort, the NodePorts, and ingress-nginx routing each
public host, on every worker.

The `judge_*` functions turn one probe into a verdict with the reason and the remediation; they
are shared with the trace (trace.py), whose pod, NodePort, ingress and Service hops are exactly
these observations seen per worker, so the matrix and the checks can never disagree. The probes
themselves are cached in the state: a check and the trace never dial the same thing twice.

Each failing verdict also names, in `extra["fix"]`, what kind of fault it is (a host firewall, a
NotReady node, a pod, an Ingress object...): checks_fix reads it from the evidence to send the
operator to the place that can repair it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..config import App
from .checks_base import CheckOutcome, compact, join_names, ok, skip, worst
from .checks_kube import endpoint_addresses, host_network_app, in_pod_cidr
from .checks_probe import HttpProbe
from .checks_state import ValidationState, Worker, pod_is_ready
from .context import Context


@dataclass(frozen=True)
class Verdict:
    """One observation judged: status, what was seen, what to do, and the raw probe."""

    status: str  # ok | warn | fail | skip
    detail: str
    remediation: str = ""
    probe: HttpProbe | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        d: dict[str, Any] = {"status": self.status, "detail": self.detail}
        if self.probe is not None:
            d["probe"] = self.probe.to_dict()
        d.update(self.extra)
        return d


def _dropped(p: HttpProbe) -> bool:
    return p.error in ("timeout", "reset", "read-timeout")


def _fix(kind: str, w: Worker, port: int | None = None) -> dict[str, Any]:
    """The fault-kind hint of a failing verdict (see the module docstring)."""
    return {"fix": kind, "node": w.name, **({"port": port} if port is not None else {})}


def ufw_hint(worker: str, port: int) -> str:
    return (f"a firewall drops {port}/tcp on {worker}: on the node run `ufw status numbered` and `ufw allow {port}/tcp` "
            f"(the runbook: the NodePorts must be open on every worker); check the Hetzner firewall of the server too")


# --- the app's own port on the worker (hostNetwork pod) ------------------------------------------


def judge_pod_port(state: ValidationState, app: App, w: Worker) -> Verdict:
    """GET node_ip:app.port health_path must answer 200 from the app (its hostNetwork pod)."""
    ns = state.config.namespace
    if not host_network_app(state, app.name):
        here = [p for p in state.pods_on(app.name, w.name) if pod_is_ready(p)]
        if here:
            return Verdict("ok", f"{here[0]['metadata']['name']} is Ready on {w.name} (pod IP {here[0].get('status', {}).get('podIP', '?')}, "
                                 "on the overlay: not dialled)")
        return Verdict("skip", f"no {app.name} pod on {w.name}: {app.name} is not a hostNetwork DaemonSet (see k8s.daemonsets)")
    probe = state.http(w.ip, app.port, app.health_path)
    pods = state.pods_on(app.name, w.name)
    prob = state.pod_problem(pods[0], w) if pods else None
    pod_text = prob.detail if prob else (f"no {app.name} pod on {w.name}" if not pods else "")
    is_app = probe.is_app(app.name)
    where = f"{app.port} on {w.name}"
    if probe.status == 200 and is_app is not False:
        return Verdict("ok", f"{where}: {probe.describe()}", probe=probe)
    pod_fix = {"fix": "port-in-use" if prob is not None and "in use" in prob.detail.lower() else "pod", "node": w.name, "port": app.port}
    if probe.answered:
        who = probe.served_by().get("app") or probe.headers.get("Server") or "something else"
        detail = f"{where} answers {probe.status} {probe.reason} ({who}), not {app.name}'s health check"
        if prob is not None or not pods:
            detail += f": another process holds the port; {pod_text}" if prob and "in use" in prob.detail.lower() else f"; {pod_text}"
            rem = prob.remediation if prob else f"the DaemonSet places no pod on {w.name}: see k8s.pods-ready"
            return Verdict("fail", detail, rem, probe, pod_fix)
        rem = f"the pod is Ready but {app.health_path} is not 200: check the app (`kubectl logs -n {ns} {pods[0]['metadata']['name']}`)"
        return Verdict("fail", detail, rem, probe, {"fix": "app", "node": w.name})
    detail = f"{app.port} does not answer on {w.name} ({probe.describe()})"
    if w.ready is False:
        return Verdict("fail", detail + f": the node is NotReady ({w.condition})", f"bring {w.name} back (see k8s.nodes)", probe, _fix("node", w))
    if prob is not None:
        return Verdict("fail", f"{detail}: {pod_text}", prob.remediation, probe, pod_fix)
    if not pods:
        return Verdict("fail", f"{detail}: {pod_text}", "see k8s.pods-ready for why the DaemonSet has no pod there", probe, pod_fix)
    if _dropped(probe):
        return Verdict("fail", f"{detail}; {pods[0]['metadata']['name']} is Ready", ufw_hint(w.name, app.port), probe, _fix("host-firewall", w, app.port))
    return Verdict("fail", f"{detail} although {pods[0]['metadata']['name']} is Ready",
                   f"the app listens elsewhere than {app.port}? compare its config with apps[].port; `kubectl logs -n {ns} {pods[0]['metadata']['name']}`", probe,
                   {"fix": "app", "node": w.name})


def check_hostport(ctx: Context, state: ValidationState) -> CheckOutcome:
    apps = [a for a in ctx.config.apps if host_network_app(state, a.name)]
    others = [a.name for a in ctx.config.apps if a not in apps]
    if not apps:
        return skip(f"no hostNetwork pods to probe: {join_names(others)} run on the overlay (see k8s.daemonsets)")
    out = _per_worker(ctx, state, [(app, w) for app in apps for w in state.app_workers(app.name)],
                      lambda item: judge_pod_port(state, item[0], item[1]), "hostPort")
    if others and out.status == "ok":
        return ok(out.detail + f"; {join_names(others)} not hostNetwork (see k8s.daemonsets)", out.evidence)
    return out


# --- NodePorts --------------------------------------------------------------------------------


def judge_ingress_nodeport(state: ValidationState, w: Worker) -> Verdict:
    """GET node_ip:31695/healthz must answer 200: ingress-nginx's default server, what the LB checks."""
    ing = state.config.ingress
    port = ing.http_node_port
    probe = state.http(w.ip, port, "/healthz")
    if probe.status == 200:
        return Verdict("ok", f"{port}/healthz on {w.name}: {probe.describe()}", probe=probe)
    if probe.answered:
        return Verdict("fail", f"{port}/healthz on {w.name} answers {probe.status} {probe.reason}, not 200",
                       f"{port} is not ingress-nginx's http NodePort? compare with `kubectl get svc -n {ing.namespace} {ing.service}`", probe,
                       _fix("ingress-controller", w, port))
    detail = f"{port} does not answer on {w.name} ({probe.describe()})"
    if w.ready is False:
        return Verdict("fail", f"{detail}: the node is NotReady ({w.condition})", f"bring {w.name} back (see k8s.nodes)", probe, _fix("node", w))
    if probe.error == "refused":
        return Verdict("fail", f"{detail}: nothing serves the ingress NodePort",
                       f"check that {ing.namespace}/{ing.service} is a NodePort Service on {port} and that kube-proxy runs on {w.name}", probe,
                       _fix("kube-proxy", w, port))
    snap = state.kube() if state.kube_ok() else None
    if snap is not None and snap.ingress_service is not None:
        local = ((snap.ingress_service.get("spec") or {}).get("externalTrafficPolicy")) == "Local"
        ready, _ = endpoint_addresses(snap.ingress_endpoints)
        has_pod = any(n == w.name or a.rsplit(":", 1)[0] == w.ip for a, n in ready.items())
        if local and not has_pod:
            return Verdict("fail", f"{detail}: no Ready ingress-nginx pod on {w.name} and externalTrafficPolicy is Local",
                           f"run ingress-nginx on {w.name} (`kubectl get pods -n {ing.namespace} -o wide`)", probe, _fix("ingress-controller", w, port))
    return Verdict("fail", detail, ufw_hint(w.name, port), probe, _fix("host-firewall", w, port))


def judge_app_nodeport(state: ValidationState, app: App, w: Worker) -> Verdict:
    snap = state.kube()
    svc = snap.services.get(app.name)
    typ = ((svc or {}).get("spec") or {}).get("type")
    if svc is None or typ != "NodePort":
        return Verdict("skip", f"{app.name} is not a NodePort Service (see k8s.services)")
    probe = state.http(w.ip, app.node_port, app.health_path)
    where = f"NodePort {app.node_port} on {w.name}"
    if probe.status == 200 and probe.is_app(app.name) is not False:
        return Verdict("ok", f"{where}: {probe.describe()}", probe=probe)
    if probe.answered:
        return Verdict("fail", f"{where} answers {probe.status} {probe.reason}", f"check what the Service {app.name} selects (k8s.endpoints)", probe,
                       _fix("service-object", w, app.node_port))
    detail = f"{where} does not answer ({probe.describe()})"
    if w.ready is False:
        return Verdict("fail", f"{detail}: the node is NotReady ({w.condition})", f"bring {w.name} back (see k8s.nodes)", probe, _fix("node", w))
    if probe.error == "refused":
        return Verdict("fail", f"{detail}: no ready endpoint behind it, or kube-proxy does not run there",
                       "see k8s.endpoints; check kube-proxy (K3s embeds it: `journalctl -u k3s-agent` on the node)", probe,
                       _fix("kube-proxy", w, app.node_port))
    return Verdict("fail", detail, ufw_hint(w.name, app.node_port), probe, _fix("host-firewall", w, app.node_port))


def check_nodeport(ctx: Context, state: ValidationState) -> CheckOutcome:
    items: list[tuple[App | None, Worker]] = []
    for w in state.workers():
        items.append((None, w))
        items += [(app, w) for app in ctx.config.apps if w in state.app_workers(app.name)]

    def judge(item: tuple[App | None, Worker]) -> Verdict:
        app, w = item
        return judge_ingress_nodeport(state, w) if app is None else judge_app_nodeport(state, app, w)

    return _per_worker(ctx, state, items, judge, "NodePort")


# --- ingress routing --------------------------------------------------------------------------


def judge_route(state: ValidationState, app: App, w: Worker) -> Verdict:
    """GET node_ip:31695/ with Host: app.host. `extra["at"]` says which hop a failure belongs
    to: "nodeport" (31695 itself is dead), "ingress" (no route / wrong app), "service" (nginx
    routed it but the upstream is dead: 502/503/504)."""
    port = state.config.ingress.http_node_port
    ns = state.config.namespace
    healthz = state.peek(("http", w.ip, port, "/healthz", None))
    if isinstance(healthz, HttpProbe) and not healthz.answered:
        # the same port gave node.nodeport no answer at all: dialling it again would only wait
        # for the same timeout (the matrix calls this hop "not reached")
        np = judge_ingress_nodeport(state, w)
        return Verdict("fail", f"{app.host} via {w.name}:{port}: not reached, {port} does not answer ({healthz.describe()}; see node.nodeport)",
                       np.remediation or "see node.nodeport", healthz, {"at": "nodeport", **{k: v for k, v in np.extra.items() if k != "at"}})
    probe = state.http(w.ip, port, "/", app.host)
    if not probe.answered:
        np = judge_ingress_nodeport(state, w)
        return Verdict("fail", f"{app.host} via {w.name}:{port}: {probe.describe()} (see node.nodeport)", "see node.nodeport", probe,
                       {"at": "nodeport", **{k: v for k, v in np.extra.items() if k != "at"}})
    code = probe.status or 0
    is_app = probe.is_app(app.name)
    via = f"{app.host} via {w.name}"
    if probe.nginx_error_page and code == 404:
        return Verdict("fail", f"{via}: ingress-nginx has no route (its default 404)",
                       f"the Ingress for {app.host} is missing or has another class: see k8s.ingress", probe, {"at": "ingress", **_fix("ingress-object", w)})
    if probe.nginx_error_page and code in (502, 503, 504):
        return _upstream_verdict(state, app, w, probe)
    if code >= 500:
        return Verdict("fail", f"{via}: {app.name} answered {code} {probe.reason}", f"the app itself fails: `kubectl logs -n {ns} -l app.kubernetes.io/name={app.name}`",
                       probe, {"at": "pod", **_fix("app", w)})
    if is_app is False:
        who = probe.served_by().get("app") or probe.served_by().get("pod")
        return Verdict("fail", f"{via}: answered by {who}, not {app.name}", f"the Ingress routes {app.host} to the wrong Service: see k8s.ingress",
                       probe, {"at": "ingress", **_fix("ingress-object", w)})
    if 300 <= code < 400:
        return Verdict("warn", f"{via}: {code} redirect to {probe.headers.get('Location', '?')}",
                       "behind a TLS-terminating LB a redirect to https loops: see k8s.ingress", probe, {"at": "ingress", **_fix("ingress-object", w)})
    return Verdict("ok", f"{via}: {probe.describe()}", probe=probe, extra={"at": None})


def _upstream_verdict(state: ValidationState, app: App, w: Worker, probe: HttpProbe) -> Verdict:
    """nginx answered 502/503/504 for a host it routes: the Service hop is broken from this worker."""
    snap = state.kube() if state.kube_ok() else None
    ready: dict[str, str | None] = {}
    if snap is not None:
        ready, _ = endpoint_addresses(snap.endpoints.get(app.name), app.port)
    eps = join_names([f"{a} on {n or '?'}" for a, n in sorted(ready.items())]) or "none"
    code = probe.status
    via = f"{app.host} via {w.name}"
    if code == 503:
        return Verdict("fail", f"{via}: 503 Service Temporarily Unavailable: Service {app.name} has no ready endpoint",
                       "no pod of the app is Ready: see k8s.pods-ready and k8s.endpoints", probe,
                       {"at": "service", "endpoints": sorted(ready), **_fix("pod", w)})
    if code == 504:
        remote = [a for a, n in ready.items() if n != w.name]
        overlay = any(in_pod_cidr(a) for a in remote)
        detail = (f"{via}: 504 Gateway Time-out: ingress-nginx on {w.name} timed out connecting to Service {app.name}'s endpoints ({eps})")
        if overlay:
            detail += "; they are pod IPs on another node, reached over the overlay (VXLAN, UDP 8472), which does not pass"
            rem = ("the overlay between the nodes is blocked (Hetzner drops VXLAN): move the apps to the hostNetwork DaemonSets whose "
                   "endpoints are node IPs (the runbook's fix): `keybuzz-tui apply`, or `keybuzz-tui doctor` to confirm and repair")
            fix = _fix("overlay", w)
        else:
            rem = f"the endpoints do not answer from {w.name} in time: check the firewall between the workers for port {app.port}"
            # the firewall to open is on the endpoints' workers (the request comes from w)
            fix = {"fix": "host-firewall", "port": app.port, "nodes": sorted({n for n in ready.values() if n and n != w.name})}
        return Verdict("fail", detail, rem, probe, {"at": "service", "endpoints": sorted(ready), **fix})
    return Verdict("fail", f"{via}: 502 Bad Gateway: Service {app.name}'s endpoints ({eps}) refuse the connection or close it",
                   f"the pods behind {app.name} do not listen on {app.port}: see k8s.pods-ready and node.hostport", probe,
                   {"at": "service", "endpoints": sorted(ready), **_fix("pod", w)})


def check_routing(ctx: Context, state: ValidationState) -> CheckOutcome:
    items = [(app, w) for app in ctx.config.apps if app.host for w in state.workers()]
    return _per_worker(ctx, state, items, lambda it: judge_route(state, it[0], it[1]), "route")


# --- shared aggregation ------------------------------------------------------------------------


def _per_worker(ctx: Context, state: ValidationState, items: list[Any], judge: Any, what: str) -> CheckOutcome:
    """Judge every item concurrently, then one outcome: counts, failures grouped by cause."""
    if not items:
        return skip("no worker to probe (see k8s.nodes)")
    verdicts: list[Verdict] = state.map(judge, items)
    evidence: dict[str, dict[str, Any]] = defaultdict(dict)
    for (app, w), v in zip(items, verdicts):
        key = app.name if app is not None else f"ingress {ctx.config.ingress.http_node_port}"
        evidence[w.name][key] = v.evidence()
    statuses = [v.status for v in verdicts]
    if all(s == "skip" for s in statuses):
        return skip(verdicts[0].detail, evidence=dict(evidence))
    bad = [v for v in verdicts if v.status in ("fail", "warn")]
    good = sum(1 for s in statuses if s == "ok")
    measured = sum(1 for s in statuses if s != "skip")
    head = f"{good}/{measured} {what} probes answer as expected"
    skipped = [v.detail for v in verdicts if v.status == "skip"]
    if not bad:
        tail = f"; skipped: {'; '.join(dict.fromkeys(skipped))}" if skipped else ""
        return ok(head + tail, dict(evidence))
    pairs = [(item[1].name, v) for item, v in zip(items, verdicts) if v.status in ("fail", "warn")]
    rems = compact([(w, v.remediation) for w, v in pairs if v.remediation])
    details = compact([(w, v.detail) for w, v in pairs])
    return CheckOutcome(worst(statuses), head + ". " + "; ".join(details), "\n".join(rems), dict(evidence))

"""The platform itself: which topology KeyBuzz runs in, and the request path per worker.

- platform.topology: the classic topology (Deployments behind ClusterIP Services: ingress-nginx
  reaches the pods over the overlay, so a blocked VXLAN means 504s) or the runbook's hostNetwork
  topology (a DaemonSet pod on every worker, on the node's own IP: no overlay on the request path).
  Read with the overlay's verdict when the probe ran: classic + broken overlay is the outage.
- platform.request-path: every public host traced from every worker (trace.py: DNS, LB, NodePort,
  ingress, Service, pod), summarised as the first broken hop per worker.
"""

from __future__ import annotations

from typing import Any

from .checks_base import CheckOutcome, compact, fail, join_names, ok, plural, skip, warn
from .checks_run import traces_for
from .context import Context
from .doctor_state import DoctorState
from .trace import HOP_TITLES, first_broken

OVERLAY_CHECKS = ("overlay.pod-to-pod", "overlay.clusterip", "overlay.coredns")


def overlay_verdict(outcomes: dict[str, Any]) -> str:
    """"broken" | "ok" | "unknown" from the overlay checks' records: broken when a probe timed out
    across nodes (pod-to-pod) or both the ClusterIP and CoreDNS timed out."""
    recs = {c: outcomes.get(c) for c in OVERLAY_CHECKS}
    timed = {c for c, r in recs.items() if r is not None and r.status == "fail" and (r.evidence or {}).get("result") == "timeout"}
    if "overlay.pod-to-pod" in timed or {"overlay.clusterip", "overlay.coredns"} <= timed:
        return "broken"
    if recs["overlay.pod-to-pod"] is not None and recs["overlay.pod-to-pod"].status == "ok":
        return "ok"
    return "unknown"


def app_topology(state: DoctorState, app: Any) -> dict[str, Any]:
    """How one app runs: kind, hostNetwork, Service type, where its pods are."""
    snap = state.kube()
    ds = snap.daemonsets.get(app.name)
    dep = snap.deployments.get(app.name)
    svc = snap.services.get(app.name)
    pods = [{"name": p["metadata"]["name"], "node": (p.get("spec") or {}).get("nodeName"),
             "ip": (p.get("status") or {}).get("podIP"), "host_network": bool((p.get("spec") or {}).get("hostNetwork"))}
            for p in state.app_pods(app.name)]
    out: dict[str, Any] = {"service_type": ((svc or {}).get("spec") or {}).get("type") if svc else None, "pods": pods}
    if ds is not None:
        hn = bool((((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("hostNetwork"))
        out.update(kind="DaemonSet", host_network=hn, topology="hostnetwork" if hn else "daemonset-overlay")
    elif dep is not None:
        reps = (dep.get("spec") or {}).get("replicas")
        out.update(kind="Deployment", host_network=False, replicas=1 if reps is None else reps, topology="classic")
    else:
        out.update(kind=None, host_network=None, topology="absent")
    if dep is not None and ds is not None:
        out["also"] = "Deployment"
    return out


def topology(state: DoctorState) -> tuple[str, dict[str, Any]]:
    """("hostnetwork" | "classic" | "mixed" | "none", per app)."""
    apps = {a.name: app_topology(state, a) for a in state.config.apps}
    kinds = {v["topology"] for v in apps.values()}
    if kinds == {"hostnetwork"}:
        return "hostnetwork", apps
    if kinds == {"absent"}:
        return "none", apps
    if kinds <= {"classic", "absent"}:
        return "classic", apps
    return "mixed", apps


def _describe(name: str, a: dict[str, Any]) -> str:
    where = join_names(sorted({f"{p['ip']} on {p['node']}" for p in a["pods"] if p.get("ip")}), 3) or "no pod"
    svc = f" behind a {a['service_type']} Service" if a.get("service_type") else " (no Service)"
    if a["topology"] == "hostnetwork":
        return f"{name}: hostNetwork DaemonSet{svc}, {plural(len(a['pods']), 'pod')} on the nodes' own IPs"
    if a["topology"] == "classic":
        return f"{name}: Deployment ({plural(int(a.get('replicas') or 0), 'replica')}){svc}, pods on the overlay ({where})"
    if a["topology"] == "daemonset-overlay":
        return f"{name}: DaemonSet without hostNetwork{svc}, pods on the overlay ({where})"
    return f"{name}: not installed"


def check_topology(ctx: Context, state: DoctorState) -> CheckOutcome:
    topo, apps = topology(state)
    overlay = overlay_verdict(state.outcomes)
    ev = {"topology": topo, "apps": apps, "overlay": overlay, "namespace": ctx.config.namespace}
    lines = "; ".join(_describe(n, a) for n, a in apps.items())
    if topo == "hostnetwork":
        extra = (" The overlay is broken, but the platform does not depend on it: ingress-nginx reaches the apps on the "
                 "nodes' own IPs") if overlay == "broken" else ""
        return ok(f"hostNetwork topology (the runbook's): {lines}.{extra}", ev)
    if topo == "none":
        return warn(f"KeyBuzz is not installed in namespace {ctx.config.namespace}", "install it: `keybuzz-tui apply`", ev)
    fix = "move the apps to hostNetwork DaemonSets, which do not use the overlay: `keybuzz-tui repair`"
    words = "classic topology (Deployments behind ClusterIP Services)" if topo == "classic" else "mixed topology"
    if overlay == "broken":
        return fail(f"{words}: {lines}. ingress-nginx reaches these pods over the overlay, which is broken (overlay.*): "
                    "requests through every other worker end in 504 Gateway Time-out", fix, ev)
    tail = ("; the overlay works today (overlay.pod-to-pod)" if overlay == "ok"
            else "; the overlay was not tested (overlay.*)")
    return warn(f"{words}: {lines}. Every request through another worker crosses the overlay{tail}: a blocked VXLAN turns "
                "it into 504s (the production outage)", fix, ev)


def check_request_path(ctx: Context, state: DoctorState) -> CheckOutcome:
    if not any(a.host for a in ctx.config.apps):
        return skip("no public host configured")
    rows = traces_for(ctx, state)
    state.traces = rows  # the report shows the whole matrix
    if not rows:
        return skip("nothing could be traced (see the warnings)")
    ev: dict[str, Any] = {}
    items: list[tuple[str, str]] = []
    broken = 0
    total = 0
    for host, per in rows.items():
        ev[host] = {}
        for node, hops in per.items():
            total += 1
            fb = first_broken(hops)
            ev[host][node] = {"first_broken": fb.hop if fb else None, "detail": fb.detail if fb else "",
                              "hops": {h.hop: h.status for h in hops}}
            if fb is not None:
                broken += 1
                items.append((node, f"{host} via {node}: {HOP_TITLES.get(fb.hop, fb.hop)} hop: {fb.detail}"))
    head = f"{total - broken}/{plural(total, 'path')} (host x worker) work end to end"
    if not items:
        return ok(head + " (DNS, LB, NodePort, ingress, Service, pod)", ev)
    return fail(head + ". First broken hop: " + "; ".join(compact(items, 8)),
                "fix the first broken hop of each path (the doctor's diagnosis says how); the matrix is in the report", ev)

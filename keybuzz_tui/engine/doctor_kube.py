"""The doctor's Kubernetes checks: the API and its version, the permissions the wizard needs
(SelfSubjectAccessReview for every verb and resource of preflight.NEEDED, plus what the doctor's
own probe pods need), the nodes (Ready, roles, taints, the number of workers), the NodePort range,
and what already exists that would collide with the platform's objects and ports.

Each reuses the engine's own machinery: checks_kube.check_api / check_nodes (the validation's
words), preflight.permissions, ports.scan + ports.check, render.render (masked: no secret is
read) for the names the install will write.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from ..redact import safe_error
from . import checks_kube, kubeio, preflight
from .checks_base import CheckOutcome, fail, join_names, ok, plural, warn, worst
from .checks_state import is_worker, node_ip, node_ready
from .context import FIELD_MANAGER, Context
from .doctor_state import DoctorState

# what the doctor's overlay probe does in kube-system (doctor_overlay.py)
PROBE_NEEDED: list[tuple[str, str, str, bool]] = [
    ("create", "", "pods", True),
    ("get", "", "pods", True),
    ("list", "", "pods", True),
    ("watch", "", "pods", True),
    ("delete", "", "pods", True),
    ("get", "", "pods/log", True),
]


# --- k8s.api -----------------------------------------------------------------------------------


def api_failure_kind(state: DoctorState) -> str:
    """"" when the API answers; else "unreachable" | "unauthorized" | "forbidden" | "kubeconfig" |
    "error" (for the CLI's exit code and the diagnosis)."""
    try:
        state.ctx.kube()
    except Exception:  # noqa: BLE001
        return "kubeconfig"
    try:
        state.version()
    except kubeio.Unreachable:
        return "unreachable"
    except kubeio.KubeError as e:
        return {401: "unauthorized", 403: "forbidden"}.get(e.status, "error")
    except Exception:  # noqa: BLE001
        return "error"
    return ""


def check_api(ctx: Context, state: DoctorState) -> CheckOutcome:  # type: ignore[override]
    out = checks_kube.check_api(ctx, state)
    kind = api_failure_kind(state)
    ev = {**out.evidence, "failure": kind or None}
    if out.status != "fail" and not kind:
        return dataclasses.replace(out, evidence=ev)
    return CheckOutcome("fail", out.detail, out.remediation, ev)


# --- k8s.permissions -----------------------------------------------------------------------------


def _probe_ctx(ctx: Context, namespace: str) -> Context:
    """ctx asking about `namespace` instead of the platform's (preflight reads config.namespace)."""
    c = copy.copy(ctx)
    c.config = dataclasses.replace(ctx.config, namespace=namespace)
    return c


def check_permissions(ctx: Context, state: DoctorState) -> CheckOutcome:
    from .doctor_overlay import PROBE_NAMESPACE

    ns = ctx.config.namespace
    gaps = preflight.permissions(ctx)
    probe_gaps = preflight.permissions(_probe_ctx(ctx, PROBE_NAMESPACE), PROBE_NEEDED) if state.probes_enabled else []
    ev: dict[str, Any] = {
        "checked": len(preflight.NEEDED) + (len(PROBE_NEEDED) if state.probes_enabled else 0),
        "missing": [g.render() for g in gaps],
        "probe_missing": [g.render() for g in probe_gaps],
        "method": "SelfSubjectAccessReview (authorization.k8s.io/v1), one per verb and resource",
    }
    if gaps:
        listing = "; ".join(g.render() for g in gaps)
        extra = f". The doctor's probe pods also lack: {'; '.join(g.render() for g in probe_gaps)}" if probe_gaps else ""
        return fail(
            f"the kubeconfig user may not do {plural(len(gaps), 'thing')} the wizard needs "
            f"(of {len(preflight.NEEDED)} asked with SelfSubjectAccessReview): {listing}{extra}",
            "use a kubeconfig context bound to cluster-admin (the K3s admin kubeconfig /etc/rancher/k3s/k3s.yaml), or "
            f"grant these verbs (a Role in {ns} and a ClusterRole for the cluster-wide ones); check with "
            f"`kubectl auth can-i --list -n {ns}`",
            ev,
        )
    if probe_gaps:
        return warn(
            f"all {len(preflight.NEEDED)} verbs the wizard needs are allowed; the doctor's overlay probe pods are not: "
            + "; ".join(g.render() for g in probe_gaps),
            f"grant create/get/list/watch/delete on pods and get on pods/log in {PROBE_NAMESPACE}, or run `keybuzz-tui doctor --no-probes`",
            ev,
        )
    return ok(f"all {len(preflight.NEEDED)} verbs the wizard needs are allowed (SelfSubjectAccessReview)"
              + (f", and the {len(PROBE_NEEDED)} the overlay probe needs in {PROBE_NAMESPACE}" if state.probes_enabled else ""), ev)


# --- k8s.nodes -----------------------------------------------------------------------------------


def node_roles(node: dict[str, Any]) -> list[str]:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    return roles or (["worker"] if is_worker(node) else [])


def taint_text(t: dict[str, Any]) -> str:
    return f"{t.get('key', '')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect', '')}"


def check_nodes(ctx: Context, state: DoctorState) -> CheckOutcome:
    base = checks_kube.check_nodes(ctx, state)  # the validation's verdict and remediation
    snap = state.kube()
    if "nodes" in snap.errors:
        return base
    nodes: dict[str, Any] = {}
    for name, node in sorted(snap.nodes.items()):
        ready, why = node_ready(node)
        nodes[name] = {"ready": ready, "condition": why, "roles": node_roles(node), "ip": node_ip(node),
                       "taints": [taint_text(t) for t in (node.get("spec") or {}).get("taints") or []],
                       "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
                       "version": ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", "")}
    workers = state.workers()
    others = [n for n in nodes if n not in {w.name for w in workers}]
    expected = state.expected_workers
    ev: dict[str, Any] = {**base.evidence, "nodes": nodes, "expected_workers": expected, "workers_found": len(workers)}
    items: list[tuple[str, str, str]] = []
    for w in workers:
        if w.ready is False:
            items.append(("fail", f"{w.name} is NotReady ({w.condition})", base.remediation))
    cordoned = [w.name for w in workers if w.unschedulable]
    if cordoned:
        items.append(("warn", f"cordoned (unschedulable): {join_names(cordoned)}", f"uncordon when maintenance is over: `kubectl uncordon {cordoned[0]}`"))
    if len(workers) < expected:
        items.append(("fail", f"{plural(len(workers), 'worker')} in the cluster, {expected} expected",
                      "join the missing workers (K3s agent) or, if the cluster is smaller on purpose, run the doctor with "
                      f"--expected-workers {len(workers)}"))
    # a Hetzner server meant to be a worker (the LB's target selector) that is no node of the cluster
    cloud = state.cloud()  # no token: nothing to compare with (the snapshot says so without calling Hetzner)
    if cloud.token and not cloud.error:
        from .checks_state import selector_match  # the same selector semantics as the LB's targets

        sel = ctx.config.load_balancer.target_selector
        meant = sorted(s.name for s in cloud.servers.values() if sel and selector_match(sel, dict(s.labels or {})))
        missing = [n for n in meant if n not in nodes]
        ev["hetzner_workers"] = meant
        if missing:
            items.append(("fail", f"Hetzner server(s) {join_names(missing)} carry {sel} but are not nodes of the cluster",
                          "join them to K3s (k3s agent with the cluster token), or remove the label so the LB stops targeting them"))
    ready = [w.name for w in workers if w.ready]
    taints = sorted({t for n in others for t in nodes[n]["taints"]})
    roles = sorted({r for n in others for r in nodes[n]["roles"]})
    head = (f"{len(ready)}/{plural(len(workers), 'worker')} Ready ({join_names(ready) or 'none'}), {expected} expected; "
            f"{plural(len(others), 'other node')} ({join_names(others) or 'none'}"
            + (f": {', '.join(roles)}" if roles else "") + (f"; tainted {', '.join(taints)}" if taints else "") + ")")
    if not items:
        return ok(head, ev)
    return CheckOutcome(worst([i[0] for i in items]), head + ". " + "; ".join(i[1] for i in items),  # type: ignore[arg-type]
                        "\n".join(dict.fromkeys(i[2] for i in items if i[2])), ev)


# --- k8s.nodeport-range ------------------------------------------------------------------------------


def check_nodeport_range(ctx: Context, state: DoctorState) -> CheckOutcome:
    from .ports import PortScanError

    try:
        inv = state.port_inventory()
    except PortScanError as e:
        return fail(f"the NodePort range could not be read: {safe_error(e)}", "see k8s.permissions")
    lo, hi = inv.nodeport_range
    cfg = ctx.config
    wanted = [(f"{a.name} nodePort", a.node_port) for a in cfg.apps] + [
        ("ingress http NodePort", cfg.ingress.http_node_port), ("ingress https NodePort", cfg.ingress.https_node_port)]
    outside = [(what, p) for what, p in wanted if not lo <= p <= hi]
    ev = {"range": [lo, hi], "source": inv.nodeport_range_source, "ports": {what: p for what, p in wanted}}
    head = f"NodePort range {lo}-{hi} ({inv.nodeport_range_source})"
    if outside:
        return fail(head + ": " + "; ".join(f"{what} {p} is outside it" for what, p in outside),
                    f"choose NodePorts between {lo} and {hi} in keybuzz.yaml, or widen --service-node-port-range on the K3s servers", ev)
    note = next((n for n, _ in inv.notes if "NodePort range" in n), "")
    ports = ", ".join(str(p) for _, p in wanted)
    if note:
        return warn(f"{head}; {note}; the chosen NodePorts ({ports}) are inside the assumed range",
                    "check --service-node-port-range in /etc/rancher/k3s/config.yaml on a K3s server", ev)
    return ok(f"{head}: the chosen NodePorts {ports} are inside it", ev)


# --- k8s.collisions ------------------------------------------------------------------------------

PLURALS = {"Namespace": ("v1", "namespaces", False), "Secret": ("v1", "secrets", True), "ConfigMap": ("v1", "configmaps", True),
           "Service": ("v1", "services", True), "DaemonSet": ("apps/v1", "daemonsets", True),
           "Ingress": ("networking.k8s.io/v1", "ingresses", True)}
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"


def _managers(obj: dict[str, Any]) -> list[str]:
    return sorted({str(m.get("manager", "")) for m in (obj.get("metadata") or {}).get("managedFields") or [] if m.get("manager")})


def _ours(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY) == FIELD_MANAGER or FIELD_MANAGER in _managers(obj)


def _kin(obj: dict[str, Any]) -> bool:
    """An earlier KeyBuzz install (the runbook's scripts, or by hand): part-of=keybuzz."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(PART_OF) == "keybuzz"


def _name_collisions(ctx: Context, state: DoctorState) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    from . import render
    from .context import NoSecrets

    items: list[tuple[str, str, str]] = []
    ev: dict[str, Any] = {"foreign": [], "adopted": [], "ours": [], "unreadable": []}
    try:
        objects = render.render(ctx.config, NoSecrets(), include_secret_values=False)
    except render.RenderError as e:
        items.append(("warn", f"the platform's objects cannot be rendered from keybuzz.yaml: {safe_error(e)}", e.remediation))
        return items, ev
    for obj in objects:
        ctx.cancel.check()
        kind, meta = obj["kind"], obj["metadata"]
        if kind not in PLURALS:
            continue
        api, plural_name, namespaced = PLURALS[kind]
        ref = f"{kind} {meta['namespace'] + '/' if namespaced else ''}{meta['name']}"
        try:
            live = kubeio.get_or_none(ctx, kubeio.resource_path(api, plural_name, meta.get("namespace") if namespaced else None, meta["name"]))
        except kubeio.KubeError as e:
            ev["unreadable"].append(f"{ref}: {e.status} {e.reason}")
            continue
        if live is None:
            continue
        if _ours(live):
            ev["ours"].append(ref)
        elif _kin(live):
            ev["adopted"].append(ref)
        else:
            who = join_names(_managers(live)) or "unknown"
            ev["foreign"].append({"object": ref, "managers": _managers(live), "labels": (live.get("metadata") or {}).get("labels") or {}})
            items.append(("fail", f"{ref} already exists and is not KeyBuzz's (written by {who}, no part-of=keybuzz label): "
                          "apply would take it over", f"rename or remove {ref}, or choose another name/namespace in keybuzz.yaml"))
        # the classic topology's Deployment selects the same pods as our Service: remove it when moving
    snap = state.kube() if state.kube_ok() else None
    if snap is not None:
        for app in ctx.config.apps:
            dep = snap.deployments.get(app.name)
            if dep is None:
                continue
            tmpl = ((((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
            if tmpl.get(render.NAME_LABEL) == app.name:
                ref = f"Deployment {snap.namespace}/{app.name}"
                ev.setdefault("overlapping", []).append(ref)
                items.append(("warn", f"{ref} (the classic topology) has pods labelled {render.NAME_LABEL}={app.name}, which the "
                              f"hostNetwork Service {app.name} also selects: its overlay pod would stay among the endpoints",
                              f"delete the Deployment when moving to the hostNetwork DaemonSets (`keybuzz-tui repair` does): "
                              f"`kubectl -n {snap.namespace} delete deployment {app.name}`"))
    # Ingress rules for our hosts in someone else's Ingress
    try:
        ings = state.once(("doctor", "ingresses"), lambda: kubeio.get(ctx, "/apis/networking.k8s.io/v1/ingresses"))
    except (kubeio.KubeError, kubeio.Unreachable) as e:
        ev["unreadable"].append(f"Ingresses (all namespaces): {safe_error(e)}")
        ings = {}
    hosts = {a.host for a in ctx.config.apps if a.host}
    ours_ing = next(((o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects if o["kind"] == "Ingress"), None)
    for ing in ings.get("items") or []:
        meta = ing.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        if key == ours_ing:
            continue
        taken = sorted(hosts & {r.get("host") for r in (ing.get("spec") or {}).get("rules") or []})
        if taken:
            ref = f"Ingress {key[0]}/{key[1]}"
            ev.setdefault("ingress_hosts", []).append({"ingress": ref, "hosts": taken})
            items.append(("fail", f"{ref} also routes {join_names(taken)}: ingress-nginx merges both and may send requests to its backend",
                          f"remove the rule from {ref} (or delete it if it is a leftover)"))
    return items, ev


def check_collisions(ctx: Context, state: DoctorState) -> CheckOutcome:
    from . import ports

    items: list[tuple[str, str, str]] = []
    ev: dict[str, Any] = {}
    try:
        inv = state.port_inventory()
    except ports.PortScanError as e:
        items.append(("warn", f"ports not checked: {safe_error(e)}", "see k8s.permissions"))
        inv = None
    if inv is not None:
        pchecks = ports.check(ctx.config, inv)
        bad = [c for c in pchecks if c.failed]
        ev["ports"] = {c.name: {"port": c.port, "status": c.status, "holders": list(c.holders), "nodes": list(c.nodes),
                                "suggestions": list(c.suggestions)} for c in pchecks}
        for c in bad:
            items.append(("fail", f"{c.title}: {c.detail}", c.remediation))
    names, nev = _name_collisions(ctx, state)
    items += names
    ev.update(nev)
    checked = f"{len(ev.get('ports') or {})} ports and the platform's object names"
    adopted = nev.get("adopted") or []
    note = (f"; {plural(len(adopted), 'object')} of an earlier KeyBuzz install ({join_names(adopted, 4)}) will be taken over by apply"
            if adopted else "")
    unreadable = nev.get("unreadable") or []
    if unreadable:
        note += f"; not readable: {join_names(unreadable, 3)}"
    if not items:
        return ok(f"no collision: {checked} are free or already KeyBuzz's{note}", ev)
    return CheckOutcome(worst([i[0] for i in items]), "; ".join(i[1] for i in items) + note,
                        "\n".join(dict.fromkeys(i[2] for i in items if i[2])), ev)

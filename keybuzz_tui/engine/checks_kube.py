"""The checks whose state lives in the Kubernetes API: the runbook's `kubectl get` lines
(2 DaemonSets, 10 pods Running, 2 NodePort Services, Endpoints = the workers) and what they
assume (the API answers, the workers are Ready, the Ingress routes both hosts, ingress-nginx
listens on the NodePort the LB forwards to).

Each reads the shared snapshot (checks_state) and never LISTs on its own, so in continuous mode a
watch event re-runs all of them for the price of zero API requests (plus a log line or an Event
LIST when something is broken and the operator needs the reason).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..config import App
from ..redact import safe_error
from . import kubeio
from .checks_base import CheckOutcome, compact, fail, join_names, ok, plural, warn, worst
from .checks_state import ValidationState, Worker, node_ip, pod_is_ready
from .context import Context

POD_CIDR = ipaddress.ip_network("10.42.0.0/16")


def _ns(ctx: Context) -> str:
    return ctx.config.namespace


def _remediations(items: list[str]) -> str:
    seen: list[str] = []
    for r in items:
        if r and r not in seen:
            seen.append(r)
    return "\n".join(seen)


# --- k8s.api ---------------------------------------------------------------------------------


def check_api(ctx: Context, state: ValidationState) -> CheckOutcome:
    try:
        host = ctx.kube().configuration.host
    except Exception as e:
        return fail(f"cannot use the kubeconfig: {safe_error(e)}",
                    "check --kubeconfig/--context (or KUBECONFIG) and that the context exists: `kubectl config get-contexts`")
    try:
        version = state.version()
        snap = state.kube()
    except kubeio.Unreachable as e:
        return fail(f"the Kubernetes API at {host} cannot be reached: {safe_error(e)}",
                    "check the kubeconfig's server address, the network path to port 6443 (VPN, firewall), and that K3s runs "
                    "(`systemctl status k3s` on a server)", {"server": host})
    except kubeio.KubeError as e:
        rem = ("the kubeconfig's credentials were refused: refresh them (`k3s kubectl config view --raw` on a server)"
               if e.status == 401 else "ask for read access to the cluster (`kubectl auth can-i --list`)")
        return fail(f"the Kubernetes API at {host} refused the request: {e.status} {e.reason}: {e.message}", rem, {"server": host})
    ev = {"server": host, "version": version, "namespace": snap.namespace, "nodes": len(snap.nodes),
          "daemonsets": sorted(snap.daemonsets), "pods": len(snap.pods)}
    summary = f"{host} answers (Kubernetes {version}); {plural(len(snap.nodes), 'node')}, namespace {snap.namespace}: " \
              f"{plural(len(snap.daemonsets), 'DaemonSet')}, {plural(len(snap.pods), 'pod')}"
    if snap.errors:
        errs = "; ".join(f"{v}" for _, v in sorted(snap.errors.items()))
        return warn(f"{summary}; cannot read everything: {errs}",
                    f"grant read access (get, list, watch) on these kinds to this kubeconfig user; check with "
                    f"`kubectl auth can-i list pods -n {snap.namespace}`", {**ev, "errors": snap.errors})
    return ok(summary, ev)


# --- k8s.nodes -------------------------------------------------------------------------------


def check_nodes(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    if "nodes" in snap.errors:
        return fail(snap.errors["nodes"], "grant `list nodes` (cluster scope) to this kubeconfig user")
    workers = state.workers()
    others = len(snap.nodes) - len(workers)
    ev: dict[str, Any] = {"workers": {w.name: {"ip": w.ip, "ready": w.ready, "condition": w.condition, "unschedulable": w.unschedulable} for w in workers},
                          "other_nodes": others}
    if not workers:
        return fail(f"no worker node: all {plural(len(snap.nodes), 'node')} are control-plane nodes or tainted",
                    "join the workers to the cluster (K3s agent) or remove the taint that keeps pods away", ev)
    down = [w for w in workers if w.ready is False]
    cordoned = [w.name for w in workers if w.unschedulable]
    ready = [w.name for w in workers if w.ready]
    base = f"{len(ready)}/{plural(len(workers), 'worker')} Ready ({join_names(ready) or 'none'})"
    if down:
        why = "; ".join(f"{w.name} is NotReady ({w.condition})" for w in down)
        return fail(f"{base}. {why}",
                    f"bring {join_names([w.name for w in down])} back: check the kubelet on the node (`systemctl status k3s-agent`, "
                    "`journalctl -u k3s-agent`) and its network; or drain it (`kubectl drain`) and replace the server", ev)
    if cordoned:
        return warn(f"{base}; cordoned (unschedulable): {join_names(cordoned)}",
                    f"uncordon when maintenance is over: `kubectl uncordon {cordoned[0]}`", ev)
    return ok(base + (f"; {plural(others, 'other node')} (control plane)" if others else ""), ev)


# --- k8s.daemonsets ---------------------------------------------------------------------------


def _container_for(spec: dict[str, Any], app: App) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The container serving app.port and that port entry; else the first container."""
    containers = spec.get("containers") or []
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("containerPort") == app.port:
                return c, p
    return (containers[0] if containers else None), None


def check_daemonsets(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    ns = _ns(ctx)
    if "daemonsets" in snap.errors:
        return fail(snap.errors["daemonsets"], f"grant `list daemonsets` in {ns}")
    statuses, lines, rems, ev = [], [], [], {}
    for app in ctx.config.apps:
        ds = snap.daemonsets.get(app.name)
        if ds is None:
            dep = snap.deployments.get(app.name)
            if dep is not None:
                reps = ((dep.get("spec") or {}).get("replicas"))
                statuses.append("fail")
                lines.append(f"{app.name} is a Deployment ({plural(int(reps if reps is not None else 1), 'replica')}), not a hostNetwork DaemonSet: "
                             "the classic topology, whose pods other workers reach over the overlay (VXLAN); when Hetzner drops "
                             "VXLAN, ingress answers 504 from every worker without the pod")
                rems.append("move to the hostNetwork topology (one pod per worker on the node's own IP): `keybuzz-tui apply`, "
                            "or let `keybuzz-tui doctor` plan the repair")
                ev[app.name] = {"kind": "Deployment", "replicas": reps}
            else:
                statuses.append("fail")
                lines.append(f"DaemonSet {ns}/{app.name} not found")
                rems.append("create it: `keybuzz-tui apply`")
                ev[app.name] = {"kind": None}
            continue
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        st = ds.get("status") or {}
        c, port = _container_for(spec, app)
        image = (c or {}).get("image", "")
        counters = {k: int(st.get(k) or 0) for k in ("desiredNumberScheduled", "currentNumberScheduled", "updatedNumberScheduled", "numberReady", "numberAvailable")}
        ev[app.name] = {"kind": "DaemonSet", "hostNetwork": bool(spec.get("hostNetwork")), "image": image,
                        "containerPort": (port or {}).get("containerPort"), "hostPort": (port or {}).get("hostPort"), **counters}
        problems = []
        if not spec.get("hostNetwork"):
            problems.append(("fail", "does not use hostNetwork (its pods would be reached over the overlay)",
                             "set hostNetwork: true (the runbook's fix): `keybuzz-tui apply`"))
        if port is None:
            ports = [p.get("containerPort") for cc in spec.get("containers") or [] for p in cc.get("ports") or []]
            problems.append(("fail", f"declares no containerPort {app.port} (ports: {ports or 'none'})",
                             f"the app must listen on {app.port} as keybuzz.yaml says: `keybuzz-tui apply`, or change apps[].port"))
        elif port.get("hostPort") not in (None, app.port):
            problems.append(("fail", f"hostPort {port.get('hostPort')} != containerPort {app.port} (with hostNetwork they must be equal)",
                             "make hostPort equal to containerPort: `keybuzz-tui apply`"))
        if app.image and image and image != app.image:
            problems.append(("warn", f"runs image {image}, keybuzz.yaml says {app.image}",
                             "roll out the configured image with `keybuzz-tui apply`, or update apps[].image"))
        gen, observed = int((ds.get("metadata") or {}).get("generation") or 0), int(st.get("observedGeneration") or 0)
        rollout = f"ready {counters['numberReady']}/{counters['desiredNumberScheduled']}"
        if observed < gen or counters["updatedNumberScheduled"] < counters["desiredNumberScheduled"]:
            rollout += f", rollout in progress (updated {counters['updatedNumberScheduled']}/{counters['desiredNumberScheduled']})"
        if problems:
            statuses.append(worst([p[0] for p in problems]))
            lines.append(f"{app.name}: " + "; ".join(p[1] for p in problems) + f" ({rollout})")
            rems += [p[2] for p in problems]
        else:
            statuses.append("ok")
            lines.append(f"{app.name}: hostNetwork, port {app.port}, {image} ({rollout})")
    status = worst(statuses)
    out = CheckOutcome(status, ". ".join(lines) if status != "ok" else f"{plural(len(ctx.config.apps), 'hostNetwork DaemonSet')}: " + "; ".join(lines),
                       _remediations(rems), {"apps": ev})
    return out


# --- k8s.pods-ready ---------------------------------------------------------------------------


def _why_no_pod(state: ValidationState, app: App, w: Worker) -> tuple[str, str]:
    snap = state.kube()
    ns = snap.namespace
    if app.name not in snap.daemonsets:
        dep = snap.deployments.get(app.name)
        if dep is not None:
            where = sorted({(p.get("spec") or {}).get("nodeName") or "?" for p in state.app_pods(app.name)})
            return (f"no pod on {w.name}: {app.name} is a Deployment running on {join_names(where) or 'no node'} only",
                    "the hostNetwork DaemonSet runs one pod per worker: `keybuzz-tui apply`")
        return f"no DaemonSet {app.name}, so no pod on {w.name}", "create it: `keybuzz-tui apply`"
    for ev in reversed(state.events_for("DaemonSet", app.name)):
        msg = ev.get("message") or ""
        if ev.get("type") == "Warning" and w.name in msg:
            return f"no pod on {w.name}: {ev.get('reason')}: {msg}", f"see `kubectl describe ds -n {ns} {app.name}`"
    return (f"no {app.name} pod on {w.name} (the DaemonSet does not place one there)",
            f"check the DaemonSet's nodeSelector/tolerations and the node's taints: `kubectl describe ds -n {ns} {app.name}`")


def check_pods_ready(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    if "pods" in snap.errors:
        return fail(snap.errors["pods"], f"grant `list pods` in {snap.namespace}")
    statuses: list[str] = []
    problems: list[tuple[str, str]] = []
    rems: list[tuple[str, str]] = []
    ev: dict[str, Any] = {}
    expected_total = ready_total = 0
    down_names: set[str] = set()
    for app in ctx.config.apps:
        workers = state.app_workers(app.name)
        pods = state.app_pods(app.name)
        names = {w.name for w in workers}
        per: dict[str, Any] = {}
        app_ready = 0
        expected = sum(1 for w in workers if w.ready is not False)
        for w in workers:
            here = [p for p in pods if (p.get("spec") or {}).get("nodeName") == w.name]
            ready = [p for p in here if pod_is_ready(p)]
            if ready:
                app_ready += 1 if w.ready is not False else 0
                extra = len([p for p in here if not (p.get("metadata") or {}).get("deletionTimestamp")]) - 1
                per[w.name] = {"status": "ok", "pod": ready[0]["metadata"]["name"]}
                if extra > 0:
                    per[w.name]["note"] = f"{extra + 1} pods on this worker"
                continue
            if w.ready is False:
                down_names.add(w.name)
                statuses.append("warn")
                per[w.name] = {"status": "down", "detail": f"node NotReady ({w.condition})"}
                continue
            if here:
                prob = state.pod_problem(here[0], w)
                detail = prob.detail if prob else f"{here[0]['metadata']['name']} is not Ready"
                per[w.name] = {"status": "fail", "pod": here[0]["metadata"]["name"], "reason": prob.reason if prob else "NotReady",
                               "detail": detail, "restarts": prob.restarts if prob else 0,
                               "fix": "port-in-use" if "in use" in detail.lower() else "pod"}
                problems.append((w.name, f"{app.name} on {w.name}: {detail}"))
                if prob:
                    rems.append((w.name, prob.remediation))
            else:
                detail, rem = _why_no_pod(state, app, w)
                per[w.name] = {"status": "fail", "detail": detail}
                problems.append((w.name, f"{app.name}: {detail}"))
                rems.append((w.name, rem))
            statuses.append("fail")
        stray = [p for p in pods if (p.get("spec") or {}).get("nodeName") not in names]
        for p in stray:
            node = (p.get("spec") or {}).get("nodeName") or ""
            prob = state.pod_problem(p)
            if not node and prob is not None:
                problems.append(("", f"{app.name}: {prob.detail}"))
                rems.append(("", prob.remediation))
                statuses.append("fail")
        expected_total += expected
        ready_total += app_ready
        ev[app.name] = {"expected": expected, "ready": app_ready, "workers": per,
                        "other_pods": [p["metadata"]["name"] for p in stray]}
    apps_n = len(ctx.config.apps)
    ready_workers = len([w for w in state.workers() if w.ready is not False])
    head = f"{ready_total}/{expected_total} pods Running and Ready ({plural(ready_workers, 'Ready worker')} x {plural(apps_n, 'app')}, one pod each)"
    status = worst(statuses)
    if down_names:
        head += f"; {join_names(sorted(down_names))} NotReady: no pod there until the node returns"
        rems.append(("", f"bring {join_names(sorted(down_names))} back (see k8s.nodes); the DaemonSets place their pods when it is Ready"))
    rem = _remediations(compact(rems))
    if problems:
        return CheckOutcome(status, head + ". " + "; ".join(compact(problems)), rem, {"apps": ev})
    return CheckOutcome(status, head, rem, {"apps": ev})


# --- k8s.services -----------------------------------------------------------------------------


def service_port(svc: dict[str, Any], app: App) -> dict[str, Any] | None:
    ports = (svc.get("spec") or {}).get("ports") or []
    for p in ports:
        if p.get("port") == app.port or p.get("targetPort") == app.port:
            return dict(p)
    return dict(ports[0]) if len(ports) == 1 else None


def check_services(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    ns = snap.namespace
    if "services" in snap.errors:
        return fail(snap.errors["services"], f"grant `list services` in {ns}")
    statuses, lines, rems, ev = [], [], [], {}
    for app in ctx.config.apps:
        svc = snap.services.get(app.name)
        if svc is None:
            statuses.append("fail")
            lines.append(f"Service {ns}/{app.name} not found")
            rems.append("create it: `keybuzz-tui apply`")
            continue
        spec = svc.get("spec") or {}
        port = service_port(svc, app)
        typ = spec.get("type") or "ClusterIP"
        ev[app.name] = {"type": typ, "port": (port or {}).get("port"), "targetPort": (port or {}).get("targetPort"),
                        "nodePort": (port or {}).get("nodePort"), "selector": spec.get("selector") or {},
                        "externalTrafficPolicy": spec.get("externalTrafficPolicy")}
        probs: list[tuple[str, str]] = []
        if typ != "NodePort":
            probs.append((f"is {typ}, not NodePort {app.node_port} (a ClusterIP is only reachable over the overlay)",
                          f"make it a NodePort Service on {app.node_port}: `keybuzz-tui apply`"))
        elif port is None:
            probs.append((f"has no port {app.port}", "`keybuzz-tui apply` sets the ports from keybuzz.yaml"))
        elif port.get("nodePort") != app.node_port:
            probs.append((f"NodePort is {port.get('nodePort')}, keybuzz.yaml says {app.node_port}",
                          f"`keybuzz-tui apply` sets it; if {app.node_port} is held by another Service, `keybuzz-tui ports` shows by which"))
        if port is not None and port.get("targetPort") not in (app.port, None) and not isinstance(port.get("targetPort"), str):
            probs.append((f"targetPort {port.get('targetPort')} != the app's port {app.port}", "`keybuzz-tui apply` fixes it"))
        if not spec.get("selector"):
            probs.append(("has no selector: no endpoint will ever be published", "`keybuzz-tui apply` sets it"))
        elif not state.app_pods(app.name) or not any(
            all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in spec["selector"].items()) for p in state.app_pods(app.name)
        ):
            probs.append((f"selector {spec['selector']} matches no {app.name} pod", "align the Service's selector with the pods' labels: `keybuzz-tui apply`"))
        if probs:
            statuses.append("fail")
            lines.append(f"{app.name} " + "; ".join(p[0] for p in probs))
            rems += [p[1] for p in probs]
        else:
            statuses.append("ok")
            lines.append(f"{app.name} NodePort {port.get('port') if port else '?'}->{app.node_port}")
    status = worst(statuses)
    return CheckOutcome(status, ("; ".join(lines)) if status != "ok" else f"{plural(len(lines), 'NodePort Service')}: " + ", ".join(lines),
                        _remediations(rems), {"services": ev})


# --- k8s.endpoints ----------------------------------------------------------------------------


def endpoint_addresses(ep: dict[str, Any] | None, port: int | None = None) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(ready, not ready): "ip:port" -> node name, for the subsets carrying `port` (all if None)."""
    ready: dict[str, str | None] = {}
    not_ready: dict[str, str | None] = {}
    for sub in (ep or {}).get("subsets") or []:
        ports = [p.get("port") for p in sub.get("ports") or []]
        if port is not None and port not in ports and ports:
            use = ports
        else:
            use = [port] if port is not None else ports
        for p in use:
            for a in sub.get("addresses") or []:
                ready[f"{a.get('ip')}:{p}"] = a.get("nodeName")
            for a in sub.get("notReadyAddresses") or []:
                not_ready[f"{a.get('ip')}:{p}"] = a.get("nodeName")
    return ready, not_ready


def check_endpoints(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    ns = snap.namespace
    if "endpoints" in snap.errors:
        return fail(snap.errors["endpoints"], f"grant `list endpoints` in {ns}")
    node_ips = {node_ip(node): name for name, node in snap.nodes.items()}
    statuses, lines, rems, ev = [], [], [], {}
    for app in ctx.config.apps:
        ep = snap.endpoints.get(app.name)
        workers = state.app_workers(app.name)
        expected = {f"{w.ip}:{app.port}": w.name for w in workers if w.ready is not False}
        if app.name not in snap.services:
            statuses.append("skip")
            lines.append(f"{app.name}: no Service (see k8s.services)")
            continue
        ready, not_ready = endpoint_addresses(ep, app.port)
        ev[app.name] = {"expected": sorted(expected), "ready": sorted(ready), "not_ready": sorted(not_ready)}
        missing = [a for a in expected if a not in ready]
        extra = [a for a in ready if a not in expected]
        probs, app_rems = [], []
        overlay = [a for a in extra if in_pod_cidr(a)]
        if overlay:
            where = join_names([f"{a} on {ready[a] or '?'}" for a in overlay])
            probs.append(f"{app.name}'s endpoints are pod IPs on the overlay ({where}), not the workers' IPs: the pods are not hostNetwork, "
                         "so every other worker reaches them through VXLAN")
            app_rems.append("move to the hostNetwork DaemonSets (endpoints = node IPs): `keybuzz-tui apply`")
        other = [a for a in extra if a not in overlay]
        if other:
            names = [f"{a} ({ready[a] or node_ips.get(a.split(':')[0], 'not a worker')})" for a in other]
            probs.append(f"{app.name} has unexpected endpoints {join_names(names)}")
            app_rems.append(f"check which pods the Service selects: `kubectl get endpoints -n {ns} {app.name} -o yaml`")
        if overlay and missing:
            probs[-1] += f"; none of the {len(expected)} workers' IPs:{app.port} is an endpoint"
            missing = []
        if missing:
            why = []
            for a in missing:
                w = expected[a]
                if a in not_ready:
                    why.append(f"{w} ({a}: its pod is not Ready, see k8s.pods-ready)")
                else:
                    why.append(f"{w} ({a}: no pod selected there)")
            probs.append(f"{app.name} is missing {join_names(why)}")
            app_rems.append("fix the pods named in k8s.pods-ready; the endpoints follow their readiness")
        if probs:
            statuses.append("fail")
            lines.append("; ".join(probs))
            rems += app_rems
        else:
            statuses.append("ok")
            lines.append(f"{app.name}: {len(ready)} endpoints = the workers' IPs:{app.port}")
    status = worst(statuses)
    return CheckOutcome(status, "; ".join(lines), _remediations(rems), {"endpoints": ev})


def in_pod_cidr(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr.rsplit(":", 1)[0]) in POD_CIDR
    except ValueError:
        return False


# --- k8s.ingress ------------------------------------------------------------------------------


def ingress_rule_for(state: ValidationState, host: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(ingress, rule, path) serving `/` of host, in the namespace."""
    for _, ing in sorted(state.kube().ingresses.items()):
        for rule in (ing.get("spec") or {}).get("rules") or []:
            if str(rule.get("host") or "").lower() != host:
                continue
            paths = ((rule.get("http") or {}).get("paths")) or []
            for p in paths:
                if p.get("pathType", "Prefix") in ("Prefix", "ImplementationSpecific") and str(p.get("path") or "/") == "/":
                    return ing, rule, p
            return ing, rule, paths[0] if paths else None
    return None, None, None


def check_ingress(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    ns = snap.namespace
    cfg = ctx.config
    if "ingresses" in snap.errors:
        return fail(snap.errors["ingresses"], f"grant `list ingresses` in {ns}")
    statuses, lines, rems, ev = [], [], [], {}
    for app in cfg.apps:
        if not app.host:
            continue
        ing, rule, path = ingress_rule_for(state, app.host)
        if ing is None:
            statuses.append("fail")
            lines.append(f"no Ingress rule for {app.host} in {ns}")
            rems.append("create it: `keybuzz-tui apply`")
            ev[app.host] = None
            continue
        name = ing["metadata"]["name"]
        spec = ing.get("spec") or {}
        cls = spec.get("ingressClassName") or ((ing["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class"))
        backend = ((path or {}).get("backend") or {}).get("service") or {}
        bport = (backend.get("port") or {})
        ev[app.host] = {"ingress": name, "class": cls, "service": backend.get("name"), "port": bport.get("number") or bport.get("name")}
        probs = []
        if cls and cls != cfg.ingress.class_name:
            probs.append((f"Ingress {name} has class {cls}, not {cfg.ingress.class_name}: ingress-nginx ignores it",
                          f"set ingressClassName: {cfg.ingress.class_name} (`keybuzz-tui apply`)"))
        if path is None:
            probs.append((f"Ingress {name} routes no path for {app.host}", "`keybuzz-tui apply` sets path / (Prefix)"))
        elif backend.get("name") != app.name:
            probs.append((f"{app.host} is routed to Service {backend.get('name')}, not {app.name}", "`keybuzz-tui apply` fixes the backend"))
        else:
            svc = snap.services.get(app.name)
            sp = service_port(svc, app) if svc else None
            want = {(sp or {}).get("port"), (sp or {}).get("name")} - {None}
            got = bport.get("number") or bport.get("name")
            if sp is not None and got not in want:
                probs.append((f"{app.host} -> {app.name}:{got}, but the Service's port is {sp.get('port')}",
                              "`keybuzz-tui apply` aligns the Ingress backend port with the Service"))
        tls_hosts = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
        ann = ing["metadata"].get("annotations") or {}
        if app.host in tls_hosts and ann.get("nginx.ingress.kubernetes.io/ssl-redirect", "true") != "false":
            statuses.append("warn")
            lines.append(f"{app.host} is listed under the Ingress's tls with ssl-redirect on: behind a Load Balancer that ends TLS and "
                         "forwards plain HTTP, nginx answers 308 to https again (a redirect loop)")
            rems.append("drop the tls section (TLS ends on the LB) or set nginx.ingress.kubernetes.io/ssl-redirect: \"false\" and "
                        "use-forwarded-headers in ingress-nginx's ConfigMap")
        if probs:
            statuses.append("fail")
            lines.append("; ".join(p[0] for p in probs))
            rems += [p[1] for p in probs]
        else:
            statuses.append("ok")
            lines.append(f"{app.host} -> {app.name}:{ev[app.host]['port']} (Ingress {name})")
    status = worst(statuses)
    return CheckOutcome(status, "; ".join(lines), _remediations(rems), {"hosts": ev})


# --- k8s.ingress-controller -------------------------------------------------------------------


def check_ingress_controller(ctx: Context, state: ValidationState) -> CheckOutcome:
    snap = state.kube()
    ing = ctx.config.ingress
    ref = f"{ing.namespace}/{ing.service}"
    svc = snap.ingress_service
    if svc is None:
        if "ingress_service" in snap.errors:
            return fail(snap.errors["ingress_service"], f"grant `get services` in {ing.namespace}")
        return fail(f"Service {ref} not found: nothing serves the ingress NodePort {ing.http_node_port}",
                    "install ingress-nginx as the runbook's module 9 does (a DaemonSet with NodePorts 31695/32720), or fix "
                    "ingress.namespace / ingress.service in keybuzz.yaml")
    spec = svc.get("spec") or {}
    http = next((p for p in spec.get("ports") or [] if p.get("name") == "http" or p.get("port") == 80), None)
    ev: dict[str, Any] = {"service": ref, "type": spec.get("type"), "http_node_port": (http or {}).get("nodePort"),
                          "externalTrafficPolicy": spec.get("externalTrafficPolicy")}
    if http is None or (http.get("nodePort") != ing.http_node_port):
        got = (http or {}).get("nodePort")
        return fail(f"{ref}'s http NodePort is {got}, but the Load Balancer forwards to {ing.http_node_port}",
                    f"set ingress.http_node_port: {got} in keybuzz.yaml and re-apply the LB, or give the Service nodePort {ing.http_node_port}", ev)
    ready, not_ready = endpoint_addresses(snap.ingress_endpoints)
    nodes_with = {(n or "") for n in ready.values()}
    ips_with = {a.rsplit(":", 1)[0] for a in ready}
    missing = [w.name for w in state.workers() if w.ready is not False and w.name not in nodes_with and w.ip not in ips_with]
    ev["ready_on"] = sorted(n for n in nodes_with if n)
    local = spec.get("externalTrafficPolicy") == "Local"
    if missing:
        msg = f"no Ready ingress-nginx pod on {join_names(missing)}"
        if local:
            return fail(msg + f": with externalTrafficPolicy Local, {ing.http_node_port} drops traffic there and the LB marks it unhealthy",
                        f"run ingress-nginx on every worker (a DaemonSet): `kubectl get pods -n {ing.namespace} -o wide`", ev)
        return warn(msg + " (traffic is forwarded to other workers)", f"check `kubectl get pods -n {ing.namespace} -o wide`", ev)
    return ok(f"{ref}: http NodePort {ing.http_node_port}, ingress-nginx Ready on {plural(len(ev['ready_on']), 'worker')}"
              + (" (externalTrafficPolicy Local)" if local else ""), ev)


def classic_topology(state: ValidationState, app: str) -> bool:
    """The app runs the pre-fix way: no DaemonSet, pods (owned by a ReplicaSet) on the overlay."""
    snap = state.kube()
    if app in snap.daemonsets:
        return False
    return any(not (p.get("spec") or {}).get("hostNetwork") for p in state.app_pods(app)) or app in snap.deployments


def host_network_app(state: ValidationState, app: str) -> bool:
    snap = state.kube()
    ds = snap.daemonsets.get(app)
    if ds is not None:
        return bool((((ds.get("spec") or {}).get("template") or {}).get("spec") or {}).get("hostNetwork"))
    return any((p.get("spec") or {}).get("hostNetwork") for p in state.app_pods(app))


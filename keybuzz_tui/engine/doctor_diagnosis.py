"""From findings to causes: the doctor's diagnosis, in plain words, ranked.

The checks say what is true (a probe timed out, a target is unhealthy, a record points elsewhere);
the diagnosis says why the platform is down and what to do first. Each rule below recognises one
known failure from the checks' statuses and evidence (the runbook's "lessons learned" are the
first of them: a blocked VXLAN with the classic topology means 504s, and the fix is hostNetwork),
and produces a Cause: a title, the explanation ("Cause: ... Fix: ..."), the evidence lines it rests
on, the checks it explains, and the next command to run. Failing checks that no rule explains
become causes of their own, so nothing the checks found is lost.

The Recovery screen reads `Cause.steps` (which repair steps fix it: kubernetes, lb, dns, firewall)
and `Cause.action` (repair | credentials | manual | none). What recovery repairs has causes of its
own: an apply stopped halfway (interrupted-run: resume it), a held or stale platform lock
(lock-held, lock-stale), a Secret deleted (secret-missing), an image changed by hand
(image-changed), other drift (objects-drift), a replaced worker that is not a target (lb-targets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .checks_base import CheckRecord, join_names
from .doctor_overlay import backend_words
from .doctor_platform import OVERLAY_CHECKS, overlay_verdict

REPAIR = "keybuzz-tui repair"
SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2, "info": 3}


@dataclass
class Cause:
    id: str  # stable: overlay-classic, overlay-hostnetwork, lb-missing, lb-target-unhealthy, dns-stale, ...
    severity: str  # critical (the platform is down) | major | minor | info
    title: str  # one line
    explanation: str  # "Cause: ... Fix: ..." in plain words
    fix: str
    next_command: str
    evidence: list[str] = field(default_factory=list)  # verbatim lines from the checks
    checks: list[str] = field(default_factory=list)  # the checks this cause explains
    action: str = "repair"  # repair | credentials | manual | none
    steps: tuple[str, ...] = ()  # the repair steps that fix it: kubernetes, lb, dns, firewall

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["steps"] = list(self.steps)
        return d


@dataclass
class Diagnosis:
    causes: list[Cause] = field(default_factory=list)
    overlay: str = "unknown"  # broken | ok | unknown
    topology: str = ""  # hostnetwork | classic | mixed | none | ""
    platform_depends_on_overlay: bool | None = None

    @property
    def ok(self) -> bool:
        return not [c for c in self.causes if c.severity in ("critical", "major")]

    @property
    def summary(self) -> str:
        if not self.causes:
            return "No problem found: every check passed."
        return self.causes[0].explanation

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "overlay": self.overlay, "topology": self.topology,
                "platform_depends_on_overlay": self.platform_depends_on_overlay, "causes": [c.to_dict() for c in self.causes]}


class _Findings:
    def __init__(self, records: dict[str, CheckRecord], config: Any) -> None:
        self.r = records
        self.config = config
        self.explained: set[str] = set()
        self.down: list[str] = []  # workers NotReady (k8s.nodes)

    def get(self, cid: str) -> CheckRecord | None:
        return self.r.get(cid)

    def status(self, cid: str) -> str:
        rec = self.r.get(cid)
        return rec.status if rec is not None else "absent"

    def failed(self, cid: str) -> bool:
        return self.status(cid) == "fail"

    def bad(self, cid: str) -> bool:
        return self.status(cid) in ("fail", "warn")

    def line(self, cid: str, limit: int = 400) -> str:
        rec = self.r.get(cid)
        if rec is None:
            return ""
        text = rec.detail if len(rec.detail) <= limit else rec.detail[: limit - 1] + "…"
        return f"{cid}: {text}"

    def ev(self, cid: str) -> dict[str, Any]:
        rec = self.r.get(cid)
        return dict(rec.evidence) if rec is not None else {}

    def hosts(self) -> list[str]:
        return [a.host for a in self.config.apps if a.host]


# --- the rules (in rank order within a severity) ----------------------------------------------


def _api(f: _Findings) -> list[Cause]:
    if not f.failed("k8s.api"):
        return []
    kind = f.ev("k8s.api").get("failure") or "error"
    f.explained.add("k8s.api")
    if kind == "kubeconfig":
        return [Cause("kubeconfig", "critical", "The kubeconfig cannot be used",
                      "Cause: the kubeconfig (or its context) cannot be loaded, so nothing in the cluster could be checked. "
                      "Fix: point keybuzz-tui at a working kubeconfig and context.",
                      "check KUBECONFIG / cluster.kubeconfig in keybuzz.yaml and --context (`kubectl config get-contexts`)",
                      "kubectl config get-contexts", [f.line("k8s.api")], ["k8s.api"], "manual")]
    if kind in ("unauthorized", "forbidden"):
        return [Cause("kube-credentials", "critical", "The Kubernetes API refuses the kubeconfig's credentials",
                      "Cause: the Kubernetes API answers but refuses this kubeconfig user, so nothing in the cluster can be checked. "
                      "Fix: refresh the credentials or use the K3s admin kubeconfig.",
                      "refresh the kubeconfig (`k3s kubectl config view --raw` on a server) or pick another --context",
                      "kubectl --context <ctx> auth whoami", [f.line("k8s.api")], ["k8s.api"], "credentials")]
    return [Cause("kube-unreachable", "critical", "The Kubernetes API cannot be reached",
                  "Cause: the Kubernetes API does not answer, so the cluster side could not be checked (the Hetzner and DNS "
                  "checks still ran). Fix: check the kubeconfig's server address, the VPN/firewall to port 6443, and that K3s runs.",
                  "check the kubeconfig context and the network path to port 6443; `systemctl status k3s` on a server",
                  "kubectl cluster-info", [f.line("k8s.api")], ["k8s.api"], "manual")]


def _permissions(f: _Findings) -> list[Cause]:
    if not f.bad("k8s.permissions"):
        return []
    f.explained.add("k8s.permissions")
    ev = f.ev("k8s.permissions")
    missing = ev.get("missing") or []
    probe_missing = ev.get("probe_missing") or []
    ns = f.config.namespace
    # what the missing permissions kept the other checks from seeing
    side = [c for c in OVERLAY_CHECKS if f.status(c) == "warn" and "may not run probe pods" in (f.get(c).detail if f.get(c) else "")]  # type: ignore[union-attr]
    if f.status("k8s.nodeport-range") == "warn" and "403" in (f.get("k8s.nodeport-range").detail if f.get("k8s.nodeport-range") else ""):  # type: ignore[union-attr]
        side.append("k8s.nodeport-range")
    for c in ("platform.objects", "platform.lock"):  # what they could not read for want of a permission
        rec = f.get(c)
        if rec is not None and rec.status == "warn" and any(w in rec.detail.lower() for w in ("403", "forbidden")):
            side.append(c)
    f.explained.update(side)
    evidence = [f.line("k8s.permissions")] + [f"missing: {m}" for m in missing[:16]] + [f"missing for the probe pods: {m}" for m in probe_missing[:6]]
    evidence += [f.line(c, 300) for c in side]
    if not missing:
        return [Cause("probe-permissions", "minor", "The doctor may not run its probe pods: the overlay was not tested",
                      f"Cause: this kubeconfig user may not {join_names(probe_missing, 4)}, so the overlay probe could not run. "
                      "Fix: grant them, or accept an untested overlay (--no-probes).",
                      "grant create/get/list/watch/delete on pods and get on pods/log in kube-system",
                      "kubectl auth can-i create pods -n kube-system", evidence, ["k8s.permissions", *side], "credentials")]
    return [Cause("kube-permissions", "major", f"The kubeconfig user lacks {len(missing)} permission(s) the wizard needs",
                  f"Cause: this kubeconfig user may not {join_names(missing, 4)}; an install or a repair would stop half-way"
                  + (", and the doctor could not run its overlay probe" if any(c in side for c in OVERLAY_CHECKS) else "")
                  + ". Fix: use a context bound to cluster-admin, or grant the missing verbs.",
                  "use the K3s admin kubeconfig, or grant the verbs listed", f"kubectl auth can-i --list -n {ns}",
                  evidence, ["k8s.permissions", *side], "credentials")]


def _overlay(f: _Findings) -> list[Cause]:
    verdict = overlay_verdict(f.r)
    if verdict != "broken":
        return []
    topo = (f.ev("platform.topology") or {}).get("topology") or ""
    backend = (f.ev("overlay.backend") or {}).get("backend") or "vxlan"
    name, port = backend_words(backend)
    failed_paths = []
    if f.failed("overlay.pod-to-pod"):
        failed_paths.append("pod-to-pod across nodes")
    if f.failed("overlay.clusterip"):
        failed_paths.append("ClusterIP Services")
    paths = " and ".join(failed_paths) + " time out" if failed_paths else "the overlay probes time out"
    if f.failed("overlay.coredns"):
        paths += ", CoreDNS cannot be reached"
    broken = f"the overlay network between nodes is broken ({name}, {port}, appears blocked: {paths})"
    ev = [f.line(c) for c in OVERLAY_CHECKS if f.bad(c)]
    checks = [c for c in OVERLAY_CHECKS if f.bad(c)] + (["overlay.backend"] if f.get("overlay.backend") else [])
    f.explained.update(checks)
    if topo in ("classic", "mixed"):
        f.explained.update({"platform.topology", "platform.request-path", "platform.objects"} | {c for c in f.r if c.startswith("https.")})
        cev = f.ev("k8s.collisions")
        if f.status("k8s.collisions") == "warn" and cev.get("overlapping") and not cev.get("foreign") and not cev.get("ingress_hosts"):
            f.explained.add("k8s.collisions")  # the classic Deployments: the repair removes them
        path_ev = [f.line("platform.request-path", 600)] if f.bad("platform.request-path") else []
        return [Cause(
            "overlay-classic", "critical",
            "The overlay is broken and KeyBuzz runs in the classic topology: 504 Gateway Time-out",
            "Cause: the overlay network is broken and KeyBuzz still runs in the classic topology (Deployments behind ClusterIP "
            "Services): ingress-nginx cannot reach the pods on other nodes → 504 Gateway Time-out. "
            f"Fix: move the apps to hostNetwork DaemonSets ({REPAIR}).",
            f"move the apps to hostNetwork DaemonSets (one pod per worker on the node's IP, NodePort Services; the classic "
            f"Deployments go): `{REPAIR}`. Separately, allow {port} between the nodes so the cluster's other workloads and "
            "CoreDNS work again",
            REPAIR, [f"In plain words: {broken}."] + ev + [f.line("platform.topology")] + path_ev,
            checks + ["platform.topology", "platform.request-path"] + (["platform.objects"] if f.bad("platform.objects") else []),
            "repair", ("kubernetes",))]
    if topo == "hostnetwork":
        return [Cause(
            "overlay-hostnetwork", "minor",
            "The overlay is broken, but KeyBuzz does not depend on it (hostNetwork topology)",
            f"Cause: {broken}. KeyBuzz already runs in the hostNetwork topology (our DaemonSets with hostNetwork exist), so the "
            "platform does not depend on the overlay; other workloads that use ClusterIP Services or CoreDNS are affected. "
            f"Fix: nothing for KeyBuzz; for the rest of the cluster, allow {port} between the nodes.",
            f"allow {port} between the nodes (UFW on every node; the private network must carry it)",
            "keybuzz-tui doctor --only overlay", [f"In plain words: {broken}."] + ev + [f.line("platform.topology")], checks,
            "manual", ())]
    return [Cause(
        "overlay-broken", "major", "The overlay network between the nodes is broken",
        f"Cause: {broken}. Fix: install KeyBuzz in the hostNetwork topology (`keybuzz-tui apply`, the default), which does not "
        f"use the overlay; and allow {port} between the nodes for the rest of the cluster.",
        f"`keybuzz-tui apply` installs the hostNetwork topology; allow {port} between the nodes",
        "keybuzz-tui apply", [f"In plain words: {broken}."] + ev, checks, "repair", ("kubernetes",))]


def _nodes(f: _Findings) -> list[Cause]:
    if not f.failed("k8s.nodes"):
        return []
    f.explained.add("k8s.nodes")
    ev = f.ev("k8s.nodes")
    down = [f"{n} ({v.get('condition') or 'NotReady'})" for n, v in (ev.get("nodes") or {}).items()
            if v.get("ready") is False and n in (ev.get("workers") or {})]
    if down:
        names = [d.split(" ", 1)[0] for d in down]
        f.down = names
        paths = f.ev("platform.request-path")
        if paths and all((per.get(n) or {}).get("first_broken") in (None,) or n in names
                         for per in paths.values() if isinstance(per, dict) for n in per):
            f.explained.add("platform.request-path")  # only the NotReady workers' paths are broken
        return [Cause("node-notready", "major", f"Worker {join_names(names)} is NotReady",
                      f"Cause: {join_names(down)}: its kubelet stopped reporting, so its pods do not serve and the LB drops it. "
                      f"Fix: bring the node back (the k3s-agent service) or replace the server.",
                      f"on {names[0]}: `systemctl status k3s-agent`, `journalctl -u k3s-agent`; or drain and replace the server",
                      f"kubectl describe node {names[0]}", [f.line("k8s.nodes")], ["k8s.nodes"], "manual")]
    if f.ev("k8s.nodes").get("hetzner_workers") is not None and "not nodes of the cluster" in (f.get("k8s.nodes").detail if f.get("k8s.nodes") else ""):  # type: ignore[union-attr]
        outside = set(ev.get("hetzner_workers") or []) - set(ev.get("nodes") or {})
        tev = f.ev("hetzner.targets")
        stale = {t.get("server") for t in tev.get("stale") or []}
        checks = ["k8s.nodes"]
        if f.failed("hetzner.targets") and stale and stale <= outside and not tev.get("missing"):
            checks.append("hetzner.targets")  # the same servers, seen from the LB: still targets
            f.explained.add("hetzner.targets")
        return [Cause("workers-not-joined", "major", "Hetzner workers are not nodes of the cluster",
                      f"Cause: {f.get('k8s.nodes').detail if f.get('k8s.nodes') else ''}. Fix: join them to K3s.",  # type: ignore[union-attr]
                      "join the servers to K3s (k3s agent with the cluster token), or remove their label so the LB stops targeting them",
                      "kubectl get nodes -o wide", [f.line(c) for c in checks], checks, "manual")]
    return [Cause("workers-missing", "major", "Workers are missing from the cluster",
                  f"Cause: {f.get('k8s.nodes').detail if f.get('k8s.nodes') else ''}. Fix: join the missing workers (K3s agent).",  # type: ignore[union-attr]
                  "join the missing servers to K3s", "kubectl get nodes -o wide", [f.line("k8s.nodes")], ["k8s.nodes"], "manual")]


def _token(f: _Findings) -> list[Cause]:
    if not f.failed("hetzner.token"):
        return []
    st = f.ev("hetzner.token").get("status")
    f.explained.add("hetzner.token")
    deps = [c for c in ("hetzner.lb", "hetzner.firewall", "hetzner.quotas") if f.status(c) == "skip"]
    f.explained.update(deps)
    if st == "read-only":
        return [Cause("token-readonly", "major", "The Hetzner API token is read-only",
                      "Cause: the Hetzner API token can read the project but not change it, so a repair of the Load Balancer, "
                      "DNS or firewall would be refused (401 token_readonly). Fix: store a Read & Write token.",
                      "create a Read & Write token (Hetzner Console > the project > Security > API tokens)",
                      "keybuzz-tui credentials set hcloud-token", [f.line("hetzner.token")], ["hetzner.token"], "credentials")]
    if st == "unreachable":
        return [Cause("hetzner-unreachable", "major", "The Hetzner API cannot be reached",
                      "Cause: the Hetzner Cloud API does not answer, so the Load Balancer, firewall and limits were not checked. "
                      "Fix: check the network path to api.hetzner.cloud (proxy, HCLOUD_ENDPOINT).",
                      "check the network path to the Hetzner API", "keybuzz-tui credentials check",
                      [f.line("hetzner.token")], ["hetzner.token"] + deps, "manual")]
    return [Cause("token-invalid", "major", f"The Hetzner API token is {st or 'unusable'}",
                  f"Cause: {f.get('hetzner.token').detail if f.get('hetzner.token') else ''}. "  # type: ignore[union-attr]
                  "Fix: store a valid Read & Write token of the project (or set HCLOUD_TOKEN).",
                  "store a Read & Write token of the project", "keybuzz-tui credentials set hcloud-token",
                  [f.line("hetzner.token")], ["hetzner.token"] + deps, "credentials")]


def _lb(f: _Findings) -> list[Cause]:
    if not f.bad("hetzner.lb") or "hetzner.lb" in f.explained:
        return []
    ev = f.ev("hetzner.lb")
    name = f.config.load_balancer.name
    f.explained.add("hetzner.lb")
    if ev.get("exists") is False or "no Load Balancer" in (f.get("hetzner.lb").detail if f.get("hetzner.lb") else ""):  # type: ignore[union-attr]
        f.explained.update({"dns.records", "platform.request-path"} | {c for c in f.r if c.startswith("https.")})
        return [Cause("lb-missing", "critical", f"The Load Balancer {name} does not exist",
                      f"Cause: the Hetzner Load Balancer {name} is gone, so nothing receives the traffic for "
                      f"{join_names(f.hosts())}. Fix: recreate it ({REPAIR}) and point DNS at its new address.",
                      f"recreate the Load Balancer and its services, targets and certificate: `{REPAIR}`", REPAIR,
                      [f.line("hetzner.lb")] + ([f.line("dns.records")] if f.get("dns.records") else []),
                      ["hetzner.lb", "dns.records"], "repair", ("lb", "dns"))]
    health = ev.get("health") or {}
    unhealthy = sorted(n for n, v in health.items() if isinstance(v, dict) and any(
        (h or {}).get("status") == "unhealthy" for h in (v.get("health") or {}).values()))
    out: list[Cause] = []
    if unhealthy and set(unhealthy) <= set(f.down):
        # the NotReady node explains it (k8s.nodes' cause); the LB only draws the consequence
        if ev.get("services_status") == "ok":
            return []
        unhealthy = []
    if unhealthy:
        np = f.config.ingress.http_node_port
        paths = f.ev("platform.request-path")
        firsts = sorted({(per.get(n) or {}).get("first_broken") for per in paths.values() if isinstance(per, dict) for n in unhealthy} - {None})
        hop = f" (the request path breaks at the {join_names(firsts)} hop there)" if firsts else ""
        f.explained.add("platform.request-path")
        out.append(Cause("lb-target-unhealthy", "major", f"Load Balancer target {join_names(unhealthy)} is unhealthy",
                         f"Cause: the Load Balancer's health check to {join_names(unhealthy)} fails{hop}: NodePort {np} does not "
                         "answer there (a firewall or UFW rule on the node, or ingress-nginx down), so the LB sends it no traffic "
                         "and the others carry the load. "
                         f"Fix: open {np}/tcp on {join_names(unhealthy)} (`ufw allow {np}/tcp`) and check ingress-nginx there.",
                         f"on {unhealthy[0]}: `ufw status numbered`, `ufw allow {np}/tcp`; `kubectl -n {f.config.ingress.namespace} get pods -o wide`",
                         "keybuzz-tui doctor --only hetzner.lb,platform.request-path",
                         [f.line("hetzner.lb", 600)] + ([f.line("platform.request-path", 600)] if paths else []),
                         ["hetzner.lb", "platform.request-path"], "manual", ("firewall",)))
    else:
        out.append(Cause("lb-config", "major" if f.failed("hetzner.lb") else "minor", f"The Load Balancer {name} differs from keybuzz.yaml",
                         f"Cause: {f.get('hetzner.lb').detail if f.get('hetzner.lb') else ''}. Fix: reconcile it ({REPAIR}).",  # type: ignore[union-attr]
                         f"`{REPAIR}` updates the services, targets and network attachment", REPAIR,
                         [f.line("hetzner.lb", 600)], ["hetzner.lb"], "repair", ("lb",)))
    return out


def _not_installed(f: _Findings) -> list[Cause]:
    if (f.ev("platform.topology") or {}).get("topology") != "none" or "platform.topology" in f.explained:
        return []
    lb_ev = f.ev("hetzner.lb")
    no_lb = lb_ev.get("exists") is False
    ns = f.config.namespace
    expl = {"platform.topology", "platform.request-path", "platform.objects", "hetzner.targets"} | {c for c in f.r if c.startswith("https.")}
    if no_lb:
        expl |= {"hetzner.lb", "dns.records"}
    f.explained.update(expl)
    what = f"no KeyBuzz objects in namespace {ns}" + (f" and no Load Balancer {f.config.load_balancer.name}" if no_lb else "")
    return [Cause("not-installed", "major", "KeyBuzz is not installed",
                  f"Cause: KeyBuzz is not installed ({what}). Fix: install it (`keybuzz-tui apply`: hostNetwork DaemonSets, "
                  "the Load Balancer, DNS).",
                  "`keybuzz-tui apply`", "keybuzz-tui apply",
                  [f.line("platform.topology")] + ([f.line("hetzner.lb")] if no_lb else []), sorted(expl & set(f.r)),
                  "repair", ("kubernetes", "lb", "dns") if no_lb else ("kubernetes",))]


def _dns(f: _Findings) -> list[Cause]:
    if not f.bad("dns.records") or "dns.records" in f.explained:
        return []
    f.explained.add("dns.records")
    ev = f.ev("dns.records")
    stale = [r for r in ev.get("records") or [] if r.get("verdict") in ("stale", "missing")]
    lb_ips = ev.get("lb_ips") or []
    if stale:
        names = [f"{r['host']} → {', '.join(r.get('authoritative') or []) or 'nothing'}" for r in stale]
        f.explained.update({c for c in f.r if c.startswith("https.")} | {"platform.request-path"})
        return [Cause("dns-stale", "critical" if len(stale) >= len(f.hosts()) else "major",
                      "DNS points the public names elsewhere than the Load Balancer",
                      f"Cause: {join_names(names)}, not the Load Balancer ({join_names(lb_ips)}): browsers go to the old address. "
                      f"Fix: point the records at the LB ({REPAIR}).",
                      f"`{REPAIR}` sets the A records to {join_names(lb_ips)}", REPAIR, [f.line("dns.records", 600)],
                      ["dns.records"], "repair", ("dns",))]
    return [Cause("dns", "minor", "DNS answers are not settled", f"Cause: {f.get('dns.records').detail if f.get('dns.records') else ''}.",  # type: ignore[union-attr]
                  "wait for the resolvers' caches (the TTL) or fix the records", "keybuzz-tui doctor --only dns",
                  [f.line("dns.records", 600)], ["dns.records"], "none")]


# --- what recovery repairs (doctor_recovery.py's checks) ---------------------------------------------

ALL_STEPS = ("kubernetes", "lb", "dns", "firewall")


def _https(f: _Findings) -> set[str]:
    return {c for c in f.r if c.startswith("https.")}


def _interrupted(f: _Findings) -> list[Cause]:
    """An apply or repair stopped halfway: what is left undone explains the checks that see it."""
    if not f.failed("platform.interrupted"):
        return []
    ev = f.ev("platform.interrupted")
    runs = [r for r in ev.get("runs") or [] if not r.get("still_running")]
    if not runs:
        return []
    run = runs[-1]
    f.explained.add("platform.interrupted")
    follows = {"platform.objects", "hetzner.targets", "dns.records", "platform.topology", "platform.request-path"} | _https(f)
    if f.ev("hetzner.lb").get("exists") is False:
        follows.add("hetzner.lb")  # the apply had not reached the Load Balancer
    lock = f.ev("platform.lock")
    if f.failed("platform.lock") and lock.get("stale") and lock.get("holder") and lock.get("holder") == run.get("holder"):
        follows.add("platform.lock")  # the run died holding it
    expl = sorted(c for c in follows if f.bad(c) and c not in f.explained)
    f.explained.update(expl)
    broken = any(f.failed(c) for c in {"platform.request-path"} | _https(f)) or "hetzner.lb" in expl
    when = str(run.get("started") or "").replace("T", " ")[:16]
    rec = f.get("platform.interrupted")
    fix = rec.remediation if rec is not None else REPAIR
    take_over = " --take-over-stale-lock" if "platform.lock" in expl else ""
    return [Cause(
        "interrupted-run", "critical" if broken else "major",
        f"The {run.get('command')} of {when} stopped halfway (run {run.get('run')})",
        f"Cause: {run.get('description')}. Fix: resume it ({REPAIR}{take_over}): it plans against the live state, so only what "
        "remains is applied.",
        fix + (f"\nits platform lock is stale: `{REPAIR} --take-over-stale-lock`" if take_over else ""), REPAIR + take_over,
        [f.line("platform.interrupted", 800)] + [f.line(c, 300) for c in expl], ["platform.interrupted", *expl], "repair", ALL_STEPS)]


def _lock(f: _Findings) -> list[Cause]:
    if not f.failed("platform.lock") or "platform.lock" in f.explained:
        return []
    ev = f.ev("platform.lock")
    rec = f.get("platform.lock")
    assert rec is not None
    f.explained.add("platform.lock")
    holder = ev.get("holder") or "another wizard"
    if ev.get("stale"):
        return [Cause("lock-stale", "major", f"A stale platform lock ({holder}) blocks every apply and repair",
                      f"Cause: {rec.detail}. Fix: take it over (`{REPAIR} --take-over-stale-lock`, journaled) once you know nobody "
                      "is changing the platform.",
                      rec.remediation, f"{REPAIR} --take-over-stale-lock", [f.line("platform.lock", 600)], ["platform.lock"], "repair", ())]
    running = [c for c in ("platform.interrupted",) if f.status(c) == "warn" and c not in f.explained]
    f.explained.update(running)  # "still running": the same wizard, seen in the journal
    return [Cause("lock-held", "major", f"Another wizard is changing the platform: {holder} holds the lock",
                  f"Cause: {rec.detail}. Fix: wait for it to finish, or ask {ev.get('user') or 'its holder'} on "
                  f"{ev.get('host') or 'its host'}; a live lock is never taken over.",
                  rec.remediation, "keybuzz-tui doctor --only platform.lock",
                  [f.line("platform.lock", 600)] + [f.line(c, 400) for c in running], ["platform.lock", *running], "manual", ())]


def _targets(f: _Findings) -> list[Cause]:
    if not f.failed("hetzner.targets") or "hetzner.targets" in f.explained:
        return []
    ev = f.ev("hetzner.targets")
    rec = f.get("hetzner.targets")
    assert rec is not None
    f.explained.add("hetzner.targets")
    missing = [m["worker"] for m in ev.get("missing") or []]
    stale = [t["server"] for t in ev.get("stale") or []]
    former = [x["server"] for x in ev.get("former") or []]
    lb = ev.get("lb") or f.config.load_balancer.name
    checks = ["hetzner.targets"]
    paths = f.ev("platform.request-path")
    rows = [(n, v) for per in paths.values() if isinstance(per, dict) for n, v in per.items() if isinstance(v, dict)]
    broken = [(n, v.get("first_broken")) for n, v in rows if v.get("first_broken")]
    if broken and all(n in missing and hop == "lb" for n, hop in broken) and f.bad("platform.request-path"):
        f.explained.add("platform.request-path")  # the traces through a worker that is no target stop at the LB hop
        checks.append("platform.request-path")
    if missing and former:
        title = f"Worker {join_names(missing)}, which replaced {join_names(former)}, is not a target of {lb}"
    elif missing:
        title = f"Worker {join_names(missing)} is not a target of {lb}"
    else:
        title = f"{lb} still targets {join_names(stale)}, no longer a worker of the cluster"
    repairable = bool(ev.get("repair"))
    first = rec.remediation.splitlines()[0] if rec.remediation else "see the check"
    return [Cause("lb-targets", "major", title, f"Cause: {rec.detail}. Fix: {first}.", rec.remediation,
                  REPAIR if repairable else "keybuzz-tui doctor --only hetzner.targets",
                  [f.line(c, 600) for c in checks], checks, "repair" if repairable else "manual", ("lb",) if repairable else ())]


def _objects(f: _Findings) -> list[Cause]:
    if not f.bad("platform.objects") or "platform.objects" in f.explained:
        return []
    ev = f.ev("platform.objects")
    if ev.get("topology") in ("classic", "mixed") and f.bad("platform.topology"):
        return []  # the classic objects' drift: the topology's cause (the move to hostNetwork) explains it
    rec = f.get("platform.objects")
    assert rec is not None
    f.explained.add("platform.objects")
    evidence = [f.line("platform.objects", 800)]
    out: list[Cause] = []
    secrets = ev.get("secrets_missing") or {}
    if secrets:
        refs = list(secrets)
        apps = sorted({r.rsplit("/", 1)[-1].removesuffix("-credentials") for r in refs})
        out.append(Cause(
            "secret-missing", "major", f"{join_names(refs)} {'was' if len(refs) == 1 else 'were'} deleted",
            f"Cause: {join_names(refs)} {'is' if len(refs) == 1 else 'are'} missing from the cluster: {join_names(apps)}'s pods still "
            "run with the values they started with, but a pod that restarts or starts on another node fails "
            f"(CreateContainerConfigError). Fix: recreate {'it' if len(refs) == 1 else 'them'} from the keyring ({REPAIR}).",
            f"`{REPAIR}` recreates {join_names(refs)} from the keyring (the same values: no rollout)", REPAIR,
            evidence, ["platform.objects"], "repair", ("kubernetes",)))
    for im in ev.get("image_drift") or []:
        by = f" by {im['changed_by']}" if im.get("changed_by") else ""
        out.append(Cause(
            "image-changed", "major", f"{im['ref']} runs {im['live']}, not keybuzz.yaml's {im['desired']}",
            f"Cause: the image of {im['ref']} was changed outside keybuzz-tui{by}: it runs {im['live']}, keybuzz.yaml says "
            f"{im['desired']}. Fix: put keybuzz.yaml's image back ({REPAIR}, a rolling update); if {im['live']} is meant to "
            "stay, put it in keybuzz.yaml first.",
            f"`{REPAIR}` rolls {im['ref']} back to {im['desired']}; or set the image in keybuzz.yaml to keep {im['live']}", REPAIR,
            evidence, ["platform.objects"], "repair", ("kubernetes",)))
    if ev.get("missing") or ev.get("changed") or ev.get("extra") or ev.get("blocked") or not out:
        first = rec.remediation.splitlines()[0] if rec.remediation else "see `keybuzz-tui recover`"
        sev = "major" if ev.get("missing") or (rec.status == "fail" and not out) else "minor"
        action = "manual" if ev.get("blocked") and not (ev.get("missing") or ev.get("changed")) else "repair"
        out.append(Cause("objects-drift", sev, "The platform's objects differ from keybuzz.yaml",
                         f"Cause: {rec.detail}. Fix: {first}.", rec.remediation, "keybuzz-tui recover", evidence,
                         ["platform.objects"], action, ("kubernetes",) if action == "repair" else ()))
    return out


def _simple(cid: str, cause_id: str, severity: str, title: str, action: str, steps: tuple[str, ...], next_cmd: str) -> Callable[[_Findings], list[Cause]]:
    def rule(f: _Findings) -> list[Cause]:
        if not f.failed(cid) or cid in f.explained:
            return []
        f.explained.add(cid)
        rec = f.get(cid)
        assert rec is not None
        sev = severity
        return [Cause(cause_id, sev, title, f"Cause: {rec.detail}. Fix: {rec.remediation.splitlines()[0] if rec.remediation else 'see the check'}.",
                      rec.remediation or "", next_cmd, [f.line(cid, 600)], [cid], action, steps)]

    return rule


def _topology(f: _Findings) -> list[Cause]:
    if "platform.topology" in f.explained or not f.bad("platform.topology"):
        return []
    f.explained.add("platform.topology")
    checks = ["platform.topology"]
    if (f.ev("platform.objects") or {}).get("topology") in ("classic", "mixed") and f.bad("platform.objects"):
        f.explained.add("platform.objects")  # the classic objects' drift: the same move to hostNetwork
        checks.append("platform.objects")
    rec = f.get("platform.topology")
    assert rec is not None
    return [Cause("classic-topology", "minor" if rec.status == "warn" else "major", "KeyBuzz depends on the overlay (classic topology)",
                  f"Cause: {rec.detail} Fix: move the apps to hostNetwork DaemonSets ({REPAIR}) before the overlay fails again.",
                  f"`{REPAIR}` moves the apps to hostNetwork DaemonSets", REPAIR, [f.line(c) for c in checks],
                  checks, "repair", ("kubernetes",))]


RULES: list[Callable[[_Findings], list[Cause]]] = [
    _api, _permissions, _overlay, _nodes, _token, _interrupted, _lock, _not_installed, _lb, _targets, _dns, _objects,
    _simple("hetzner.firewall", "firewall", "major", "A firewall drops traffic the platform needs", "repair", ("firewall",),
            "keybuzz-tui doctor --only hetzner.firewall"),
    _simple("k8s.collisions", "collisions", "major", "Existing objects or ports collide with the platform's", "manual", (),
            "keybuzz-tui ports"),
    _simple("k8s.nodeport-range", "nodeport-range", "major", "A chosen NodePort is outside the cluster's range", "manual", (),
            "keybuzz-tui config check"),
    _simple("hetzner.quotas", "quotas", "major", "A Hetzner limit is reached", "manual", (), "keybuzz-tui doctor --only hetzner.quotas"),
    _topology,
]


def diagnose(records: dict[str, CheckRecord], config: Any) -> Diagnosis:
    """The ranked causes behind the failing and warning checks (see the module docstring)."""
    f = _Findings(records, config)
    causes: list[Cause] = []
    for rule in RULES:
        causes += rule(f)
    # whatever no rule explains: one cause per check, so no finding is lost
    for cid, rec in records.items():
        if rec.status not in ("fail", "warn") or cid in f.explained:
            continue
        if (rec.evidence or {}).get("skipped_on_request"):
            continue
        f.explained.add(cid)
        first = rec.remediation.splitlines()[0] if rec.remediation else "see the check"
        title = f"{cid} {'failed' if rec.status == 'fail' else 'warns'}: {rec.title[0].lower() + rec.title[1:]}"
        causes.append(Cause(f"check:{cid}", "major" if rec.status == "fail" else "minor", title,
                            f"Cause: {rec.detail}. Fix: {first}.", rec.remediation, f"keybuzz-tui doctor --only {cid}",
                            [f.line(cid, 600)], [cid], "manual"))
    order = {id(c): i for i, c in enumerate(causes)}
    causes.sort(key=lambda c: (SEVERITY_ORDER.get(c.severity, 9), order[id(c)]))
    topo = (f.ev("platform.topology") or {}).get("topology") or ""
    verdict = overlay_verdict(records)
    depends = None if not topo or topo == "none" else topo != "hostnetwork"
    return Diagnosis(causes, verdict, topo, depends)

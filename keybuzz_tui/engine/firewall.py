"""Step 6: can what must reach the workers reach them? Hetzner Cloud Firewalls and UFW.

Why two layers: a Hetzner Cloud Firewall filters a server's public interface before the packet
reaches the host, UFW filters on the host. The LB reaches ingress-nginx's HTTP NodePort 31695 on
every worker (health check and traffic): over the private network when targets use private IPs,
which Hetzner Cloud Firewalls do not filter (reference/hetzner.md 3.2), so no Hetzner rule is
needed then and the check says so instead of demanding one; over the public interface otherwise,
where a firewall applied to a worker drops everything no rule allows. UFW applies in both cases
("UFW : Les ports NodePort doivent être ouverts sur tous les workers"); keybuzz-tui cannot see it
through the API, so it prints the exact commands (`ufw_advice`).

`firewall.mode: manage` keeps one firewall (firewall.name) applied to the workers by label
selector, with one inbound rule per needed port from firewall.allow_from. set_rules replaces all
rules, so the rules are merged: rules whose description does not start with "keybuzz-tui:" were
not created here and are always kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cancel import Cancelled
from ..config import Config
from ..events import CheckResult, Info, ObjectPlanned, StepFinished, StepStarted, Warning_
from ..redact import safe_error
from . import lb as lbmod
from .context import Context
from .hcloudio import CloudError, applied, call, finishing_on_failure, hcloud_client, wait_action
from .plan import Change, FieldDiff, Plan

STEP = "firewall"
LAYER = "firewall"
FIX_COMMAND = "keybuzz-tui firewall apply"
ADVICE_COMMAND = "keybuzz-tui firewall advice"
RULE_PREFIX = "keybuzz-tui:"
LABELS = {"managed-by": "keybuzz-tui"}


@dataclass(frozen=True)
class NeededPort:
    port: int
    purpose: str
    for_lb: bool  # the LB health check and traffic go there


def needed_ports(config: Config) -> list[NeededPort]:
    """The NodePorts the runbook opens on every worker, the LB's first."""
    ing = config.ingress
    out = [
        NeededPort(ing.http_node_port, "ingress-nginx HTTP NodePort (LB health check and traffic)", True),
        NeededPort(ing.https_node_port, "ingress-nginx HTTPS NodePort", False),
    ]
    for app in config.apps:
        out.append(NeededPort(app.node_port, f"{app.name} NodePort", False))
    return out


def _port_matches(rule_port: str | None, port: int) -> bool:
    if not rule_port:
        return False
    lo, _, hi = rule_port.partition("-")
    try:
        return int(lo) <= port <= int(hi or lo)
    except ValueError:
        return False


def _covers(cidrs: Iterable[str], source: str) -> bool:
    try:
        src = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=False)
        except ValueError:
            continue
        if net.version == src.version and src.subnet_of(net):  # type: ignore[arg-type]
            return True
    return False


def rule_allows(rule: Any, port: int, source: str) -> bool:
    """An inbound TCP rule that lets `source` (a CIDR or an IP) reach `port`."""
    return rule.direction == "in" and rule.protocol == "tcp" and _port_matches(rule.port, port) and _covers(rule.source_ips or [], source)


@dataclass
class WorkerFirewalls:
    server_id: int
    name: str
    public_ip: str
    firewalls: list[tuple[Any, str, str]]  # (firewall, how: "direct" | "label selector x", status)


def _workers(ctx: Context, client: Any) -> list[WorkerFirewalls]:
    selector = ctx.config.load_balancer.target_selector
    servers = call(ctx, client, f"listing servers matching {selector}", lambda: client.servers.get_all(label_selector=selector))
    fws = call(ctx, client, "listing firewalls", lambda: client.firewalls.get_all())
    by_id = {f.id: f for f in fws}
    out = []
    for s in sorted(servers, key=lambda s: s.name):
        applied: list[tuple[Any, str, str]] = []
        pn = s.public_net
        for pf in (pn.firewalls or []) if pn is not None else []:
            fw = by_id.get(pf.firewall.id)
            if fw is None:
                continue
            how = "direct"
            for res in fw.applied_to or []:
                if res.type == "label_selector" and any(r.server is not None and r.server.id == s.id for r in (res.applied_to_resources or [])):
                    how = f"label selector {res.label_selector.selector}"
            applied.append((fw, how, pf.status or ""))
        ip = pn.ipv4.ip if pn is not None and pn.ipv4 is not None else ""
        out.append(WorkerFirewalls(s.id, s.name, ip, applied))
    return out


def worker_names(ctx: Context) -> list[str]:
    """The servers the LB targets (load_balancer.target_selector): the workers UFW must open."""
    client = hcloud_client(ctx)
    return [w.name for w in _workers(ctx, client)]


def _network_range(ctx: Context, client: Any) -> Any:
    name = ctx.config.load_balancer.network
    if not name:
        return None
    net = call(ctx, client, f"looking up network {name}", lambda: client.networks.get_by_name(name))
    return ipaddress.ip_network(net.ip_range, strict=False) if net is not None else None


def _is_private(source: str, network: Any) -> bool:
    """Traffic from inside the Hetzner network: not filtered by Hetzner Cloud Firewalls."""
    if network is None:
        return False
    try:
        src = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return src.version == network.version and src.subnet_of(network)


def _blocked(workers: list[WorkerFirewalls], port: int, source: str) -> list[str]:
    """Workers on which some applied firewall set has no rule for port from source."""
    out = []
    for w in workers:
        if not w.firewalls:
            continue  # no Hetzner firewall: everything reaches the host (UFW still applies)
        if not any(rule_allows(r, port, source) for fw, _, _ in w.firewalls for r in (fw.rules or [])):
            out.append(f"{w.name} ({', '.join(fw.name for fw, _, _ in w.firewalls)})")
    return out


def check(ctx: Context) -> list[CheckResult]:
    """Which Hetzner firewalls apply to the workers, and whether the NodePorts the LB and the
    operators need get through them. Emits and returns CheckResults."""
    cfg = ctx.config
    client = hcloud_client(ctx)
    workers = _workers(ctx, client)
    network = _network_range(ctx, client)
    results: list[CheckResult] = []
    sel = cfg.load_balancer.target_selector
    if not workers:
        results.append(CheckResult(step=STEP, check="firewall-workers", layer=LAYER, status="fail", title="worker servers",
                                   detail=f"no server matches {sel}", remediation="check load_balancer.target_selector and the servers' labels"))
    else:
        parts = []
        for w in workers:
            fw_text = ", ".join(f"{fw.name} ({how}{', ' + st if st and st != 'applied' else ''})" for fw, how, st in w.firewalls) or "none"
            parts.append(f"{w.name}: {fw_text}")
        results.append(CheckResult(step=STEP, check="firewall-workers", layer=LAYER, status="info", title="Hetzner firewalls on the workers",
                                   detail="; ".join(parts)))
    ufw = "; UFW on each worker must still allow it (`keybuzz-tui firewall advice` prints the commands)"
    for need in needed_ports(cfg):
        check_id = f"firewall-nodeport-{need.port}"
        title = f"NodePort {need.port} reachable ({need.purpose})"
        if need.for_lb:
            if cfg.load_balancer.use_private_ip:
                results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="ok", title=title,
                                           detail="the LB reaches the workers on their private IPs (use_private_ip): Hetzner Cloud "
                                           "Firewalls do not filter private-network traffic, so no firewall rule is needed" + ufw))
                continue
            lb_ips = lbmod.addresses(ctx)
            sources = [f"{ip}/32" if ":" not in ip else f"{ip}/128" for ip in lb_ips[:1]] or ["0.0.0.0/0"]
            blocked = sorted({b for s in sources for b in _blocked(workers, need.port, s)})
            if blocked:
                results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="fail", title=title,
                                           detail=f"the LB's health check and traffic to {need.port} over public IPs are dropped on: {', '.join(blocked)}",
                                           remediation=f"allow TCP {need.port} inbound from the LB ({', '.join(sources)}) in those firewalls "
                                           f"(firewall.mode: manage does it on every apply, `{FIX_COMMAND}` once), or use use_private_ip: true"))
            else:
                results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="ok", title=title,
                                           detail=f"TCP {need.port} from {', '.join(sources)} passes the Hetzner firewalls of every worker" + ufw))
            continue
        public = [s for s in cfg.firewall.allow_from if not _is_private(s, network)]
        if not public:
            results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="ok", title=title,
                                       detail=f"allowed sources {', '.join(cfg.firewall.allow_from)} are inside the private network: not filtered "
                                       "by Hetzner Cloud Firewalls" + ufw))
            continue
        blocked = sorted({b for s in public for b in _blocked(workers, need.port, s)})
        if blocked:
            results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="info", title=title,
                                       detail=f"TCP {need.port} from {', '.join(public)} is dropped on {', '.join(blocked)}; only needed if you "
                                       "reach this NodePort directly (the LB does not use it)",
                                       remediation=f"add an inbound rule TCP {need.port} from {', '.join(public)} (firewall.mode: manage)"))
        else:
            results.append(CheckResult(step=STEP, check=check_id, layer=LAYER, status="ok", title=title,
                                       detail=f"TCP {need.port} from {', '.join(public)} passes the Hetzner firewalls" + ufw))
    for r in results:
        ctx.emit(r)
    return results


# --- check mode: the step as plan and apply report it ------------------------------------------


@dataclass
class FirewallReview:
    """Step 6 when keybuzz-tui does not manage the firewall (firewall.mode: check): what passes,
    what is missing, how to fix it, and the UFW rules each worker needs. Never blocks anything."""

    mode: str
    results: list[CheckResult] = field(default_factory=list)
    ufw: list[str] = field(default_factory=list)
    error: str = ""  # the check could not run (no token, the API unreachable...)
    error_remediation: str = ""
    exception: BaseException | None = field(default=None, repr=False)  # the error itself (for an exit code)

    @property
    def missing(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]

    @property
    def passed(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "ok"]

    @property
    def notes(self) -> list[CheckResult]:
        """Blocked NodePorts only needed for direct access (not by the LB): worth knowing."""
        return [r for r in self.results if r.status == "info" and r.remediation]

    @property
    def status(self) -> str:
        return "error" if self.error else ("missing" if self.missing else "ok")

    def fix(self) -> str:
        if self.error:
            return self.error_remediation
        if not self.missing:
            return ""
        if self.mode == "manage":
            return f"run `keybuzz-tui apply` (firewall.mode: manage applies the rules), or `{FIX_COMMAND}` for the firewall alone"
        return (f"set firewall.mode: manage in keybuzz.yaml (every apply then keeps the rules), or run `{FIX_COMMAND}` once "
                "(plan, confirm, apply; journaled)")

    def summary(self) -> str:
        if self.error:
            return f"not checked: {self.error.splitlines()[0]}"
        if self.missing:
            return (f"{len(self.missing)} missing: " + "; ".join(r.title for r in self.missing)
                    + f" — fix: firewall.mode: manage, or `{FIX_COMMAND}`")
        ports = [r for r in self.passed if r.check.startswith("firewall-nodeport-")]
        return (f"{len(ports)} NodePort(s) pass the Hetzner firewalls; UFW on each worker must allow them too "
                f"(not visible through the API: `{ADVICE_COMMAND}`)")

    def to_dict(self) -> dict[str, Any]:
        def row(r: CheckResult) -> dict[str, Any]:
            return {"check": r.check, "status": r.status, "title": r.title, "detail": r.detail, "remediation": r.remediation}

        return {
            "mode": self.mode, "status": self.status, "summary": self.summary(),
            "passed": [row(r) for r in self.passed], "missing": [row(r) for r in self.missing],
            "notes": [row(r) for r in self.notes], "fix": self.fix(), "fix_command": FIX_COMMAND if self.missing else "",
            "error": self.error, "ufw": list(self.ufw),
        }


def review(ctx: Context) -> FirewallReview:
    """The Firewall step of plan and apply in check mode: runs `check`, then says what is missing,
    how to fix it and what UFW must allow on every worker. Problems are warnings (StepFinished
    "warn"), never errors: in check mode keybuzz-tui changes no firewall, and a firewall that
    really drops the LB's traffic shows up again, as failed checks, in the validation."""
    cfg = ctx.config
    rv = FirewallReview(mode=cfg.firewall.mode, ufw=ufw_advice(cfg))
    title = "Firewall (check mode: keybuzz-tui changes no firewall)" if cfg.firewall.mode == "check" else "Firewall check"
    ctx.emit(StepStarted(step=STEP, title=title))
    try:
        rv.results = check(ctx)
    except Cancelled:
        ctx.emit(StepFinished(step=STEP, status="skip", summary="cancelled"))
        raise
    except Exception as e:  # no token, the API unreachable or refusing: said, never fatal here
        rv.error, rv.exception = safe_error(e), e
        rv.error_remediation = str(getattr(e, "remediation", "") or "") or "check the Hetzner API token and endpoint, then plan again"
        ctx.emit(Warning_(step=STEP, message=f"the firewall check could not run: {rv.error}", remediation=rv.error_remediation))
    if rv.missing:
        ctx.emit(Warning_(step=STEP, message="missing Hetzner firewall rule(s): " + "; ".join(f"{r.title}: {r.detail}" for r in rv.missing),
                          remediation=rv.fix() + ("; a warning: it does not stop plan or apply" if rv.mode == "check" else "")))
    ctx.emit(Info(step=STEP, message=f"UFW rules the runbook expects on each worker (`{ADVICE_COMMAND}` prints them to copy):\n"
                  + "\n".join(rv.ufw)))
    ctx.emit(StepFinished(step=STEP, status="warn" if (rv.missing or rv.error) else "ok", summary=rv.summary()))
    return rv


# --- manage mode ----------------------------------------------------------------------------


def desired_rules(ctx: Context, lb_ips: Iterable[str] = ()) -> list[Any]:
    """One inbound TCP rule per needed port from firewall.allow_from (plus the LB's public IP on
    the LB's NodePort when targets use public IPs)."""
    from hcloud.firewalls import FirewallRule

    cfg = ctx.config
    rules = []
    for need in needed_ports(cfg):
        sources = list(dict.fromkeys(cfg.firewall.allow_from))
        if need.for_lb and not cfg.load_balancer.use_private_ip:
            sources += [f"{ip}/32" if ":" not in ip else f"{ip}/128" for ip in lb_ips]
        rules.append(FirewallRule(direction="in", protocol="tcp", port=str(need.port), source_ips=sorted(set(sources)),
                                  description=f"{RULE_PREFIX} {need.purpose}"[:255]))
    return rules


def _rule_dict(r: Any) -> dict[str, Any]:
    return {
        "direction": r.direction,
        "protocol": r.protocol,
        "port": r.port,
        "source_ips": sorted(r.source_ips or []),
        "destination_ips": sorted(r.destination_ips or []),
        "description": r.description,
    }


def _ours(r: Any) -> bool:
    return (r.description or "").startswith(RULE_PREFIX)


def merge_rules(live: list[Any], desired: list[Any]) -> list[Any]:
    """Everything we did not create, unchanged and first; then our rules as keybuzz.yaml wants."""
    return [r for r in live if not _ours(r)] + list(desired)


def _same(a: list[Any], b: list[Any]) -> bool:
    key = lambda r: repr(sorted(_rule_dict(r).items()))  # noqa: E731
    return sorted(map(key, a)) == sorted(map(key, b))


def plan(ctx: Context, *, mode: str | None = None) -> Plan:
    """In manage mode: the firewall, its rules (merged) and its application to the workers.
    `mode` overrides firewall.mode (`keybuzz-tui firewall apply` plans as manage, explicitly)."""
    cfg = ctx.config
    out = Plan()
    if (mode or cfg.firewall.mode) != "manage":
        return out
    client = hcloud_client(ctx)
    name, selector = cfg.firewall.name, cfg.load_balancer.target_selector
    lb_ips = lbmod.addresses(ctx) if not cfg.load_balancer.use_private_ip else []
    want = desired_rules(ctx, lb_ips)
    fw = call(ctx, client, f"looking up firewall {name}", lambda: client.firewalls.get_by_name(name))
    workers = _workers(ctx, client)
    bare = [w.name for w in workers if not w.firewalls]
    if not any(r.port == "22" or _port_matches(r.port, 22) for r in merge_rules(list(fw.rules or []) if fw else [], want)):
        out.warnings.append(
            f"no rule of firewall {name} allows SSH (TCP 22): once applied, the workers accept no public SSH; add a rule for your "
            "admin addresses in the Hetzner Console (keybuzz-tui keeps rules it did not create)"
        )
    cut = ""
    if bare:
        cut = (f"applying a firewall to {', '.join(bare)}, which have none, drops every inbound public connection no rule allows "
               "(SSH included)")
    if fw is None:
        desired = {"name": name, "labels": LABELS, "rules": [_rule_dict(r) for r in want], "apply_to": {"label_selector": selector}}
        out.add(Change(LAYER, "create", "Firewall", name, desired=desired, destructive=bool(bare),
                       note=f"applied to the servers matching {selector}" + (f"; {cut}" if cut else "")))
    else:
        merged = merge_rules(list(fw.rules or []), want)
        if _same(list(fw.rules or []), merged):
            out.add(Change(LAYER, "unchanged", "Firewall", name, desired={"rules": [_rule_dict(r) for r in merged]}))
        else:
            live_ours = {r.description: _rule_dict(r) for r in fw.rules or [] if _ours(r)}
            want_ours = {r.description: _rule_dict(r) for r in want}
            diff = [FieldDiff(f".rules[description={d}]", live_ours.get(d), want_ours.get(d))
                    for d in sorted(set(live_ours) | set(want_ours)) if live_ours.get(d) != want_ours.get(d)]
            kept = sum(1 for r in fw.rules or [] if not _ours(r))
            out.add(Change(LAYER, "update", "Firewall", name, diff=diff, desired={"rules": [_rule_dict(r) for r in merged]},
                           note=f"set_rules replaces all rules: the {kept} rule(s) keybuzz-tui did not create are kept"))
        applied = any(res.type == "label_selector" and res.label_selector.selector == selector for res in fw.applied_to or [])
        if applied:
            out.add(Change(LAYER, "unchanged", "FirewallApplication", f"{name}:{selector}"))
        else:
            out.add(Change(LAYER, "create", "FirewallApplication", f"{name}:{selector}", desired={"label_selector": selector},
                           destructive=bool(bare), note=f"applied to the servers matching {selector}" + (f"; {cut}" if cut else "")))
    for c in out.changes:
        ctx.emit(ObjectPlanned(step=STEP, action=c.action, kind=c.kind, name=c.name, diff=tuple(c.lines())))
    for w in out.warnings:
        ctx.emit(Warning_(step=STEP, message=w))
    return out


_compute_plan = plan


def apply(ctx: Context, plan: Plan | None = None, *, allow_destructive: bool = False, timeout: float = 300.0) -> Plan:
    """Converge the firewall to the plan (computed now when not given); every action waited for.
    Changes that cut access (a first firewall on a worker) need allow_destructive."""
    p = plan if plan is not None else _compute_plan(ctx)
    mine = [c for c in p.changes if c.layer == LAYER and c.action in ("create", "update")]
    if any(c.destructive for c in mine) and not allow_destructive:
        notes = "; ".join(c.note for c in mine if c.destructive)
        raise CloudError(f"the firewall plan cuts access: {notes}", "review it and confirm explicitly (allow_destructive / --yes)", "destructive")
    ctx.emit(StepStarted(step=STEP, title="Firewall"))
    done = 0
    with finishing_on_failure(ctx, STEP):
        if mine:
            client = hcloud_client(ctx)
            done = _converge(ctx, client, mine, timeout)
    ctx.emit(StepFinished(step=STEP, status="ok", summary=f"{done} change(s) applied" if done else "nothing to change"))
    return p


def _wait_all(ctx: Context, client: Any, actions: Iterable[Any], what: str, timeout: float) -> None:
    for a in actions or []:
        wait_action(ctx, client, a, what=what, step=STEP, timeout=timeout)


def _converge(ctx: Context, client: Any, changes: list[Change], timeout: float) -> int:
    from hcloud.firewalls import FirewallResource, FirewallResourceLabelSelector

    cfg = ctx.config
    name, selector = cfg.firewall.name, cfg.load_balancer.target_selector
    lb_ips = lbmod.addresses(ctx) if not cfg.load_balancer.use_private_ip else []
    want = desired_rules(ctx, lb_ips)
    resource = FirewallResource(type="label_selector", label_selector=FirewallResourceLabelSelector(selector=selector))
    done = 0
    fw = call(ctx, client, f"looking up firewall {name}", lambda: client.firewalls.get_by_name(name))
    for c in changes:
        ctx.cancel.check()
        if c.kind == "FirewallApplication" and fw is None:
            raise CloudError(f"firewall {name} disappeared since the plan", "run plan again", "stale_plan")
        if c.kind == "Firewall" and fw is None:
            resp = call(ctx, client, f"creating firewall {name}",
                        lambda: client.firewalls.create(name=name, rules=want, labels=dict(LABELS), resources=[resource]))
            fw = resp.firewall
            _wait_all(ctx, client, resp.actions, f"creating firewall {name}", timeout)
            extra: dict[str, Any] = {"id": fw.id}
        elif c.kind == "Firewall":
            merged = merge_rules(list(fw.rules or []), want)
            if not _same(list(fw.rules or []), merged):
                actions = call(ctx, client, f"setting the rules of firewall {name}", lambda fw=fw, merged=merged: client.firewalls.set_rules(fw, merged))
                _wait_all(ctx, client, actions, f"setting the rules of firewall {name}", timeout)
            extra = {"id": fw.id, "rules": len(merged)}
        elif c.kind == "FirewallApplication":
            fresh = call(ctx, client, f"reading firewall {name}", lambda fw=fw: client.firewalls.get_by_id(fw.id))
            if not any(r.type == "label_selector" and r.label_selector.selector == selector for r in fresh.applied_to or []):
                actions = call(ctx, client, f"applying firewall {name} to {selector}",
                               lambda fw=fw: client.firewalls.apply_to_resources(fw, [resource]))
                _wait_all(ctx, client, actions, f"applying firewall {name} to {selector}", timeout)
            extra = {"id": fw.id, "selector": selector}
        else:
            continue
        done += 1
        applied(ctx, STEP, c, **extra)
    return done


# --- UFW --------------------------------------------------------------------------------------


def ufw_advice(config: Config) -> list[str]:
    """The UFW commands the runbook expects on every worker (lines starting with # explain)."""
    allow = list(dict.fromkeys(config.firewall.allow_from)) or ["10.0.0.0/16"]
    sel = config.load_balancer.target_selector
    lines = [
        f"# on EVERY worker (the servers matching {sel}): \"UFW : Les ports NodePort doivent être ouverts sur tous les workers\"",
    ]
    for need in needed_ports(config):
        for src in allow:
            lines.append(f"sudo ufw allow from {src} to any port {need.port} proto tcp comment 'keybuzz: {need.purpose}'")
    if not config.load_balancer.use_private_ip:
        port = config.ingress.http_node_port
        lines.append(f"# the LB reaches {port} over the public interface (use_private_ip: false): allow it from anywhere")
        lines.append(f"sudo ufw allow {port}/tcp comment 'keybuzz: LB health check and traffic'")
    lines.append("# hostNetwork pods listen on the node itself: ingress-nginx on other workers reaches them over the private network")
    for app in config.apps:
        for src in allow:
            lines.append(f"sudo ufw allow from {src} to any port {app.port} proto tcp comment 'keybuzz: {app.name} hostPort'")
    port = config.ingress.http_node_port
    lines += [
        f"# a DENY rule wins if it comes first: remove any left on {port} (the lb-target-unhealthy failure)",
        "sudo ufw status numbered",
        f"sudo ufw delete deny {port}/tcp",
        "sudo ufw reload",
    ]
    return lines

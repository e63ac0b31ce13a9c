"""The doctor's Hetzner and DNS checks: the token (valid and writable), the Load Balancer (it
exists, is attached to the network, has the services keybuzz.yaml says, and its targets are
healthy), the firewall rules for the NodePorts, the limits the API exposes, and what DNS answers
compared with the Load Balancer's addresses.

Reused as they are: credentials.check_hcloud_token, lb.status, checks_cloud.check_lb_services /
check_lb_targets (the validation's judgement of the LB, here on the workers that are targets: which
workers are targets is hetzner.targets', doctor_recovery.py), firewall.check, dns.check.
"""

from __future__ import annotations

from typing import Any

from ..redact import safe_error
from .checks_base import CheckOutcome, fail, join_names, ok, plural, skip, warn, worst
from .checks_cloud import check_lb_services, check_lb_targets
from .context import Context
from .doctor_state import DoctorState, quiet

# --- hetzner.token ---------------------------------------------------------------------------------


def check_token(ctx: Context, state: DoctorState) -> CheckOutcome:
    res = state.token_check()
    ev = {"status": res.status, "endpoint": res.endpoint, "project": res.project_hint, "requests": res.requests,
          "rate_limit_remaining": res.rate_limit_remaining}
    if res.status == "valid":
        return ok(f"{res.message}" + (f" ({res.project_hint})" if res.project_hint else ""), ev)
    if res.status == "read-only":
        return fail(f"the Hetzner API token is read-only: {res.message}: the doctor can read the project, "
                    "but a repair (Load Balancer, DNS, firewall) would be refused", res.remediation, ev)
    if res.status == "rate-limited":
        return warn(f"the Hetzner API is rate-limiting this project: {res.message}", res.remediation or "wait for the reset, then rerun", ev)
    if res.status == "unreachable":
        return fail(f"the Hetzner API cannot be reached: {res.message}", res.remediation or "check the network path to the Hetzner API", ev)
    if res.status == "missing":
        return fail(f"{res.message}: nothing on the Hetzner side can be checked", res.remediation, ev)
    return fail(f"the Hetzner API token is {res.status}: {res.message}", res.remediation, ev)


def token_unusable(state: DoctorState) -> str:
    """"" when the token can at least read the project; else why not."""
    res = state.token_check()
    return "" if res.status in ("valid", "read-only", "rate-limited") else f"{res.status}: {res.message}"


# --- hetzner.lb --------------------------------------------------------------------------------------


def check_lb(ctx: Context, state: DoctorState) -> CheckOutcome:
    why = token_unusable(state)
    if why:
        return skip(f"not checked: the Hetzner token is {why}", "see hetzner.token")
    services = check_lb_services(ctx, state)
    ev: dict[str, Any] = {"configuration": services.evidence, "services_status": services.status}
    try:
        st = state.lb_status()
    except Exception as e:  # noqa: BLE001 - hcloudio.CloudError and the like: the judgement above already says it
        st = None
        ev["status_error"] = safe_error(e)
    if st is not None:
        ev["exists"] = st.exists
        ev["ips"] = st.ips
        ev["private_ip"] = st.private_ip
        ev["location"] = st.location
        ev["targets"] = [{"listen_port": t.listen_port, "target": t.target, "status": t.status, "detail": t.detail,
                          "http_status": t.http_status_code} for t in st.targets]
        ev["certificates"] = [{"name": c.name, "type": c.type, "issuance": c.issuance, "error": c.error, "domains": c.domains}
                              for c in st.certificates]
    if services.status == "fail" and (st is None or not st.exists):
        return fail(f"{services.detail}: nothing receives the traffic for {join_names([a.host for a in ctx.config.apps if a.host])}",
                    "recreate it: `keybuzz-tui repair` (or `keybuzz-tui apply`); then point DNS at its new address", ev)
    members = _Members(state)
    targets = check_lb_targets(ctx, members)
    ev["health"] = targets.evidence
    status = worst([services.status, targets.status if targets.status != "skip" else "ok"])
    detail = services.detail + (f". Targets: {targets.detail}" if targets.detail else "")
    if members.left_out:
        detail += f" ({join_names(members.left_out)}: not a target or not a worker, see hetzner.targets)"
        ev["left_out"] = members.left_out
    rem = "\n".join(r for r in (services.remediation, targets.remediation) if r)
    if st is not None and st.certificates:
        bad = [c for c in st.certificates if c.type == "managed" and c.issuance not in ("completed", "")]
        if bad:
            status = worst([status, "fail" if any(c.issuance == "failed" for c in bad) else "warn"])
            detail += ". " + "; ".join(f"certificate {c.name}: issuance {c.issuance}" + (f" ({c.error})" if c.error else "") for c in bad)
            rem += "\ncheck that the domains are in the Hetzner zone and CAA allows letsencrypt.org; `keybuzz-tui repair` retries the issuance"
    return CheckOutcome(status, detail, rem.strip(), ev)  # type: ignore[arg-type]


class _Members:
    """The state as hetzner.lb judges the targets: only the workers that are targets and the targets
    that are workers. Which workers are targets (a replaced worker not picked up, an old server still
    a target) is hetzner.targets' finding; hetzner.lb judges the health of what is there. When no
    worker is a target at all the state is left whole (hetzner.lb then says so itself)."""

    def __init__(self, state: DoctorState) -> None:
        self._state = state
        workers = state.workers() if state.cloud().lb is not None else []
        targets = state.lb_targets() if workers else {}
        names = {w.name for w in workers}
        both = names & set(targets)
        self.filtered = bool(both)
        self.left_out = sorted((names ^ set(targets)) if both else [])
        self._workers = [w for w in workers if w.name in both]
        self._targets = {k: v for k, v in targets.items() if k in both}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)

    def workers(self) -> list[Any]:
        return self._workers if self.filtered else self._state.workers()

    def lb_targets(self) -> dict[str, Any]:
        return self._targets if self.filtered else self._state.lb_targets()


# --- hetzner.firewall ----------------------------------------------------------------------------------

FW_STATUS = {"ok": "ok", "info": "ok", "pending": "warn", "running": "warn", "warn": "warn", "fail": "fail", "skip": "skip"}


def check_firewall(ctx: Context, state: DoctorState) -> CheckOutcome:
    from . import firewall
    from .hcloudio import CloudError

    why = token_unusable(state)
    if why:
        return skip(f"not checked: the Hetzner token is {why}", "see hetzner.token")
    try:
        results = firewall.check(quiet(ctx))
    except CloudError as e:
        return fail(f"the firewalls could not be read: {e.message}", e.remediation)
    ev = {r.check: {"status": r.status, "title": r.title, "detail": r.detail, "remediation": r.remediation} for r in results}
    statuses = [FW_STATUS.get(r.status, "warn") for r in results]
    bad = [r for r in results if FW_STATUS.get(r.status, "warn") in ("fail", "warn")]
    workers = next((r.detail for r in results if r.check == "firewall-workers"), "")
    overlay_note = ("; the overlay's UDP 8472 between the nodes travels the private network, which Hetzner Cloud Firewalls "
                    "do not filter: when it is dropped, look at UFW on the nodes or at the network itself (overlay.*)")
    ev["ufw_advice"] = firewall.ufw_advice(ctx.config)
    if not bad:
        lb_rule = next((r.detail for r in results if r.check == f"firewall-nodeport-{ctx.config.ingress.http_node_port}"), "")
        return ok(f"NodePorts pass the Hetzner firewalls ({workers or 'no firewall applied'}); {lb_rule}" + overlay_note, ev)
    return CheckOutcome(worst(statuses), "; ".join(f"{r.title}: {r.detail}" for r in bad) + overlay_note,  # type: ignore[arg-type]
                        "\n".join(dict.fromkeys(r.remediation for r in bad if r.remediation)), ev)


# --- hetzner.quotas --------------------------------------------------------------------------------------

NOT_EXPOSED = ("the project's own limits (how many Load Balancers, servers, certificates it may have) are not exposed by the "
               "Hetzner API: see Console > the project > Limits")


def check_quotas(ctx: Context, state: DoctorState) -> CheckOutcome:
    from .hcloudio import rate_limit_state

    why = token_unusable(state)
    if why:
        return skip(f"not checked: the Hetzner token is {why}", "see hetzner.token")
    client = ctx.hcloud()
    cfg = ctx.config.load_balancer
    items: list[tuple[str, str, str]] = []
    ev: dict[str, Any] = {"not_exposed": NOT_EXPOSED}
    try:
        lbt = client.load_balancer_types.get_by_name(cfg.type)
        all_lbs = client.load_balancers.get_all()
    except Exception as e:  # noqa: BLE001 - APIException, requests errors
        return warn(f"the limits could not be read: {safe_error(e)}; {NOT_EXPOSED}", "rerun later")
    ev["load_balancers_in_project"] = len(all_lbs)
    cloud = state.cloud()
    n_targets = len(cloud.targets()) if cloud.lb is not None else len(state.workers())
    n_services = len(cfg.services)
    n_certs = 1 if cfg.certificate.type != "none" else 0
    if lbt is None:
        items.append(("fail", f"load_balancer.type {cfg.type} does not exist at Hetzner", "choose lb11, lb21 or lb31"))
    else:
        limits = {"max_services": lbt.max_services, "max_targets": lbt.max_targets,
                  "max_assigned_certificates": lbt.max_assigned_certificates, "max_connections": lbt.max_connections}
        ev["type"] = {"name": lbt.name, **limits}
        ev["needed"] = {"services": n_services, "targets": n_targets, "certificates": n_certs}
        for what, need, limit in (("services", n_services, lbt.max_services), ("targets", n_targets, lbt.max_targets),
                                  ("certificates", n_certs, lbt.max_assigned_certificates)):
            if limit is None:
                continue
            if need > limit:
                items.append(("fail", f"{cfg.type} allows {limit} {what}, the platform needs {need}",
                              "choose a bigger load_balancer.type (lb21, lb31) in keybuzz.yaml"))
            elif need >= int(limit * 0.8) and limit > 1:
                items.append(("warn", f"{cfg.type}: {need} of {limit} {what} used", "a bigger load_balancer.type leaves room to grow"))
    rl = rate_limit_state(client)
    if rl:
        ev["rate_limit"] = rl
        left, lim = rl.get("RateLimit-Remaining"), rl.get("RateLimit-Limit")
        if left and lim and left.isdigit() and lim.isdigit() and int(left) < int(lim) // 10:
            items.append(("warn", f"only {left} of {lim} API requests per hour left", "other tools share the project's budget: wait for the refill"))
    head = (f"{cfg.type}: {n_services}/{getattr(lbt, 'max_services', '?')} services, {n_targets}/{getattr(lbt, 'max_targets', '?')} targets, "
            f"{n_certs}/{getattr(lbt, 'max_assigned_certificates', '?')} certificates; {plural(len(all_lbs), 'Load Balancer')} in the project")
    if not items:
        return ok(f"{head}. Not checkable: {NOT_EXPOSED}", ev)
    return CheckOutcome(worst([i[0] for i in items]), head + ". " + "; ".join(i[1] for i in items) + f". Not checkable: {NOT_EXPOSED}",  # type: ignore[arg-type]
                        "\n".join(dict.fromkeys(i[2] for i in items)), ev)


# --- dns.records ---------------------------------------------------------------------------------------------


def check_dns_records(ctx: Context, state: DoctorState) -> CheckOutcome:
    from . import dns

    ips = state.lb_addresses()
    hosts = sorted(ctx.config.hosts())
    if not ips:
        # nothing to compare with: say what DNS answers, so the operator sees where the names point
        seen = []
        ev: dict[str, Any] = {}
        for host in hosts:
            a = state.dns("authoritative", host, "A")
            r = state.dns("resolver", host, "A")
            ev[host] = {"authoritative": a.to_dict(), "resolver": r.to_dict()}
            seen.append(f"{host} -> {a.describe()} (authoritative), {r.describe()} ({state.resolver_label()})")
        why = token_unusable(state) or "no Load Balancer (see hetzner.lb)"
        return warn("the Load Balancer's address is unknown (" + why + "), so DNS cannot be compared with it; DNS answers: "
                    + "; ".join(seen), "fix hetzner.lb first, then `keybuzz-tui repair` points the records at the LB", ev)
    answers = dns.check(quiet(ctx), ips)
    ev = {"lb_ips": ips, "records": [{"host": a.host, "type": a.type, "expected": a.expected, "authoritative": a.authoritative,
                                      "resolver": a.resolver, "verdict": a.verdict, "server": a.server} for a in answers]}
    statuses = [a.status if a.status in ("ok", "warn", "fail") else "warn" for a in answers]
    bad = [a for a in answers if a.status != "ok"]
    if not bad:
        return ok("; ".join(a.detail for a in answers), ev)
    return CheckOutcome(worst(statuses), "; ".join(a.detail for a in bad),  # type: ignore[arg-type]
                        "\n".join(dict.fromkeys(a.remediation for a in bad if a.remediation)), ev)

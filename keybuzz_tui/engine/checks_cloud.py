"""Checks outside the cluster: the Hetzner Load Balancer (configuration, target health, its
certificate), DNS (the zone's authoritative server and the resolver users go through), and the
public HTTPS sites as a browser reaches them (DNS answer -> LB IP, SNI and Host = the name, chain
verified against the system CAs plus the configured extra CA).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..config import App
from .checks_base import CheckOutcome, compact, fail, join_names, ok, plural, skip, warn, worst
from .checks_node import judge_ingress_nodeport
from .checks_state import CloudSnapshot, ValidationState
from .context import Context

EXPIRY_WARN_DAYS = 14


def _cloud_or_outcome(state: ValidationState) -> tuple[CloudSnapshot, CheckOutcome | None]:
    cloud = state.cloud()
    name = state.config.load_balancer.name
    if not cloud.token:
        return cloud, skip(f"{cloud.error}: the Load Balancer cannot be checked", cloud.remediation)
    if cloud.error:
        return cloud, fail(cloud.error, cloud.remediation)
    if cloud.lb is None:
        return cloud, fail(f"no Load Balancer named {name} (or labelled {state.config.load_balancer.labels}) in the Hetzner project",
                           "create it: `keybuzz-tui apply` (Load Balancer step)")
    return cloud, None


def _service_dict(s: Any) -> dict[str, Any]:
    hc = s.health_check
    http = getattr(hc, "http", None) if hc is not None else None
    return {
        "protocol": s.protocol, "listen_port": s.listen_port, "destination_port": s.destination_port, "proxyprotocol": s.proxyprotocol,
        "redirect_http": bool(getattr(s.http, "redirect_http", False)) if s.http is not None else False,
        "certificates": [int(c.id) for c in (s.http.certificates or [])] if s.http is not None else [],
        "health_check": {"protocol": getattr(hc, "protocol", None), "port": getattr(hc, "port", None),
                         "path": getattr(http, "path", None), "domain": getattr(http, "domain", None)} if hc is not None else None,
    }


# --- lb.services ---------------------------------------------------------------------------------


def check_lb_services(ctx: Context, state: ValidationState) -> CheckOutcome:
    cloud, early = _cloud_or_outcome(state)
    if early is not None:
        return early
    cfg = ctx.config.load_balancer
    lb = cloud.lb
    probs: list[tuple[str, str, str]] = []
    live = {int(s.listen_port): s for s in lb.services or []}
    ev: dict[str, Any] = {"id": lb.id, "name": lb.name, "ipv4": cloud.lb_ipv4, "services": [_service_dict(s) for s in lb.services or []],
                          "private_ips": [pn.ip for pn in lb.private_net or []]}
    if cloud.lb_ipv4 is None:
        probs.append(("fail", "its public interface is disabled: the A records cannot point at it", "enable the public interface (Hetzner console) "
                      "or `keybuzz-tui apply`"))
    if cfg.network:
        if cloud.network is None:
            probs.append(("fail", f"network {cfg.network} does not exist", "create it or fix load_balancer.network in keybuzz.yaml"))
        elif not any(int(pn.network.id) == int(cloud.network.id) for pn in lb.private_net or []):
            probs.append(("fail", f"not attached to network {cfg.network}: targets on private IPs cannot be reached",
                          "attach it (`keybuzz-tui apply` does it before adding targets)"))
    for want in cfg.services:
        s = live.get(want.listen_port)
        if s is None:
            probs.append(("fail", f"no {want.protocol} service on port {want.listen_port}", "`keybuzz-tui apply` adds it"))
            continue
        if s.protocol != want.protocol:
            probs.append(("fail", f"port {want.listen_port} is {s.protocol}, keybuzz.yaml says {want.protocol}", "`keybuzz-tui apply` updates it"))
        if s.destination_port != want.destination_port:
            extra = " (the TLS NodePort: the LB ends TLS and must forward plain HTTP to the http NodePort)" if s.destination_port == ctx.config.ingress.https_node_port else ""
            probs.append(("fail", f"port {want.listen_port} forwards to {s.destination_port}, not {want.destination_port}{extra}",
                          f"forward it to {want.destination_port}: `keybuzz-tui apply`"))
        if s.proxyprotocol:
            probs.append(("fail", f"port {want.listen_port} sends the PROXY protocol, which ingress-nginx does not expect (400/'broken header')",
                          "turn proxyprotocol off on the service (or enable use-proxy-protocol in ingress-nginx)"))
        if s.protocol == "https" and not (s.http is not None and s.http.certificates):
            probs.append(("fail", f"https port {want.listen_port} has no certificate", "attach the certificate: `keybuzz-tui apply`"))
        redirect = bool(getattr(s.http, "redirect_http", False)) if s.http is not None else False
        if redirect != want.redirect_http:
            probs.append(("warn", f"port {want.listen_port}: redirect_http is {redirect}, keybuzz.yaml says {want.redirect_http}", "`keybuzz-tui apply` updates it"))
        hc = s.health_check
        wh = cfg.health_check
        if hc is not None:
            hpath = getattr(getattr(hc, "http", None), "path", None)
            hdomain = getattr(getattr(hc, "http", None), "domain", None)
            if hc.port != wh.port or (wh.protocol != "tcp" and hpath != wh.path) or hc.protocol != wh.protocol:
                probs.append(("fail", f"port {want.listen_port}'s health check is {hc.protocol} {hc.port} {hpath or ''}, keybuzz.yaml says "
                              f"{wh.protocol} {wh.port} {wh.path}", "`keybuzz-tui apply` updates it"))
            if hdomain:
                probs.append(("warn", f"port {want.listen_port}'s health check sends Host {hdomain}: ingress-nginx answers /healthz 200 only "
                              "on its default server (no matching host)", "clear the health check's domain"))
    extra = sorted(set(live) - {s.listen_port for s in cfg.services})
    if extra:
        probs.append(("warn", f"extra service(s) on port {join_names([str(p) for p in extra])}", "remove them if unused (`keybuzz-tui apply` shows them in its plan)"))
    targets = lb.targets or []
    sel_targets = [t for t in targets if t.type == "label_selector"]
    ev["targets"] = [{"type": t.type, "selector": t.label_selector.selector if t.label_selector else None,
                      "server": int(t.server.id) if t.server is not None else None, "use_private_ip": t.use_private_ip} for t in targets]
    if not targets:
        probs.append(("fail", "has no target", f"add the workers (label selector {cfg.target_selector}): `keybuzz-tui apply`"))
    elif cfg.target_selector and not any(t.label_selector and t.label_selector.selector == cfg.target_selector for t in sel_targets) \
            and not any(t.type == "server" for t in targets):
        probs.append(("fail", f"no target with label selector {cfg.target_selector}", "`keybuzz-tui apply` adds it"))
    if any(bool(t.use_private_ip) != cfg.use_private_ip for t in targets):
        probs.append(("warn", f"target(s) with use_private_ip != {cfg.use_private_ip}", "re-add them with the right setting (`keybuzz-tui apply`)"))
    algo = getattr(getattr(lb, "algorithm", None), "type", None)
    if algo and algo != cfg.algorithm:
        probs.append(("warn", f"algorithm {algo}, keybuzz.yaml says {cfg.algorithm}", "`keybuzz-tui apply` updates it"))
    services = ", ".join(f"{s.protocol} {s.listen_port}->{s.destination_port}" for s in sorted(lb.services or [], key=lambda s: s.listen_port))
    head = f"{lb.name} ({cloud.lb_ipv4 or 'no public IPv4'}): {services or 'no service'}"
    if not probs:
        return ok(f"{head}; health check {cfg.health_check.protocol} {cfg.health_check.port} {cfg.health_check.path}; "
                  f"targets {cfg.target_selector or 'servers'} on {'private' if cfg.use_private_ip else 'public'} IPs", ev)
    return CheckOutcome(worst([p[0] for p in probs]), f"{head}: " + "; ".join(p[1] for p in probs),
                        "\n".join(dict.fromkeys(p[2] for p in probs)), ev)


# --- lb.targets-healthy -------------------------------------------------------------------------

HEALTH_DETAIL = {
    "layer4_no_connection": "no TCP connection",
    "layer4_timeout": "TCP connection timed out",
    "layer7_timeout": "no HTTP answer in time",
    "unexpected_http_status": "unexpected HTTP status",
    "unexpected_http_content": "unexpected HTTP content",
}


def check_lb_targets(ctx: Context, state: ValidationState) -> CheckOutcome:
    cloud, early = _cloud_or_outcome(state)
    if early is not None:
        return skip(f"skipped: {early.detail}", early.remediation) if early.status == "fail" else early
    hc = ctx.config.load_balancer.health_check
    targets = state.lb_targets()
    workers = state.workers()
    ports = sorted(int(s.listen_port) for s in cloud.lb.services or [])
    items: list[tuple[str, str, str, str]] = []
    ev: dict[str, Any] = {}
    healthy = 0
    for w in workers:
        t = targets.get(w.name)
        if t is None:
            items.append(("fail", f"{w.name} is not a target of {cloud.lb.name}",
                          f"give the server the label of the target selector ({ctx.config.load_balancer.target_selector}) or add it as a target", w.name))
            ev[w.name] = {"target": False}
            continue
        ev[w.name] = {"ip": t.ip, "via": t.via, "health": {str(p): {"status": s, "detail": d, "http_status": c} for p, (s, d, c) in t.health.items()}}
        bad = {p: h for p, h in t.health.items() if h[0] == "unhealthy"}
        unknown = [p for p, h in t.health.items() if h[0] == "unknown"]
        if bad:
            kinds = sorted({h[1] for h in bad.values() if h[1]})
            codes = sorted({h[2] for h in bad.values() if h[2]})
            why = ", ".join(HEALTH_DETAIL.get(k, k) for k in kinds) or "failing checks"
            if codes:
                why += f" (HTTP {', '.join(str(c) for c in codes)})"
            ours = judge_ingress_nodeport(state, w) if w.ip else None
            seen = f"; from here: {ours.detail}" if ours is not None and ours.status != "ok" else (
                f"; yet {hc.port}{hc.path} answers 200 from here" if ours is not None else "")
            if ours is not None and ours.status != "ok":
                rem = ours.remediation
                ev[w.name].update({k: v for k, v in ours.extra.items() if k in ("fix", "node", "port")})
            elif codes:
                rem = f"the health check gets HTTP {codes[0]} from {hc.port}{hc.path}: keep its domain empty (ingress-nginx's default server answers /healthz)"
                ev[w.name]["fix"] = "lb-config"
            else:
                rem = (f"the LB cannot reach {t.ip}:{hc.port} although it answers from here: check the Hetzner firewall and that the LB and "
                       f"{w.name} share the private network")
                ev[w.name]["fix"] = "cloud-network"
            items.append(("fail", f"{w.name} unhealthy on {join_names([str(p) for p in sorted(bad)])}: {why}{seen}", rem, w.name))
        elif unknown:
            items.append(("warn", f"{w.name} not checked yet on {join_names([str(p) for p in unknown])} (unknown)", "wait one health-check interval", w.name))
        else:
            healthy += 1
    names = set(targets)
    for n in sorted(names - {w.name for w in workers}):
        items.append(("warn", f"target {n} is not a Kubernetes worker", "remove it or check the target selector", n))
    head = f"{healthy}/{plural(len(workers), 'worker')} healthy on {join_names([str(p) for p in ports])}"
    if not items:
        return ok(head, ev)
    return CheckOutcome(worst([i[0] for i in items]), head + ". " + "; ".join(compact([(i[3], i[1]) for i in items])),
                        "\n".join(compact([(i[3], i[2]) for i in items if i[2]])), ev)


# --- lb.certificate -------------------------------------------------------------------------------


def _covers(domain: str, host: str) -> bool:
    if domain.startswith("*."):
        return host.endswith(domain[1:]) and host.count(".") == domain.count(".")
    return domain == host


def check_lb_certificate(ctx: Context, state: ValidationState) -> CheckOutcome:
    if not any(s.protocol == "https" for s in ctx.config.load_balancer.services):
        return skip("no https service configured")
    cloud, early = _cloud_or_outcome(state)
    if early is not None:
        return skip(f"skipped: {early.detail}", early.remediation) if early.status == "fail" else early
    https = [s for s in cloud.lb.services or [] if s.protocol == "https"]
    if not https:
        return skip("the LB has no https service (see lb.services)")
    hosts = [a.host for a in ctx.config.apps if a.host]
    items: list[tuple[str, str, str]] = []
    ev: dict[str, Any] = {}
    for s in https:
        for c in (s.http.certificates or []) if s.http is not None else []:
            cert = cloud.certificates.get(int(c.id))
            if cert is None:
                items.append(("fail", f"certificate {c.id} on port {s.listen_port} cannot be read", "check it in the Hetzner console"))
                continue
            domains = list(cert.domain_names or [])
            nva = cert.not_valid_after
            ev[cert.name] = {"id": cert.id, "type": cert.type, "domains": domains, "not_valid_after": str(nva) if nva else None}
            missing = [h for h in hosts if not any(_covers(d, h) for d in domains)]
            if missing:
                items.append(("fail", f"certificate {cert.name} does not cover {join_names(missing)} (domains: {join_names(domains)})",
                              "add the names to load_balancer.certificate.domains and re-apply (a managed certificate is re-issued)"))
            issuance = getattr(getattr(cert, "status", None), "issuance", None)
            if cert.type == "managed" and issuance in ("pending", "failed"):
                err = getattr(getattr(getattr(cert, "status", None), "error", None), "message", "") or ""
                items.append(("fail" if issuance == "failed" else "warn", f"managed certificate {cert.name}: issuance {issuance}" + (f": {err}" if err else ""),
                              "the domains must resolve to the LB and be in a Hetzner DNS zone; check CAA records; or upload a certificate"))
            if nva is not None:
                when = nva if isinstance(nva, dt.datetime) else dt.datetime.fromisoformat(str(nva).replace("Z", "+00:00"))
                days = (when - dt.datetime.now(dt.UTC)).total_seconds() / 86400
                ev[cert.name]["days_left"] = round(days, 1)
                if days < 0:
                    items.append(("fail", f"certificate {cert.name} expired on {when.date()}", "renew it (managed: Hetzner renews; uploaded: upload a new one)"))
                elif days < EXPIRY_WARN_DAYS:
                    items.append(("warn", f"certificate {cert.name} expires in {days:.0f} days", "renew it soon"))
    if not items:
        return ok("; ".join(f"{n}: {join_names(e['domains'])}, valid until {str(e.get('not_valid_after'))[:10]}" for n, e in ev.items()), ev)
    return CheckOutcome(worst([i[0] for i in items]), "; ".join(i[1] for i in items), "\n".join(dict.fromkeys(i[2] for i in items)), ev)


# --- dns ------------------------------------------------------------------------------------------


def _expected(state: ValidationState) -> dict[str, set[str]]:
    cloud = state.cloud()
    out: dict[str, set[str]] = {}
    if cloud.lb_ipv4:
        out["A"] = {cloud.lb_ipv4}
    if state.config.dns.ipv6 and cloud.lb_ipv6:
        out["AAAA"] = {cloud.lb_ipv6}
    return out


def _record_hint(state: ValidationState, host: str, rdtype: str, values: set[str]) -> str:
    cfg = state.config
    name = cfg.relative_record(host)
    line = f"{name} {cfg.dns.ttl} IN {rdtype} {' '.join(sorted(values))}"
    if cfg.dns.mode == "manual":
        return f"create or fix the record at your DNS provider, zone {cfg.dns.zone}: `{line}`"
    return f"set the record to the LB: `keybuzz-tui apply` (DNS step) does it, or in the Hetzner console, zone {cfg.dns.zone}: `{line}`"


def _check_dns(ctx: Context, state: ValidationState, which: str) -> CheckOutcome:
    cloud = state.cloud()
    expected = _expected(state)
    lbname = ctx.config.load_balancer.name
    items: list[tuple[str, str, str]] = []
    ev: dict[str, Any] = {}
    oks: list[str] = []
    if which == "authoritative":
        server, how = state.authoritative_server()
        ev["server"] = f"{server[0]}:{server[1]}" if server else None
        ev["found_by"] = how
    else:
        ev["server"] = state.resolver_label()
    for app in ctx.config.apps:
        if not app.host:
            continue
        for rdtype in ("A", "AAAA") if ctx.config.dns.ipv6 and "AAAA" in expected else ("A",):
            ans = state.dns(which, app.host, rdtype)
            ev[f"{app.host} {rdtype}"] = ans.to_dict()
            want = expected.get(rdtype)
            got = set(ans.addresses)
            if not ans.ok or not got:
                hint = _record_hint(state, app.host, rdtype, want) if want else "create the record once the LB exists"
                items.append(("fail", f"{app.host} {rdtype}: {ans.describe()}", hint))
                continue
            if want is None:
                items.append(("warn", f"{app.host} {rdtype} is {join_names(sorted(got))}; the LB's address is unknown ({cloud.error or 'no LB'}) so it cannot be compared",
                              "see lb.services"))
                continue
            if got != want:
                wrong = sorted(got - want)
                detail = f"{app.host} {rdtype} is {join_names(sorted(got))}, but the load balancer {lbname} is {join_names(sorted(want))}"
                if wrong and want & got:
                    detail += f" (extra: {join_names(wrong)})"
                rem = _record_hint(state, app.host, rdtype, want)
                if which == "resolver":
                    auth = state.dns("authoritative", app.host, rdtype)
                    if auth.ok and set(auth.addresses) == want:
                        items.append(("warn", detail + f"; the authoritative server already answers {join_names(sorted(want))}: "
                                      f"the resolver's cache expires within {ans.ttl or '?'} s", f"wait up to {ans.ttl or ctx.config.dns.ttl} s (the record's TTL)"))
                        continue
                items.append(("fail", detail, rem))
                continue
            if which == "authoritative" and ans.authoritative is False:
                items.append(("warn", f"{app.host} {rdtype} = {join_names(sorted(got))} but the answer is not authoritative (no AA flag from {ans.server})",
                              "point dns_server at the zone's real name server"))
                continue
            oks.append(f"{app.host} {rdtype} {join_names(sorted(got))}")
    where = f" ({ev['server']})" if ev.get("server") else ""
    if not items:
        return ok("; ".join(oks) + f" = the load balancer{where}", ev)
    head = "; ".join(i[1] for i in items)
    return CheckOutcome(worst([i[0] for i in items]), head + where, "\n".join(dict.fromkeys(i[2] for i in items)), ev)


def check_dns_authoritative(ctx: Context, state: ValidationState) -> CheckOutcome:
    return _check_dns(ctx, state, "authoritative")


def check_dns_resolver(ctx: Context, state: ValidationState) -> CheckOutcome:
    return _check_dns(ctx, state, "resolver")


# --- https ----------------------------------------------------------------------------------------


def https_target(state: ValidationState, host: str) -> tuple[str | None, int, str]:
    """(ip, port, why-not) to reach https://host the way a browser would: the resolver's answer,
    which must be the LB's address; the port through the sandbox's LB port map."""
    ans = state.dns("resolver", host, "A")
    if not ans.ok or not ans.addresses:
        return None, 0, f"{host} does not resolve ({ans.describe()}; see dns.resolver)"
    lb = state.lb_ip()
    ip = ans.addresses[0]
    if lb is not None and lb not in ans.addresses:
        return None, 0, f"{host} resolves to {join_names(list(ans.addresses))}, not the load balancer {lb} (see dns.resolver)"
    if lb is not None:
        ip = lb
    return ip, state.lb_port(ip, 443), ""


def tls_remediation(error: str, host: str) -> str:
    low = error.lower()
    if "hostname" in low or "mismatch" in low or "doesn't match" in low:
        return f"the certificate the LB serves does not name {host}: add it to load_balancer.certificate.domains and re-apply"
    if "expired" in low:
        return "the certificate has expired: renew it (a managed certificate renews itself; upload a new one otherwise)"
    if "self" in low or "issuer" in low or "unknown ca" in low:
        return "the chain does not lead to a trusted CA: upload the full chain (leaf + intermediates), or trust the private CA (ca_file)"
    return "check the LB's https service and its certificate (lb.services, lb.certificate)"


def make_https_check(app: App) -> Any:
    def run(ctx: Context, state: ValidationState) -> CheckOutcome:
        host = app.host
        ip, port, why = https_target(state, host)
        if ip is None:
            return skip(why)
        p = state.https(ip, port, host, "/")
        ev = {"url": f"https://{host}/", "connect": f"{ip}:{port}", "probe": p.to_dict(), "tls": p.tls}
        facts = p.tls or {}
        cert_text = ""
        if facts.get("subject") or facts.get("san"):
            cert_text = (f"certificate {facts.get('subject') or '?'} (SAN {join_names(facts.get('san') or [])}) by {facts.get('issuer') or '?'}, "
                         f"valid until {str(facts.get('not_after') or '?')[:10]}")
        if p.error == "tls":
            return fail(f"https://{host} ({ip}:{port}): the certificate is not valid: {p.error_text}" + (f"; presented: {cert_text}" if cert_text else ""),
                        tls_remediation(p.error_text, host), ev)
        if not p.answered:
            return fail(f"https://{host} ({ip}:{port}): {p.describe()}", "check the LB's https service (lb.services) and that it listens on 443", ev)
        is_app = p.is_app(app.name)
        if p.status != 200 or is_app is False:
            who = p.served_by().get("app") or p.served_by().get("pod")
            what = f"{p.status} {p.reason}" + (f" from {who}, not {app.name}" if is_app is False else "")
            return fail(f"https://{host} answers {what}", "the LB answers but the backend does not: see ingress.routing and the trace matrix", ev)
        days = facts.get("days_left")
        if isinstance(days, (int, float)) and days < EXPIRY_WARN_DAYS:
            return warn(f"https://{host}: {p.describe()}; {cert_text}: expires in {days:.0f} days", "renew the certificate", ev)
        return ok(f"https://{host}: {p.describe()}; {cert_text}", ev)

    return run

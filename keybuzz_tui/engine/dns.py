"""Step 5: DNS A (and AAAA) records of every app host, pointing at the Load Balancer.

Two modes, because the zone is not always at Hetzner:
- `hetzner`: the records are rrsets of the Hetzner DNS zone (hcloud zones API: zones.get,
  get_rrset, create_rrset, set_rrset_records, change_rrset_ttl), each change waited for like any
  other Hetzner action. A zone the project does not hold (404 on zones.get) falls back to manual.
- `manual`: nothing is changed; the plan carries the exact records to create at the DNS provider,
  in zone-file syntax (`platform  300 IN A 1.2.3.4`).

`check` asks real DNS with dnspython, with timeouts: the zone's authoritative server (the
sandbox's in tests; in production the nameservers Hetzner assigned to the zone, their addresses
resolved once through the system resolver) and the system resolver (what users see). An answer
that is not the LB's address is called what it usually is: a stale record left from an older LB.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..events import CheckResult, Info, ObjectPlanned, StepFinished, StepStarted, Warning_
from .context import Context
from .hcloudio import CloudError, applied, call, explain, finishing_on_failure, hcloud_client, wait_action
from .plan import Change, FieldDiff, Plan

STEP = "dns"
LAYER = "dns"
MANAGED_LABELS = {"managed-by": "keybuzz-tui"}
DNS_TIMEOUT = 3.0  # seconds per DNS query


@dataclass(frozen=True)
class Record:
    """One rrset we want: `name` relative to the zone (`@` for the apex)."""

    host: str
    zone: str
    name: str
    type: str  # A | AAAA
    ttl: int
    values: tuple[str, ...]

    def zone_lines(self) -> list[str]:
        return [f"{self.name}  {self.ttl} IN {self.type} {v}" for v in self.values]


def split_ips(lb_ips: Iterable[str]) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) addresses, sorted, prefixes dropped (a Hetzner LB's ipv6 may come as a /64)."""
    v4: set[str] = set()
    v6: set[str] = set()
    for raw in lb_ips:
        if not raw:
            continue
        ip = ipaddress.ip_address(str(raw).split("/")[0])
        (v4 if ip.version == 4 else v6).add(str(ip))
    return sorted(v4), sorted(v6)


def desired_records(config: Config, lb_ips: Iterable[str]) -> list[Record]:
    """A (and AAAA when the LB has IPv6 and dns.ipv6) for every app host in dns.zone."""
    v4, v6 = split_ips(lb_ips)
    zone = config.dns.zone.rstrip(".")
    out: list[Record] = []
    for host in sorted(config.hosts()):
        if not (host == zone or host.endswith("." + zone)):
            continue
        name = config.relative_record(host)
        if v4:
            out.append(Record(host, zone, name, "A", config.dns.ttl, tuple(v4)))
        if v6 and config.dns.ipv6:
            out.append(Record(host, zone, name, "AAAA", config.dns.ttl, tuple(v6)))
    return out


def zone_file(config: Config, lb_ips: Iterable[str]) -> list[str]:
    """The records in zone-file syntax, with the $ORIGIN they are relative to."""
    recs = desired_records(config, lb_ips)
    lines = [f"$ORIGIN {config.dns.zone.rstrip('.')}."]
    for r in recs:
        lines.extend(r.zone_lines())
    return lines


def _manual(rec: Record, why: str) -> Change:
    lines = rec.zone_lines()
    return Change(
        LAYER, "manual", rec.type, rec.host,
        desired={"zone": rec.zone, "name": rec.name, "type": rec.type, "ttl": rec.ttl, "records": list(rec.values), "zone_lines": lines},
        note=f"{why}; create at your DNS provider (zone {rec.zone}): " + " | ".join(lines),
    )


def plan(ctx: Context, lb_ips: Iterable[str]) -> Plan:
    """What apply would change in DNS for the LB's addresses `lb_ips` (IPv4 and/or IPv6)."""
    cfg = ctx.config
    lb_ips = list(lb_ips)
    records = desired_records(cfg, lb_ips)
    out = Plan()
    if not records:
        out.warnings.append("no DNS record to plan: the Load Balancer has no public address yet (apply the load balancer first)")
    elif cfg.dns.mode == "manual":
        for rec in records:
            out.add(_manual(rec, "dns.mode is manual"))
    else:
        _plan_hetzner(ctx, records, split_ips(lb_ips)[1], out)
    for c in out.changes:
        ctx.emit(ObjectPlanned(step=STEP, action=c.action, kind=c.kind, name=c.name, diff=tuple(c.lines())))
    for w in out.warnings:
        ctx.emit(Warning_(step=STEP, message=w))
    return out


def _get_rrset(ctx: Context, client: Any, zone: Any, name: str, rtype: str) -> Any:
    from hcloud import APIException

    ctx.cancel.check()
    try:
        return client.zones.get_rrset(zone, name, rtype)
    except APIException as exc:
        if exc.code == "not_found":
            return None
        raise explain(exc, f"reading DNS record {name}/{rtype} of {zone.name}", client) from None
    except Exception as exc:
        raise explain(exc, f"reading DNS record {name}/{rtype}", client) from None


def _zone(ctx: Context, client: Any) -> Any:
    """The Hetzner zone, or None when this project does not hold it."""
    from hcloud import APIException

    name = ctx.config.dns.zone.rstrip(".")
    ctx.cancel.check()
    try:
        return client.zones.get(name)
    except APIException as exc:
        if exc.code == "not_found":
            return None
        raise explain(exc, f"reading DNS zone {name}", client) from None
    except Exception as exc:
        raise explain(exc, f"reading DNS zone {name}", client) from None


def _plan_hetzner(ctx: Context, records: list[Record], v6: list[str], out: Plan) -> None:
    client = hcloud_client(ctx)
    zone = _zone(ctx, client)
    if zone is None:
        out.warnings.append(
            f"the zone {ctx.config.dns.zone} is not a DNS zone of this Hetzner project: create the records below at the "
            "zone's DNS provider (or set dns.mode: manual to say so)"
        )
        for rec in records:
            out.add(_manual(rec, f"zone {rec.zone} is not at Hetzner"))
        return
    if getattr(zone, "mode", "primary") == "secondary":
        out.warnings.append(f"the zone {zone.name} is a secondary zone at Hetzner: change the records at its primary")
        for rec in records:
            out.add(_manual(rec, f"zone {zone.name} is secondary"))
        return
    all_values = set(split_ips(r for rec in records for r in rec.values)[0]) | set(v6)
    for rec in records:
        live = _get_rrset(ctx, client, zone, rec.name, rec.type)
        desired = {"zone": zone.name, "name": rec.name, "type": rec.type, "ttl": rec.ttl, "records": list(rec.values)}
        if live is None:
            if rec.type == "A" and _get_rrset(ctx, client, zone, rec.name, "CNAME") is not None:
                out.warnings.append(
                    f"{rec.host} is a CNAME in zone {zone.name}: an A record cannot sit next to it; delete the CNAME first "
                    "(it points elsewhere than the Load Balancer)"
                )
            out.add(Change(LAYER, "create", rec.type, rec.host, desired=desired, note=" | ".join(rec.zone_lines())))
            continue
        have = sorted(r.value for r in (live.records or []))
        diff: list[FieldDiff] = []
        notes: list[str] = []
        if have != sorted(rec.values):
            diff.append(FieldDiff(".records", have, sorted(rec.values)))
            stale = [v for v in have if v not in all_values]
            if stale:
                notes.append(f"stale: points at {', '.join(stale)}, not the Load Balancer ({', '.join(rec.values)})")
        if live.ttl != rec.ttl:
            diff.append(FieldDiff(".ttl", live.ttl, rec.ttl))
        if diff:
            out.add(Change(LAYER, "update", rec.type, rec.host, diff=diff, desired=desired, note="; ".join(notes)))
        else:
            out.add(Change(LAYER, "unchanged", rec.type, rec.host, desired=desired))
    if not v6:
        # an AAAA left from another setup sends IPv6 clients elsewhere
        for host in sorted({r.host for r in records}):
            name = ctx.config.relative_record(host)
            live = _get_rrset(ctx, client, zone, name, "AAAA")
            if live is None:
                continue
            values = sorted(r.value for r in (live.records or []))
            if (live.labels or {}).get("managed-by") == "keybuzz-tui":
                out.add(
                    Change(
                        LAYER, "delete", "AAAA", host, diff=[FieldDiff(".records", values, None)],
                        desired={"zone": zone.name, "name": name, "type": "AAAA"},
                        note="the Load Balancer has no IPv6 (or dns.ipv6 is off): IPv6 clients would go elsewhere",
                    )
                )
            else:
                out.warnings.append(
                    f"{host} has an AAAA record ({', '.join(values)}) that is not the Load Balancer's: IPv6 clients do not "
                    "reach the LB; delete it in the Hetzner Console if nothing else serves there"
                )


def apply(ctx: Context, plan: Plan, *, timeout: float = 300.0) -> Plan:
    """Make the planned records true (idempotently: each rrset is read again and converged),
    waiting for every zone action; manual changes are printed, not made."""
    mine = [c for c in plan.changes if c.layer == LAYER]
    ctx.emit(StepStarted(step=STEP, title="DNS"))
    done = 0
    with finishing_on_failure(ctx, STEP):
        todo = [c for c in mine if c.action in ("create", "update", "delete")]
        client = hcloud_client(ctx) if todo else None
        zone = _zone(ctx, client) if client is not None else None
        if todo and zone is None:
            raise CloudError(f"the zone {ctx.config.dns.zone} is not (any more) in this Hetzner project", "run plan again", "not_found")
        for c in mine:
            ctx.cancel.check()
            if c.action == "manual":
                lines = (c.desired or {}).get("zone_lines") or []
                ctx.emit(Info(step=STEP, message=f"create at your DNS provider (zone {ctx.config.dns.zone}): " + " | ".join(lines)))
                continue
            if c.action not in ("create", "update", "delete"):
                continue
            extra = _converge(ctx, client, zone, c, timeout)
            done += 1
            applied(ctx, STEP, c, **extra)
    manual = sum(1 for c in mine if c.action == "manual")
    summary = f"{done} record change(s) applied" + (f", {manual} to create by hand" if manual else "")
    ctx.emit(StepFinished(step=STEP, status="ok" if not manual else "warn", summary=summary))
    return plan


def _converge(ctx: Context, client: Any, zone: Any, c: Change, timeout: float) -> dict[str, Any]:
    from hcloud.zones import ZoneRecord

    d = c.desired or {}
    name, rtype = d["name"], d["type"]
    what = f"DNS {rtype} {c.name}"
    live = _get_rrset(ctx, client, zone, name, rtype)
    if c.action == "delete":
        if live is not None:
            resp = call(ctx, client, f"deleting {what}", lambda: client.zones.delete_rrset(live))
            wait_action(ctx, client, resp.action, what=f"deleting {what}", step=STEP, timeout=timeout)
        return {"zone": zone.name}
    records = [ZoneRecord(value=v) for v in d["records"]]
    if live is None:
        resp = call(
            ctx, client, f"creating {what}",
            lambda: client.zones.create_rrset(zone, name=name, type=rtype, ttl=d["ttl"], labels=dict(MANAGED_LABELS), records=records),
        )
        wait_action(ctx, client, resp.action, what=f"creating {what}", step=STEP, timeout=timeout)
        return {"zone": zone.name, "records": d["records"], "ttl": d["ttl"]}
    if sorted(r.value for r in (live.records or [])) != sorted(d["records"]):
        action = call(ctx, client, f"setting {what}", lambda: client.zones.set_rrset_records(live, records))
        wait_action(ctx, client, action, what=f"setting {what}", step=STEP, timeout=timeout)
    if live.ttl != d["ttl"]:
        action = call(ctx, client, f"changing the TTL of {what}", lambda: client.zones.change_rrset_ttl(live, d["ttl"]))
        wait_action(ctx, client, action, what=f"changing the TTL of {what}", step=STEP, timeout=timeout)
    return {"zone": zone.name, "records": d["records"], "ttl": d["ttl"]}


# --- checking what DNS answers ---------------------------------------------------------------


@dataclass
class DNSAnswer:
    """What one name answers for one type, from the authoritative server and the resolver."""

    host: str
    type: str
    expected: list[str]
    authoritative: list[str] = field(default_factory=list)
    resolver: list[str] = field(default_factory=list)
    status: str = "pending"  # ok | warn | fail (CheckResult statuses)
    verdict: str = ""  # ok | stale | missing | propagating | error
    detail: str = ""
    remediation: str = ""
    server: str = ""

    def to_event(self) -> CheckResult:
        return CheckResult(
            step=STEP,
            check=f"dns-{self.type.lower()}-{self.host}",
            layer=LAYER,
            status=self.status,  # type: ignore[arg-type]
            title=f"{self.host} {self.type} -> the Load Balancer",
            detail=self.detail,
            remediation=self.remediation,
        )


def _resolver(server: tuple[str, int] | None, timeout: float) -> Any:
    """A dnspython resolver asking `server` only, or the OS's (resolv.conf) when None."""
    import dns.resolver

    if server is None:
        r = dns.resolver.Resolver()
    else:
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [server[0]]
        r.port = server[1]
        r.search = []
        r.use_search_by_default = False
    r.cache = None
    r.timeout = timeout
    r.lifetime = timeout * 2
    return r


def _parse_hostport(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def _system_resolver(ctx: Context) -> tuple[tuple[str, int] | None, str]:
    if ctx.endpoints.resolver is not None:
        h, p = ctx.endpoints.resolver
        return (h, p), f"{h}:{p}"
    if ctx.config.dns.resolver:
        hp = _parse_hostport(ctx.config.dns.resolver)
        return hp, f"{hp[0]}:{hp[1]}"
    return None, "the system resolver"


def authoritative_servers(ctx: Context, timeout: float = DNS_TIMEOUT) -> list[tuple[str, int]]:
    """Where to ask the zone's own answer: Endpoints.dns_server (sandbox), else the nameservers
    Hetzner assigned to the zone, else the zone's NS records; names resolved with the system
    resolver, each lookup bounded by `timeout`."""
    if ctx.endpoints.dns_server is not None:
        return [ctx.endpoints.dns_server]
    import dns.exception
    import dns.resolver

    names: list[str] = []
    try:
        client = hcloud_client(ctx)
        zone = _zone(ctx, client)
        if zone is not None and zone.authoritative_nameservers is not None:
            names = list(zone.authoritative_nameservers.assigned or [])
    except CloudError:
        names = []
    server, _ = _system_resolver(ctx)
    res = _resolver(server, timeout)
    if not names:
        try:
            names = [str(r.target) for r in res.resolve(ctx.config.dns.zone, "NS")]
        except (dns.exception.DNSException, OSError):
            names = []
    out: list[tuple[str, int]] = []
    for n in names[:4]:
        ctx.cancel.check()
        try:
            out.extend((str(a), 53) for a in res.resolve(n, "A"))
        except (dns.exception.DNSException, OSError):
            continue
    return out


def _ask_authoritative(servers: list[tuple[str, int]], host: str, rtype: str, timeout: float) -> tuple[list[str] | None, str]:
    """(values, error): values [] for NXDOMAIN/NODATA, None when no server answered (the error
    then says what each server did: one silent nameserver of three is not the same outage as all)."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.query
    import dns.rcode
    import dns.rdatatype

    failures: list[str] = []
    for ip, port in servers:
        q = dns.message.make_query(host, rtype)
        q.flags &= ~dns.flags.RD
        try:
            resp = dns.query.udp(q, ip, port=port, timeout=timeout)
            if resp.flags & dns.flags.TC:
                resp = dns.query.tcp(q, ip, port=port, timeout=timeout)
        except (dns.exception.DNSException, OSError) as e:
            failures.append(f"{ip}:{port}: {type(e).__name__}: {e}")
            continue
        rcode = resp.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return [], ""
        if rcode != dns.rcode.NOERROR:
            failures.append(f"{ip}:{port} answered {dns.rcode.to_text(rcode)}")
            continue
        want = dns.rdatatype.from_text(rtype)
        values = sorted({r.to_text() for rrset in resp.answer if rrset.rdtype == want for r in rrset})
        return values, ""
    return None, "; ".join(failures) or "no authoritative server known"


def _ask_resolver(server: tuple[str, int] | None, host: str, rtype: str, timeout: float) -> tuple[list[str] | None, str]:
    import dns.exception
    import dns.resolver

    try:
        ans = _resolver(server, timeout).resolve(host, rtype, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return [], ""
    except (dns.exception.DNSException, OSError) as e:
        return None, f"{type(e).__name__}: {e}"
    return sorted({r.to_text() for r in ans}), ""


def check(ctx: Context, lb_ips: Iterable[str], *, timeout: float = DNS_TIMEOUT) -> list[DNSAnswer]:
    """Ask DNS for every host's A (and AAAA) and compare with the LB's addresses; one
    DNSAnswer (and one CheckResult event) per host and type."""
    cfg = ctx.config
    lb_ips = list(lb_ips)
    v4, v6 = split_ips(lb_ips)
    auth = authoritative_servers(ctx, timeout)
    resolver, resolver_name = _system_resolver(ctx)
    auth_name = ", ".join(f"{h}:{p}" for h, p in auth) or "no authoritative server"
    out: list[DNSAnswer] = []
    for host in sorted(cfg.hosts()):
        types = [("A", v4)] + ([("AAAA", v6)] if v6 and cfg.dns.ipv6 else [])
        for rtype, expected in types:
            ctx.cancel.check()
            a = DNSAnswer(host, rtype, list(expected), server=auth_name)
            auth_vals, auth_err = _ask_authoritative(auth, host, rtype, timeout)
            res_vals, res_err = _ask_resolver(resolver, host, rtype, timeout)
            a.authoritative = auth_vals or []
            a.resolver = res_vals or []
            _judge(a, auth_vals, auth_err, res_vals, res_err, resolver_name, cfg)
            ctx.emit(a.to_event())
            out.append(a)
    return out


def _judge(a: DNSAnswer, auth: list[str] | None, auth_err: str, res: list[str] | None, res_err: str, resolver_name: str, cfg: Config) -> None:
    want = sorted(a.expected)
    expected = ", ".join(want) or "(no LB address)"
    fix = f"run keybuzz-tui apply (dns step), or set {cfg.relative_record(a.host)} {a.type} to {expected} at the DNS provider"
    if not want:
        a.status, a.verdict, a.detail = "fail", "error", "the Load Balancer has no public address to compare with"
        a.remediation = "apply the load balancer step first"
        return
    if auth is None:
        a.status, a.verdict = "fail", "error"
        a.detail = f"no answer from the zone's authoritative server ({auth_err})"
        a.remediation = "check that the zone is delegated to its nameservers and reachable on port 53"
        return
    if not auth:
        a.status, a.verdict = "fail", "missing"
        a.detail = f"the authoritative server has no {a.type} record for {a.host}; expected {expected}"
        a.remediation = fix
        return
    stale = [v for v in auth if v not in want]
    if stale:
        a.status, a.verdict = "fail", "stale"
        a.detail = f"{a.host} points at {', '.join(stale)} (a stale record: an old address, not the Load Balancer's {expected})"
        a.remediation = fix
        return
    missing = [v for v in want if v not in auth]
    if missing:
        a.status, a.verdict = "warn", "missing"
        a.detail = f"{a.host} answers {', '.join(auth)} but not {', '.join(missing)}"
        a.remediation = fix
        return
    if res is None:
        a.status, a.verdict = "warn", "error"
        a.detail = f"authoritative answer correct ({expected}); {resolver_name} did not answer: {res_err}"
        a.remediation = "check the resolver configuration (/etc/resolv.conf or dns.resolver)"
        return
    if sorted(res) != want:
        a.status, a.verdict = "warn", "propagating"
        a.detail = (
            f"authoritative answer correct ({expected}), but {resolver_name} still answers {', '.join(res) or 'nothing'} "
            f"(cached up to the old TTL; records use {cfg.dns.ttl} s)"
        )
        a.remediation = "wait for the cached answer to expire; nothing to change"
        return
    a.status, a.verdict = "ok", "ok"
    a.detail = f"{a.host} {a.type} {expected} (authoritative and {resolver_name})"

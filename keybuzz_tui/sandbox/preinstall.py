"""A scenario's Hetzner pre-install: what an operator had already configured by hand when the
scenario's story begins (the `outage` scenario: the Load Balancer, its certificate and the DNS
records that pointed production at the cluster the day VXLAN broke).

Why through the real hcloud client, from the thread that starts the sandbox, against the running
sandbox API: that is literally what the operator did, so the world it leaves behind is exactly
what any later client (the wizard, `hcloud`, a test) would have produced - the same ids, actions,
label-selector targets, certificate fingerprint and published DNS - and every code path it uses is
already covered by the Hetzner contract tests. Nothing is written into HetznerState directly.

Why it is instant: these actions finished long before the story starts, so for the duration of
the pre-install the project's actions complete at once (the kube side does the same with its
bootstrap mode). The rate-limit budget is refilled afterwards, since the operator's requests were
made hours earlier. The only waits left are hcloud's one GET per action and the first round of
LB health checks (bounded), so that a client arriving right after start finds healthy targets,
as production had.

The scenario field (`install:`), all sections optional:

```yaml
install:
  certificate:            # or the shorthand `certificate: uploaded`
    name: keybuzz-platform
    type: uploaded        # issued by the sandbox CA (DIR/ca.pem), uploaded with hcloud
    domains: [platform.keybuzz.io, platform-api.keybuzz.io]   # default: the dns records' names
  load_balancer:
    name: keybuzz-lb
    type: lb11
    location: fsn1        # or network_zone: eu-central
    network: keybuzz-net  # attached at create; needed by use_private_ip targets
    algorithm: round_robin
    labels: {app: keybuzz}
    services:
      - {protocol: http, listen_port: 80, destination_port: 31695}
      - {protocol: https, listen_port: 443, destination_port: 31695,
         certificate: keybuzz-platform, redirect_http: false}
    health_check: {protocol: http, port: 31695, path: /healthz, interval: 15, timeout: 10, retries: 3}
    targets:
      - {label_selector: role=worker, use_private_ip: true}   # or {server: k3s-worker-01, ...}
  dns:
    zone: keybuzz.io
    records:
      - {name: platform, type: A, ttl: 300, value: load_balancer}  # the LB's public IPv4
      - {name: platform-api, type: A, ttl: 300, values: [127.0.20.9]}
```

A per-service `health_check` overrides the load balancer's. Errors in the field are
ScenarioErrors naming the field; a refused API call is a PreinstallError naming the step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .runtime import SandboxError
from .scenarios import Scenario, ScenarioError

if TYPE_CHECKING:
    import hcloud

    from .runtime import Sandbox

T = TypeVar("T")

LB_VALUE = "load_balancer"  # a DNS record value that means "the LB's public IPv4"
HEALTH_SETTLE_CAP = 2.0  # real seconds the pre-install waits, at most, for the first health checks
DEFAULT_CERT_NAME = "keybuzz-platform"


class PreinstallError(SandboxError):
    """An API call of the pre-install was refused (a scenario that cannot be built); a
    SandboxError, so `keybuzz-tui sandbox` reports it as a usage error, not a traceback."""


# ---- the plan (parsed and validated before any request) -----------------------------------------
@dataclass(frozen=True)
class CertificatePlan:
    name: str
    domains: tuple[str, ...]
    type: str = "uploaded"


@dataclass(frozen=True)
class HealthCheckPlan:
    protocol: str = "http"
    port: int = 31695
    path: str = "/healthz"
    interval: int = 15
    timeout: int = 10
    retries: int = 3
    domain: str | None = None
    status_codes: tuple[str, ...] = ("2??", "3??")


@dataclass(frozen=True)
class ServicePlan:
    protocol: str
    listen_port: int
    destination_port: int
    health_check: HealthCheckPlan
    certificate: str | None = None
    redirect_http: bool = False
    proxyprotocol: bool = False


@dataclass(frozen=True)
class TargetPlan:
    label_selector: str | None = None
    server: str | None = None
    use_private_ip: bool = True


@dataclass(frozen=True)
class LoadBalancerPlan:
    name: str
    type: str = "lb11"
    location: str | None = "fsn1"
    network_zone: str | None = None
    network: str | None = None
    algorithm: str = "round_robin"
    labels: dict[str, str] = field(default_factory=dict)
    services: tuple[ServicePlan, ...] = ()
    targets: tuple[TargetPlan, ...] = ()


@dataclass(frozen=True)
class RecordPlan:
    name: str
    type: str
    values: tuple[str, ...]
    ttl: int | None = None


@dataclass(frozen=True)
class DnsPlan:
    zone: str
    records: tuple[RecordPlan, ...]


@dataclass(frozen=True)
class InstallPlan:
    certificate: CertificatePlan | None = None
    load_balancer: LoadBalancerPlan | None = None
    dns: DnsPlan | None = None


@dataclass
class InstallResult:
    """What the pre-install created (published in sandbox.json under "install")."""

    certificate_id: int | None = None
    load_balancer_id: int | None = None
    public_ipv4: str | None = None
    private_ip: str | None = None
    rrsets: list[dict[str, Any]] = field(default_factory=list)
    unsettled_targets: list[str] = field(default_factory=list)  # not yet healthy when start returned
    seconds: float = 0.0

    def as_info(self) -> dict[str, Any]:
        return {
            "certificate_id": self.certificate_id,
            "load_balancer_id": self.load_balancer_id,
            "load_balancer_ipv4": self.public_ipv4,
            "load_balancer_private_ip": self.private_ip,
            "rrsets": self.rrsets,
            "unsettled_targets": self.unsettled_targets,
            "seconds": round(self.seconds, 3),
        }


class _Reader:
    """Typed access to one mapping of the scenario, with errors that name the field."""

    def __init__(self, scenario: str, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{scenario}: {where} must be a mapping, got {type(data).__name__}")
        self.scenario, self.where, self.data = scenario, where, data

    def fail(self, key: str, why: str) -> ScenarioError:
        return ScenarioError(f"{self.scenario}: {self.where}.{key}: {why}")

    def known(self, *keys: str) -> None:
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise ScenarioError(
                f"{self.scenario}: {self.where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(keys)}"
            )

    def text(self, key: str, default: str | None = None, *, required: bool = False, choices: tuple[str, ...] = ()) -> Any:
        v = self.data.get(key, default)
        if v is None:
            if required:
                raise self.fail(key, "is required")
            return None
        if not isinstance(v, str) or not v:
            raise self.fail(key, f"expected a non-empty string, got {v!r}")
        if choices and v not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {v!r}")
        return v

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> Any:
        v = self.data.get(key, default)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise self.fail(key, f"expected an integer in {lo}..{hi}, got {v!r}")
        return v

    def flag(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(key, f"expected true or false, got {v!r}")
        return v

    def items(self, key: str) -> list[Any]:
        v = self.data.get(key) or []
        if not isinstance(v, list):
            raise self.fail(key, f"expected a list, got {type(v).__name__}")
        return v

    def sub(self, key: str, index: int | None = None, data: Any = None) -> _Reader:
        where = f"{self.where}.{key}" + (f"[{index}]" if index is not None else "")
        return _Reader(self.scenario, where, self.data.get(key) if data is None else data)


def _health_check(r: _Reader, base: HealthCheckPlan) -> HealthCheckPlan:
    r.known("protocol", "port", "path", "interval", "timeout", "retries", "domain", "status_codes")
    codes = r.data.get("status_codes", list(base.status_codes))
    if not (isinstance(codes, list) and codes and all(isinstance(c, str) for c in codes)):
        raise r.fail("status_codes", f"expected a list of patterns such as '2??', got {codes!r}")
    # the API's limits (reference/hetzner.md 2.7 item 7), checked here so the error names the field
    return HealthCheckPlan(
        protocol=r.text("protocol", base.protocol, choices=("http", "https", "tcp")),
        port=r.integer("port", base.port, 1, 65535),
        path=r.text("path", base.path),
        interval=r.integer("interval", base.interval, 3, 60),
        timeout=r.integer("timeout", base.timeout, 1, 60),
        retries=r.integer("retries", base.retries, 1, 5),
        domain=r.text("domain", base.domain),
        status_codes=tuple(codes),
    )


def parse(sc: Scenario) -> InstallPlan | None:
    """The scenario's `install:` section as a plan; None when the scenario has none."""
    if not sc.install:
        return None
    root = _Reader(sc.name, "install", sc.install)
    root.known("certificate", "load_balancer", "dns")

    dns: DnsPlan | None = None
    if root.data.get("dns") is not None:
        d = root.sub("dns")
        d.known("zone", "records")
        zone = d.text("zone", "keybuzz.io")
        records = []
        for i, raw in enumerate(d.items("records")):
            rr = d.sub("records", i, raw)
            rr.known("name", "type", "ttl", "value", "values")
            if ("value" in rr.data) == ("values" in rr.data):
                raise rr.fail("value", "give exactly one of value or values")
            values = rr.data.get("values") if "values" in rr.data else [rr.data.get("value")]
            if not (isinstance(values, list) and values and all(isinstance(v, str) and v for v in values)):
                raise rr.fail("values", f"expected non-empty strings, got {values!r}")
            records.append(
                RecordPlan(
                    name=rr.text("name", required=True),
                    type=rr.text("type", "A", choices=("A", "AAAA", "CNAME", "TXT")),
                    values=tuple(values),
                    ttl=rr.integer("ttl", None, 60, 2**31 - 1),
                )
            )
        dns = DnsPlan(zone, tuple(records))

    cert: CertificatePlan | None = None
    raw_cert = root.data.get("certificate")
    if raw_cert is not None:
        if raw_cert == "uploaded":
            raw_cert = {"type": "uploaded"}
        c = root.sub("certificate", data=raw_cert)
        c.known("name", "type", "domains")
        c.text("type", "uploaded", choices=("uploaded",))  # managed issuance belongs to the wizard's story
        domains = c.data.get("domains")
        if domains is None and dns is not None:
            domains = [r.name + "." + dns.zone if r.name != "@" else dns.zone for r in dns.records]
        if not (isinstance(domains, list) and domains and all(isinstance(x, str) and x for x in domains)):
            raise c.fail("domains", "expected a non-empty list of names (or dns records to take them from)")
        cert = CertificatePlan(c.text("name", DEFAULT_CERT_NAME), tuple(domains))

    lb: LoadBalancerPlan | None = None
    if root.data.get("load_balancer") is not None:
        r = root.sub("load_balancer")
        r.known("name", "type", "location", "network_zone", "network", "algorithm", "labels", "services",
                "health_check", "targets")
        base = _health_check(r.sub("health_check"), HealthCheckPlan()) if r.data.get("health_check") else HealthCheckPlan()
        services = []
        for i, raw in enumerate(r.items("services")):
            s = r.sub("services", i, raw)
            s.known("protocol", "listen_port", "destination_port", "certificate", "redirect_http", "proxyprotocol",
                    "health_check")
            protocol = s.text("protocol", "http", choices=("http", "https", "tcp"))
            certificate = s.text("certificate")
            if protocol == "https":
                if cert is None:
                    raise s.fail("certificate", "an https service needs install.certificate")
                certificate = certificate or cert.name
                if certificate != cert.name:
                    raise s.fail("certificate", f"unknown certificate {certificate!r} (install.certificate is {cert.name!r})")
            elif certificate is not None:
                raise s.fail("certificate", f"only https services carry a certificate, not {protocol}")
            hc = _health_check(s.sub("health_check"), base) if s.data.get("health_check") else base
            services.append(
                ServicePlan(
                    protocol=protocol,
                    listen_port=s.integer("listen_port", None, 1, 65535) or _missing(s, "listen_port"),
                    destination_port=s.integer("destination_port", None, 1, 65535) or _missing(s, "destination_port"),
                    health_check=hc,
                    certificate=certificate,
                    redirect_http=s.flag("redirect_http", False),
                    proxyprotocol=s.flag("proxyprotocol", False),
                )
            )
        targets = []
        for i, raw in enumerate(r.items("targets")):
            t = r.sub("targets", i, raw)
            t.known("label_selector", "server", "use_private_ip")
            if ("label_selector" in t.data) == ("server" in t.data):
                raise t.fail("label_selector", "give exactly one of label_selector or server")
            targets.append(TargetPlan(t.text("label_selector"), t.text("server"), t.flag("use_private_ip", True)))
        labels = r.data.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise r.fail("labels", f"expected a mapping of strings, got {labels!r}")
        network_zone = r.text("network_zone")
        location = r.text("location", None if network_zone else "fsn1")
        if location and network_zone:
            raise r.fail("location", "location and network_zone are mutually exclusive")
        if any(t.use_private_ip for t in targets) and not r.data.get("network"):
            raise r.fail("network", "use_private_ip targets need the load balancer attached to a network")
        lb = LoadBalancerPlan(
            name=r.text("name", required=True),
            type=r.text("type", "lb11"),
            location=location,
            network_zone=network_zone,
            network=r.text("network"),
            algorithm=r.text("algorithm", "round_robin", choices=("round_robin", "least_connections")),
            labels=dict(labels),
            services=tuple(services),
            targets=tuple(targets),
        )

    if dns is not None and lb is None and any(LB_VALUE in r.values for r in dns.records):
        raise root.fail("dns", f"a record with value {LB_VALUE!r} needs install.load_balancer")
    return InstallPlan(cert, lb, dns)


def _missing(r: _Reader, key: str) -> Any:
    raise r.fail(key, "is required")


# ---- applying it ---------------------------------------------------------------------------------
def _client(sb: Sandbox) -> hcloud.Client:
    """The operator's client: the read-write token (whatever token hcloud.env holds for the
    scenario's story), fast action polling, no proxies from the environment (loopback only)."""
    import hcloud

    client = hcloud.Client(
        sb.hetzner.settings.token,
        api_endpoint=sb.hcloud_endpoint,
        poll_interval=0.01,
        poll_max_retries=3000,
        timeout=10,
        application_name="keybuzz-sandbox-preinstall",
    )
    client._client._session.trust_env = False  # type: ignore[attr-defined]
    return client


def _step(what: str, fn: Callable[[], T]) -> T:
    """Run one API step; a refusal becomes a PreinstallError that says which step failed."""
    from hcloud import APIException
    from hcloud.actions import ActionException

    try:
        return fn()
    except APIException as e:
        raise PreinstallError(f"pre-install: {what}: {e.code}: {e.message}") from e
    except ActionException as e:
        raise PreinstallError(f"pre-install: {what}: action {e.action.command} failed: {e}") from e


def _create_certificate(client: hcloud.Client, sb: Sandbox, plan: CertificatePlan) -> Any:
    issued = sb.ca.issue(*plan.domains)
    return _step(
        f"upload certificate {plan.name}",
        lambda: client.certificates.create(
            name=plan.name, certificate=issued.chain_pem, private_key=issued.key_pem, labels={"app": "keybuzz"}
        ),
    )


def _create_load_balancer(client: hcloud.Client, plan: LoadBalancerPlan, cert_id: int | None) -> Any:
    """One POST with network, services and targets (one action), as `hcloud load-balancer create`
    followed by the console's settings would leave it."""
    from hcloud.certificates import Certificate
    from hcloud.load_balancer_types import LoadBalancerType
    from hcloud.load_balancers import (
        LoadBalancerAlgorithm,
        LoadBalancerHealthCheck,
        LoadBalancerHealthCheckHttp,
        LoadBalancerService,
        LoadBalancerServiceHttp,
        LoadBalancerTarget,
        LoadBalancerTargetLabelSelector,
    )
    from hcloud.locations import Location

    network = None
    if plan.network:
        network = _step(f"find network {plan.network}", lambda: client.networks.get_by_name(plan.network))
        if network is None:
            raise PreinstallError(f"pre-install: load balancer {plan.name}: network {plan.network!r} not found")
    services = []
    for s in plan.services:
        hc = s.health_check
        check = LoadBalancerHealthCheck(
            protocol=hc.protocol,
            port=hc.port,
            interval=hc.interval,
            timeout=hc.timeout,
            retries=hc.retries,
            http=LoadBalancerHealthCheckHttp(
                domain=hc.domain, path=hc.path, response=None, status_codes=list(hc.status_codes), tls=False
            )
            if hc.protocol != "tcp"
            else None,
        )
        http = None
        if s.protocol == "https":
            http = LoadBalancerServiceHttp(certificates=[Certificate(id=cert_id)], redirect_http=s.redirect_http)
        services.append(
            LoadBalancerService(
                protocol=s.protocol,
                listen_port=s.listen_port,
                destination_port=s.destination_port,
                proxyprotocol=s.proxyprotocol,
                health_check=check,
                http=http,
            )
        )
    targets = []
    for t in plan.targets:
        if t.label_selector is not None:
            targets.append(
                LoadBalancerTarget(
                    type="label_selector",
                    label_selector=LoadBalancerTargetLabelSelector(selector=t.label_selector),
                    use_private_ip=t.use_private_ip,
                )
            )
        else:
            server = _step(f"find server {t.server}", lambda name=t.server: client.servers.get_by_name(name))
            if server is None:
                raise PreinstallError(f"pre-install: load balancer {plan.name}: server {t.server!r} not found")
            targets.append(LoadBalancerTarget(type="server", server=server, use_private_ip=t.use_private_ip))
    resp = _step(
        f"create load balancer {plan.name}",
        lambda: client.load_balancers.create(
            name=plan.name,
            load_balancer_type=LoadBalancerType(name=plan.type),
            location=Location(name=plan.location) if plan.location else None,
            network_zone=plan.network_zone,
            network=network,
            algorithm=LoadBalancerAlgorithm(type=plan.algorithm),
            labels=plan.labels or None,
            services=services,
            targets=targets,
        ),
    )
    _step(f"wait for create load balancer {plan.name}", resp.action.wait_until_finished)
    return resp.load_balancer


def _create_records(client: hcloud.Client, plan: DnsPlan, lb_ipv4: str | None) -> list[dict[str, Any]]:
    """Create every rrset first, then wait for all their actions: DNS serves a record once its
    action has finished, so the waits overlap instead of adding up."""
    from hcloud.zones import ZoneRecord

    zone = _step(f"find zone {plan.zone}", lambda: client.zones.get(plan.zone))
    pending = []
    out = []
    for r in plan.records:
        values = [lb_ipv4 if v == LB_VALUE else v for v in r.values]
        records = [ZoneRecord(value=v) for v in values if v]
        what = f"rrset {r.name}/{r.type} in {plan.zone}"

        def create(r: RecordPlan = r, records: list[Any] = records) -> Any:
            from hcloud import APIException

            try:
                return client.zones.create_rrset(zone, name=r.name, type=r.type, ttl=r.ttl, records=records).action
            except APIException as e:
                if e.code != "uniqueness_error":  # a scenario seed already has it: replace its records
                    raise
            rrset = client.zones.get_rrset(zone, r.name, r.type)
            return client.zones.set_rrset_records(rrset, records)

        pending.append((what, _step(what, create)))
        out.append({"zone": plan.zone, "name": r.name, "type": r.type, "ttl": r.ttl, "values": values})
    for what, action in pending:
        _step(f"wait for {what}", action.wait_until_finished)
    return out


def _wait_first_health(sb: Sandbox, lb_id: int, ports: list[int], deadline: float) -> list[str]:
    """Until every target of every service is healthy, or the deadline; returns those that are not
    (in a broken variant of the scenario they settle later, as their checks time out)."""

    def unsettled() -> list[str]:
        out = []
        for port in ports:
            health = sb.call(sb.lb_plane.target_health, lb_id, port)
            if not health:
                out.append(f"port {port}: no target resolved")
            out += [f"{kind} {ident} port {port}" for (kind, ident), st in sorted(health.items(), key=str) if st != "healthy"]
        return out

    left = unsettled()
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = unsettled()
    return left


def preinstall(sb: Sandbox) -> InstallResult | None:
    """Replay the scenario's `install:` section against the running sandbox (see the module
    docstring); call from the thread that started it, never from the sandbox loop."""
    plan = parse(sb.scenario)
    if plan is None:
        return None
    started = time.monotonic()
    state = sb.hetzner
    saved_duration = state.actions.duration
    sb.call(setattr, state.actions, "duration", 0.0)
    client = _client(sb)
    result = InstallResult()
    try:
        cert_id = None
        if plan.certificate is not None:
            cert_id = _create_certificate(client, sb, plan.certificate).id
            result.certificate_id = cert_id
        if plan.load_balancer is not None:
            lb = _create_load_balancer(client, plan.load_balancer, cert_id)
            result.load_balancer_id = lb.id
            result.public_ipv4 = lb.public_net.ipv4.ip if lb.public_net and lb.public_net.ipv4 else None
            result.private_ip = lb.private_net[0].ip if lb.private_net else None
        if plan.dns is not None:
            result.rrsets = _create_records(client, plan.dns, result.public_ipv4)
    finally:
        sb.call(setattr, state.actions, "duration", saved_duration)
        sb.call(state.rate_limiter.reset)
        client._client._session.close()  # type: ignore[attr-defined]
    if plan.load_balancer is not None and result.load_balancer_id is not None and plan.load_balancer.targets:
        sb.call(sb.lb_plane.reconcile)
        ports = [s.listen_port for s in plan.load_balancer.services]
        first_timeout = max([s.health_check.timeout for s in plan.load_balancer.services] or [0])
        settle = min(HEALTH_SETTLE_CAP, sb.clock.scaled(first_timeout) + 0.2)
        result.unsettled_targets = _wait_first_health(sb, result.load_balancer_id, ports, time.monotonic() + settle)
    result.seconds = time.monotonic() - started
    sb.extras["install"] = result.as_info()
    sb.call(sb._write_info)  # on the loop, so it never races the LB plane's own rewrites
    return result

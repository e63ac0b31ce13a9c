"""HetznerState: one sandbox Hetzner Cloud project, and the hooks the rest of the world uses.

Everything here runs on the sandbox loop (no locks). The HTTP layer (api.py) calls the operation
modules (lb_ops, cert_ops, dns_ops, firewall_ops); the data plane and scenarios use the hooks:

- `subscribe(cb)`: cb(event, resource_type, resource_id) is scheduled on the loop after every
  change. Events: "created" | "updated" | "deleted" for resources (server, network,
  load_balancer, certificate, zone, firewall), "health" for load_balancer health changes, and
  "succeeded" | "failed" for ("action", id), followed by "updated" for each still-existing
  resource of that action.
- `load_balancers()` / `load_balancer(id)`: frozen, resolved views (views.py).
- `set_target_health(lb_id, listen_port, ("server", id) | ("ip", ip), status)`.
- `dns_snapshot()`: what the authoritative DNS serves (published when rrset actions finish).
- `replace_server(old_id, seed)`, `set_server_status(id, status)`.
- `certificate_material(id)`, `effective_firewall_rules(server_id)`,
  `set_managed_certificate_failure(value)`, `inject_failures(...)` for scenarios.

Visibility: API reads (GET) show a change as soon as the request returns, with a `running`
action; the action's completion publishes DNS changes, marks firewall applications `applied`,
completes managed certificate issuance, and unlocks Load Balancers (see docs in each *_ops module).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import MappingProxyType

from ..clock import Clock
from ..dnsdata import RRSetData, ZoneData
from ..tls import IssuedCert, SandboxCA
from .actions import Action, ActionManager
from .errors import HetznerError, not_found
from .labels import Selector, parse_selector
from .model import (
    Certificate,
    Firewall,
    LoadBalancer,
    Network,
    RRSet,
    Server,
    Subnet,
    Zone,
)
from .ratelimit import RateLimiter
from .seeds import HETZNER_NAMESERVERS, HetznerSettings, NetworkSeed, ServerSeed, ZoneSeed
from .views import (
    FirewallRuleView,
    HealthCheckView,
    LoadBalancerView,
    ServiceView,
    TargetView,
)

log = logging.getLogger(__name__)

Callback = Callable[[str, str, int], None]
HealthKey = tuple[str, object]
SERVER_STATUSES = (
    "running",
    "initializing",
    "starting",
    "stopping",
    "off",
    "deleting",
    "migrating",
    "rebuilding",
    "unknown",
)
HEALTH_STATUSES = ("healthy", "unhealthy", "unknown")


@dataclass
class InjectedFault:
    remaining: int
    status: int
    code: str
    message: str
    path_prefix: str | None


class HetznerState:
    def __init__(
        self,
        clock: Clock,
        ca: SandboxCA,
        *,
        servers: list[ServerSeed],
        network: NetworkSeed,
        zones: list[ZoneSeed],
        settings: HetznerSettings | None = None,
        public_ip_pool: Iterator[str],
    ) -> None:
        self.clock = clock
        self.ca = ca
        self.settings = settings or HetznerSettings()
        self.locations = {loc.name: loc for loc in self.settings.locations}
        self.lb_types = {t.name: t for t in self.settings.load_balancer_types}
        self.server_types = {t.name: t for t in self.settings.server_types}
        self.actions = ActionManager(
            clock, self.settings.action_duration, self._action_finished, self.settings.random_seed
        )
        self.rate_limiter = RateLimiter(
            self.settings.rate_limit_per_hour, self.settings.rate_limit_refill_per_second
        )
        self.managed_certificate_failure: bool | str = self.settings.managed_certificate_failure
        self.servers: dict[int, Server] = {}
        self.networks: dict[int, Network] = {}
        self.lbs: dict[int, LoadBalancer] = {}
        self.certificates: dict[int, Certificate] = {}
        self.zones: dict[int, Zone] = {}
        self.firewalls: dict[int, Firewall] = {}
        # (lb id, listen port, ("server", id) | ("ip", ip)) -> (status, detail, http status code)
        self.health: dict[tuple[int, int, HealthKey], tuple[str, str | None, int | None]] = {}
        self.faults: list[InjectedFault] = []
        self._subscribers: list[Callback] = []
        self._public_ip_pool = public_ip_pool
        self._ids: dict[str, int] = {
            "load_balancer": 1,
            "certificate": 1,
            "zone": 1,
            "firewall": 1,
            "primary_ip": 1,
            "network": 1,
        }
        self._selector_cache: dict[str, Selector] = {}
        self._published: dict[int, tuple[int, ZoneData]] = {}  # zone id -> (change seq, data)
        self._zone_seq = 0

        self._add_network(network)
        for seed in servers:
            self._add_server(seed)
        for zseed in zones:
            self._add_zone_seed(zseed)

    # ---- construction ------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        value = self._ids[kind]
        self._ids[kind] = value + 1
        return value

    def _bump_id_floor(self, kind: str, used: int) -> None:
        self._ids[kind] = max(self._ids[kind], used + 1)

    def _add_network(self, seed: NetworkSeed) -> Network:
        subnets = []
        for sn in seed.subnets:
            net = ipaddress.ip_network(sn.ip_range, strict=False)
            gateway = sn.gateway or str(net.network_address + 1)
            subnets.append(Subnet(sn.type, str(net), sn.network_zone, gateway))
        n = Network(
            seed.id,
            seed.name,
            str(ipaddress.ip_network(seed.ip_range, strict=False)),
            subnets,
            dict(seed.labels),
            self.clock.stamp(),
        )
        self.networks[n.id] = n
        self._bump_id_floor("network", n.id)
        return n

    def _add_server(self, seed: ServerSeed) -> Server:
        if seed.server_type not in self.server_types:
            raise ValueError(f"unknown server type {seed.server_type!r}")
        if seed.location not in self.locations:
            raise ValueError(f"unknown location {seed.location!r}")
        if seed.status not in SERVER_STATUSES:
            raise ValueError(f"unknown server status {seed.status!r}")
        if seed.id in self.servers:
            raise ValueError(f"duplicate server id {seed.id}")
        network_id = seed.network_id
        if network_id is None and self.networks:
            network_id = next(iter(self.networks))
        s = Server(
            id=seed.id,
            name=seed.name,
            labels=dict(seed.labels),
            server_type=seed.server_type,
            location=seed.location,
            status=seed.status,
            created=self.clock.stamp(),
            private_ip=seed.private_ip,
            network_id=network_id,
            public_ipv4=seed.public_ipv4,
            public_ipv4_id=self.next_id("primary_ip") if seed.public_ipv4 else None,
        )
        self.servers[s.id] = s
        return s

    def _add_zone_seed(self, seed: ZoneSeed) -> Zone:
        zid = seed.id if seed.id is not None else self.next_id("zone")
        self._bump_id_floor("zone", zid)
        z = self.new_zone(zid, seed.name, seed.ttl, dict(seed.labels))
        for rs in seed.rrsets:
            z.rrsets[(rs.name, rs.type)] = RRSet(
                rs.name, rs.type, rs.ttl, [{"value": v} for v in rs.records], dict(rs.labels)
            )
        self.zones[z.id] = z
        self.publish_zone(z)
        return z

    def new_zone(self, zid: int, name: str, ttl: int, labels: dict[str, str]) -> Zone:
        """A primary zone with Hetzner's default SOA and NS rrsets at the apex (POST /zones does this)."""
        serial = int(self.clock.now().strftime("%Y%m%d")) * 100 + 1
        z = Zone(zid, name, ttl, labels, self.clock.stamp(), serial=serial)
        z.rrsets[("@", "SOA")] = RRSet(
            "@",
            "SOA",
            None,
            [{"value": f"{HETZNER_NAMESERVERS[0]}. dns.hetzner.com. {serial} 86400 10800 3600000 3600"}],
        )
        z.rrsets[("@", "NS")] = RRSet("@", "NS", None, [{"value": f"{ns}."} for ns in HETZNER_NAMESERVERS])
        return z

    # ---- events ------------------------------------------------------------------------------
    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Register cb(event, resource_type, resource_id); returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: str, rtype: str, rid: int) -> None:
        """Schedule subscribers on the loop (never inside the mutation that caused the event)."""
        for cb in list(self._subscribers):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._safe_call(cb, event, rtype, rid)
            else:
                loop.call_soon(self._safe_call, cb, event, rtype, rid)

    @staticmethod
    def _safe_call(cb: Callback, event: str, rtype: str, rid: int) -> None:
        try:
            cb(event, rtype, rid)
        except Exception:  # a subscriber's bug must not break the API
            log.exception("hetzner subscriber failed on %s %s %s", event, rtype, rid)

    def _action_finished(self, action: Action) -> None:
        self.emit("succeeded" if action.status == "success" else "failed", "action", action.id)
        for rid, rtype in action.resources:
            if self._exists(rtype, rid):
                self.emit("updated", rtype, rid)

    def _exists(self, rtype: str, rid: int) -> bool:
        store = {
            "server": self.servers,
            "network": self.networks,
            "load_balancer": self.lbs,
            "certificate": self.certificates,
            "zone": self.zones,
            "firewall": self.firewalls,
        }.get(rtype)
        return store is not None and rid in store

    # ---- lookups shared by ops and render ----------------------------------------------------
    def selector(self, text: str) -> Selector:
        sel = self._selector_cache.get(text)
        if sel is None:
            sel = parse_selector(text)
            self._selector_cache[text] = sel
        return sel

    def selector_servers(self, text: str) -> list[Server]:
        sel = self.selector(text)
        return [s for s in sorted(self.servers.values(), key=lambda s: s.id) if sel.matches(dict(s.labels))]

    def get_lb(self, lb_id: int) -> LoadBalancer:
        lb = self.lbs.get(lb_id)
        if lb is None:
            raise not_found("load balancer", lb_id)
        return lb

    def load_balancers_targeting(self, server_id: int) -> list[int]:
        out = []
        for lb in self.lbs.values():
            if any(t.kind == "server" and t.server_id == server_id for t in self.effective_targets(lb)):
                out.append(lb.id)
        return sorted(out)

    def certificate_users(self, cert_id: int) -> list[int]:
        return sorted(
            lb.id
            for lb in self.lbs.values()
            if any(
                s.http is not None and s.protocol == "https" and cert_id in s.http.certificates
                for s in lb.services
            )
        )

    def firewall_status_for(self, server_id: int) -> list[tuple[int, str]]:
        out = []
        for fw in sorted(self.firewalls.values(), key=lambda f: f.id):
            if self.firewall_applies_to(fw, server_id):
                out.append((fw.id, fw.server_status.get(server_id, "applied")))
        return out

    def firewall_applies_to(self, fw: Firewall, server_id: int) -> bool:
        for a in fw.applied_to:
            if a.type == "server" and a.server_id == server_id:
                return True
            if a.type == "label_selector" and a.selector is not None:
                server = self.servers.get(server_id)
                if server is not None and self.selector(a.selector).matches(dict(server.labels)):
                    return True
        return False

    def used_ips(self) -> set[str]:
        ips: set[str] = set()
        for s in self.servers.values():
            ips.add(s.private_ip)
            if s.public_ipv4:
                ips.add(s.public_ipv4)
        for lb in self.lbs.values():
            if lb.ipv4:
                ips.add(lb.ipv4)
            ips.update(ip for _, ip in lb.private_net)
        return ips

    def next_public_ip(self) -> str | None:
        used = self.used_ips()
        for ip in self._public_ip_pool:
            if ip not in used:
                return ip
        return None

    def effective_targets(self, lb: LoadBalancer) -> list[TargetView]:
        """Targets resolved to backends (label selectors expanded), de-duplicated by health key."""
        out: list[TargetView] = []
        seen: set[tuple[str, object]] = set()
        nets = {nid for nid, _ in lb.private_net}
        for t in lb.targets:
            if t.type == "ip":
                key: tuple[str, object] = ("ip", t.ip)
                if key not in seen:
                    seen.add(key)
                    out.append(TargetView("ip", None, t.ip, "ip", None, False))
                continue
            servers = (
                ([self.servers[t.server_id]] if t.server_id in self.servers else [])
                if t.type == "server"
                else self.selector_servers(t.selector or "")
            )
            for s in servers:
                key = ("server", s.id)
                if key in seen:
                    continue
                seen.add(key)
                if t.use_private_ip:
                    address = s.private_ip if s.network_id in nets else None
                else:
                    address = s.public_ipv4
                out.append(TargetView("server", s.id, address, t.type, t.selector, t.use_private_ip))
        return out

    def prune_health(self) -> None:
        """Forget health for targets/services that no longer exist (a re-added target starts `unknown`)."""
        valid: dict[int, tuple[set[HealthKey], set[int]]] = {}
        for lb in self.lbs.values():
            keys = {t.health_key for t in self.effective_targets(lb)}
            valid[lb.id] = (keys, {s.listen_port for s in lb.services})
        for key in list(self.health):
            lb_id, port, hkey = key
            v = valid.get(lb_id)
            if v is None or port not in v[1] or hkey not in v[0]:
                del self.health[key]

    # ---- data-plane hooks ---------------------------------------------------------------------
    def set_target_health(
        self,
        lb_id: int,
        listen_port: int,
        target: tuple[str, object],
        status: str,
        *,
        detail: str | None = None,
        http_status_code: int | None = None,
    ) -> None:
        """Record what the health checker saw; GET /load_balancers shows it in health_status."""
        if status not in HEALTH_STATUSES:
            raise ValueError(f"health status must be one of {HEALTH_STATUSES}")
        if lb_id not in self.lbs:
            return  # the LB was deleted while a check was in flight
        key = (lb_id, listen_port, (target[0], target[1]))
        value = (status, detail, http_status_code)
        if self.health.get(key) != value:
            self.health[key] = value
            self.emit("health", "load_balancer", lb_id)

    def load_balancers(self) -> tuple[LoadBalancerView, ...]:
        return tuple(self._view(lb) for lb in sorted(self.lbs.values(), key=lambda lb: lb.id))

    def load_balancer(self, lb_id: int) -> LoadBalancerView | None:
        lb = self.lbs.get(lb_id)
        return self._view(lb) if lb is not None else None

    def _view(self, lb: LoadBalancer) -> LoadBalancerView:
        services = []
        for s in lb.services:
            hc = s.health_check
            hh = hc.http
            services.append(
                ServiceView(
                    protocol=s.protocol,
                    listen_port=s.listen_port,
                    destination_port=s.destination_port,
                    proxyprotocol=s.proxyprotocol,
                    health_check=HealthCheckView(
                        hc.protocol,
                        hc.port,
                        hc.interval,
                        hc.timeout,
                        hc.retries,
                        http_domain=hh.domain if hh else None,
                        http_path=hh.path if hh else "/",
                        http_response=hh.response if hh else "",
                        http_status_codes=tuple(hh.status_codes) if hh else ("2??", "3??"),
                        http_tls=hh.tls if hh else False,
                    ),
                    certificate_ids=tuple(s.http.certificates) if s.http and s.protocol == "https" else (),
                    redirect_http=bool(s.http and s.protocol == "https" and s.http.redirect_http),
                    sticky_sessions=bool(s.http and s.http.sticky_sessions),
                    cookie_name=s.http.cookie_name if s.http else "HCLBSTICKY",
                    cookie_lifetime=s.http.cookie_lifetime if s.http else 300,
                    timeout_idle=s.http.timeout_idle if s.http else 50,
                )
            )
        return LoadBalancerView(
            id=lb.id,
            name=lb.name,
            lb_type=lb.lb_type,
            location=lb.location,
            algorithm=lb.algorithm,
            public_enabled=lb.public_enabled,
            ipv4=lb.ipv4,
            private_ips=tuple(lb.private_net),
            services=tuple(services),
            targets=tuple(self.effective_targets(lb)),
            labels=MappingProxyType(dict(lb.labels)),
            busy=bool(self.actions.running_for("load_balancer", lb.id)),
        )

    def certificate_material(self, cert_id: int) -> IssuedCert | None:
        """PEM chain + key for TLS termination; None until a managed certificate is issued."""
        c = self.certificates.get(cert_id)
        return c.material if c is not None else None

    def dns_snapshot(self) -> list[ZoneData]:
        return [data for _, (_, data) in sorted(self._published.items())]

    def publish_zone(self, z: Zone, data: ZoneData | None = None, seq: int | None = None) -> None:
        """Make `data` (default: the zone now) what DNS serves, unless something newer is published."""
        if seq is None:
            self._zone_seq += 1
            seq = self._zone_seq
        current = self._published.get(z.id)
        if current is not None and current[0] > seq:
            return
        self._published[z.id] = (seq, data if data is not None else self.zone_data(z))

    def snapshot_zone(self, z: Zone) -> tuple[int, ZoneData]:
        """Capture the zone as of a change (published when that change's action finishes)."""
        self._zone_seq += 1
        return self._zone_seq, self.zone_data(z)

    def unpublish_zone(self, zone_id: int) -> None:
        self._published.pop(zone_id, None)

    @staticmethod
    def zone_data(z: Zone) -> ZoneData:
        rrsets = tuple(
            RRSetData(r.name, r.type, r.ttl, tuple(rec["value"] for rec in r.records))
            for r in sorted(z.rrsets.values(), key=lambda r: (r.name != "@", r.name, r.type))
        )
        return ZoneData(z.name, z.ttl, rrsets)

    def bump_serial(self, z: Zone) -> None:
        z.serial += 1
        soa = z.rrsets.get(("@", "SOA"))
        if soa and soa.records:
            parts = soa.records[0]["value"].split()
            if len(parts) == 7:
                parts[2] = str(z.serial)
                soa.records[0] = {**soa.records[0], "value": " ".join(parts)}

    def replace_server(self, old_id: int, seed: ServerSeed) -> None:
        """A worker replaced by a new server (new id and IP). Server targets and direct firewall
        applications of the old server go away, as when Hetzner deletes a server; label-selector
        targets and firewalls resolve to the new server if its labels match."""
        if old_id not in self.servers:
            raise KeyError(f"no server {old_id}")
        if seed.id != old_id and seed.id in self.servers:
            raise ValueError(f"server id {seed.id} is already used")
        old = self.servers.pop(old_id)
        try:
            self._add_server(seed)
        except ValueError:
            self.servers[old_id] = old
            raise
        gone = old_id if seed.id != old_id else None  # same id: the targets keep pointing at it
        touched_lbs = []
        for lb in self.lbs.values():
            before = len(lb.targets)
            lb.targets = [t for t in lb.targets if not (t.type == "server" and t.server_id == gone)]
            if len(lb.targets) != before or any(t.type == "label_selector" for t in lb.targets):
                touched_lbs.append(lb.id)
        touched_fws = []
        for fw in self.firewalls.values():
            before = len(fw.applied_to)
            fw.applied_to = [a for a in fw.applied_to if not (a.type == "server" and a.server_id == gone)]
            fw.server_status.pop(old_id, None)
            if len(fw.applied_to) != before:
                touched_fws.append(fw.id)
        self.prune_health()
        self.emit("deleted", "server", old_id)
        self.emit("created", "server", seed.id)
        for lb_id in touched_lbs:
            self.emit("updated", "load_balancer", lb_id)
        for fw_id in touched_fws:
            self.emit("updated", "firewall", fw_id)

    def set_server_status(self, server_id: int, status: str) -> None:
        if status not in SERVER_STATUSES:
            raise ValueError(f"server status must be one of {SERVER_STATUSES}")
        s = self.servers[server_id]
        if s.status != status:
            s.status = status
            self.emit("updated", "server", server_id)

    def set_managed_certificate_failure(self, value: bool | str) -> None:
        """Scenario switch read when an issuance finishes: False, True or an error code."""
        self.managed_certificate_failure = value

    def effective_firewall_rules(self, server_id: int) -> tuple[FirewallRuleView, ...]:
        """Rules of every firewall applied (status `applied`) to the server, for the data plane."""
        out = []
        for fw_id, status in self.firewall_status_for(server_id):
            if status != "applied":
                continue
            for r in self.firewalls[fw_id].rules:
                out.append(
                    FirewallRuleView(
                        fw_id, r.direction, r.protocol, r.port, tuple(r.source_ips), tuple(r.destination_ips)
                    )
                )
        return tuple(out)

    def inject_failures(
        self,
        count: int,
        status: int = 503,
        code: str = "unavailable",
        message: str = "service temporarily unavailable",
        path_prefix: str | None = None,
    ) -> None:
        """The next `count` authenticated requests (under /v1 + path_prefix) fail with this error:
        the flaky-api scenario. `conflict`/`timeout` codes are retried by hcloud, others are not."""
        self.faults.append(InjectedFault(count, status, code, message, path_prefix))

    def take_fault(self, path: str) -> HetznerError | None:
        for fault in self.faults:
            if fault.remaining > 0 and (fault.path_prefix is None or path.startswith(fault.path_prefix)):
                fault.remaining -= 1
                return HetznerError(fault.status, fault.code, fault.message)
        self.faults = [f for f in self.faults if f.remaining > 0]
        return None

    def shutdown(self) -> None:
        """Cancel pending action timers (when the sandbox loop stops)."""
        self.actions.cancel_all()

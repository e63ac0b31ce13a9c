"""Frozen, resolved views of the Hetzner model for the data plane (the LB forwarder, health checker,
firewall enforcement). They are rebuilt on each call, so the data plane never shares a mutable
object with the API state; label-selector targets arrive already resolved to servers and the
address to dial (private IP when use_private_ip, else the public IPv4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class HealthCheckView:
    protocol: str  # tcp | http
    port: int
    interval: int
    timeout: int
    retries: int
    http_domain: str | None = None
    http_path: str = "/"
    http_response: str = ""
    http_status_codes: tuple[str, ...] = ("2??", "3??")
    http_tls: bool = False


@dataclass(frozen=True)
class ServiceView:
    protocol: str  # tcp | http | https
    listen_port: int
    destination_port: int
    proxyprotocol: bool
    health_check: HealthCheckView
    certificate_ids: tuple[int, ...] = ()
    redirect_http: bool = False
    sticky_sessions: bool = False
    cookie_name: str = "HCLBSTICKY"
    cookie_lifetime: int = 300
    timeout_idle: int = 50


@dataclass(frozen=True)
class TargetView:
    """One effective backend. `health_key` is what set_target_health expects."""

    kind: str  # server | ip
    server_id: int | None
    address: str | None  # None: not reachable (e.g. private IP requested but server not in the network)
    via: str  # server | label_selector | ip
    selector: str | None
    use_private_ip: bool

    @property
    def health_key(self) -> tuple[str, int | str]:
        if self.kind == "server":
            assert self.server_id is not None
            return ("server", self.server_id)
        assert self.address is not None
        return ("ip", self.address)


@dataclass(frozen=True)
class LoadBalancerView:
    id: int
    name: str
    lb_type: str
    location: str
    algorithm: str
    public_enabled: bool
    ipv4: str | None
    private_ips: tuple[tuple[int, str], ...]  # (network id, ip)
    services: tuple[ServiceView, ...]
    targets: tuple[TargetView, ...]
    labels: Mapping[str, str]
    busy: bool  # an action on this LB is still running


@dataclass(frozen=True)
class FirewallRuleView:
    firewall_id: int
    direction: str  # in | out
    protocol: str
    port: str | None  # "80", "30000-32767" or None
    source_ips: tuple[str, ...]
    destination_ips: tuple[str, ...]

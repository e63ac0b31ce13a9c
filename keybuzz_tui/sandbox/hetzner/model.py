"""The mutable Hetzner model, owned by HetznerState and mutated only on the sandbox loop.

These are plain dataclasses, separate from the JSON shapes (render.py) so that the API's
spelling (and the keys hcloud indexes directly) lives in one place, and from the frozen views
handed to the data plane (views.py) so no other component ever holds a mutable object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..tls import IssuedCert


@dataclass
class Server:
    id: int
    name: str
    labels: dict[str, str]
    server_type: str
    location: str
    status: str
    created: str
    private_ip: str
    network_id: int | None
    public_ipv4: str | None
    public_ipv4_id: int | None


@dataclass
class Subnet:
    type: str
    ip_range: str
    network_zone: str
    gateway: str


@dataclass
class Network:
    id: int
    name: str
    ip_range: str
    subnets: list[Subnet]
    labels: dict[str, str]
    created: str
    protection_delete: bool = False


@dataclass
class HealthCheckHttp:
    domain: str | None = None
    path: str = "/"
    response: str = ""
    status_codes: list[str] = field(default_factory=lambda: ["2??", "3??"])
    tls: bool = False


@dataclass
class HealthCheck:
    protocol: str
    port: int
    interval: int = 15
    timeout: int = 10
    retries: int = 3
    http: HealthCheckHttp | None = None


@dataclass
class ServiceHttp:
    cookie_name: str = "HCLBSTICKY"
    cookie_lifetime: int = 300
    certificates: list[int] = field(default_factory=list)
    redirect_http: bool = False
    sticky_sessions: bool = False
    timeout_idle: int = 50


@dataclass
class Service:
    protocol: str
    listen_port: int
    destination_port: int
    proxyprotocol: bool
    health_check: HealthCheck
    http: ServiceHttp | None = None

    def occupied_ports(self) -> set[int]:
        """Listen ports this service takes: an https service with redirect_http also takes 80."""
        ports = {self.listen_port}
        if self.protocol == "https" and self.http is not None and self.http.redirect_http:
            ports.add(80)
        return ports


@dataclass
class Target:
    type: str  # server | label_selector | ip
    server_id: int | None = None
    selector: str | None = None
    ip: str | None = None
    use_private_ip: bool = False

    def key(self) -> tuple[str, object]:
        if self.type == "server":
            return ("server", self.server_id)
        if self.type == "label_selector":
            return ("label_selector", self.selector)
        return ("ip", self.ip)


@dataclass
class LoadBalancer:
    id: int
    name: str
    lb_type: str
    location: str
    labels: dict[str, str]
    created: str
    algorithm: str
    public_enabled: bool
    ipv4: str | None
    ipv4_dns_ptr: str | None
    private_net: list[tuple[int, str]]  # (network id, ip)
    services: list[Service] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    protection_delete: bool = False

    def service(self, port: int) -> Service | None:
        return next((s for s in self.services if s.listen_port == port), None)


@dataclass
class Certificate:
    id: int
    name: str
    type: str  # uploaded | managed
    labels: dict[str, str]
    created: str
    domain_names: list[str]
    certificate: str | None = None  # PEM chain as shown by the API
    fingerprint: str | None = None
    not_valid_before: str | None = None
    not_valid_after: str | None = None
    issuance: str | None = None  # managed only: pending | completed | failed
    renewal: str | None = None
    error: dict[str, str] | None = None
    material: IssuedCert | None = None  # never rendered: what the LB data plane serves


@dataclass
class RRSet:
    name: str
    type: str
    ttl: int | None
    records: list[dict[str, str]]  # {"value", "comment"?}
    labels: dict[str, str] = field(default_factory=dict)
    protection_change: bool = False

    @property
    def id(self) -> str:
        return f"{self.name}/{self.type}"


@dataclass
class Zone:
    id: int
    name: str
    ttl: int
    labels: dict[str, str]
    created: str
    rrsets: dict[tuple[str, str], RRSet] = field(default_factory=dict)
    protection_delete: bool = False
    serial: int = 1
    mode: str = "primary"


@dataclass
class FirewallRule:
    direction: str
    protocol: str
    port: str | None
    source_ips: list[str]
    destination_ips: list[str]
    description: str | None


@dataclass
class FirewallApply:
    type: str  # server | label_selector
    server_id: int | None = None
    selector: str | None = None


@dataclass
class Firewall:
    id: int
    name: str
    labels: dict[str, str]
    created: str
    rules: list[FirewallRule] = field(default_factory=list)
    applied_to: list[FirewallApply] = field(default_factory=list)
    # server id -> "pending" | "applied" (status shown in server.public_net.firewalls)
    server_status: dict[int, str] = field(default_factory=dict)

"""What a sandbox Hetzner project starts with: seeds (servers, the network, DNS zones), settings
(tokens, rate limit, action timing, failure switches) and the static catalogue (locations, server
and Load Balancer types).

Seeds are frozen: the scenario loader builds them once; HetznerState copies what it needs into its
own mutable model, so a seed can be reused for a second world.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LocationSpec:
    id: int
    name: str
    description: str
    country: str
    city: str
    latitude: float
    longitude: float
    network_zone: str
    datacenter_id: int
    datacenter_name: str


@dataclass(frozen=True)
class LoadBalancerTypeSpec:
    id: int
    name: str
    description: str
    max_connections: int
    max_services: int
    max_targets: int
    max_assigned_certificates: int
    price_monthly_net: str
    included_traffic: int = 21990232555520  # 20 TB


@dataclass(frozen=True)
class ServerTypeSpec:
    id: int
    name: str
    description: str
    cores: int
    memory: float
    disk: int
    cpu_type: str = "shared"
    architecture: str = "x86"
    price_monthly_net: str = "4.5900"


DEFAULT_LOCATIONS: tuple[LocationSpec, ...] = (
    LocationSpec(
        1,
        "fsn1",
        "Falkenstein DC Park 1",
        "DE",
        "Falkenstein",
        50.47612,
        12.370071,
        "eu-central",
        4,
        "fsn1-dc14",
    ),
    LocationSpec(
        2, "nbg1", "Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "eu-central", 2, "nbg1-dc3"
    ),
    LocationSpec(
        3, "hel1", "Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "eu-central", 3, "hel1-dc2"
    ),
    LocationSpec(
        4, "ash", "Ashburn, VA", "US", "Ashburn, VA", 39.045821, -77.487073, "us-east", 5, "ash-dc1"
    ),
)

DEFAULT_LB_TYPES: tuple[LoadBalancerTypeSpec, ...] = (
    # lb11 limits are the spec's example values (reference/hetzner.md 2.7 item 7).
    LoadBalancerTypeSpec(1, "lb11", "LB11", 10000, 5, 25, 10, "5.3900"),
    LoadBalancerTypeSpec(2, "lb21", "LB21", 20000, 15, 75, 25, "16.4900"),
    LoadBalancerTypeSpec(3, "lb31", "LB31", 40000, 30, 150, 50, "32.9900"),
)

DEFAULT_SERVER_TYPES: tuple[ServerTypeSpec, ...] = (
    ServerTypeSpec(104, "cx22", "CX22", 2, 4.0, 40, price_monthly_net="3.7900"),
    ServerTypeSpec(105, "cx32", "CX32", 4, 8.0, 80, price_monthly_net="6.8000"),
    ServerTypeSpec(106, "cx42", "CX42", 8, 16.0, 160, price_monthly_net="16.4000"),
    ServerTypeSpec(22, "cpx11", "CPX 11", 2, 2.0, 40, price_monthly_net="4.3500"),
    ServerTypeSpec(23, "cpx21", "CPX 21", 3, 4.0, 80, price_monthly_net="7.5500"),
    ServerTypeSpec(24, "cpx31", "CPX 31", 4, 8.0, 160, price_monthly_net="13.6000"),
    ServerTypeSpec(25, "cpx41", "CPX 41", 8, 16.0, 240, price_monthly_net="25.2000"),
    ServerTypeSpec(45, "cax11", "CAX11", 2, 4.0, 40, architecture="arm", price_monthly_net="3.7900"),
)

HETZNER_NAMESERVERS: tuple[str, ...] = (
    "hydrogen.ns.hetzner.com",
    "oxygen.ns.hetzner.com",
    "helium.ns.hetzner.de",
)


@dataclass(frozen=True)
class ServerSeed:
    """A Hetzner server that is also a Kubernetes node.

    private_ip is the node's InternalIP (a loopback address in the sandbox) and the server's IP in
    the seeded network; public_ipv4 is another loopback address (None: no public IPv4).
    """

    id: int
    name: str
    private_ip: str
    public_ipv4: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    server_type: str = "cpx31"
    location: str = "fsn1"
    status: str = "running"
    network_id: int | None = None  # None: the seeded network


@dataclass(frozen=True)
class SubnetSeed:
    ip_range: str
    network_zone: str = "eu-central"
    type: str = "cloud"
    gateway: str | None = None  # None: the first host address of ip_range


@dataclass(frozen=True)
class NetworkSeed:
    id: int = 1
    name: str = "keybuzz-net"
    ip_range: str = "127.0.10.0/24"
    subnets: tuple[SubnetSeed, ...] = (SubnetSeed("127.0.10.0/24"),)
    network_zone: str = "eu-central"
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RRSetSeed:
    name: str  # relative, "@" for the apex
    type: str
    records: tuple[str, ...]
    ttl: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ZoneSeed:
    """A primary zone. Missing apex SOA/NS rrsets are added with Hetzner's nameservers, as POST
    /zones does."""

    name: str
    ttl: int = 3600
    rrsets: tuple[RRSetSeed, ...] = ()
    id: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HetznerSettings:
    token: str = "sandbox-hcloud-rw-token"
    read_only_token: str | None = "sandbox-hcloud-ro-token"
    rate_limit_per_hour: int = 3600
    # None: rate_limit_per_hour / 3600 per second (1/s by default, as the spec describes)
    rate_limit_refill_per_second: float | None = None
    # seconds (before clock scaling); a (min, max) pair draws uniformly per action
    action_duration: float | tuple[float, float] = (1.0, 3.0)
    # how long a managed certificate stays `pending` (before clock scaling)
    managed_certificate_duration: float = 5.0
    # False: issuance completes; True: fails with ca_dns_validation_failed; a str: fails with that code
    managed_certificate_failure: bool | str = False
    locations: tuple[LocationSpec, ...] = DEFAULT_LOCATIONS
    load_balancer_types: tuple[LoadBalancerTypeSpec, ...] = DEFAULT_LB_TYPES
    server_types: tuple[ServerTypeSpec, ...] = DEFAULT_SERVER_TYPES
    random_seed: int | None = 0  # action durations; None: nondeterministic
    # addresses the private-IP allocator must never hand out (other sandbox listeners on the subnet)
    reserved_ips: tuple[str, ...] = ()


def keybuzz_seeds(
    prefix: str = "127.0.10", public_prefix: str = "127.0.20", zone: str = "keybuzz.io"
) -> tuple[list[ServerSeed], NetworkSeed, list[ZoneSeed]]:
    """The production layout on loopback: 3 K3s servers (.100-.102) and 5 workers (.110-.114) on
    keybuzz-net, public IPs under `public_prefix`, and the keybuzz.io zone (apex SOA/NS added by
    HetznerState). Scenario files may start from this and change what they need."""
    servers = [
        ServerSeed(
            100 + i,
            f"k3s-server-{i + 1}",
            f"{prefix}.{100 + i}",
            f"{public_prefix}.{100 + i}",
            {"cluster": "keybuzz", "role": "k3s-server"},
            server_type="cx32",
            location=("fsn1", "nbg1", "hel1")[i % 3],
        )
        for i in range(3)
    ] + [
        ServerSeed(
            110 + i,
            f"k3s-worker-{i + 1}",
            f"{prefix}.{110 + i}",
            f"{public_prefix}.{110 + i}",
            {"cluster": "keybuzz", "role": "k3s-worker"},
            server_type="cpx31",
            location=("fsn1", "nbg1", "hel1")[i % 3],
        )
        for i in range(5)
    ]
    network = NetworkSeed(
        id=1, name="keybuzz-net", ip_range=f"{prefix}.0/24", subnets=(SubnetSeed(f"{prefix}.0/24"),)
    )
    return servers, network, [ZoneSeed(zone, ttl=3600, id=1)]

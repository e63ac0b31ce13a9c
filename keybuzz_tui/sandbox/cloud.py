"""The Hetzner project behind the sandbox cluster: one server per Kubernetes node (same name,
same private IP), the private network, the keybuzz.io zone, and the scenario's API settings.

Keeping this derivation in one place is what makes the world "one world": the LB's label-selector
targets resolve to exactly the nodes whose NodePorts the data plane serves.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .addresses import Addresses
from .hetzner.seeds import HetznerSettings, NetworkSeed, RRSetSeed, ServerSeed, SubnetSeed, ZoneSeed
from .scenarios import Scenario, ScenarioError

LOCATIONS = ("fsn1", "nbg1", "hel1")
PROJECT = "keybuzz-production (sandbox)"


@dataclass(frozen=True)
class CloudSeeds:
    servers: list[ServerSeed]
    network: NetworkSeed
    zones: list[ZoneSeed]
    settings: HetznerSettings
    token: str  # the token written to hcloud.env (read-write, or read-only in that scenario)


def server_id(name: str) -> int:
    """Stable, realistic-looking Hetzner server ids (8 digits)."""
    return 40_000_000 + int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 9_000_000


def seeds(sc: Scenario, addrs: Addresses) -> CloudSeeds:
    h = dict(sc.hetzner)
    servers = [
        ServerSeed(
            server_id(n.name),
            n.name,
            n.private_ip,
            n.public_ip,
            {"cluster": "keybuzz", "role": "worker" if n.role == "worker" else "server", "k3s": "true"},
            server_type="cpx31" if n.role == "worker" else "cx32",
            location=LOCATIONS[(n.index - 1) % 3],
        )
        for n in addrs.nodes()
    ]
    net = addrs.net
    network = NetworkSeed(
        id=3_010_422,
        name="keybuzz-net",
        ip_range=f"127.{net}.0.0/16",
        subnets=(SubnetSeed(f"127.{net}.8.0/21"),),
        labels={"cluster": "keybuzz"},
    )
    zone_name = str(h.get("zone", "keybuzz.io"))
    zone_rrsets = tuple(
        RRSetSeed(str(r["name"]), str(r["type"]), tuple(str(v) for v in r["records"]), r.get("ttl"))
        for r in h.get("rrsets", []) or []
    )
    zones = [] if h.get("zone_at_hetzner", True) is False else [ZoneSeed(zone_name, ttl=3600, rrsets=zone_rrsets, id=815_221)]
    rw, ro = "hc_" + secrets.token_hex(30), "hc_ro_" + secrets.token_hex(28)
    durations = h.get("action_seconds", (1.0, 3.0))
    settings = HetznerSettings(
        token=rw,
        read_only_token=ro,
        rate_limit_per_hour=int(h.get("rate_limit_per_hour", 3600)),
        action_duration=tuple(durations) if isinstance(durations, list) else durations,
        managed_certificate_duration=float(h.get("certificate_seconds", 5.0)),
        managed_certificate_failure=h.get("managed_certificate_failure", False),
        reserved_ips=tuple(n.private_ip for n in addrs.nodes()) + (addrs.api_host,),
    )
    unknown = set(h) - {"zone", "zone_at_hetzner", "rrsets", "action_seconds", "certificate_seconds", "rate_limit_per_hour",
                        "managed_certificate_failure", "read_only_token", "load_balancer"}
    if unknown:
        raise ScenarioError(f"{sc.name}: unknown hetzner setting(s) {', '.join(sorted(unknown))}")
    token = ro if h.get("read_only_token") else rw
    return CloudSeeds(servers, network, zones, settings, token)


def lb_ip_pool(addrs: Addresses) -> Iterator[str]:
    return (addrs.lb_public_ip(k) for k in range(1, 250))


def info(seeds: CloudSeeds, endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "project": PROJECT,
        "env_file": "hcloud.env",
        "network": {"name": seeds.network.name, "ip_range": seeds.network.ip_range},
        "zones": [z.name for z in seeds.zones],
        "servers": len(seeds.servers),
    }

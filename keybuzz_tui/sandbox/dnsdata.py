"""The shape in which the Hetzner zones reach the sandbox's authoritative DNS server.

The Hetzner API state owns zones and rrsets; the DNS server only reads a snapshot through a
callable, so the two never share mutable objects across the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RRSetData:
    name: str  # relative to the zone, "@" for the apex ("platform", "platform-api")
    type: str  # "A", "AAAA", "CNAME", "TXT", "NS", "SOA", "MX", "CAA", ...
    ttl: int | None  # None: the zone's default TTL
    records: tuple[str, ...]  # presentation format values, e.g. "127.0.20.1", '"v=spf1 -all"'


@dataclass(frozen=True)
class ZoneData:
    name: str  # "keybuzz.io" (no trailing dot)
    ttl: int  # the zone's default TTL
    rrsets: tuple[RRSetData, ...] = field(default_factory=tuple)

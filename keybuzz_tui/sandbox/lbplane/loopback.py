"""The data plane's one network rule: it only ever dials 127.0.0.0/8.

The Hetzner state hands out loopback addresses for every server, but an `ip` target is whatever
the user typed (10.0.0.5 in a copied production config, say). Dialling it would send a packet off
the machine, which the sandbox promises never to do, so every dial (health check or forward) goes
through `refusal()` first and a refused target simply never becomes healthy. The reason is logged
once per address (not per health-check round) and shown as the health status detail.
"""

from __future__ import annotations

import ipaddress
import logging

log = logging.getLogger("keybuzz.sandbox.lb")

_warned: set[str] = set()


def is_loopback(address: str | None) -> bool:
    """True only for IPv4 addresses in 127.0.0.0/8 (names are never resolved)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and ip.is_loopback


def refusal(address: str | None, purpose: str) -> str | None:
    """None when `address` may be dialled; otherwise why not (and log it once per address)."""
    if is_loopback(address):
        return None
    reason = f"refused to dial {address}: the sandbox only dials 127.0.0.0/8"
    if address not in _warned:
        _warned.add(str(address))
        log.warning("load balancer %s: %s", purpose, reason)
    return reason

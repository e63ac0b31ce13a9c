"""The Hetzner Load Balancer data plane of the sandbox: real listeners on the LB's loopback
addresses, health checks against the targets, and forwarding to healthy targets.

    plane = LoadBalancerPlane(hetzner_state, clock)      # port_offset=None: see ports.py
    await plane.start()                                   # on the sandbox loop
    plane.effective_ports(lb_id)  # {80: 80, 443: 443} as root, {80: 20080, 443: 20443} otherwise
    await plane.stop()

Modules: plane (reconciler, listeners, public API), ports (listen port -> bound port), health
(checks and status transitions), balancer (algorithms, sticky sessions), http_proxy (http/https
frontends, redirect_http, error pages), tcp_proxy (tcp frontend, PROXY v1), certs (TLS material
and SNI), loopback (the never-leave-127/8 rule), routing (the frontends' view of the plane).
"""

from __future__ import annotations

from .health import HealthRecord, ProbeResult, status_matches
from .plane import ListenerInfo, LoadBalancerPlane
from .ports import DEFAULT_PRIVILEGED_OFFSET, PortPolicy

__all__ = [
    "DEFAULT_PRIVILEGED_OFFSET",
    "HealthRecord",
    "ListenerInfo",
    "LoadBalancerPlane",
    "PortPolicy",
    "ProbeResult",
    "status_matches",
]

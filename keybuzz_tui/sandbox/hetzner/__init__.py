"""The sandbox's Hetzner Cloud API: HetznerState (the project and its hooks) and build_app (HTTP).

See state.py for the hooks the data plane and scenarios use, api.py for the HTTP contract, and the
*_ops modules for what becomes visible when (request time vs action completion).
"""

from __future__ import annotations

from .api import build_app
from .errors import HetznerError
from .seeds import (
    HetznerSettings,
    LoadBalancerTypeSpec,
    LocationSpec,
    NetworkSeed,
    RRSetSeed,
    ServerSeed,
    ServerTypeSpec,
    SubnetSeed,
    ZoneSeed,
    keybuzz_seeds,
)
from .state import HetznerState
from .views import FirewallRuleView, HealthCheckView, LoadBalancerView, ServiceView, TargetView

__all__ = [
    "FirewallRuleView",
    "HealthCheckView",
    "HetznerError",
    "HetznerSettings",
    "HetznerState",
    "LoadBalancerTypeSpec",
    "LoadBalancerView",
    "LocationSpec",
    "NetworkSeed",
    "RRSetSeed",
    "ServerSeed",
    "ServerTypeSpec",
    "ServiceView",
    "SubnetSeed",
    "TargetView",
    "ZoneSeed",
    "build_app",
    "keybuzz_seeds",
]

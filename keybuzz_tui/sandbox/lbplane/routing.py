"""What a frontend (one listener's connection handler) needs from the plane, as a narrow interface.

Frontends look the service up on every connection/request instead of holding it, so the
reconciler can change targets, certificates, timeouts or the algorithm under a live listener.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import aiohttp

from ..clock import Clock
from .balancer import ServiceRuntime
from .health import HealthKey

CONNECT_TIMEOUT = 5.0  # seconds (clock-scaled) to open a connection to a target


class Routing(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def upstream(self) -> aiohttp.ClientSession: ...

    def service(self, lb_id: int, listen_port: int) -> ServiceRuntime | None: ...

    def healthy_predicate(self, lb_id: int, listen_port: int) -> Callable[[HealthKey], bool]: ...

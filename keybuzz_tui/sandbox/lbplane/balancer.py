"""Per-LB and per-service runtime state: the current config, and which target gets a request.

The reconciler updates these objects in place (never replaces them while a listener lives), so a
connection accepted before a change sees the new targets and health on its next request.

Algorithms (the LB's `algorithm.type`):
- round_robin: healthy targets in the order the API lists them, in turn;
- least_connections: the healthy targets with the fewest open forwards (TCP connections, or HTTP
  requests in flight, counted per LB across its services), round robin among ties.
Sticky sessions (http/https with `sticky_sessions`): the cookie names a target by an opaque token;
while that target is healthy it gets the client's requests, otherwise the algorithm picks and the
cookie is re-issued.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import Counter
from collections.abc import Callable, Iterable

from ..hetzner.views import LoadBalancerView, ServiceView, TargetView
from .health import HealthKey
from .loopback import is_loopback


class LbRuntime:
    def __init__(self, view: LoadBalancerView) -> None:
        self.id = view.id
        self.view = view
        self.services: dict[int, ServiceRuntime] = {}
        self.active: Counter[HealthKey] = Counter()
        self._secret = secrets.token_bytes(16)

    def update(self, view: LoadBalancerView) -> None:
        self.view = view
        wanted = {s.listen_port: s for s in view.services}
        for port in list(self.services):
            if port not in wanted:
                del self.services[port]
        for port, svc in wanted.items():
            rt = self.services.get(port)
            if rt is None:
                self.services[port] = ServiceRuntime(self, svc)
            else:
                rt.view = svc

    def sticky_token(self, key: HealthKey) -> str:
        msg = f"{self.id}:{key[0]}:{key[1]}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:24]


class ServiceRuntime:
    def __init__(self, lb: LbRuntime, view: ServiceView) -> None:
        self.lb = lb
        self.view = view
        self._next = 0

    @property
    def targets(self) -> tuple[TargetView, ...]:
        return self.lb.view.targets

    def healthy(self, is_healthy: Callable[[HealthKey], bool]) -> list[TargetView]:
        return [
            t
            for t in self.targets
            if t.address is not None and is_loopback(t.address) and is_healthy(t.health_key)
        ]

    def by_token(self, token: str, healthy: Iterable[TargetView]) -> TargetView | None:
        for t in healthy:
            if hmac.compare_digest(self.lb.sticky_token(t.health_key), token):
                return t
        return None

    def pick(
        self,
        is_healthy: Callable[[HealthKey], bool],
        exclude: set[HealthKey] | frozenset[HealthKey] = frozenset(),
    ) -> TargetView | None:
        candidates = [t for t in self.healthy(is_healthy) if t.health_key not in exclude]
        if not candidates:
            return None
        if self.lb.view.algorithm == "least_connections":
            least = min(self.lb.active[t.health_key] for t in candidates)
            candidates = [t for t in candidates if self.lb.active[t.health_key] == least]
        chosen = candidates[self._next % len(candidates)]
        self._next += 1
        return chosen

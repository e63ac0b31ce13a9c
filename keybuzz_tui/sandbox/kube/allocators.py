"""Cluster-wide allocators for Service NodePorts and ClusterIPs, as the apiserver runs them.

NodePorts follow kubernetes pkg/registry/core/service/portallocator: one bitmap per port number for
the whole cluster (every namespace, TCP and UDP alike), a static band at the bottom of the range
that automatic allocation avoids while it can, and the exact error texts clients match on.
"""

from __future__ import annotations

import ipaddress
import random

from .errors import FieldError


class NodePortAllocator:
    def __init__(self, low: int = 30000, high: int = 32767, seed: int = 0) -> None:
        self.low, self.high = low, high
        self.used: dict[int, str] = {}  # port -> "namespace/service"
        self._rand = random.Random(seed)
        size = high - low + 1
        self.static_band_end = low + min(max(16, size // 32), 128) - 1

    @property
    def range_text(self) -> str:
        return f"{self.low}-{self.high}"

    def in_range(self, port: int) -> bool:
        return self.low <= port <= self.high

    def check(self, port: int, owner: str, field: str) -> FieldError | None:
        if not self.in_range(port):
            return FieldError(
                "Invalid",
                field,
                f"provided port is not in the valid range. The range of valid ports is {self.range_text}",
                port,
            )
        holder = self.used.get(port)
        if holder is not None and holder != owner:
            return FieldError("Invalid", field, "provided port is already allocated", port)
        return None

    def allocate(self, port: int, owner: str) -> None:
        self.used[port] = owner

    def allocate_next(self, owner: str) -> int:
        upper = [p for p in range(self.static_band_end + 1, self.high + 1) if p not in self.used]
        pool = upper or [p for p in range(self.low, self.static_band_end + 1) if p not in self.used]
        if not pool:
            raise RuntimeError("range is full")
        port = self._rand.choice(pool)
        self.used[port] = owner
        return port

    def release(self, port: int, owner: str) -> None:
        if self.used.get(port) == owner:
            del self.used[port]

    def holder(self, port: int) -> str | None:
        return self.used.get(port)


class ClusterIPAllocator:
    def __init__(self, cidr: str = "10.43.0.0/16") -> None:
        self.net = ipaddress.ip_network(cidr)
        self.used: dict[str, str] = {}
        self._next = 2

    def check(self, ip: str, owner: str, field: str) -> FieldError | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return FieldError("Invalid", field, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)", ip)
        if addr not in self.net:
            return FieldError(
                "Invalid", field, f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.net}", ip
            )
        holder = self.used.get(ip)
        if holder is not None and holder != owner:
            return FieldError("Invalid", field, f"failed to allocate IP {ip}: provided IP is already allocated", ip)
        return None

    def allocate(self, ip: str, owner: str) -> None:
        self.used[ip] = owner

    def allocate_next(self, owner: str) -> str:
        hosts = self.net.num_addresses - 2
        for _ in range(hosts):
            cand = str(self.net.network_address + self._next)
            self._next = self._next % hosts + 1
            if cand not in self.used and not cand.endswith(".10"):
                self.used[cand] = owner
                return cand
        raise RuntimeError("service IP range is full")

    def release(self, ip: str, owner: str) -> None:
        if self.used.get(ip) == owner:
            del self.used[ip]

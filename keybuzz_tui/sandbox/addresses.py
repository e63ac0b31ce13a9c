"""Every address the sandbox world uses, all inside 127.0.0.0/8.

Production's private network is 10.0.0.0/16 with K3s servers at .100-.102 and workers at
.110-.114; the sandbox keeps those last octets under 127.N.10 so operators recognise them. N (the
"net") separates sandboxes that run at the same time (parallel tests, a demo next to a test run).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeAddr:
    name: str
    role: str  # "server" | "worker"
    index: int  # 1-based within its role
    private_ip: str
    public_ip: str


@dataclass(frozen=True)
class Addresses:
    net: int = 0
    servers: int = 3
    workers: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.net <= 254:
            raise ValueError("net must be 0..254")

    def _ip(self, third: int, fourth: int) -> str:
        return f"127.{self.net}.{third}.{fourth}"

    @property
    def subnet(self) -> str:
        return f"127.{self.net}.0.0/16"

    def server_name(self, i: int) -> str:
        return f"k3s-master-{i:02d}"

    def worker_name(self, i: int) -> str:
        return f"k3s-worker-{i:02d}" if i < 100 else f"k3s-worker-{i:04d}"

    def server_ip(self, i: int) -> str:
        """i is 1-based; 100..109, then 127.N.9.x for very large control planes."""
        return self._ip(10, 99 + i) if i <= 10 else self._ip(9, i)

    def worker_ip(self, i: int) -> str:
        """i is 1-based; 110..199 mirror production, then 127.N.11+.x for scale scenarios."""
        if i <= 90:
            return self._ip(10, 109 + i)
        j = i - 91
        return self._ip(11 + j // 250, j % 250 + 1)

    def public_ip(self, role: str, i: int) -> str:
        base = 0 if role == "server" else 20
        k = base + i
        return self._ip(30 + k // 250, k % 250 + 1)

    def nodes(self) -> list[NodeAddr]:
        out = [
            NodeAddr(self.server_name(i), "server", i, self.server_ip(i), self.public_ip("server", i))
            for i in range(1, self.servers + 1)
        ]
        out += [
            NodeAddr(self.worker_name(i), "worker", i, self.worker_ip(i), self.public_ip("worker", i))
            for i in range(1, self.workers + 1)
        ]
        return out

    @property
    def api_host(self) -> str:
        return self.server_ip(1)

    @property
    def hetzner_host(self) -> str:
        return self._ip(0, 1)

    @property
    def dns_host(self) -> str:
        return self._ip(53, 53)

    def lb_public_ip(self, k: int) -> str:
        return self._ip(20, k)

    def lb_private_ip(self, k: int) -> str:
        return self._ip(10, 200 + k)

    def host_lookup(self) -> dict[str, str]:
        """node name -> private IP."""
        return {n.name: n.private_ip for n in self.nodes()}

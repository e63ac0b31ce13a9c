"""Who holds which port on each node's host network.

The kubelet asks here before it "starts" a hostNetwork container: if a host process (scenario
port-taken) or another container already holds the port, the container fails to bind and crashes,
exactly as on a real node where the scheduler could not see the conflict. This in-memory version
is the book-keeping; the data plane extends it with real listening sockets on the node addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Holder:
    owner: str  # "pod keybuzz/api-x7k2p" or "host process nginx: master ..."
    pid: int
    command: str


class HostNetwork(Protocol):
    def bind(self, node: str, ip: str, port: int, proto: str, owner: str, command: str, pod: dict[str, Any] | None) -> Holder | None:
        """Take the port for `owner`; return the current holder instead when it is taken."""
        ...

    def release(self, owner: str) -> None: ...

    def listening(self, node: str) -> list[tuple[str, int, str, Holder]]:
        """(ip, port, proto, holder) of every listener on the node, for `ss -ltnp`."""
        ...


# What a K3s node has listening before any workload runs (reference/kubernetes.md section 4).
K3S_SERVER_PORTS = [
    ("0.0.0.0", 6443, "k3s server"),
    ("127.0.0.1", 6444, "k3s server"),
    ("NODE", 2379, "k3s server"),
    ("NODE", 2380, "k3s server"),
    ("127.0.0.1", 2381, "k3s server"),
    ("127.0.0.1", 2382, "k3s server"),
    ("127.0.0.1", 10257, "k3s server"),
    ("127.0.0.1", 10258, "k3s server"),
    ("127.0.0.1", 10259, "k3s server"),
]
K3S_NODE_PORTS = [
    ("0.0.0.0", 10250, "k3s agent"),
    ("127.0.0.1", 10248, "k3s agent"),
    ("127.0.0.1", 10249, "k3s agent"),
    ("0.0.0.0", 10256, "k3s agent"),
    ("127.0.0.1", 10010, "containerd"),
    ("0.0.0.0", 22, "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
]


class SimHostNetwork:
    """Book-keeping only: no sockets. Used when the data plane is not running (unit tests)."""

    def __init__(self) -> None:
        self._by_node: dict[str, dict[tuple[int, str], tuple[str, Holder]]] = {}
        self._owners: dict[str, list[tuple[str, int, str]]] = {}
        self._pid = 1200

    def add_node(self, node: str, ip: str, role: str) -> None:
        table = self._by_node.setdefault(node, {})
        ports = (K3S_SERVER_PORTS if role == "server" else []) + K3S_NODE_PORTS
        for bind_ip, port, cmd in ports:
            self._pid += 7
            table[(port, "TCP")] = (ip if bind_ip == "NODE" else bind_ip, Holder(f"host process {cmd}", self._pid, cmd))

    def add_host_process(self, node: str, port: int, command: str, proto: str = "TCP") -> Holder:
        self._pid += 13
        h = Holder(f"host process {command}", self._pid, command)
        self._by_node.setdefault(node, {})[(port, proto)] = ("0.0.0.0", h)
        return h

    def remove_host_process(self, node: str, port: int, proto: str = "TCP") -> None:
        cur = self._by_node.get(node, {}).get((port, proto))
        if cur and cur[1].owner.startswith("host process"):
            del self._by_node[node][(port, proto)]

    def bind(self, node: str, ip: str, port: int, proto: str, owner: str, command: str, pod: dict[str, Any] | None) -> Holder | None:
        table = self._by_node.setdefault(node, {})
        cur = table.get((port, proto))
        if cur is not None and cur[1].owner != owner:
            return cur[1]
        self._pid += 3
        table[(port, proto)] = ("0.0.0.0", Holder(owner, self._pid, command))
        self._owners.setdefault(owner, []).append((node, port, proto))
        return None

    def release(self, owner: str) -> None:
        for node, port, proto in self._owners.pop(owner, []):
            cur = self._by_node.get(node, {}).get((port, proto))
            if cur is not None and cur[1].owner == owner:
                del self._by_node[node][(port, proto)]

    def listening(self, node: str) -> list[tuple[str, int, str, Holder]]:
        return sorted(
            ((ip, port, proto, h) for (port, proto), (ip, h) in self._by_node.get(node, {}).items()),
            key=lambda x: x[1],
        )

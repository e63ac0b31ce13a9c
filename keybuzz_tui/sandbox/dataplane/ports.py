"""Who holds which port on each node: the `ss -ltnp` of every node, with the real socket behind
each entry when there is one.

The table answers "who is it?" (for the kubelet's crash log, `ss`, the doctor); the kernel answers
"is it free?" for every port the data plane binds for real. K3s's own ports (6443, 10250...) are
entries without sockets: the sandbox does not run them on the node addresses, but a pod that
wants them must still crash.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hostnet import K3S_NODE_PORTS, K3S_SERVER_PORTS, Holder
from .apps import AppTarget, daemon
from .sockets import Listener


@dataclass
class Binding:
    node: str
    shown_ip: str  # what `ss` prints: 0.0.0.0 for "all interfaces", 127.0.0.1, or the node IP
    port: int
    proto: str
    holder: Holder
    target: AppTarget | None  # what answers there; None for UDP
    listener: Listener | None = None  # the real socket, when the data plane bound one


class PortTable:
    def __init__(self) -> None:
        self._by_node: dict[str, dict[tuple[int, str], Binding]] = {}
        self._owners: dict[str, list[tuple[str, int, str]]] = {}
        self._node_ip: dict[str, str] = {}
        self._pid = 1200

    def next_pid(self, step: int = 3) -> int:
        self._pid += step
        return self._pid

    def add_node(self, node: str, ip: str, role: str) -> None:
        self._node_ip[node] = ip
        table = self._by_node.setdefault(node, {})
        for bind_ip, port, cmd in (K3S_SERVER_PORTS if role == "server" else []) + K3S_NODE_PORTS:
            shown = ip if bind_ip == "NODE" else bind_ip
            table[(port, "TCP")] = Binding(node, shown, port, "TCP", Holder(f"host process {cmd}", self.next_pid(7), cmd), daemon(node, ip, port, cmd))

    def node_ip(self, node: str) -> str | None:
        return self._node_ip.get(node)

    def get(self, node: str, port: int, proto: str = "TCP") -> Binding | None:
        return self._by_node.get(node, {}).get((port, proto))

    def put(self, b: Binding) -> None:
        self._by_node.setdefault(b.node, {})[(b.port, b.proto)] = b
        if not b.holder.owner.startswith("host process"):
            self._owners.setdefault(b.holder.owner, []).append((b.node, b.port, b.proto))

    def remove(self, node: str, port: int, proto: str = "TCP") -> Binding | None:
        return self._by_node.get(node, {}).pop((port, proto), None)

    def owned_by(self, owner: str) -> list[Binding]:
        out = []
        for node, port, proto in self._owners.get(owner, []):
            b = self.get(node, port, proto)
            if b is not None and b.holder.owner == owner:
                out.append(b)
        return out

    def release(self, owner: str) -> list[Binding]:
        """Remove every binding of owner; return them so their sockets can be closed."""
        gone = []
        for node, port, proto in self._owners.pop(owner, []):
            b = self.get(node, port, proto)
            if b is not None and b.holder.owner == owner:
                self.remove(node, port, proto)
                gone.append(b)
        return gone

    def listening(self, node: str) -> list[tuple[str, int, str, Holder]]:
        return sorted(((b.shown_ip, b.port, b.proto, b.holder) for b in self._by_node.get(node, {}).values()), key=lambda x: (x[1], x[2]))

    def all(self) -> list[Binding]:
        return [b for table in self._by_node.values() for b in table.values()]

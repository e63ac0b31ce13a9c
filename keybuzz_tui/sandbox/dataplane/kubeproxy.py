"""kube-proxy's NodePorts: every node answers on every NodePort at node_ip:nodePort.

Real kube-proxy (iptables mode) DNATs the SYN to one ready endpoint; here the node's listener
accepts and then decides, per connection, what that DNAT would have led to:
- a node-IP endpoint (hostNetwork pod): the bytes are piped to it for real (L4, both ways);
- an overlay endpoint on a path the overlay allows: the connection is handed, in-process, to the
  server "inside" that pod (the ingress-nginx proxy for ports 80/443, the app otherwise);
- an overlay endpoint behind a blocked VXLAN: silence (the SYN was dropped), then a reset;
- externalTrafficPolicy Local and no endpoint on this node: silence (iptables DROP);
- no ready endpoint at all: an immediate reset (iptables REJECT).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from .sockets import Blackhole, Listener, attach, pipe

if TYPE_CHECKING:
    from .apps import AppTarget
    from .plane import DataPlane

log = logging.getLogger("keybuzz.sandbox.dataplane")

SYN_GIVE_UP = 130.0  # seconds: Linux gives up a connect() after ~127 s of SYN retries
DROP_HOLD = 30.0  # how long a DROPped connection is held before it is reset (sandbox seconds)


class NodePortConnection(asyncio.Protocol):
    """The first protocol of an accepted NodePort connection: decides, then hands over at once."""

    def __init__(self, proxy: KubeProxy, node: str, nodeport: int) -> None:
        self.proxy, self.node, self.nodeport = proxy, node, nodeport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        try:
            self.proxy.dispatch(self.node, self.nodeport, transport)
        except Exception:  # a bug here must cost one connection, not the loop
            log.exception("kube-proxy dispatch failed on %s:%s", self.node, self.nodeport)
            transport.abort()

    def data_received(self, data: bytes) -> None:  # pragma: no cover - reading is paused until handed over
        pass


class KubeProxy:
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.listeners: dict[tuple[str, int], Listener] = {}
        self.failed: dict[tuple[str, int], str] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def sync(self) -> None:
        """Bind the NodePorts that exist, close the ones that went away (Service deleted/changed)."""
        topo = self.plane.topology
        want = set()
        if self.plane.live:
            want = {(node, np) for node in topo.node_ips for np in topo.nodeports}
        for key in list(self.listeners):
            if key not in want:
                self.listeners.pop(key).close()
        for key in list(self.failed):
            if key not in want:
                del self.failed[key]
        loop = self.plane.loop
        if loop is None:
            return
        for node, np in sorted(want - set(self.listeners)):
            ip = topo.node_ips[node]
            lst = Listener(loop, ip, np, lambda n=node, p=np: NodePortConnection(self, n, p), label=f"nodePort {node} {ip}:{np}")
            try:
                lst.open()
            except OSError as e:
                # kube-proxy logs "can't open port" and keeps the rule; retried on the next sync
                if (node, np) not in self.failed:
                    self.plane.log(f"kube-proxy on {node}: can't open port {ip}:{np}/tcp: {e.strerror or e}")
                self.failed[(node, np)] = e.strerror or str(e)
                continue
            self.failed.pop((node, np), None)
            self.listeners[(node, np)] = lst

    def dispatch(self, node: str, nodeport: int, transport: asyncio.Transport) -> None:
        if nodeport in self.plane.denied.get(node, ()):
            # the node's own firewall drops the SYN before kube-proxy's rules see it
            attach(transport, Blackhole(self.plane.real_seconds(DROP_HOLD)))
            return
        topo = self.plane.topology
        ep, why = topo.nodeport_pick(node, nodeport)
        if ep is None:
            if why == "drop":
                attach(transport, Blackhole(self.plane.real_seconds(DROP_HOLD)))
            else:
                transport.abort()
            return
        src = topo.node_ips[node]
        rule = topo.nodeports.get(nodeport)
        if rule is not None and rule.local:
            # externalTrafficPolicy Local keeps the client's source address (no SNAT); on loopback
            # the forwarder can bind that address as its own source
            peer = transport.get_extra_info("peername")
            if peer and str(peer[0]).startswith("127."):
                src = str(peer[0])
        if ep.ip in topo.node_by_ip:
            self._spawn(pipe(transport, ep.ip, ep.port, src_ip=src, connect_timeout=self._syn_give_up(), track=self.plane.track))
            return
        r = topo.reach(node, ep.ip, ep.port)
        if r.kind == "timeout":
            attach(transport, Blackhole(self.plane.real_seconds(SYN_GIVE_UP)))
            return
        if r.kind != "serve" or r.target is None:
            transport.abort()
            return
        if r.ip in topo.node_by_ip:
            self._spawn(pipe(transport, r.ip, r.port, src_ip=src, connect_timeout=self._syn_give_up(), track=self.plane.track))
            return
        self.hand_over(transport, r.target)

    def _syn_give_up(self) -> float:
        """How long the forwarded connect may take. DNAT has no timeout of its own: the client's SYN
        waits as long as the kernel retries it (about two minutes). The forwarded connect goes to
        a live loopback listener (a dropped or dead path is modelled before it: Blackhole, abort),
        so only a stalled machine makes it slow: 0.5 s, then 5 s, reset healthy connections on
        loaded test machines. At least 30 s: as patient as the clients the suite uses."""
        return max(self.plane.network.real_timeout(SYN_GIVE_UP), 30.0)

    def hand_over(self, transport: asyncio.Transport, t: AppTarget) -> None:
        """Give the accepted connection to the server running in the pod (TLS first for 443)."""
        proto = self.plane.protocol_for(t)
        if not t.tls:
            attach(transport, proto)
            return

        async def tls() -> None:
            loop = asyncio.get_running_loop()
            try:
                tr = await loop.start_tls(transport, proto, self.plane.ingress.tls_context(), server_side=True, ssl_handshake_timeout=10.0)
            except Exception as e:  # a client that is not TLS, or goes away mid-handshake
                log.debug("TLS handshake on %s failed: %s", t.pod, e)
                transport.abort()
                return
            if tr is None:
                transport.abort()
                return
            proto.connection_made(tr)

        self._spawn(tls())

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("kube-proxy connection ended: %s", task.exception())

    async def stop(self) -> None:
        for lst in self.listeners.values():
            lst.close()
        self.listeners.clear()
        for t in list(self.tasks):
            t.cancel()
        if self.tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self.tasks, return_exceptions=True)

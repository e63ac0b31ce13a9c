"""The L4 frontend: tcp services pipe bytes between the client and one healthy target.

No healthy target (or none accepts the connection): the client connection is closed at once, as a
Hetzner LB does. With `proxyprotocol`, a PROXY protocol v1 line (client address -> LB address and
listen port) is sent to the target before the client's bytes. Half-closes are passed on (the
client's EOF becomes a write EOF towards the target). A connection with no traffic in either
direction for TCP_IDLE_TIMEOUT seconds (clock-scaled) is closed: the API has no idle setting for
tcp services, and an abandoned connection must not live forever in a long demo.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .loopback import refusal
from .routing import CONNECT_TIMEOUT, Routing

log = logging.getLogger("keybuzz.sandbox.lb")

TCP_IDLE_TIMEOUT = 600.0
CHUNK = 64 * 1024


def proxy_v1_header(client: tuple[str, int], server: tuple[str, int]) -> bytes:
    fam = "TCP6" if ":" in client[0] else "TCP4"
    return f"PROXY {fam} {client[0]} {server[0]} {client[1]} {server[1]}\r\n".encode()


class _Activity:
    def __init__(self) -> None:
        self.last = asyncio.get_running_loop().time()

    def touch(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, activity: _Activity, idle: float
) -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                data = await asyncio.wait_for(reader.read(CHUNK), timeout=idle)
            except TimeoutError:
                if loop.time() - activity.last >= idle:
                    return  # idle both ways
                continue
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            activity.touch()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        return


class TcpFrontend:
    def __init__(self, routing: Routing, lb_id: int, listen_port: int) -> None:
        self.routing = routing
        self.lb_id = lb_id
        self.listen_port = listen_port
        self.connections: set[asyncio.Task[None]] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            pass  # listener closed: drop the connection
        except Exception:
            log.exception("load balancer %s tcp port %s: connection failed", self.lb_id, self.listen_port)
        finally:
            writer.close()
            if task is not None:
                self.connections.discard(task)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        svc = self.routing.service(self.lb_id, self.listen_port)
        if svc is None or svc.view.protocol != "tcp":
            return
        is_healthy = self.routing.healthy_predicate(self.lb_id, self.listen_port)
        clock = self.routing.clock
        tried: set[tuple[str, object]] = set()
        while True:
            target = svc.pick(is_healthy, tried)
            if target is None:
                return  # no healthy target: close the client connection
            tried.add(target.health_key)
            if refusal(target.address, f"{self.lb_id} forward") is not None:
                continue
            assert target.address is not None
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(target.address, svc.view.destination_port),
                    timeout=max(0.05, clock.scaled(CONNECT_TIMEOUT)),
                )
            except (OSError, TimeoutError):
                continue
            break
        key = target.health_key
        svc.lb.active[key] += 1
        try:
            if svc.view.proxyprotocol:
                peer = writer.get_extra_info("peername") or ("0.0.0.0", 0)
                sock = writer.get_extra_info("sockname") or ("0.0.0.0", 0)
                up_writer.write(proxy_v1_header((peer[0], peer[1]), (sock[0], self.listen_port)))
            activity = _Activity()
            idle = max(0.05, clock.scaled(TCP_IDLE_TIMEOUT))
            to_target = asyncio.create_task(_pump(reader, up_writer, activity, idle))
            to_client = asyncio.create_task(_pump(up_reader, writer, activity, idle))
            try:
                # the target closing (or failing) ends the connection; the client's EOF only
                # half-closes it, the target may still answer
                await to_client
            finally:
                to_target.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await to_target
        finally:
            up_writer.close()
            svc.lb.active[key] -= 1
            if svc.lb.active[key] <= 0:
                del svc.lb.active[key]

    async def close_all(self) -> None:
        tasks = list(self.connections)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

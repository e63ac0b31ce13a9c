"""A Hetzner world with its Load Balancer data plane and fake targets, on a background loop.

Layout (N = a loopback net reserved for this world, so parallel test processes and running
sandboxes never collide): workers 127.N.10.110-114 (private) / 127.N.20.110-114 (public), Load
Balancer public IPs 127.N.20.1-99, the Hetzner API on 127.0.0.1:<ephemeral>. The net is reserved
by holding 127.N.10.100:6443 bound, which is the address `runtime.free_net` probes.

Each worker runs a FakeTarget: an aiohttp app on :31695 (the ingress NodePort) answering /healthz
and echoing what it received as JSON, a TCP echo on :31700, and an HTTPS app on :31743.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.client
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import hcloud
from aiohttp import web

from keybuzz_tui.sandbox.clock import Clock
from keybuzz_tui.sandbox.hetzner.api import build_app
from keybuzz_tui.sandbox.hetzner.seeds import HetznerSettings, keybuzz_seeds
from keybuzz_tui.sandbox.hetzner.state import HetznerState
from keybuzz_tui.sandbox.lbplane import LoadBalancerPlane
from support.hetzner_world import shared_ca

NODEPORT = 31695
TCP_PORT = 31700
TLS_PORT = 31743
WORKERS = "cluster=keybuzz,role=k3s-worker"
WORKER_IDS = (110, 111, 112, 113, 114)


def reserve_net() -> tuple[int, socket.socket]:
    start = 1 + (os.getpid() * 7) % 240
    for i in range(250):
        net = 1 + (start + i) % 250
        s = socket.socket()
        try:
            s.bind((f"127.{net}.10.100", 6443))
        except OSError:
            s.close()
            continue
        return net, s
    raise RuntimeError("no free loopback net for the LB test world")


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    peer: str | None


@dataclass
class FakeTarget:
    """What ingress-nginx on one worker looks like from the LB: a NodePort that answers."""

    name: str
    ip: str
    healthz_status: int = 200
    healthz_body: str = "ok"
    healthz_delay: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    tcp_first_lines: list[bytes] = field(default_factory=list)
    _runners: list[web.AppRunner] = field(default_factory=list)
    _tcp: asyncio.AbstractServer | None = None
    _tcp_conns: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def running(self) -> bool:
        return bool(self._runners)

    async def start(self) -> None:
        if self._runners:
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, self.ip, NODEPORT, reuse_address=True).start()
        self._runners.append(runner)
        tls_app = web.Application()
        tls_app.router.add_route("*", "/{tail:.*}", self._handle)
        tls_runner = web.AppRunner(tls_app, access_log=None, shutdown_timeout=0.2, handler_cancellation=True)
        await tls_runner.setup()
        ctx = shared_ca().server_context(self.ip)
        await web.TCPSite(tls_runner, self.ip, TLS_PORT, ssl_context=ctx, reuse_address=True).start()
        self._runners.append(tls_runner)
        self._tcp = await asyncio.start_server(self._echo, self.ip, TCP_PORT, reuse_address=True)

    async def stop(self) -> None:
        """The node's ingress goes away: connections refused from now on."""
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for t in list(self._tcp_conns):
            t.cancel()
        for r in self._runners:
            await r.cleanup()
        self._runners.clear()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tcp_conns.add(task)
        try:
            first = True
            while data := await reader.read(65536):
                if first:
                    self.tcp_first_lines.append(data.split(b"\r\n", 1)[0])
                    first = False
                writer.write(f"{self.name}:".encode() + data)
                await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            self._tcp_conns.discard(task)
            writer.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items()}
        self.seen.append(Seen(request.raw_path, headers, request.remote))
        path = request.path
        if path == "/healthz":
            if self.healthz_delay:
                await asyncio.sleep(self.healthz_delay)
            return web.Response(status=self.healthz_status, text=self.healthz_body)
        if path == "/slow":
            await asyncio.sleep(float(request.query.get("s", "1")))
            return web.Response(text="slow done")
        if path == "/broken":  # not HTTP at all, then hang up
            assert request.transport is not None
            request.transport.write(b"SPEAKING NONSENSE\r\n\r\n")
            request.transport.close()
            return web.Response()
        if path == "/stream":
            resp = web.StreamResponse()
            await resp.prepare(request)
            for i in range(5):
                await resp.write(f"chunk{i};".encode())
                await asyncio.sleep(0.01)
            await resp.write_eof()
            return resp
        body = await request.read()
        payload = {
            "node": self.name,
            "ip": self.ip,
            "method": request.method,
            "path": request.raw_path,
            "host": request.headers.get("Host"),
            "xff": request.headers.get("X-Forwarded-For"),
            "proto": request.headers.get("X-Forwarded-Proto"),
            "port": request.headers.get("X-Forwarded-Port"),
            "cookie": request.headers.get("Cookie"),
            "connection": request.headers.get("Connection"),
            "body_len": len(body),
            "body_head": body[:32].decode("latin-1"),
        }
        resp = web.json_response(payload, headers={"X-Target": self.name})
        resp.set_cookie("app", "1")
        return resp


class LbWorld:
    def __init__(
        self, *, speed: float = 25.0, port_offset: int | None = None, settings: HetznerSettings | None = None
    ) -> None:
        self.net, self._reservation = reserve_net()
        self.prefix = f"127.{self.net}.10"
        self.public_prefix = f"127.{self.net}.20"
        self.speed = speed
        self.port_offset = port_offset
        self.settings = settings or HetznerSettings()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="lb-world", daemon=True)
        self._runner: web.AppRunner | None = None
        self.state: HetznerState
        self.plane: LoadBalancerPlane
        self.targets: dict[int, FakeTarget] = {}
        self.port = 0
        self.changes = 0

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LbWorld:
        self._thread.start()
        self.call(self._start)
        return self

    async def _start(self) -> None:
        servers, network, zones = keybuzz_seeds(self.prefix, self.public_prefix)
        pool = (f"{self.public_prefix}.{i}" for i in range(1, 100))
        self.state = HetznerState(
            Clock(self.speed),
            shared_ca(),
            servers=servers,
            network=network,
            zones=zones,
            settings=self.settings,
            public_ip_pool=pool,
        )
        self._runner = web.AppRunner(build_app(self.state), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        for sid in WORKER_IDS:
            t = FakeTarget(f"k3s-worker-{sid - 109}", f"{self.prefix}.{sid}")
            await t.start()
            self.targets[sid] = t

        def changed(_plane: LoadBalancerPlane) -> None:
            self.changes += 1

        self.plane = LoadBalancerPlane(
            self.state, self.state.clock, port_offset=self.port_offset, on_change=changed
        )
        await self.plane.start()

    def stop(self) -> None:
        async def _stop() -> None:
            await self.plane.stop()
            for t in self.targets.values():
                await t.stop()
            self.state.shutdown()
            if self._runner is not None:
                await self._runner.cleanup()
            # whatever is still pending (a target handler a test left behind) ends here, not in
            # a "Task was destroyed but it is pending" message at interpreter exit
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.call(_stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
            self.loop.close()
            self._reservation.close()

    # ---- helpers ---------------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 30) -> Any:
        async def runner() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        fut: concurrent.futures.Future[Any] = asyncio.run_coroutine_threadsafe(runner(), self.loop)
        return fut.result(timeout)

    def client(self) -> hcloud.Client:
        client = hcloud.Client(
            self.settings.token,
            api_endpoint=f"http://127.0.0.1:{self.port}/v1",
            poll_interval=0.01,
            poll_max_retries=2000,
            timeout=10,
        )
        client._client._session.trust_env = False
        client._client._retry_interval_func = lambda retries: 0.0
        return client

    def stop_target(self, sid: int) -> None:
        self.call(self.targets[sid].stop)

    def start_target(self, sid: int) -> None:
        self.call(self.targets[sid].start)

    def restore_targets(self) -> None:
        for sid, t in self.targets.items():
            t.healthz_status, t.healthz_body, t.healthz_delay = 200, "ok", 0.0
            t.seen.clear()
            t.tcp_first_lines.clear()
            self.start_target(sid)

    def ports(self, lb_id: int) -> dict[int, int]:
        return dict(self.call(self.plane.effective_ports, lb_id))


# ---- client side (the test thread) -------------------------------------------------------------
@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


def http_request(
    ip: str,
    port: int,
    path: str = "/",
    *,
    host: str | None = "platform.keybuzz.io",
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    tls: ssl.SSLContext | None = None,
    sni: str | None = None,
    timeout: float = 5.0,
) -> Reply:
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    if tls is not None:
        raw = socket.create_connection((ip, port), timeout=timeout)
        conn.sock = tls.wrap_socket(raw, server_hostname=sni if sni is not None else host)
    try:
        h = dict(headers or {})
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        for k, v in h.items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def raw_exchange(
    ip: str, port: int, data: bytes, *, timeout: float = 3.0, read: bool = True, half_close: bool = True
) -> bytes:
    """Send bytes, half-close (aiohttp's server, like many, drops a half-closed HTTP client: pass
    half_close=False for HTTP), read until the server closes (or timeout)."""
    with socket.create_connection((ip, port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_WR)
        out = b""
        if not read:
            return out
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := s.recv(65536):
                out += chunk
        return out


def wait_until(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = ""
) -> Any:
    import time

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or predicate} (last: {last!r})")


def iter_nested_health(lb: Any) -> Iterator[tuple[int, int, Any]]:
    """(server id, listen port, health status) of every resolved target of an hcloud LB."""
    for t in lb.targets:
        nested = t.targets if t.type == "label_selector" else [t]
        for n in nested or []:
            for h in n.health_status or []:
                yield n.server.id, h.listen_port, h

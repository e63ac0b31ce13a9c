"""Real TCP sockets on the node addresses, and what the data plane does with accepted connections.

Binding is synchronous on purpose: the kubelet asks "can this container bind 8080?" inside a
synchronous reconcile, and the honest answer is the kernel's (EADDRINUSE), so `Listener.open()`
binds and listens right away and only the accept loop is asynchronous. Every accepted transport is
tracked so a released port (container exit) or `stop()` closes its connections too, as a dying
process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger("keybuzz.sandbox.dataplane")

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


def check_dialable(ip: str) -> None:
    """The one rule of the sandbox: nothing is ever dialled outside 127.0.0.0/8."""
    if not ipaddress.ip_address(ip).is_loopback:
        raise PermissionError(f"the sandbox data plane never dials {ip} (only 127.0.0.0/8)")


class Listener:
    """One listening socket on ip:port, accepted on the sandbox loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ip: str, port: int, factory: ProtocolFactory, *, ssl_ctx: ssl.SSLContext | None = None, label: str = "") -> None:
        check_dialable(ip)
        self.loop, self.ip, self.port, self.factory, self.ssl_ctx = loop, ip, port, factory, ssl_ctx
        self.label = label or f"{ip}:{port}"
        self.sock: socket.socket | None = None
        self.transports: set[asyncio.BaseTransport] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self.accepted = 0

    def open(self) -> None:
        """Bind and listen now; raises OSError (EADDRINUSE, EACCES) exactly as the kernel says."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.ip, self.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.loop.add_reader(sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        if self.sock is None:
            return
        for _ in range(64):
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # EMFILE and friends: keep serving, drop this one
                log.warning("accept on %s failed: %s", self.label, e)
                break
            conn.setblocking(False)
            self.accepted += 1
            task = self.loop.create_task(self._connect(conn), name=f"accept {self.label}")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        if len(self.transports) > 64:
            self.transports = {t for t in self.transports if not t.is_closing()}

    async def _connect(self, conn: socket.socket) -> None:
        try:
            transport, _proto = await self.loop.connect_accepted_socket(
                self.factory, conn, ssl=self.ssl_ctx, ssl_handshake_timeout=10.0 if self.ssl_ctx else None
            )
        except asyncio.CancelledError:
            conn.close()
            raise
        except Exception as e:  # a TLS client that never finishes its handshake, a reset...
            log.debug("connection on %s failed: %s", self.label, e)
            conn.close()
            return
        if self.sock is None:  # closed while we were connecting
            transport.abort()
            return
        self.transports.add(transport)

    def close(self) -> None:
        """Stop listening (the port is free again at once) and reset every open connection."""
        if self.sock is not None:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
        for t in list(self._pending):
            t.cancel()
        for tr in list(self.transports):
            with contextlib.suppress(Exception):
                tr.abort()
        self.transports.clear()


class IdleGuard(asyncio.Protocol):
    """Wraps an HTTP server protocol and closes connections nobody uses (slowloris, idle keep-alive).

    aiohttp has a keep-alive timeout but nothing for a client that connects and never sends a
    request line; nginx's client_header_timeout does that job, so the guard does it here.
    """

    def __init__(self, inner: asyncio.Protocol, idle: float, track: Callable[[asyncio.BaseTransport], None] | None = None) -> None:
        self.inner, self.idle, self.track = inner, idle, track
        self.transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0
        # loop.start_tls() may deliver decrypted bytes before it returns the transport we then
        # hand to connection_made(): keep them until the inner protocol is connected
        self._early: list[bytes] = []
        self._early_eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if self.track is not None:
            self.track(transport)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self.inner.connection_made(transport)
        self._timer = loop.call_later(self.idle, self._check)
        early, self._early = self._early, []
        for data in early:
            self.inner.data_received(data)
        if self._early_eof:
            self.inner.eof_received()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            self._early.append(data)
            return
        self._last = asyncio.get_running_loop().time()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self.transport is None:
            self._early_eof = True
            return True
        self.inner.eof_received()
        # aiohttp closes on a half-close, losing the answer to a request sent before the FIN
        # (`printf 'GET / ...' | nc host port`); nginx keeps the write side open, so do we. TLS
        # cannot half-close, and the idle timer closes what the client never finishes.
        return self.transport.get_extra_info("sslcontext") is None

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.inner.connection_lost(exc)

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        busy = bool(getattr(self.inner, "_request_in_progress", False))
        if self.transport is None or self.transport.is_closing():
            return
        if not busy and loop.time() - self._last >= self.idle:
            self.transport.close()
            return
        self._timer = loop.call_later(self.idle, self._check)


class Blackhole(asyncio.Protocol):
    """Accepts and never answers: a dropped SYN (blocked overlay, iptables DROP) or a silent process.

    The kernel has already completed the handshake, so the closest we can get to "no answer" is
    silence until the client gives up; after `hold` seconds the connection is reset so nothing
    lingers forever.
    """

    def __init__(self, hold: float, track: Callable[[asyncio.BaseTransport], None] | None = None) -> None:
        self.hold, self.track = hold, track
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.track is not None:
            self.track(transport)
        self._timer = asyncio.get_running_loop().call_later(self.hold, transport.abort)  # type: ignore[attr-defined]
        if isinstance(transport, asyncio.ReadTransport) and not transport.is_reading():
            transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client gave up: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()


def attach(transport: asyncio.Transport, proto: asyncio.Protocol) -> None:
    """Hand an accepted connection to another protocol (kube-proxy's DNAT, done in-process)."""
    transport.set_protocol(proto)
    proto.connection_made(transport)
    if not transport.is_reading():
        transport.resume_reading()


async def pipe(transport: asyncio.Transport, ip: str, port: int, *, src_ip: str | None, connect_timeout: float, track: Callable[[asyncio.BaseTransport], None]) -> None:
    """L4 forwarding: bytes from the accepted connection to ip:port and back (kube-proxy's DNAT)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 16)
    proto = asyncio.StreamReaderProtocol(reader)
    transport.set_protocol(proto)
    proto.connection_made(transport)
    writer = asyncio.StreamWriter(transport, proto, reader, loop)
    try:
        check_dialable(ip)
        up_r, up_w = await asyncio.wait_for(
            asyncio.open_connection(ip, port, local_addr=(src_ip, 0) if src_ip else None), connect_timeout
        )
    except (TimeoutError, OSError, PermissionError):
        transport.abort()  # what the client of a REJECTed/refused DNAT sees: a reset
        return
    track(up_w.transport)
    if not transport.is_reading():
        transport.resume_reading()

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
            if dst.can_write_eof() and not dst.transport.is_closing():
                dst.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            dst.transport.abort()
            raise

    t1 = loop.create_task(copy(reader, up_w))
    t2 = loop.create_task(copy(up_r, writer))
    try:
        done, pending = await asyncio.wait({t1, t2}, return_when=asyncio.FIRST_EXCEPTION)
        if any(t.exception() for t in done if not t.cancelled()):
            for t in pending:
                t.cancel()
            transport.abort()
            up_w.transport.abort()
        else:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        for t in (t1, t2):
            if not t.done():
                t.cancel()
        for w in (writer, up_w):
            with contextlib.suppress(Exception):
                w.close()

"""LoadBalancerPlane: turns the Hetzner state's Load Balancers into real listening sockets.

It subscribes to HetznerState and reconciles after every change of a load balancer, server (labels
move label-selector targets; replace_server), certificate (a managed certificate finishing its
issuance) or network. Changes are applied when the API request makes them (the state's model
changes at request time), not when the action finishes, so by the time a client has waited for an
action the listener is already up. Reconciles are serialised and coalesced: a burst of events
costs one pass.

For each LB, each service listens on the LB's public IPv4 (unless the public interface is
disabled) and on its private IP in every attached network, at the port `PortPolicy` picks (see
ports.py); an https service with redirect_http also takes port 80 for its 301s. A listener is
rebound only when its protocol or addresses change; everything else (targets, certificates,
algorithm, destination port, health results) is read live by the frontends. A deleted service or
LB closes its listeners and drops their connections.

Everything runs on the sandbox loop, like the state; call the query methods there too (through
`Sandbox.call`) when you are on another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from ..clock import Clock
from ..hetzner.state import HetznerState
from ..hetzner.views import LoadBalancerView, TargetView
from .balancer import LbRuntime, ServiceRuntime
from .certs import CertificateStore, LoadedCert, listener_context
from .health import USER_AGENT, CheckKey, CheckSpec, HealthChecker, HealthKey, HealthRecord
from .http_proxy import HttpFrontend, RedirectFrontend
from .loopback import is_loopback
from .ports import PRIVILEGED_LIMIT, PortPolicy
from .tcp_proxy import TcpFrontend

log = logging.getLogger("keybuzz.sandbox.lb")


class _ClientNoise(logging.Filter):
    """aiohttp logs every malformed client request at ERROR with a traceback. For an LB facing
    clients, garbage is routine: keep one DEBUG line (our own handler errors use `log`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            exc = record.exc_info[1] if record.exc_info else None
            record.msg = f"{record.getMessage()}: {exc!r}" if exc else record.getMessage()
            record.args = None
            record.exc_info = None
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


client_log = logging.getLogger("keybuzz.sandbox.lb.clients")
client_log.addFilter(_ClientNoise())

RELEVANT = frozenset({"load_balancer", "server", "certificate", "network"})
SHUTDOWN_GRACE = 0.5  # seconds (real) an in-flight request gets when its listener goes away
MAX_HEADER_LINE = 8190


@dataclass(frozen=True)
class ListenerInfo:
    """One bound socket, as published in sandbox.json."""

    lb_id: int
    address: str
    listen_port: int  # the service's port in the API (80, 443, ...)
    port: int  # the port actually bound on `address`
    protocol: str  # tcp | http | https | redirect


@dataclass(frozen=True)
class _Want:
    kind: str  # tcp | http | https | redirect
    ref_port: int  # the service the listener serves (the https service for "redirect")
    addresses: tuple[str, ...]
    idle: float  # clock-scaled http.timeout_idle (http kinds)


@dataclass
class _Listener:
    lb_id: int
    listen_port: int
    want: _Want
    port: int | None = None
    servers: list[asyncio.Server] = field(default_factory=list)
    web_servers: list[web.Server] = field(default_factory=list)
    current_web: web.Server | None = None
    tcp: TcpFrontend | None = None


class LoadBalancerPlane:
    def __init__(
        self,
        state: HetznerState,
        clock: Clock | None = None,
        *,
        port_offset: int | None = None,
        on_change: Callable[[LoadBalancerPlane], None] | None = None,
    ) -> None:
        """`port_offset`: see ports.py (None = real ports when allowed, else +20000).
        `on_change`: called on the loop whenever the set of bound sockets changed (the runtime
        rewrites sandbox.json from `snapshot()`)."""
        self.state = state
        self._clock = clock or state.clock
        self._ports = PortPolicy(port_offset)
        self._on_change = on_change
        self._certs = CertificateStore(state.certificate_material)
        self._lbs: dict[int, LbRuntime] = {}
        self._listeners: dict[tuple[int, int], _Listener] = {}
        self._records: dict[CheckKey, HealthRecord] = {}
        self._checkers: dict[CheckKey, HealthChecker] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._running = False
        self._upstream: aiohttp.ClientSession | None = None
        self._health_session: aiohttp.ClientSession | None = None
        self._published: tuple[ListenerInfo, ...] = ()

    # ---- Routing (what the frontends use) -----------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def upstream(self) -> aiohttp.ClientSession:
        assert self._upstream is not None, "the load balancer plane is not running"
        return self._upstream

    def service(self, lb_id: int, listen_port: int) -> ServiceRuntime | None:
        lb = self._lbs.get(lb_id)
        return lb.services.get(listen_port) if lb is not None else None

    def healthy_predicate(self, lb_id: int, listen_port: int) -> Callable[[HealthKey], bool]:
        records = self._records

        def is_healthy(key: HealthKey) -> bool:
            rec = records.get((lb_id, listen_port, key))
            return rec is not None and rec.status == "healthy"

        return is_healthy

    # ---- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        self._upstream = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),  # never mix clients' cookies
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            trust_env=False,
        )
        self._health_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT},
            skip_auto_headers=("Accept", "Accept-Encoding"),
            trust_env=False,
        )
        self._unsubscribe = self.state.subscribe(self._on_event)
        await self.reconcile()

    async def stop(self) -> None:
        """Close every listener and connection, stop health checks. Health statuses stay as last
        reported (the sandbox is going away with us)."""
        if not self._running:
            return
        self._running = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            # let a pass in progress finish (it stops after it: _running is False), so no socket
            # is left bound half-way; cancel only one that hangs
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for checker in list(self._checkers.values()):
            await checker.stop()
        self._checkers.clear()
        for listener in list(self._listeners.values()):
            await self._close(listener)
        self._listeners.clear()
        self._lbs.clear()
        for session in (self._upstream, self._health_session):
            if session is not None:
                await session.close()
        self._upstream = self._health_session = None
        self._publish()

    async def __aenter__(self) -> LoadBalancerPlane:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- queries --------------------------------------------------------------------------------
    def effective_ports(self, lb_id: int) -> dict[int, int]:
        """{listen_port: bound_port} for every listening service of the LB (and 80 for a
        redirect_http). Public and private addresses of one LB share the bound port."""
        return {
            lp: listener.port
            for (lid, lp), listener in sorted(self._listeners.items())
            if lid == lb_id and listener.port is not None
        }

    def listeners(self, lb_id: int | None = None) -> list[ListenerInfo]:
        out = []
        for (lid, lp), listener in sorted(self._listeners.items()):
            if (lb_id is None or lid == lb_id) and listener.port is not None:
                for srv in listener.servers:
                    for sock in srv.sockets:
                        address = sock.getsockname()[0]
                        out.append(ListenerInfo(lid, address, lp, listener.port, listener.want.kind))
        return out

    def target_health(self, lb_id: int, listen_port: int) -> dict[HealthKey, str]:
        """The plane's own view (what forwarding uses): health key -> status."""
        return {k[2]: r.status for k, r in self._records.items() if k[0] == lb_id and k[1] == listen_port}

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready description for sandbox.json: how to reach each LB from a client."""
        lbs = []
        for lb_id, rt in sorted(self._lbs.items()):
            v = rt.view
            lbs.append(
                {
                    "id": lb_id,
                    "name": v.name,
                    "public_ipv4": v.ipv4 if v.public_enabled else None,
                    "private_ips": [ip for _, ip in v.private_ips],
                    "ports": {str(k): p for k, p in self.effective_ports(lb_id).items()},
                    "listeners": [
                        {
                            "address": i.address,
                            "listen_port": i.listen_port,
                            "port": i.port,
                            "protocol": i.protocol,
                        }
                        for i in self.listeners(lb_id)
                    ],
                }
            )
        return {"privileged_port_offset": self._ports.describe(), "load_balancers": lbs}

    # ---- reconciliation -------------------------------------------------------------------------
    def _on_event(self, event: str, rtype: str, rid: int) -> None:
        if event == "health" or rtype not in RELEVANT:
            return
        self._request()

    def _request(self) -> None:
        if not self._running:
            return
        self._dirty = True
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # an event emitted off the loop: the next one on it catches up
                log.warning("load balancer plane: state event outside the sandbox loop")
                return
            self._task = loop.create_task(self._reconcile_loop(), name="lb-plane-reconcile")

    async def reconcile(self) -> None:
        """Reconcile now and return when the plane matches the state (tests, runtime start)."""
        self._request()
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _reconcile_loop(self) -> None:
        while self._dirty and self._running:
            self._dirty = False
            try:
                await self._reconcile_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep serving what is bound; the next event retries
                log.exception("load balancer plane: reconcile failed")

    async def _reconcile_once(self) -> None:
        views = self.state.load_balancers()
        by_id = {v.id: v for v in views}
        for lb_id in list(self._lbs):
            if lb_id not in by_id:
                del self._lbs[lb_id]
        for v in views:
            rt = self._lbs.get(v.id)
            if rt is None:
                self._lbs[v.id] = LbRuntime(v)
            rt = self._lbs[v.id]
            rt.update(v)
        self._certs.prune({c for v in views for s in v.services for c in s.certificate_ids})
        await self._reconcile_listeners(views)
        await self._reconcile_health(views)
        self._publish()

    def _addresses(self, v: LoadBalancerView) -> tuple[str, ...]:
        wanted = ([v.ipv4] if v.public_enabled and v.ipv4 else []) + [ip for _, ip in v.private_ips]
        out = []
        for ip in dict.fromkeys(wanted):
            if is_loopback(ip):
                out.append(ip)
            else:
                log.warning("load balancer %s: not listening on %s (outside 127.0.0.0/8)", v.id, ip)
        return tuple(out)

    def _wanted_listeners(self, views: tuple[LoadBalancerView, ...]) -> dict[tuple[int, int], _Want]:
        want: dict[tuple[int, int], _Want] = {}
        for v in views:
            addrs = self._addresses(v)
            for s in v.services:
                idle = self._clock.scaled(s.timeout_idle)
                want[(v.id, s.listen_port)] = _Want(s.protocol, s.listen_port, addrs, idle)
            for s in v.services:
                if s.protocol == "https" and s.redirect_http and (v.id, 80) not in want:
                    want[(v.id, 80)] = _Want(
                        "redirect", s.listen_port, addrs, self._clock.scaled(s.timeout_idle)
                    )
        return want

    async def _reconcile_listeners(self, views: tuple[LoadBalancerView, ...]) -> None:
        want = self._wanted_listeners(views)
        previous: dict[tuple[int, int], int | None] = {}
        for key, listener in list(self._listeners.items()):
            w = want.get(key)
            old = listener.want
            if w is None or (w.kind, w.ref_port, w.addresses) != (old.kind, old.ref_port, old.addresses):
                previous[key] = listener.port
                del self._listeners[key]
                await self._close(listener)
        for key, w in want.items():
            listener = self._listeners.get(key)
            if listener is None:
                listener = _Listener(key[0], key[1], w)
                self._listeners[key] = listener
                await self._open(listener, previous.get(key))
            elif listener.port is None and w.addresses:
                await self._close(listener)  # every port failed last time: try again
                listener.want = w
                await self._open(listener, None)
            elif listener.want.idle != w.idle:
                listener.want = w
                if w.kind != "tcp":
                    # new connections get the new idle timeout; no rebind, the port stays
                    ws = self._web_server(listener)
                    listener.current_web = ws
                    listener.web_servers.append(ws)

    def _web_server(self, listener: _Listener) -> web.Server:
        w = listener.want
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
        if w.kind == "redirect":
            handler = RedirectFrontend(self, listener.lb_id, w.ref_port).handle
        else:
            handler = HttpFrontend(self, listener.lb_id, listener.listen_port, w.kind).handle
        return web.Server(
            handler,
            handler_cancellation=True,  # a client that leaves aborts its forward
            access_log=None,
            logger=client_log,
            keepalive_timeout=max(0.05, w.idle),
            lingering_time=max(0.05, min(w.idle, 10.0)),
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )

    def _certificates_for(self, lb_id: int, listen_port: int) -> list[LoadedCert]:
        svc = self.service(lb_id, listen_port)
        if svc is None or svc.view.protocol != "https":
            return []
        return self._certs.resolve(svc.view.certificate_ids)

    async def _open(self, listener: _Listener, previous: int | None) -> None:
        w = listener.want
        if not w.addresses:
            return  # public interface disabled and no network: nothing to listen on
        loop = asyncio.get_running_loop()
        serve: Callable[[str, int], Awaitable[asyncio.Server]]
        if w.kind == "tcp":
            fe = TcpFrontend(self, listener.lb_id, listener.listen_port)
            listener.tcp = fe

            async def serve(ip: str, port: int) -> asyncio.Server:
                return await asyncio.start_server(fe.handle, ip, port, reuse_address=True)

        else:
            listener.current_web = self._web_server(listener)
            listener.web_servers.append(listener.current_web)
            ssl_kwargs: dict[str, Any] = {}
            if w.kind == "https":
                lb_id, port_ = listener.lb_id, listener.listen_port
                ssl_kwargs["ssl"] = listener_context(lambda: self._certificates_for(lb_id, port_))
                ssl_kwargs["ssl_handshake_timeout"] = max(0.5, w.idle)

            def factory() -> asyncio.BaseProtocol:
                assert listener.current_web is not None
                return listener.current_web()

            async def serve(ip: str, port: int) -> asyncio.Server:
                return await loop.create_server(factory, ip, port, reuse_address=True, **ssl_kwargs)

        await self._bind(listener, serve, previous)

    async def _bind(
        self,
        listener: _Listener,
        serve: Callable[[str, int], Awaitable[asyncio.Server]],
        previous: int | None,
    ) -> None:
        lp = listener.listen_port
        failures = []
        candidates = self._ports.candidates(lp, previous)
        candidates += [0, 0]  # ephemeral, retried: the port picked on one address may be taken on another
        for cand in candidates:
            servers: list[asyncio.Server] = []
            port = cand
            try:
                for ip in listener.want.addresses:
                    srv = await serve(ip, port)
                    servers.append(srv)
                    if port == 0:
                        port = int(srv.sockets[0].getsockname()[1])
            except BaseException as exc:
                for srv in servers:
                    srv.close()
                if not isinstance(exc, OSError):
                    raise
                if exc.errno == errno.EACCES and cand == lp and lp < PRIVILEGED_LIMIT:
                    self._ports.note_privileged_denied()
                failures.append(f"{cand or 'ephemeral'}: {exc.strerror or exc}")
                continue
            self._ports.note_bound(lp, port)
            listener.port, listener.servers = port, servers
            if port != lp:
                log.info(
                    "load balancer %s: listen port %s is bound at port %s on %s%s",
                    listener.lb_id,
                    lp,
                    port,
                    ", ".join(listener.want.addresses),
                    f" ({'; '.join(failures)})" if failures else "",
                )
            return
        log.error(
            "load balancer %s: cannot listen for port %s on %s: %s",
            listener.lb_id,
            lp,
            ", ".join(listener.want.addresses),
            "; ".join(failures),
        )

    async def _close(self, listener: _Listener) -> None:
        for srv in listener.servers:
            srv.close()
        if listener.tcp is not None:
            await listener.tcp.close_all()
        for ws in listener.web_servers:
            with contextlib.suppress(Exception):
                await ws.shutdown(SHUTDOWN_GRACE)
        for srv in listener.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 1.0)
        listener.servers = []
        listener.web_servers = []
        listener.current_web = None
        listener.port = None

    # ---- health ---------------------------------------------------------------------------------
    @staticmethod
    def _unreachable(t: TargetView) -> str | None:
        if t.address is not None:
            return None
        if t.use_private_ip:
            return f"server {t.server_id} has no private IP in the load balancer's network"
        return f"server {t.server_id} has no public IPv4 address"

    async def _reconcile_health(self, views: tuple[LoadBalancerView, ...]) -> None:
        wanted: dict[CheckKey, CheckSpec] = {}
        for v in views:
            for s in v.services:
                for t in v.targets:
                    wanted[(v.id, s.listen_port, t.health_key)] = CheckSpec(
                        s.health_check, t.address, self._unreachable(t)
                    )
        for key in list(self._checkers):
            if key not in wanted:
                await self._checkers.pop(key).stop()
        for key in list(self._records):
            if key not in wanted:
                del self._records[key]
        assert self._health_session is not None
        for key, spec in wanted.items():
            checker = self._checkers.get(key)
            if checker is not None and checker.spec == spec:
                continue
            if checker is not None:
                await checker.stop()
                record = checker.record
                record.reset_counters()
            else:
                record = HealthRecord()
                self._records[key] = record
                self._report(key, record)  # a (re)added target starts `unknown`
            checker = HealthChecker(key, spec, record, self._clock, self._health_session, self._report)
            self._checkers[key] = checker
            checker.start()

    def _report(self, key: CheckKey, record: HealthRecord) -> None:
        if self._records.get(key) is not record:
            return  # a stale checker finishing after its target went away
        lb_id, port, target = key
        unhealthy = record.status == "unhealthy"
        try:
            self.state.set_target_health(
                lb_id,
                port,
                target,
                record.status,
                detail=record.detail if unhealthy else None,
                http_status_code=record.http_status_code if unhealthy else None,
            )
        except Exception:
            log.exception("load balancer %s: cannot report health of %s", lb_id, target)

    # ---- publication ----------------------------------------------------------------------------
    def _publish(self) -> None:
        current = tuple(self.listeners())
        if current == self._published:
            return
        self._published = current
        if self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:
                log.exception("load balancer plane: on_change callback failed")
